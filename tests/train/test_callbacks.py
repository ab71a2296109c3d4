from types import SimpleNamespace

from transformers import TrainerControl

from stagerl.data.problems import Group
from stagerl.train.callbacks import EarlyAdvance


def args(accumulation=1, per_generation=1, iterations=1):
    return SimpleNamespace(
        gradient_accumulation_steps=accumulation,
        steps_per_generation=per_generation,
        num_iterations=iterations,
    )


def feed(callback, accuracy_per_step, training_args=None, generate_every=1):
    """Steps 1, 2, ...: a generation (its accuracy scores observed) every `generate_every` optimizer steps, the
    way TRL calls the reward at the start of a generation block; returns the step that advanced."""
    training_args = training_args or args()
    state, control = SimpleNamespace(global_step=0), TrainerControl()
    for step, scores in enumerate(accuracy_per_step, 1):
        state.global_step = step
        if (step - 1) % generate_every == 0:
            callback.observe([Group("p", tuple(scores), zero_variance=False)])
        callback.on_step_end(training_args, state, control)
        if control.should_training_stop:
            return step, control
    return None, control


def test_threshold_fires_on_the_accuracy_mean_over_optimizer_steps():
    steps = [[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0] * 4, [1.0] * 4, [1.0, 1.0, 0.0, 1.0]]
    step, control = feed(EarlyAdvance(0.6, None, window=2, min_steps=0), steps)
    assert step == 5 and control.should_save  # step 4: (0 + 1) / 2; step 5: (1 + 0.75) / 2


def test_ungradable_scores_do_not_count():
    step, _ = feed(EarlyAdvance(1.0, None, window=1, min_steps=0), [[1.0, None, None]])
    assert step == 1


def test_threshold_respects_min_steps_and_never_fires_below():
    assert feed(EarlyAdvance(0.5, None, window=2, min_steps=4), [[1.0]] * 5)[0] == 4
    assert feed(EarlyAdvance(0.95, None, window=2, min_steps=0), [[0.9]] * 20)[0] is None


def test_plateau_fires_when_gain_is_small():
    rising = [[0.1 * i] for i in range(10)]
    assert feed(EarlyAdvance(None, 0.05, window=3, min_steps=0), rising)[0] is None
    step, _ = feed(EarlyAdvance(None, 0.05, window=3, min_steps=0), rising[:4] + [[0.4]] * 10)
    assert step == 9  # windows [0.4]*3 vs [0.4]*3 first at step 9 (steps 4..6 still include the rise)


def test_decisions_wait_for_the_end_of_a_generation_block():
    # steps_per_generation 4 over gradient accumulation 2: one generation serves 2 optimizer steps; both steps
    # count that generation's mean, and only even steps may end the stage.
    block = args(accumulation=2, per_generation=4)
    step, _ = feed(EarlyAdvance(0.5, None, window=1, min_steps=0), [[1.0]] * 4, block, generate_every=2)
    assert step == 2
    early = EarlyAdvance(0.5, None, window=3, min_steps=0)
    assert feed(early, [[1.0], [1.0], [0.0], [0.0]], block, generate_every=2)[0] is None
    assert early.history == [1.0, 1.0, 0.0, 0.0]


def test_history_survives_a_checkpoint(tmp_path):
    first = EarlyAdvance(0.6, None, window=4, min_steps=0)
    feed(first, [[0.5], [0.5]])
    (tmp_path / "early_advance.json").write_text(first.checkpoint_files()["early_advance.json"])
    resumed = EarlyAdvance(0.6, None, window=4, min_steps=0)
    resumed.load_checkpoint(tmp_path)
    state, control = SimpleNamespace(global_step=2), TrainerControl()
    for step in (3, 4):
        state.global_step = step
        resumed.observe([Group("p", (1.0,), zero_variance=True)])
        resumed.on_step_end(args(), state, control)
    assert control.should_training_stop and resumed.history == [0.5, 0.5, 1.0, 1.0]


def test_a_completion_token_budget_ends_the_stage_at_a_block_end():
    counts = SimpleNamespace(total={"completion_tokens": 0})
    early = EarlyAdvance(None, None, window=1, min_steps=0, token_budget=100, counts=counts)
    state, control = SimpleNamespace(global_step=0), TrainerControl()
    block = args(accumulation=1, per_generation=2)  # a generation every 2 steps
    for step in range(1, 7):
        state.global_step = step
        counts.total["completion_tokens"] += 40 if step % 2 else 0  # generated at the block's first step
        early.on_step_end(block, state, control)
        if control.should_training_stop:
            break
    assert step == 6 and early.reason.startswith("completion-token budget: 120 generated >= 100")
