"""Level data: every source becomes rows `{"prompt", "answer", "id", "level"}` for TRL's GRPOTrainer.

A stage's data is a list of components `SOURCE[:LEVEL][@WEIGHT]`, mixed by weight when there are several:

- `a-m-team/AM-Math-Difficulty-RL:2` — the paper's data on the hub, one parquet per level
  (`math_difficulty_level_{1,2,3}.parquet`, loaded with `datasets` and `data_files`). Any other hub id or a
  local directory in the same layout works too.
- `math-levels:1` — the shipped Hendrycks MATH train sample, levels 1-5 (`curricula/data/datasets/`).
- `arithmetic:1` — generated additions, levels 1-3 (`curricula/arithmetic.py`).
- `path/to/file.jsonl` or `.parquet` — local rows; `:LEVEL` filters on a `level` column.

Question and answer columns are auto-detected from common names unless set explicitly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from curricula.data.prompts import R1_INSTRUCTION, chat_prompt

logger = logging.getLogger(__name__)

AM_MATH = "a-m-team/AM-Math-Difficulty-RL"
AM_LEVEL_FILE = "math_difficulty_level_{level}.parquet"
AM_LEVELS = (1, 2, 3)
MATH_LEVELS_FILE = Path(__file__).parent / "datasets" / "math_levels_sample_1500.jsonl"
BUILTIN_LEVELS = {"arithmetic": (1, 2, 3), "math-levels": (1, 2, 3, 4, 5)}

QUESTION_COLUMNS = ("question", "problem", "prompt", "query", "input")
ANSWER_COLUMNS = ("answer", "ground_truth", "solution", "gold", "target", "final_answer")

_COMPONENT = re.compile(r"^(?P<source>.+?)(?::(?P<level>-?\d+))?(?:@(?P<weight>[0-9.eE+-]+))?$")


@dataclass(frozen=True)
class DataComponent:
    """One part of a stage's data: a source, an optional level, a sampling weight."""

    source: str
    level: int | None = None
    weight: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> DataComponent:
        """Parse `SOURCE[:LEVEL][@WEIGHT]`.

        >>> DataComponent.parse("a-m-team/AM-Math-Difficulty-RL:2@0.5")
        DataComponent(source='a-m-team/AM-Math-Difficulty-RL', level=2, weight=0.5)
        """
        match = _COMPONENT.match(spec.strip())
        if not match:
            raise ValueError(f"data component {spec!r} is not SOURCE[:LEVEL][@WEIGHT]")
        try:
            weight = float(match["weight"]) if match["weight"] else 1.0
        except ValueError:
            raise ValueError(f"data component {spec!r}: weight {match['weight']!r} is not a number") from None
        if weight <= 0:
            raise ValueError(f"data component {spec!r}: weight must be > 0")
        level = int(match["level"]) if match["level"] is not None else None
        return cls(match["source"], level, weight)

    def check(self) -> None:
        """Fail fast (before any model is loaded) on a level the source cannot have or a missing file."""
        valid = self.valid_levels()
        if valid is not None and self.level not in valid:
            raise ValueError(
                f"data component {self.spec()!r}: level={self.level} is out of range for "
                f"{self.source!r}; valid levels: {list(valid)}"
            )
        if _is_local_file(self.source) and not Path(self.source).is_file():
            raise FileNotFoundError(f"data component {self.spec()!r}: file {self.source} does not exist")

    def valid_levels(self) -> tuple[int, ...] | None:
        """Levels this source has, when known without reading it (None: checked on load)."""
        if self.source in BUILTIN_LEVELS:
            return BUILTIN_LEVELS[self.source]
        if self.source == AM_MATH:
            return AM_LEVELS
        if Path(self.source).is_dir():
            return tuple(
                sorted(
                    int(p.stem.rsplit("_", 1)[1])
                    for p in Path(self.source).glob(AM_LEVEL_FILE.format(level="*"))
                )
            )
        return None

    def spec(self) -> str:
        level = f":{self.level}" if self.level is not None else ""
        return f"{self.source}{level}@{self.weight:g}"


def _is_local_file(source: str) -> bool:
    return source.endswith((".jsonl", ".json", ".parquet"))


def pick_column(
    columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, source: str
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(
                f"{what}_column={wanted!r} is not a column of {source}; columns found: {columns}"
            )
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"cannot find the {what} column of {source} (tried {list(candidates)}); columns found: "
        f"{columns}; set {what}_column"
    )


def _load_raw(component: DataComponent):
    """The component's rows as a `datasets.Dataset`, before column mapping."""
    from datasets import Dataset, load_dataset

    from curricula.data.arithmetic import arithmetic_rows

    source, level = component.source, component.level
    if source == "arithmetic":
        return Dataset.from_list(arithmetic_rows(level))
    if source == "math-levels":
        return load_dataset("json", data_files=str(MATH_LEVELS_FILE), split="train").filter(
            lambda r: r["level"] == level
        )
    if _is_local_file(source):
        kind = "parquet" if source.endswith(".parquet") else "json"
        ds = load_dataset(kind, data_files=source, split="train")
        if level is not None:
            if "level" not in ds.column_names:
                raise ValueError(
                    f"data component {component.spec()!r}: a level was asked for but {source} has no "
                    f"'level' column; columns found: {ds.column_names}"
                )
            found = sorted(set(ds["level"]))
            if level not in found:
                raise ValueError(
                    f"data component {component.spec()!r}: level={level} not in {source}; levels found: {found}"
                )
            ds = ds.filter(lambda r: r["level"] == level)
        return ds
    # A directory or hub dataset in the AM-Math layout: one parquet per level.
    if level is None:
        raise ValueError(f"data component {component.spec()!r}: {source} has one file per level; add :LEVEL")
    # The same call serves the hub and a local directory in that layout, so tests exercise the hub path.
    return load_dataset(source, data_files=AM_LEVEL_FILE.format(level=level), split="train")


def load_component(
    component: DataComponent,
    *,
    question_column: str | None = None,
    answer_column: str | None = None,
    prompt_template: str = R1_INSTRUCTION,
    system_prompt: str | None = None,
):
    """Load one component as rows `{"prompt", "answer", "id", "level"}` (prompt is a chat message list).

    Args:
        component: what to load.
        question_column: the problem's column; auto-detected from common names when None.
        answer_column: the gold answer's column; auto-detected when None.
        prompt_template: user message, with `{problem}` replaced by the problem text.
        system_prompt: an optional system message.

    Returns:
        A `datasets.Dataset`.
    """
    ds = _load_raw(component)
    q = pick_column(ds.column_names, question_column, QUESTION_COLUMNS, "question", component.source)
    a = pick_column(ds.column_names, answer_column, ANSWER_COLUMNS, "answer", component.source)
    has_id, has_level = "id" in ds.column_names, "level" in ds.column_names
    tag = re.sub(r"[^A-Za-z0-9]+", "-", Path(component.source).name).strip("-")

    def to_row(row, index):
        level = component.level if component.level is not None else (row["level"] if has_level else 0)
        return {
            "prompt": chat_prompt(str(row[q]), prompt_template, system_prompt),
            "answer": str(row[a]),
            "id": str(row["id"]) if has_id else f"{tag}-L{level}-{index}",
            "level": int(level),
        }

    return ds.map(to_row, with_indices=True, remove_columns=ds.column_names)


def load_stage_data(specs: list[str], *, seed: int = 0, **kwargs):
    """Load and mix a stage's data components.

    Args:
        specs: components `SOURCE[:LEVEL][@WEIGHT]`.
        seed: seed of the weighted interleaving.
        **kwargs: passed to `load_component`.

    Returns:
        One `datasets.Dataset`; with several components, sampled by weight until every one is used up.
    """
    from datasets import interleave_datasets

    components = [DataComponent.parse(s) for s in specs]
    for c in components:
        c.check()
    parts = [load_component(c, **kwargs) for c in components]
    for c, part in zip(components, parts, strict=True):
        logger.info("data %s: %d rows", c.spec(), len(part))
        if len(part) == 0:
            raise ValueError(f"data component {c.spec()!r} has no rows")
    if len(parts) == 1:
        return parts[0]
    total = sum(c.weight for c in components)
    return interleave_datasets(
        parts,
        probabilities=[c.weight / total for c in components],
        seed=seed,
        stopping_strategy="all_exhausted",
    )


def fingerprint(dataset) -> str:
    """A content hash of the rows (prompt, answer, id), stable across machines and runs."""
    h = hashlib.sha256()
    for row in dataset:
        h.update(json.dumps([row["prompt"], row["answer"], row["id"]], sort_keys=True).encode())
    return h.hexdigest()[:16]


def drop_zero_advantage(dataset, stats_paths: list[str], min_attempts: int):
    """Drop problems that earlier training always or never solved: their GRPO advantage is zero.

    Args:
        dataset: rows with an `id` column.
        stats_paths: `problems.jsonl` files (`{"id", "attempts", "successes"}` per line); counts are summed.
        min_attempts: a problem needs at least this many attempts to be judged.

    Returns:
        `(dataset, {"always_solved": n, "never_solved": m})`.
    """
    counts: dict[str, list[int]] = {}
    for path in stats_paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                entry = counts.setdefault(row["id"], [0, 0])
                entry[0] += row["attempts"]
                entry[1] += row["successes"]
    always = {pid for pid, (a, s) in counts.items() if a >= min_attempts and s == a}
    never = {pid for pid, (a, s) in counts.items() if a >= min_attempts and s == 0}
    ids = dataset["id"]
    dropped = {"always_solved": sum(i in always for i in ids), "never_solved": sum(i in never for i in ids)}
    kept = dataset.filter(lambda row: row["id"] not in always and row["id"] not in never)
    logger.info(
        "dropped %d always-solved and %d never-solved problems; %d remain",
        dropped["always_solved"],
        dropped["never_solved"],
        len(kept),
    )
    return kept, dropped
