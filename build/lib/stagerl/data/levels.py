"""Difficulty levels from reference-model pass rates: the pure rules, and the pass-rate record formats.

The rules follow the AM team's staged-RL paper (arXiv 2504.00829), which labelled problems with three
reference models (R1-Distill-Qwen 1.5B / 7B / 32B, here the roles `small`, `medium`, `large`). A pass rate
is `successes / graded samples`. With the thresholds `fail_at` (default 0.0) and `solve_at` (default 1.0):

- a model *fails* when its pass rate is `<= fail_at`, *solves all* when it is `>= solve_at`, and is
  *partial* strictly in between (a rate exactly on a threshold is a failure or a full solve, not partial);
- **level 1**: small is partial;
- **level 2**: small fails and medium does not fail (it solves the problem in all or some samples);
- **level 3**: small and medium fail, and large fails too; plus a seeded `retain_fraction` (default 50%) of
  the problems that large solves (in all or some samples); the other part is discarded;
- discarded: small solves all (`too_easy`), the unretained part of what large solves
  (`large_solved_dropped`), no gradable sample (`ungradable`), a needed pass rate unknown (`missing`).

Precedence, where the paper's wording overlaps: rules are checked in the order 1, 2, 3, first match wins.
The paper's level-2 clause "or both partial" (small and medium partial) is therefore level 1 by default,
since level 1 claims every problem where small is partial; `both_partial_level=2` sends those problems to
level 2 instead (small partial, medium solves all stays level 1). The roles are evaluated lazily: medium
is only needed when small fails (or, with `both_partial_level=2`, is partial), large only when small and
medium both fail, which is what lets `stagerl.train.label` skip the larger models where the rules allow.

The seeded choice hashes `(seed, problem id)`, so it does not depend on row order, `--limit` or a resume.

Adaptive relabelling (`adaptive_level`) uses what training recorded for a problem (`problems.jsonl`:
attempts, successes) after a stage: with at least `min_attempts` attempts, a problem the policy now solves
every time (rate `>= solve_at`) moves one level down (below level 1 it is dropped: mastered), one it never
solves (`<= fail_at`) moves one level up (capped at the top level), a partial one stays; too few attempts:
stays.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

ROLES = ("small", "medium", "large")
DISCARDED = 0


@dataclass(frozen=True)
class LevelRules:
    """Thresholds and choices of the level rules (see the module docstring)."""

    fail_at: float = 0.0
    solve_at: float = 1.0
    retain_fraction: float = 0.5
    seed: int = 0
    both_partial_level: int = 1

    def __post_init__(self):
        if not 0.0 <= self.fail_at < self.solve_at <= 1.0:
            raise ValueError(
                f"need 0 <= fail_at < solve_at <= 1; got fail_at={self.fail_at}, solve_at={self.solve_at}"
            )
        if not 0.0 <= self.retain_fraction <= 1.0:
            raise ValueError(f"retain_fraction={self.retain_fraction} must be within [0, 1]")
        if self.both_partial_level not in (1, 2):
            raise ValueError(f"both_partial_level={self.both_partial_level} must be 1 or 2")

    def kind(self, rate: float) -> str:
        """Classify a pass rate as `fail`, `partial` or `all`.

        >>> [LevelRules().kind(r) for r in (0.0, 0.5, 1.0)]
        ['fail', 'partial', 'all']
        """
        if rate <= self.fail_at:
            return "fail"
        if rate >= self.solve_at:
            return "all"
        return "partial"


def retained(problem_id: str, seed: int, fraction: float) -> bool:
    """The seeded, order-independent coin flip that keeps a `fraction` of the problems large solves.

    Args:
        problem_id: the problem's id.
        seed: the labelling seed.
        fraction: probability of keeping (0 keeps none, 1 keeps all).

    Returns:
        True when the problem is kept.
    """
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def needed_role(rates: dict[str, float | None], rules: LevelRules) -> str | None:
    """The next role whose pass rate the rules need, or None when the level is decided.

    Args:
        rates: known pass rates by role (`small`, `medium`, `large`); a missing key means not yet known,
            None means known but ungradable.
        rules: the level rules.

    Returns:
        `"small"`, `"medium"`, `"large"` or None.
    """
    for role in ROLES:
        if role not in rates:
            return role
        rate = rates[role]
        if rate is None:
            return None
        kind = rules.kind(rate)
        if role == "small" and (kind == "all" or (kind == "partial" and rules.both_partial_level == 1)):
            return None
        if role == "medium" and (rates["small"] is not None and rules.kind(rates["small"]) == "partial"):
            return None
        if role == "medium" and kind != "fail":
            return None
    return None


def assign_level(problem_id: str, rates: dict[str, float | None], rules: LevelRules) -> tuple[int, str]:
    """Apply the level rules to one problem.

    Args:
        problem_id: the problem's id (seeds the level-3 retention).
        rates: pass rates by role; only the roles the rules need must be present (see `needed_role`);
            None = no gradable sample.
        rules: the level rules.

    Returns:
        `(level, reason)`: level 1-3, or 0 (discarded) with the reason.

    >>> assign_level("p", {"small": 0.5}, LevelRules())
    (1, 'small_partial')
    >>> assign_level("p", {"small": 0.0, "medium": 1.0}, LevelRules())
    (2, 'small_fails_medium_solves')
    """
    missing = needed_role(rates, rules)
    if missing is not None:
        return DISCARDED, f"missing_{missing}"
    if any(v is None for v in rates.values()):
        return DISCARDED, "ungradable"
    small = rules.kind(rates["small"])
    if small == "all":
        return DISCARDED, "too_easy"
    if small == "partial":
        if rules.both_partial_level == 2 and rules.kind(rates["medium"]) == "partial":
            return 2, "both_partial"
        return 1, "small_partial"
    medium = rules.kind(rates["medium"])
    if medium != "fail":
        return 2, "small_fails_medium_solves"
    if rules.kind(rates["large"]) == "fail":
        return 3, "large_fails"
    if retained(problem_id, rules.seed, rules.retain_fraction):
        return 3, "large_solved_retained"
    return DISCARDED, "large_solved_dropped"


def adaptive_level(
    level: int, attempts: int, successes: int, rules: LevelRules, *, min_attempts: int = 1, top: int = 3
) -> int:
    """Relabel one problem from what training recorded on it (see the module docstring).

    Args:
        level: its current level (1..top).
        attempts: completions graded during training.
        successes: of which correct.
        rules: gives `fail_at` and `solve_at`.
        min_attempts: fewer attempts than this leave the level unchanged.
        top: the highest level.

    Returns:
        The new level; 0 means dropped (solved every time at level 1).

    >>> [adaptive_level(2, 8, s, LevelRules()) for s in (8, 3, 0)]
    [1, 2, 3]
    """
    if attempts < max(min_attempts, 1):
        return level
    kind = rules.kind(successes / attempts)
    if kind == "all":
        return level - 1
    if kind == "fail":
        return min(level + 1, top)
    return level


# ---------------------------------------------------------------- pass-rate records


def difficulty_to_rate(difficulty: int, sample_n: int | None = None) -> float:
    """Invert the `difficulty = int((1 - pass) * 10)` bucket of the shared difficulty signals.

    With `sample_n` known the pass rate is one of `k / sample_n`: the mean of the `k` that give this bucket
    (exact for pass@8). Without it: bucket 10 -> 0.0, bucket 0 -> 1.0 (treated as solved every time, the
    bucket's top), otherwise the bucket's midpoint.

    Args:
        difficulty: the bucket, 0 (easy) .. 10 (never solved).
        sample_n: samples behind the pass rate, when known.

    Returns:
        A pass rate in [0, 1].

    >>> difficulty_to_rate(1, 8), difficulty_to_rate(10), difficulty_to_rate(4)
    (0.875, 0.0, 0.55)
    """
    if not 0 <= difficulty <= 10:
        raise ValueError(f"difficulty={difficulty} is not a bucket 0..10")
    if sample_n:
        ks = [k for k in range(sample_n + 1) if int((1 - k / sample_n) * 10) == difficulty]
        if ks:
            return sum(ks) / len(ks) / sample_n
    if difficulty == 10:
        return 0.0
    if difficulty == 0:
        return 1.0
    return round(1 - (difficulty + 0.5) / 10, 6)


def parse_record(row: dict, default_model: str | None = None) -> tuple[str, str, float, float]:
    """Read one pass-rate record as `(id, model, successes, samples)`.

    Accepted forms (one JSON object per line):
    `{"id", "model", "successes", "samples"}` (what `stagerl.train.label` writes), `{"id", "model", "pass_rate"}`
    (counted as one sample), `{"id", "attempts", "successes"}` (training's `problems.jsonl`) and
    `{"id", "difficulty"[, "sample_n"]}` (the shared difficulty signals). A record without `model` is
    attributed to `default_model`.

    Args:
        row: the parsed JSON object.
        default_model: the model for records that name none.

    Returns:
        `(id, model, successes, samples)`; successes may be fractional for converted forms.
    """
    if "id" not in row:
        raise ValueError(f"pass-rate record has no 'id': {row}")
    model = row.get("model", default_model)
    if model is None:
        raise ValueError(f"pass-rate record names no 'model' and no default was given: {row}")
    pid = str(row["id"])
    if "samples" in row or "attempts" in row:
        samples = row["samples"] if "samples" in row else row["attempts"]
        return pid, str(model), float(row["successes"]), float(samples)
    if "pass_rate" in row:
        return pid, str(model), float(row["pass_rate"]), 1.0
    if "difficulty" in row:
        n = row.get("sample_n")
        return pid, str(model), difficulty_to_rate(int(row["difficulty"]), int(n) if n else None), 1.0
    raise ValueError(
        f"pass-rate record {row} has none of successes+samples, attempts+successes, pass_rate, difficulty"
    )


def read_records(path: str | Path, default_model: str | None = None) -> dict[tuple[str, str], list[float]]:
    """Read a pass-rate jsonl file, summing `[successes, samples]` per `(id, model)`.

    A torn last line (a run killed mid-write) is skipped; a bad line elsewhere is an error.

    Args:
        path: the jsonl file.
        default_model: the model for records that name none.

    Returns:
        `{(id, model): [successes, samples]}`.
    """
    counts: dict[tuple[str, str], list[float]] = {}
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                continue  # torn last line
            raise ValueError(f"{path}:{n}: not a JSON line: {line[:80]!r}") from None
        pid, model, successes, samples = parse_record(row, default_model)
        entry = counts.setdefault((pid, model), [0.0, 0.0])
        entry[0] += successes
        entry[1] += samples
    return counts


def rate(successes: float, samples: float) -> float | None:
    """Pass rate, or None when nothing was gradable.

    >>> rate(1, 4), rate(0, 0)
    (0.25, None)
    """
    if samples <= 0 or math.isnan(samples):
        return None
    return successes / samples
