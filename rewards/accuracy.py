"""The accuracy reward: 1.0 when the final answer equals the gold answer, graded in the pool.

Pipeline per completion: :func:`rewards.extract.extract` (final answer, hedging) ->
:func:`rewards.rules.prejudge` (anti-hack rule, fast paths) -> :class:`rewards.pool.GradingPool`
(math-verify in a worker, hard time limit, cache).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from rewards.extract import extract
from rewards.pool import GradingPool
from rewards.rules import is_relation, prejudge

logger = logging.getLogger(__name__)

_shared_pool: GradingPool | None = None
_shared_lock = threading.Lock()


def get_pool() -> GradingPool:
    """The process-wide grading pool, created on first use (workers start on the first grade).

    Returns:
        The shared :class:`GradingPool` (settings from ``STAGERL_REWARD_WORKERS`` and
        ``STAGERL_REWARD_TIMEOUT``).
    """
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None or _shared_pool._closed:
            _shared_pool = GradingPool()
        return _shared_pool


def grade(
    completions: Sequence[object],
    golds: Sequence[object],
    timeout: float | None = None,
    pool: GradingPool | None = None,
    stats: Counter | None = None,
) -> list[float | None]:
    """Grade completions against gold answers.

    Args:
        completions: plain strings or conversational completions (None and bytes are accepted).
        golds: gold answers, one per completion.
        timeout: per-item limit in seconds (default: the pool's).
        pool: the pool to use (default: the shared one).
        stats: if given, incremented with ``hedged``, ``no_answer``, ``ungradable_gold``, ``pool``.

    Returns:
        1.0 (equivalent), 0.0 (wrong, no answer, hedged, hack, timeout) or None (gold not gradable).

    >>> grade(["so 16 + 18 = 34 hours", r"\\boxed{5+77}", r"\\boxed{3} or \\boxed{4}"], ["34", "82", "3"])
    [1.0, 0.0, 0.0]
    """
    if len(completions) != len(golds):
        raise ValueError(f"got {len(completions)} completions but {len(golds)} gold answers")
    stats = stats if stats is not None else Counter()
    results: list[float | None] = [0.0] * len(completions)
    to_pool: list[tuple[int, tuple[str, str]]] = []
    for i, (completion, gold) in enumerate(zip(completions, golds, strict=True)):
        gold = "" if gold is None else str(gold).strip()
        # Empty or malformed (unbalanced braces) golds are data bugs: skip them rather than train on them.
        if not gold or gold.count("{") != gold.count("}"):
            stats["ungradable_gold"] += 1
            results[i] = None
            continue
        ext = extract(completion)
        if ext.answer is None:
            stats["hedged" if ext.hedged else "no_answer"] += 1
            continue
        # A gold that is itself an equation or inequality is compared with the answer as written.
        answer = ext.raw if is_relation(gold) else ext.answer
        decided = prejudge(answer, gold)
        if decided == "pool":
            to_pool.append((i, (answer, gold)))
        else:
            results[i] = decided
    if to_pool:
        stats["pool"] += len(to_pool)
        graded = (pool or get_pool()).grade_pairs([pair for _, pair in to_pool], timeout=timeout)
        for (i, _), value in zip(to_pool, graded, strict=True):
            results[i] = value
            if value is None:
                stats["ungradable_gold"] += 1
    return results


def accuracy(
    answer_field: str = "answer",
    timeout: float | None = None,
    num_workers: int | None = None,
) -> Callable[..., list[float | None]]:
    """Build the accuracy reward.

    Args:
        answer_field: dataset column holding the gold answer.
        timeout: per-item grading limit in seconds (default ``STAGERL_REWARD_TIMEOUT`` or 5).
        num_workers: give this reward its own pool of that size (default: the shared pool).

    Returns:
        ``accuracy(completions, **kwargs) -> list[float | None]`` with TRL's reward signature; None
        marks a gold answer that cannot be graded (TRL skips it), counted in ``fn.stats`` and logged
        as ``accuracy/ungradable_gold`` through ``log_metric`` when TRL provides it.
    """
    own_pool = GradingPool(num_workers=num_workers, timeout=timeout) if num_workers else None
    stats: Counter = Counter()

    def accuracy_reward(completions: list, **kwargs) -> list[float | None]:
        if answer_field not in kwargs:
            raise ValueError(
                f"accuracy reward needs the gold column {answer_field!r}; got columns {sorted(kwargs)}"
            )
        batch: Counter = Counter()
        rewards = grade(completions, kwargs[answer_field], timeout=timeout, pool=own_pool, stats=batch)
        stats.update(batch)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            n = max(1, len(completions))
            log_metric("accuracy/ungradable_gold", batch["ungradable_gold"] / n)
            log_metric("accuracy/hedged", batch["hedged"] / n)
            log_metric("accuracy/no_answer", batch["no_answer"] / n)
        if batch["ungradable_gold"]:
            logger.warning("accuracy: %d gold answers could not be graded (None)", batch["ungradable_gold"])
        return rewards

    accuracy_reward.__name__ = "accuracy"
    accuracy_reward.__qualname__ = "accuracy"
    accuracy_reward.stats = stats
    return accuracy_reward
