"""The prompt sampler: distinct problems per batch, GRESO's selection as published, refills, exact resume."""

import itertools
import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from trl.trainer.utils import RepeatSampler

from stagerl.data.problems import Group, ProblemRecord, ProblemTable
from stagerl.train import sampling
from stagerl.train.checkpoints import ResumeCheck
from stagerl.train.config import StageArguments
from stagerl.train.sampling import (
    MIN_KEEP,
    P_MAX,
    P_MIN,
    EpochRepeatSampler,
    Greso,
    Learnability,
    PromptSampler,
    TrlSampler,
    sampler_settings,
)


def sampler(ids, lag=1, greso=None, history=None, seed=0, learnability=None):
    return PromptSampler(ids, seed=seed, lag=lag, greso=greso, history=history, learnability=learnability)


def test_a_batch_never_holds_a_problem_twice_across_a_pass_boundary():
    s = sampler([f"p{i}" for i in range(5)])
    for _ in range(20):  # batches of 3 out of 5 rows straddle pass ends every other batch
        batch = s.draw(3)
        assert len({s.ids[r] for r in batch}) == 3
        s.observe([])
    # ...nor the same problem under two rows (a problem listed twice in the data)
    dup = sampler(["a", "a", "b", "c"])
    assert all(len({dup.ids[r] for r in dup.draw(2)}) == 2 for _ in range(10) if dup.observe([]) is None)


def test_greso_keep_probability_per_side():
    greso = Greso(target_zero_variance=0.25, initial_p=0.5)
    greso.p = {"right": 0.5, "wrong": 0.8}
    assert greso.keep_probability(ProblemRecord(right_streak=2)) == 0.25
    assert greso.keep_probability(ProblemRecord(wrong_streak=2)) == pytest.approx(0.64)
    assert greso.keep_probability(ProblemRecord(wrong_streak=50)) == MIN_KEEP
    assert greso.keep_probability(ProblemRecord(attempts=8, successes=3)) == 1.0


def test_greso_adapts_each_side_toward_its_target():
    greso = Greso(target_zero_variance=0.3, initial_p=0.5)  # targets: 0.1 all right, 0.2 all wrong
    right, wrong, mixed = Group("a", (1, 1), True), Group("b", (0, 0), True), Group("c", (0, 1), False)
    greso.adapt([right] + [mixed] * 9)  # right share 0.1 >= 0.1: skip more; wrong share 0 < 0.2: skip less
    assert greso.p == {"right": 0.49, "wrong": 0.51}
    for _ in range(100):
        greso.adapt([wrong] * 5 + [mixed] * 5)
    assert greso.p == {"right": P_MAX, "wrong": P_MIN}


def simulate(s, always_right: set[str], batches: int, size: int = 4) -> Counter:
    """Draw and score `batches` batches: the problems in `always_right` always give all-right groups."""
    drawn = Counter()
    for _ in range(batches):
        batch = s.draw(size)
        drawn.update(s.ids[r] for r in batch)
        s.observe(
            [
                Group(
                    s.ids[r], (1.0, 1.0) if s.ids[r] in always_right else (0.0, 1.0), s.ids[r] in always_right
                )
                for r in batch
            ]
        )
    return drawn


def test_greso_brings_the_zero_variance_share_to_its_target():
    """A quarter of the pool always gives all-right groups. GRESO skips them until their share of the groups
    comes near its target (a third of 0.25), never dropping one for good; without selection it stays 0.25."""
    ids = [f"p{i}" for i in range(80)]
    easy = set(ids[:20])
    s = sampler(ids, greso=Greso(0.25, 0.5))
    simulate(s, easy, batches=200, size=16)
    late = simulate(s, easy, batches=100, size=16)
    assert 0.04 < sum(late[i] for i in easy) / 1600 < 0.14 and min(late[i] for i in easy) >= 1
    assert sum(s.skipped_at) > 500 and s.refills_skipped == 0
    plain = simulate(sampler(ids), easy, batches=100, size=16)
    assert sum(plain[i] for i in easy) / 1600 == 0.25


def test_earlier_stages_history_skips_from_the_first_pass():
    ids = [f"p{i}" for i in range(20)]
    history = ProblemTable({pid: ProblemRecord(groups=6, right_streak=6) for pid in ids[:10]})
    s = sampler(ids, greso=Greso(0.25, 0.5), history=history)
    first_pass = simulate(s, set(), batches=5)  # 20 rows: the first pass
    assert sum(first_pass[i] for i in ids[:10]) <= 3 and s.adapting


def test_refill_continues_the_pass_and_leaves_out_the_batch():
    s = sampler([f"p{i}" for i in range(8)])
    batch = s.draw(4)
    taken = {s.ids[r] for r in batch}
    more, skipped = s.refill(4, taken)
    assert skipped == 0 and not taken & {s.ids[r] for r in more}
    assert sorted(batch + more) == list(range(8))  # the rest of the first pass


def test_a_restored_sampler_draws_what_an_uninterrupted_one_does(tmp_path):
    ids = [f"p{i}" for i in range(30)]
    easy = set(ids[:8])
    straight = sampler(ids, lag=2, greso=Greso(0.25, 0.5))
    simulate(straight, easy, batches=40)
    (tmp_path / "sampler.json").write_text(straight.checkpoint_files()["sampler.json"])
    restored = sampler(ids, lag=2, greso=Greso(0.25, 0.5))
    restored.load_checkpoint(tmp_path)
    assert simulate(restored, easy, batches=40) == simulate(straight, easy, batches=40)
    assert restored.greso.p == straight.greso.p
    assert restored.stage_table.text() == straight.stage_table.text()


def test_a_draw_that_needs_scores_not_yet_in_fails_clearly():
    s = sampler([f"p{i}" for i in range(10)], lag=1)
    s.draw(2)
    with pytest.raises(RuntimeError, match="dataloader_num_workers must be 0"):
        s.draw(2)


def test_trl_sampler_repeats_like_trls_and_replays_the_epoch():
    s = sampler([f"p{i}" for i in range(6)], lag=10)
    trl = TrlSampler(s, mini_repeat_count=2, batch_size=2, repeat_count=3)
    first = list(trl)
    assert len(first) == len(trl) == 3 * 2 * 2 * 3
    assert first[:4] == [first[0]] * 2 + [first[2]] * 2 and first[:4] * 3 == first[:12]
    assert s.epoch == 1 and s.drawn == []  # a whole epoch walked: the next one starts with nothing drawn
    s.epoch, s.drawn = 0, [first[0:4:2], first[12:16:2]]  # resumed mid-epoch 0: the drawn batches come back
    trl.set_epoch(0)
    assert list(trl)[:24] == first[:24]


def epoch_of(s: PromptSampler, epoch: int, items: int | None = None) -> list[int]:
    """The first `items` indices (all: None) of epoch `epoch` of `s`, told the epoch as transformers tells it;
    a batch is drawn when its first index is asked for."""
    trl = TrlSampler(s, mini_repeat_count=1, batch_size=1, repeat_count=1)
    trl.set_epoch(epoch)
    return list(itertools.islice(trl, items))


@pytest.mark.parametrize(
    ("consumed", "resumed_in"), [(4, 1), (None, 2)], ids=["every-batch-drawn-before-the-end", "at-the-end"]
)
def test_a_prompt_sampler_resumed_in_a_later_epoch_walks_that_epochs_batches(tmp_path, consumed, resumed_in):
    """4 rows, one a batch. A checkpoint one step before epoch 1's end, when the dataloader has already drawn
    its last batch (it prefetches), resumes in epoch 1; one at its end in epoch 2. Either way the resumed
    sampler walks what the uninterrupted one walks in that epoch."""
    ids = [f"p{i}" for i in range(4)]
    straight = sampler(ids, lag=20)
    epochs = [epoch_of(straight, e) for e in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]  # each pass in a new order
    killed = sampler(ids, lag=20)
    epoch_of(killed, 0)
    assert epoch_of(killed, 1, consumed) == epochs[1][:consumed]
    (tmp_path / "sampler.json").write_text(killed.checkpoint_files()["sampler.json"])
    resumed = sampler(ids, lag=20)
    resumed.load_checkpoint(tmp_path)
    assert epoch_of(resumed, resumed_in) == epochs[resumed_in]


def test_trls_sampler_put_in_any_epoch_walks_that_epochs_order():
    """`EpochRepeatSampler` is TRL's `RepeatSampler` epoch by epoch, and one put in epoch e (a resumed stage)
    walks TRL's epoch e; TRL's own walks its epoch 0 again."""
    trl = RepeatSampler(range(8), mini_repeat_count=1, seed=0)
    epochs = [list(trl) for _ in range(3)]
    straight = EpochRepeatSampler(range(8), mini_repeat_count=1, seed=0)
    assert [list(straight) for _ in range(3)] == epochs  # nothing calls set_epoch: TRL's orders
    told = EpochRepeatSampler(range(8), mini_repeat_count=1, seed=0)
    assert [
        told.set_epoch(e) or list(told) for e in range(3)
    ] == epochs  # told every epoch, as transformers does
    resumed = EpochRepeatSampler(range(8), mini_repeat_count=1, seed=0)
    resumed.set_epoch(2)
    assert list(resumed) == epochs[2] != list(RepeatSampler(range(8), mini_repeat_count=1, seed=0))


def test_learnability_draws_the_problems_the_model_half_solves():
    """Priors from labelled pass rates (8 samples strong): problems at 0.5 are drawn about 2.8 times as often as
    those at 0 or 1."""
    ids = [f"p{i}" for i in range(30)]
    rates = {pid: (0.5 if i < 10 else 1.0 if i < 20 else 0.0) for i, pid in enumerate(ids)}
    s = sampler(ids, lag=10**6, learnability=Learnability(rates))
    drawn = Counter(s.ids[r] for _ in range(100) for r in s.draw(4))
    per_half, per_extreme = sum(drawn[i] for i in ids[:10]) / 10, sum(drawn[i] for i in ids[10:]) / 20
    # weights E[p (1 - p)]: Beta(5, 5) 0.227 against Beta(9, 1) or Beta(1, 9) 0.082, a ratio of 2.8
    assert 2 < per_half / per_extreme < 4
    assert all(len(set(b)) == 4 for b in s.drawn)  # without replacement within a batch


def test_learnability_posteriors_follow_earlier_stages_and_this_ones_groups():
    ids = ["solved", "half", "fresh"]
    history = ProblemTable(
        {"solved": ProblemRecord(attempts=40, successes=40), "half": ProblemRecord(attempts=40, successes=20)}
    )
    s = sampler(ids, lag=1, history=history, learnability=Learnability({}))
    weights = dict(zip(s.problem_ids, s.learnability_weights(), strict=True))
    assert weights["half"] > weights["fresh"] > weights["solved"]
    s.draw(1)
    s.observe([Group("fresh", (1.0,) * 40, True)])  # this stage finds "fresh" always solved
    s.fold_until(s.blocks_observed)
    assert s.learnability_weights()[s.problem_index["fresh"]] < weights["fresh"]
    assert history.get("fresh") == ProblemRecord()  # the earlier stages' table is read, never written


def test_learnability_resumes_its_draws_exactly(tmp_path):
    ids = [f"p{i}" for i in range(20)]
    rates = {pid: i / 19 for i, pid in enumerate(ids)}
    straight = sampler(ids, lag=2, learnability=Learnability(rates))
    simulate(straight, set(ids[:5]), batches=15)
    (tmp_path / "sampler.json").write_text(straight.checkpoint_files()["sampler.json"])
    restored = sampler(ids, lag=2, learnability=Learnability(rates))
    restored.load_checkpoint(tmp_path)
    assert simulate(restored, set(ids[:5]), batches=15) == simulate(straight, set(ids[:5]), batches=15)


def test_selection_and_learnability_are_exclusive():
    with pytest.raises(ValueError, match="pick one"):
        sampler(["a"], greso=Greso(0.25, 0.5), learnability=Learnability({}))


def test_the_draws_of_a_small_pool_are_pinned():
    """The draws since December 2026's numpy streams (they changed once then): a pass's order, GRESO's skips by
    its coins, and a learnability draw, on 8 problems with seed 0. A change here changes every user's draws."""
    ids = [f"p{i}" for i in range(8)]
    passes = sampler(ids)
    assert [passes.draw(3) for _ in range(3) if passes.observe([]) is None] == PINNED["passes"]
    history = ProblemTable({pid: ProblemRecord(groups=2, wrong_streak=2) for pid in ids[:4]})
    greso = sampler(ids, greso=Greso(0.25, 0.5), history=history)
    assert [greso.draw(3) for _ in range(3) if greso.observe([]) is None] == PINNED["greso"]
    assert greso.skipped_at == PINNED["greso_skipped"]
    rates = {pid: i / 7 for i, pid in enumerate(ids)}
    learn = sampler(ids, learnability=Learnability(rates), lag=10)
    assert [learn.draw(3) for _ in range(3) if learn.observe([]) is None] == PINNED["learnability"]


PINNED = {
    "passes": [[2, 4, 3], [6, 5, 0], [1, 7, 4]],
    "greso": [[4, 6, 5], [0, 7, 4], [1, 5, 6]],  # p0-p3 kept with probability 0.5 ** 2
    "greso_skipped": [2, 1, 1],
    "learnability": [[2, 5, 1], [5, 2, 1], [5, 3, 4]],
}


def test_a_pass_order_is_computed_once_per_pass(monkeypatch):
    calls = Counter()
    real = sampling.stream

    def counted(seed, purpose, index):
        calls[purpose, index] += 1
        return real(seed, purpose, index)

    monkeypatch.setattr(sampling, "stream", counted)
    s = sampler([f"p{i}" for i in range(10)], greso=Greso(0.25, 0.5))
    for _ in range(12):  # 12 batches of 4 from 10 rows: about five passes
        s.draw(4)
        s.observe([])
    passes = s.data_pass + 1
    assert calls == {
        (purpose, p): 1 for purpose in (sampling.PASS_ORDER, sampling.PASS_COINS) for p in range(passes)
    }


def test_survival_weighs_a_rarely_solved_problem_up():
    """With 16 completions a group, survival weighs a problem solved one time in ten at 0.81 of one solved half
    the time (its groups nearly always hold a right answer too); E[p (1 - p)] at 0.36."""
    rates = np.array([0.5, 0.1])
    strong = 1000  # posteriors close to the labelled rates
    variance = Learnability({}, strength=strong).weights(np.zeros(2), np.zeros(2), rates)
    survival = Learnability({}, strength=strong, weight="survival", group_size=16)
    survival = survival.weights(np.zeros(2), np.zeros(2), rates)
    assert variance[1] / variance[0] == pytest.approx(0.09 / 0.25, abs=0.01)
    assert survival[1] / survival[0] == pytest.approx((1 - 0.9**16 - 0.1**16) / (1 - 2 * 0.5**16), abs=0.01)


@pytest.mark.parametrize("weight", ["variance", "survival"])
def test_a_problem_never_solved_is_drawn_again_within_the_floors_bound(weight):
    """The starvation guard: "never" has failed 10^6 attempts, so without the floor its weight is about
    10^-6 (variance) or 10^-5 (survival) of the others' and it is not drawn in the bound's number of draws; with
    the default floor it is."""
    ids = ["never"] + [f"p{i}" for i in range(39)]
    history = ProblemTable(
        {
            "never": ProblemRecord(attempts=10**6),
            **{pid: ProblemRecord(attempts=100, successes=50) for pid in ids[1:]},
        }
    )

    def draws_until_never(floor: float, limit: int) -> int | None:
        s = sampler(
            ids, lag=10**6, history=history, learnability=Learnability({}, weight=weight, floor=floor)
        )
        for k in range(limit):
            if "never" in {s.ids[r] for r in s.draw(4)}:
                return k + 1
            s.observe([])
        return None

    bound = Learnability({}, floor=0.05).redraw_bound(problems=40, size=4)
    assert bound == 968  # ln(100) (1 + f) P / (f k) = 967.09
    assert draws_until_never(0.05, bound) is not None
    assert draws_until_never(0.0, bound) is None


def test_a_checkpoint_holds_this_stages_records_and_resumes_on_the_earlier_stages_files(tmp_path):
    """The earlier stages' records (here 10,000 problems) come from problem_stats again on resume: the
    checkpoint holds the problems this stage scored, and the resumed draws equal the uninterrupted ones."""
    ids = [f"p{i}" for i in range(10_000)]
    history = ProblemTable({pid: ProblemRecord(attempts=8, successes=i % 9) for i, pid in enumerate(ids)})
    rates = {pid: (i % 10) / 10 for i, pid in enumerate(ids)}

    def fresh():
        return sampler(ids, lag=2, history=history, learnability=Learnability(rates, weight="survival"))

    straight = fresh()
    simulate(straight, set(ids[:50]), batches=10)
    state = straight.checkpoint_files()["sampler.json"]
    (tmp_path / "sampler.json").write_text(state)
    # 8 batches folded, the last lag (2) saved as groups
    assert len(json.loads(state)["stage_problems"].splitlines()) == 32 and len(state) < 10_000
    restored = fresh()
    restored.load_checkpoint(tmp_path)
    assert simulate(restored, set(ids[:50]), batches=10) == simulate(straight, set(ids[:50]), batches=10)


def test_a_resume_on_other_earlier_stage_files_is_refused(tmp_path):
    stats = tmp_path / "problems.jsonl"
    stats.write_text(ProblemTable({"a": ProblemRecord(attempts=2)}).text())
    stage = StageArguments(learnability_sampling=True, problem_stats=[str(stats)])
    training = SimpleNamespace(seed=0, data_seed=None, shuffle_dataset=True)
    saved = ResumeCheck(sampler_settings(stage, training))
    (tmp_path / "checkpoint-1").mkdir()
    for name, text in saved.checkpoint_files().items():
        (tmp_path / "checkpoint-1" / name).write_text(text)
    stats.write_text(ProblemTable({"a": ProblemRecord(attempts=3)}).text())
    with pytest.raises(ValueError, match="problem_stats_sha256 was"):
        ResumeCheck(sampler_settings(stage, training)).load_checkpoint(tmp_path / "checkpoint-1")
