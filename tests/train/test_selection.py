"""Online prompt selection: problems that always score alike are drawn far less often, yet still drawn; the draws
replay exactly after a checkpoint; the sampler keeps TRL's repeat structure."""

import itertools
import random
from collections import Counter

import pytest

from stagerl.train.selection import PromptSelector, SelectionSampler, selection_lag

PROMPTS, GENERATIONS = 4, 2  # prompts per batch, completions per prompt


def make_selector(n=40, lag=2, **kwargs):
    ids = [f"p{i}" for i in range(n)]
    return PromptSelector(ids, explore=kwargs.pop("explore", 0.5), min_keep=kwargs.pop("min_keep", 0.05), lag=lag,
                          seed=0, **kwargs)  # fmt: skip


def fake_scores(batch_ids, easy, rng):
    """A reward under which every problem in `easy` is always solved; the others are solved sometimes."""
    return [
        1.0 if pid in easy else float(rng.random() < 0.5) for pid in batch_ids for _ in range(GENERATIONS)
    ]


def train(selector, batches, easy, lag=2, rng=None, resumed_at=0):
    """Draw and score like the trainer: batch k is drawn before the scores of the last `lag - 1` batches are in.
    A run resumed after `resumed_at` batches skips (does not score) the batches drawn before, as transformers
    does."""
    rng = rng or random.Random(1)
    sampler = SelectionSampler(selector, mini_repeat_count=GENERATIONS, batch_size=PROMPTS, repeat_count=1)
    stream, pending, drawn = iter(sampler), [], []
    while len(drawn) < batches:
        indices = list(itertools.islice(stream, PROMPTS * GENERATIONS))
        if not indices:  # the pass (epoch) is over: the trainer iterates the sampler again
            stream = iter(sampler)
            continue
        ids = [selector.ids[i] for i in indices[::GENERATIONS]]
        drawn.append(ids)
        if len(drawn) <= resumed_at:
            continue
        pending.append(ids)
        if len(pending) == lag - 1:  # the oldest drawn batch is generated and scored now
            ids = pending.pop(0)
            selector.observe([pid for pid in ids for _ in range(GENERATIONS)], fake_scores(ids, easy, rng))
    return drawn


def test_always_solved_problems_are_drawn_far_less_often_but_still_drawn():
    selector = make_selector()
    easy = {f"p{i}" for i in range(10)}
    drawn = train(selector, batches=300, easy=easy)
    later = Counter(pid for batch in drawn[60:] for pid in batch)  # once streaks have built up
    easy_rate = sum(later[p] for p in easy) / len(easy)
    other_rate = sum(later[p] for p in later if p not in easy) / 30
    assert easy_rate < other_rate / 4, (easy_rate, other_rate)
    assert all(later[p] > 0 for p in easy)  # every problem is retried
    totals = selector.totals(GENERATIONS)
    assert (
        totals["prompts_skipped"] > 0 and totals["rollouts_saved"] == GENERATIONS * totals["prompts_skipped"]
    )
    assert all(len(batch) == PROMPTS for batch in drawn)  # batches stay full


def test_groups_with_variance_are_never_skipped():
    selector = make_selector()
    sampler = SelectionSampler(selector, mini_repeat_count=GENERATIONS, batch_size=PROMPTS, repeat_count=1)
    stream = iter(sampler)
    for _ in range(9):  # most of a pass; every group has one right and one wrong completion
        ids = [selector.ids[i] for i in itertools.islice(stream, PROMPTS * GENERATIONS)]
        selector.observe(ids, [0.0, 1.0] * PROMPTS)
    assert selector.totals(GENERATIONS)["prompts_skipped"] == 0 and not any(selector.streak.values())


def test_a_restored_checkpoint_draws_exactly_what_an_uninterrupted_run_draws(tmp_path):
    easy = {f"p{i}" for i in range(10)}
    straight = train(make_selector(), batches=120, easy=easy, rng=random.Random(7))
    first, rng = make_selector(), random.Random(7)
    before = train(first, batches=53, easy=easy, rng=rng)
    for name, text in first.checkpoint_files().items():
        (tmp_path / name).write_text(text)
    resumed = make_selector()
    resumed.load_checkpoint(tmp_path)
    # The resumed epoch replays its batches drawn so far (the ones transformers skips), then goes on alike.
    replayed = len(resumed.drawn)
    assert 0 < replayed < 53
    after = train(resumed, batches=120 - 53 + replayed, easy=easy, rng=rng, resumed_at=replayed)
    assert before == straight[:53] and after == straight[53 - replayed : 120]


def test_a_checkpoint_without_the_selection_state_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="selection.json"):
        make_selector().load_checkpoint(tmp_path)


def test_drawing_ahead_of_the_scores_is_refused():
    selector = make_selector(lag=1)  # claims scores are in sooner than they are
    with pytest.raises(RuntimeError, match="not in yet"):
        train(selector, batches=5, easy=set(), lag=3)


def test_repeat_structure_matches_trl():
    selector = make_selector(n=8)
    sampler = SelectionSampler(selector, mini_repeat_count=2, batch_size=2, repeat_count=3)
    assert len(sampler) == (8 // 2) * 2 * 2 * 3  # an upper bound of a pass: as TRL's RepeatSampler
    first = list(itertools.islice(iter(sampler), 12))  # the first batch: 2 prompts x 2 completions, 3 times
    assert first[:4] == first[4:8] == first[8:12] and first[0] == first[1] != first[2] == first[3]


def test_lag_covers_what_the_dataloader_pulls_ahead():
    assert selection_lag(1, 1, 1) == 2 and selection_lag(128, 128, 1) == 2 and selection_lag(4, 1, 2) == 3
