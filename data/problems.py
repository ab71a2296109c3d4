"""Per-problem statistics: what `problems.jsonl` holds, how scored groups update it, how earlier stages' files
are read and summed.

One line per problem, `{"id", "attempts", "successes", "groups", "right_streak", "wrong_streak"}`:

- `attempts`, `successes`: completions graded by the accuracy reward, and those that scored 1.0;
- `groups`: GRPO groups generated for it;
- `right_streak`, `wrong_streak`: how many of its latest groups in a row had zero variance in the total reward
  (TRL's weighted sum of every reward) with every completion right, or every one wrong. At most one of the
  two is non-zero. Prompt selection (GRESO) skips problems by these streaks; `drop_solved` drops problems by
  their totals; the learnability sampler reads attempts and successes as a prior.

A stage writes its file beside its export; the runner hands the files of a stage's ancestors to it, oldest
first, so what earlier stages learned about a problem follows it (rows are named by their problem, see
`stagerl.data.sources.problem_id`). Files written before `groups` and the streaks existed read as zeros.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stagerl.data.stage_dir import PROBLEM_STATS

# The samples a labelled pass rate counts as (the pass@8 of the shipped difficulty signals).
PRIOR_STRENGTH = 8
# What learnability sampling can weigh a problem by (`stagerl.train.sampling.Learnability`).
LEARNABILITY_WEIGHTS = ("variance", "survival")


@dataclass(frozen=True)
class Group:
    """One scored GRPO group: a problem, its completions' accuracy, whether the total reward varied.

    Attributes:
        id: the problem id.
        accuracy: each completion's accuracy reward (None: not graded, or no accuracy reward).
        zero_variance: the group's total rewards all equal (zero GRPO advantage).
    """

    id: str
    accuracy: tuple[float | None, ...]
    zero_variance: bool

    @classmethod
    def from_dict(cls, d: dict) -> Group:
        return cls(d["id"], tuple(d["accuracy"]), d["zero_variance"])

    @property
    def side(self) -> str | None:
        """`"right"` or `"wrong"` for a zero-variance group whose completions were all right or all wrong."""
        graded = [a for a in self.accuracy if a is not None]
        if not self.zero_variance or not graded:
            return None
        if all(a >= 1.0 for a in graded):
            return "right"
        if all(a <= 0.0 for a in graded):
            return "wrong"
        return None


@dataclass
class ProblemRecord:
    """One problem's line of `problems.jsonl` (see the module docstring)."""

    attempts: int = 0
    successes: int = 0
    groups: int = 0
    right_streak: int = 0
    wrong_streak: int = 0

    def add(self, group: Group) -> None:
        graded = [a for a in group.accuracy if a is not None]
        self.attempts += len(graded)
        self.successes += sum(a >= 1.0 for a in graded)
        self.groups += 1
        side = group.side
        self.right_streak = self.right_streak + 1 if side == "right" else 0
        self.wrong_streak = self.wrong_streak + 1 if side == "wrong" else 0

    def then(self, later: ProblemRecord) -> ProblemRecord:
        """This record followed by a later stage's: totals add; a streak continues when the later stage's
        groups all extended it."""

        def streak(mine: int, theirs: int) -> int:
            return theirs + mine if theirs == later.groups else theirs

        return ProblemRecord(
            attempts=self.attempts + later.attempts,
            successes=self.successes + later.successes,
            groups=self.groups + later.groups,
            right_streak=streak(self.right_streak, later.right_streak),
            wrong_streak=streak(self.wrong_streak, later.wrong_streak),
        )


@dataclass
class ProblemTable:
    """Every problem's record, by id."""

    records: dict[str, ProblemRecord] = field(default_factory=dict)

    def observe(self, groups: Iterable[Group]) -> None:
        for group in groups:
            self.records.setdefault(group.id, ProblemRecord()).add(group)

    def get(self, problem_id: str) -> ProblemRecord:
        return self.records.get(problem_id) or ProblemRecord()

    def text(self) -> str:
        """The table as `problems.jsonl` text, sorted by id."""
        return "".join(
            json.dumps({"id": pid, **asdict(rec)}) + "\n" for pid, rec in sorted(self.records.items())
        )

    @classmethod
    def parse(cls, text: str, where: str = PROBLEM_STATS) -> ProblemTable:
        """A table from `problems.jsonl` text (ValueError naming `where` and the line on a bad line)."""
        table = cls()
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                known = {k: int(row[k]) for k in ProblemRecord.__dataclass_fields__ if k in row}
                table.records[str(row["id"])] = ProblemRecord(**known)
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{where}:{number}: not a problem statistics line ({e}): {line[:80]!r}"
                ) from None
        return table

    @classmethod
    def read(cls, paths: Iterable[str | Path]) -> ProblemTable:
        """The files of successive stages, oldest first, as one table (see `ProblemRecord.then`)."""
        table = cls()
        for path in paths:
            later = cls.parse(Path(path).read_text(), str(path))
            for pid, record in later.records.items():
                table.records[pid] = table.get(pid).then(record)
        return table


def labelled_pass_rate(row: dict) -> float | None:
    """The pass rate a row was labelled with, if any: its `pass_rate` (in [0, 1]), else its `difficulty` on
    the 0-10 scale of `../shared/data/difficulty_signals/` (`int((1 - pass rate) * 10)`, read back as the
    middle of its bucket), else None.

    >>> labelled_pass_rate({"pass_rate": 0.25}), labelled_pass_rate({"difficulty": 0}), labelled_pass_rate({})
    (0.25, 0.95, None)
    """
    rate = row.get("pass_rate")
    if rate is not None:
        return min(1.0, max(0.0, float(rate)))
    difficulty = row.get("difficulty")
    if isinstance(difficulty, int | float) and 0 <= difficulty <= 10:
        return min(1.0, max(0.0, 1 - (difficulty + 0.5) / 10))
    return None


def posterior(successes, attempts, pass_rate, strength: float = PRIOR_STRENGTH):
    """Beta posteriors over pass rates: Beta(1, 1), plus a labelled pass rate counted as `strength` samples, plus
    every graded attempt so far (this stage's and its ancestors'). Numbers or numpy arrays, one entry per problem;
    a NaN pass rate (none labelled) adds nothing.

    >>> posterior(successes=1, attempts=4, pass_rate=0.5, strength=2)
    (3.0, 5.0)
    """
    labelled = np.nan_to_num(pass_rate)
    weight = np.where(np.isnan(pass_rate), 0.0, strength)
    a = 1 + labelled * weight + successes
    b = 1 + (1 - labelled) * weight + attempts - successes
    return (float(a), float(b)) if np.ndim(a) == 0 else (a, b)


def expected_learnability(a, b):
    """E[p (1 - p)] for p ~ Beta(a, b): how much a GRPO group of the problem is expected to vary.

    >>> round(expected_learnability(1, 1), 4), round(expected_learnability(100, 1), 4)
    (0.1667, 0.0097)
    """
    return a * b / ((a + b) * (a + b + 1))


def survival_probability(a, b, group_size: int):
    """P(a group of `group_size` completions holds a right and a wrong one) for p ~ Beta(a, b):
    1 - E[p^n] - E[(1 - p)^n], where E[p^n] = prod_{i<n} (a + i) / (a + b + i). What dynamic sampling keeps.

    >>> round(survival_probability(1, 1, 2), 4), round(survival_probability(1, 1, 16), 4)  # 1 - 2 / (n + 1)
    (0.3333, 0.8824)
    """
    all_right = all_wrong = 1.0
    for i in range(group_size):
        all_right = all_right * (a + i) / (a + b + i)
        all_wrong = all_wrong * (b + i) / (a + b + i)
    return 1 - all_right - all_wrong


def check_learnability(weight: str, floor: float) -> None:
    """ValueError naming the setting when `learnability_weight` or `learnability_floor` is out of range."""
    if weight not in LEARNABILITY_WEIGHTS:
        raise ValueError(f"learnability_weight={weight!r}: valid values are {list(LEARNABILITY_WEIGHTS)}")
    if not 0 <= floor < 1:
        raise ValueError(f"learnability_floor={floor} must be in [0, 1)")
