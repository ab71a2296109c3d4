from types import SimpleNamespace

from transformers import TrainerControl

from stagerl.train.callbacks import EarlyAdvance


def feed(callback, rewards):
    state = SimpleNamespace(log_history=[], global_step=0)
    control = TrainerControl()
    for step, r in enumerate(rewards, 1):
        state.global_step = step
        state.log_history.append({"step": step, "reward": r})
        callback.on_log(None, state, control, logs={"reward": r})
        if control.should_training_stop:
            return step, control
    return None, control


def test_threshold_fires_on_moving_average():
    step, control = feed(EarlyAdvance(0.5, None, window=3, min_steps=0), [0.1, 0.9, 0.3, 0.6, 0.7, 0.8])
    assert step == 4 and control.should_save  # step 3: mean(.1, .9, .3) = .433; step 4: mean(.9, .3, .6) = .6


def test_threshold_respects_min_steps_and_never_fires_below():
    assert feed(EarlyAdvance(0.5, None, window=2, min_steps=4), [1, 1, 1, 1, 1])[0] == 4
    assert feed(EarlyAdvance(0.95, None, window=2, min_steps=0), [0.9] * 20)[0] is None


def test_plateau_fires_when_gain_is_small():
    rising = [0.1 * i for i in range(10)]
    assert feed(EarlyAdvance(None, 0.05, window=3, min_steps=0), rising)[0] is None
    step, _ = feed(EarlyAdvance(None, 0.05, window=3, min_steps=0), rising[:4] + [0.4] * 10)
    assert step == 9  # windows [0.4]*3 vs [0.4]*3 first at step 9 (steps 4..6 still include the rise)
