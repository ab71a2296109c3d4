"""Grading sampled completions as the training reward grades them: evaluation's and labelling's one grader."""

from __future__ import annotations

from stagerl.train.generation import Sample


def grade_samples(
    golds: list[str], outs: list[list[Sample]], think_open: bool, timeout: float | None = None
) -> list[list[float | None]]:
    """Grade every sample of every problem with `stagerl.rewards.grade` in one call: a completion cut off at the
    length limit earns nothing from a fallback answer, and with `think_open` nothing before `</think>` counts.

    Args:
        golds: one gold answer per problem.
        outs: the problems' samples, one list per problem.
        think_open: the prompt opened a reasoning block.
        timeout: seconds per answer (None: the pool's).

    Returns:
        One list of grades per problem (1.0, 0.0, or None where the pool could not grade against the gold).
    """
    from stagerl.rewards import grade

    flat = [sample for per_problem in outs for sample in per_problem]
    flat_golds = [gold for gold, per_problem in zip(golds, outs, strict=True) for _ in per_problem]
    flat_grades = grade(
        [s.text for s in flat],
        flat_golds,
        timeout=timeout,
        truncated=[s.truncated for s in flat],
        think_open=think_open,
    )
    grades, pos = [], 0
    for per_problem in outs:
        grades.append(flat_grades[pos : pos + len(per_problem)])
        pos += len(per_problem)
    return grades
