"""The accuracy reward: 1.0 when the final answer equals the gold answer, graded in the pool.

Pipeline per completion: :func:`stagerl.rewards.extract.extract` (final answer and the other final answers it
states) -> :func:`stagerl.rewards.rules.prejudge` (anti-hack rule, fast paths) -> :class:`stagerl.rewards.pool.GradingPool`
(math-verify in a worker, hard time limit, cache). The pool also decides whether the other final answers
are equivalent to the last one (else the completion hedges), in the same round trip.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stagerl.rewards.clean import arity, clean_gold
from stagerl.rewards.extract import Extraction, extract, find_boxes
from stagerl.rewards.pool import GradingPool
from stagerl.rewards.rules import align_argument, align_percent, is_relation, prejudge

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


@dataclass
class _Plan:
    """One completion waiting for the pool: its verdict so far and the pairs that decide it."""

    index: int
    verdict: float | str  # 1.0 decided here, or "pool": then the first pair is (answer, gold)
    pairs: list[tuple[str, str]]

    def settle(self, values: list[float | None], stats: Counter) -> float | None:
        """The reward once the pool has graded ``self.pairs`` (``values``, in order)."""
        value = self.verdict
        if value == "pool":
            value, values = values[0], values[1:]
            if value is None:
                stats["ungradable_gold"] += 1
                return None
        # Each other final answer must be the same answer, or the completion hedges.
        if any(v != 1.0 for v in values):
            stats["hedged"] += 1
            return 0.0
        return value


def _final_answer(ext: Extraction, gold: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """The answer to grade against ``gold`` as ``(answer, raw, others)``; answer None when there is none.

    A multi-part gold answered part by part in separate boxes ("the maximum is \\boxed{2} ... the minimum is
    \\boxed{1}" for "1,2") is one answer with those parts, not a hedge.
    """
    k = arity(gold)
    if k > 1 and len(ext.parts) == k and (ext.answer is None or arity(ext.answer) != k):
        joined = ", ".join(ext.parts)
        return joined, joined, ()
    return ext.answer, ext.raw, ext.others


def _judge(ext: Extraction, gold: str, stats: Counter) -> tuple[float | str, list[tuple[str, str]]]:
    """What can be decided here: a verdict (0.0, 1.0 or "pool") and the pairs the pool must grade."""
    answer, raw, others = _final_answer(ext, gold)
    if answer is None:
        stats["hedged" if ext.hedged else "no_answer"] += 1
        return 0.0, []
    # A gold that is itself an equation or inequality is compared with the answer as written.
    if is_relation(gold):
        answer = align_argument(raw, gold)
    answer, gold = align_percent(answer, gold)
    verdict = prejudge(answer, gold)
    if verdict == 0.0:
        return 0.0, []
    pairs = [(answer, gold)] if verdict == "pool" else []
    return verdict, pairs + [(other, ext.answer) for other in others]


def grade(
    completions: Sequence[object],
    golds: Sequence[object],
    timeout: float | None = None,
    pool: GradingPool | None = None,
    stats: Counter | None = None,
    truncated: Sequence[bool] | None = None,
    think_open: bool = False,
) -> list[float | None]:
    """Grade completions against gold answers.

    Args:
        completions: plain strings or conversational completions (None and bytes are accepted).
        golds: gold answers, one per completion.
        timeout: per-item limit in seconds (default: the pool's).
        pool: the pool to use (default: the shared one).
        stats: if given, incremented with ``hedged``, ``no_answer``, ``truncated``, ``ungradable_gold``,
            ``pool``.
        truncated: per completion, whether generation stopped at the length limit; a truncated
            completion earns nothing from a fallback answer (see :class:`stagerl.rewards.extract.Extraction`).
        think_open: the prompt opened ``<think>``, so a completion without ``</think>`` has no answer.

    Returns:
        1.0 (equivalent), 0.0 (wrong, no answer, hedged, hack, timeout) or None (gold not gradable).

    >>> grade(["so 16 + 18 = 34 hours", r"\\boxed{5+77}", r"\\boxed{3} or \\boxed{4}"], ["34", "82", "3"])
    [1.0, 0.0, 0.0]
    """
    if len(completions) != len(golds):
        raise ValueError(f"got {len(completions)} completions but {len(golds)} gold answers")
    if truncated is not None and len(truncated) != len(completions):
        raise ValueError(f"got {len(completions)} completions but {len(truncated)} truncation flags")
    stats = stats if stats is not None else Counter()
    results: list[float | None] = [0.0] * len(completions)
    plans: list[_Plan] = []
    for i, (completion, gold) in enumerate(zip(completions, golds, strict=True)):
        gold = "" if gold is None else clean_gold(str(gold))
        # Empty or malformed (unbalanced braces) golds are data bugs: skip them rather than train on them.
        if not gold or gold.count("{") != gold.count("}"):
            stats["ungradable_gold"] += 1
            results[i] = None
            continue
        ext = extract(completion, think_open=think_open)
        if truncated is not None and truncated[i] and ext.kind == "fallback":
            stats["truncated"] += 1
            continue
        verdict, pairs = _judge(ext, gold, stats)
        if pairs:
            plans.append(_Plan(i, verdict, pairs))
        else:
            results[i] = float(verdict)
    if plans:
        # One round trip for every pair of the batch: answers against golds and hedge checks alike.
        all_pairs = [pair for plan in plans for pair in plan.pairs]
        stats["pool"] += len(all_pairs)
        graded = iter((pool or get_pool()).grade_pairs(all_pairs, timeout=timeout))
        for plan in plans:
            results[plan.index] = plan.settle([next(graded) for _ in plan.pairs], stats)
    return results


def gold_answers(columns: dict, answer_field: str = "answer") -> list:
    """The gold answers of a batch from its dataset columns (as TRL passes them to a reward).

    `answer_field` when the rows have it; else, for the default field, open-r1's rows: the last ``\\boxed{}``
    of each reference `solution` (None, ungradable, where it has none).

    Raises:
        ValueError: neither column is there (the message lists the columns).

    >>> gold_answers({"solution": [r"so $x=\\boxed{2}$", "no box"]})
    ['2', None]
    """
    if answer_field in columns:
        return columns[answer_field]
    if answer_field == "answer" and "solution" in columns:
        return [boxes[-1][0] if (boxes := find_boxes(str(s or ""))) else None for s in columns["solution"]]
    raise ValueError(
        f"accuracy reward needs the gold column {answer_field!r} (or open-r1's `solution`); got columns "
        f"{sorted(k for k in columns if k != 'log_metric')}"
    )


def accuracy(
    answer_field: str = "answer",
    timeout: float | None = None,
    num_workers: int | None = None,
    max_completion_length: int | None = None,
    deny_truncated_fallback: bool = True,
    think_open: bool = False,
) -> Callable[..., list[float | None]]:
    """Build the accuracy reward.

    Args:
        answer_field: dataset column holding the gold answer; rows without it but with open-r1's `solution`
            are graded against that solution's last ``\\boxed{}``.
        timeout: per-item grading limit in seconds (default ``STAGERL_REWARD_TIMEOUT`` or 5).
        num_workers: give this reward its own pool of that size (default: the shared pool).
        max_completion_length: the generation limit in tokens (GRPOConfig.max_completion_length). A
            completion whose ``completion_ids`` reach it was cut off (TRL keeps the EOS token in the ids
            of a completion that ended, so one that ended on its very last allowed token counts as cut
            off too). Without it truncation cannot be detected and no completion is treated as cut off.
        deny_truncated_fallback: a cut-off completion earns nothing from a fallback answer (a last
            number or formula, or an answer phrase that runs into the end of the text: what the model
            was still writing); boxes and finished answer phrases still count.
        think_open: the chat template opens ``<think>`` in the prompt, so a completion without
            ``</think>`` never finished thinking and has no answer.

    Returns:
        ``accuracy(completions, completion_ids=None, **kwargs) -> list[float | None]`` with TRL's reward
        signature; None marks a gold answer that cannot be graded (TRL skips it), counted in ``fn.stats``
        and logged as ``accuracy/ungradable_gold`` through ``log_metric`` when TRL provides it.

    >>> fn = accuracy(max_completion_length=8)
    >>> fn(["so it is 4", r"so \\boxed{4}"], answer=["4", "4"], completion_ids=[[0] * 8, [0] * 8])
    [0.0, 1.0]
    """
    if max_completion_length is not None and max_completion_length <= 0:
        raise ValueError(f"max_completion_length must be > 0, got {max_completion_length}")
    own_pool = GradingPool(num_workers=num_workers, timeout=timeout) if num_workers else None
    stats: Counter = Counter()
    detect = max_completion_length is not None and deny_truncated_fallback
    warned = False

    def truncation(completion_ids: list | None) -> list[bool] | None:
        nonlocal warned
        if not detect:
            return None
        if completion_ids is None:
            if not warned:
                logger.warning("accuracy: no completion_ids given; truncated completions are not detected")
                warned = True
            return None
        return [len(ids) >= max_completion_length for ids in completion_ids]

    def accuracy_reward(
        completions: list, completion_ids: list | None = None, **kwargs
    ) -> list[float | None]:
        batch: Counter = Counter()
        rewards = grade(
            completions,
            gold_answers(kwargs, answer_field),
            timeout=timeout,
            pool=own_pool,
            stats=batch,
            truncated=truncation(completion_ids),
            think_open=think_open,
        )
        stats.update(batch)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            n = max(1, len(completions))
            for key in ("ungradable_gold", "hedged", "no_answer", "truncated"):
                log_metric(f"accuracy/{key}", batch[key] / n)
        if batch["ungradable_gold"]:
            logger.warning("accuracy: %d gold answers could not be graded (None)", batch["ungradable_gold"])
        return rewards

    accuracy_reward.__name__ = "accuracy"
    accuracy_reward.__qualname__ = "accuracy"
    accuracy_reward.stats = stats
    return accuracy_reward
