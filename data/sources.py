"""Level data: every source becomes rows `{"prompt", "answer", "id", "level"}` for TRL's GRPOTrainer.

A stage's data is a list of components `SOURCE[:LEVEL][@WEIGHT]`, mixed by weight when there are several:

- `a-m-team/AM-Math-Difficulty-RL:2` — the paper's data on the hub, one parquet per level
  (`math_difficulty_level_{1,2,3}.parquet`, loaded with `datasets` and `data_files`). Any other hub id or a
  local directory in the same layout works too.
- `math-levels:1` — the shipped Hendrycks MATH train sample, levels 1-5 (`data/datasets/`).
- `arithmetic:1` — generated additions, levels 1-3 (`data/arithmetic.py`).
- `path/to/file.jsonl` or `.parquet` — local rows; `:LEVEL` filters on a `level` column (whole numbers).
- any other hub dataset or local directory without one file per level (`open-r1/OpenR1-Math-220k`) — read
  whole with `datasets.load_dataset`; TRL's spelling (`dataset_name`, `dataset_config`,
  `dataset_train_split`, or a `datasets:` mixture of `{path, name, split, data_dir, data_files, columns,
  fraction}`) gives its config and split (`DataComponent.from_trl`).

Where the problem and the answer sit in a row (its layout) is found by `stagerl.data.layouts`, the same
way for every source (flat columns, chat turns, verl's `reward_model.ground_truth`, a reference solution's
last `\\boxed{}`); `question_column` / `answer_column` choose explicitly. A layout that maps to nothing,
and a bad file (a line that is not a JSON object, an empty file, a row without its problem or answer, a
level that is not a whole number), fail while loading, which `train/grpo.py` does before it loads any model,
with the file and the line (row, for parquet) in the message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stagerl.data.layouts import describe_fields, find_layout, schema_fields
from stagerl.data.problems import labelled_pass_rate
from stagerl.data.prompts import R1_INSTRUCTION, chat_prompt

logger = logging.getLogger(__name__)

AM_MATH = "a-m-team/AM-Math-Difficulty-RL"
AM_LEVEL_FILE = "math_difficulty_level_{level}.parquet"
AM_LEVELS = (1, 2, 3)
MATH_LEVELS_FILE = Path(__file__).parent / "datasets" / "math_levels_sample_1500.jsonl"
BUILTIN_LEVELS = {"arithmetic": (1, 2, 3), "math-levels": (1, 2, 3, 4, 5)}

_COMPONENT = re.compile(r"^(?P<source>.+?)(?::(?P<level>-?\d+))?(?:@(?P<weight>[0-9.eE+-]+))?$")


# TRL's `DatasetConfig` keys (`datasets:` in a TRL or open-r1 YAML), plus ours: `level` and `weight`.
TRL_DATASET_KEYS = ("path", "name", "data_dir", "data_files", "split", "columns", "fraction")


@dataclass(frozen=True)
class DataComponent:
    """One part of a stage's data: a source, an optional level, a sampling weight, and for a dataset loaded
    whole (TRL's spelling) what `datasets.load_dataset` needs: its config, split, data_dir, data_files and
    the columns kept."""

    source: str
    level: int | None = None
    weight: float = 1.0
    config: str | None = None
    split: str = "train"
    data_dir: str | None = None
    data_files: str | tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None

    @classmethod
    def from_trl(cls, entry: dict, where: str) -> DataComponent:
        """A component from one entry of TRL's `datasets:` mixture (`trl.scripts.utils.DatasetConfig` keys).

        `fraction` becomes the component's sampling weight (components are interleaved by weight, as
        `SOURCE@WEIGHT`; TRL instead keeps a `fraction` share of a mixture capped so nothing repeats).

        Args:
            entry: the mapping, e.g. `{"path": "open-r1/OpenR1-Math-220k", "name": "default"}`.
            where: how errors name it (`datasets[0]`).

        >>> DataComponent.from_trl({"path": "org/set", "name": "main", "fraction": 0.3}, "datasets[0]").spec()
        'org/set[name=main]@0.3'
        """
        if not isinstance(entry, dict) or "path" not in entry:
            raise ValueError(f"{where}: must be a mapping with a `path` (TRL's DatasetConfig), got {entry!r}")
        unknown = set(entry) - set(TRL_DATASET_KEYS) - {"level", "weight"}
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {sorted(unknown)}; valid: {[*TRL_DATASET_KEYS, 'level', 'weight']}"
            )
        weight = entry.get("weight", entry.get("fraction"))
        weight = 1.0 if weight is None else float(weight)
        if weight <= 0:
            raise ValueError(f"{where}: fraction must be > 0, got {weight}")
        files, columns = entry.get("data_files"), entry.get("columns")
        return cls(
            source=str(entry["path"]),
            level=entry.get("level"),
            weight=weight,
            config=entry.get("name"),
            split=entry.get("split") or "train",
            data_dir=entry.get("data_dir"),
            data_files=tuple(files) if isinstance(files, list) else files,
            columns=tuple(columns) if columns else None,
        )

    @classmethod
    def parse(cls, spec: str) -> DataComponent:
        """Parse `SOURCE[:LEVEL][@WEIGHT]`.

        >>> DataComponent.parse("a-m-team/AM-Math-Difficulty-RL:2@0.5").spec()
        'a-m-team/AM-Math-Difficulty-RL:2@0.5'
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
            found = Path(self.source).glob(AM_LEVEL_FILE.format(level="*"))
            return tuple(sorted(int(p.stem.rsplit("_", 1)[1]) for p in found)) or None
        return None

    def loads_whole(self) -> bool:
        """Whether the source is read whole with `datasets.load_dataset` (a hub dataset or directory without
        one file per level, or one given with TRL's loader settings), not one parquet per level."""
        if self.source in BUILTIN_LEVELS or _is_local_file(self.source):
            return False
        loader = self.config is not None or self.data_dir is not None or self.data_files is not None
        return loader or (self.level is None and self.valid_levels() is None)

    def spec(self) -> str:
        """The component as logged and recorded: `SOURCE[:LEVEL]@WEIGHT`, with TRL's loader settings in
        brackets when they are not the defaults."""
        level = f":{self.level}" if self.level is not None else ""
        split = None if self.split == "train" else self.split
        loader = {
            "name": self.config,
            "split": split,
            "data_dir": self.data_dir,
            "data_files": self.data_files,
            "columns": self.columns,
        }
        settings = ",".join(f"{k}={v}" for k, v in loader.items() if v is not None)
        return f"{self.source}{f'[{settings}]' if settings else ''}{level}@{self.weight:g}"


def _is_local_file(source: str) -> bool:
    return source.endswith((".jsonl", ".json", ".parquet"))


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class RowPlaces:
    """Where the rows of a loaded dataset came from, for messages: `FILE:LINE` or `FILE row N` (0-based).

    Attributes:
        name: the file (or, for generated rows, the component).
        lines: for JSON lines, the line of each of the file's rows; None names rows by index.
        rows: after a level selection, each kept row's index in the file; None: every row, in order.
    """

    name: str
    lines: tuple[int, ...] | None = None
    rows: tuple[int, ...] | None = None

    def __call__(self, index: int) -> str:
        row = self.rows[index] if self.rows is not None else index
        return f"{self.name}:{self.lines[row]}" if self.lines is not None else f"{self.name} row {row}"


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _not_an_object(line: str) -> str | None:
    """Why `line` is not one JSON object (None when it is)."""
    try:
        value = json.loads(line.strip())  # stripped: an error's column is then on this line, not past it
    except json.JSONDecodeError as err:
        return f"{err.msg} at column {err.colno}"
    return None if isinstance(value, dict) else _JSON_TYPES.get(type(value), "null")


def json_row_lines(path: Path) -> tuple[int, ...] | None:
    """Check a JSON file's rows before `datasets` reads it: its errors name neither the file nor the line.

    Args:
        path: JSON lines (one object per line; blank lines are skipped, as `datasets` skips them), or a
            `.json` file holding one array of objects.

    Returns:
        The line of each row; None for an array (its rows are named by index).

    Raises:
        ValueError: `FILE:LINE: not a JSON object (...)` for the first bad line; `FILE: no rows` for a file
            without any.
    """
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".json" and f.read(64).lstrip().startswith("["):
            f.seek(0)
            _check_json_array(path, f.read())
            return None
        f.seek(0)
        lines = []
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            reason = _not_an_object(line)
            if reason is not None:
                raise ValueError(f"{path}:{number}: not a JSON object ({reason}): {line.strip()[:80]!r}")
            lines.append(number)
    if not lines:
        raise ValueError(f"{path}: no rows (the file is empty)")
    return tuple(lines)


def _check_json_array(path: Path, text: str) -> None:
    """Check that `text` (the content of `path`) is a non-empty JSON array of objects."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not rows:
        raise ValueError(f"{path}: no rows (an empty array)")
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise ValueError(
            f"{path} row {bad}: not a JSON object but {_JSON_TYPES.get(type(rows[bad]), 'null')}"
        )


def _check_parquet(path: Path) -> None:
    """Check that a parquet file has rows (an empty one fails inside `datasets` with no file name)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_metadata(path).num_rows
    except pa.ArrowException as err:
        raise ValueError(f"{path}: cannot be read as parquet ({err})") from None
    if rows == 0:
        raise ValueError(f"{path}: no rows (the file is empty)")


def _load_dataset(path: str, data_files, where: str, **settings):
    """`datasets.load_dataset(path, data_files=..., **settings)`'s split (default train); a file it cannot
    read fails naming it (`where`)."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    settings.setdefault("split", "train")
    try:
        return load_dataset(path, data_files=data_files, **settings)
    # What the checks before this cannot see, e.g. a JSON value Arrow refuses.
    except DatasetGenerationError as err:
        raise ValueError(f"{where}: cannot be read as rows ({err.__cause__})") from err


def _read_local(path: Path):
    """A local `.jsonl` / `.json` / `.parquet` file as `(dataset, RowPlaces)`, checked to hold rows first."""
    if path.suffix == ".parquet":
        _check_parquet(path)
        kind, lines = "parquet", None
    else:
        kind, lines = "json", json_row_lines(path)
    return _load_dataset(kind, str(path), str(path)), RowPlaces(str(path), lines)


def _is_whole_number(value) -> bool:
    """Whether `value` can be a level: an int, or a float without a fraction (JSON mixes 2 and 2.0)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()


def _select_level(ds, places: RowPlaces, level: int | None, spec: str):
    """Check a file's `level` column (whole numbers) and keep the rows of `level` (every row when None)."""
    if "level" not in ds.column_names:
        if level is not None:
            raise ValueError(
                f"data component {spec!r}: a level was asked for but {places.name} has no 'level' column; "
                f"columns found: {ds.column_names}"
            )
        return ds, places
    levels = list(ds["level"])
    bad = next((i for i, value in enumerate(levels) if not _is_whole_number(value)), None)
    if bad is not None:
        raise ValueError(f"{places(bad)}: level {levels[bad]!r} is not a whole number")
    levels = [int(value) for value in levels]
    if level is None:
        return ds, places
    keep = tuple(i for i, value in enumerate(levels) if value == level)
    if not keep:
        raise ValueError(
            f"data component {spec!r}: level={level} not in {places.name}; levels found: {sorted(set(levels))}"
        )
    return ds.select(keep), RowPlaces(places.name, places.lines, keep)


def _load_raw(component: DataComponent):
    """The component's rows before mapping, as `(dataset, RowPlaces)`."""
    from datasets import Dataset

    from stagerl.data.arithmetic import arithmetic_rows

    source, level = component.source, component.level
    if source == "arithmetic":
        return Dataset.from_list(arithmetic_rows(level)), RowPlaces(component.spec())
    if source == "math-levels" or _is_local_file(source):
        path = MATH_LEVELS_FILE if source == "math-levels" else Path(source)
        return _select_level(*_read_local(path), level, component.spec())
    if component.loads_whole():  # TRL's spelling, or a dataset without one file per level
        files = (
            list(component.data_files) if isinstance(component.data_files, tuple) else component.data_files
        )
        settings = {"name": component.config, "split": component.split, "data_dir": component.data_dir}
        ds = _load_dataset(source, files, source, **settings)
        ds = ds.select_columns(list(component.columns)) if component.columns else ds
        return _select_level(ds, RowPlaces(f"{source} ({component.split})"), level, component.spec())
    # A directory or hub dataset in the AM-Math layout: one parquet per level.
    if level is None:
        raise ValueError(f"data component {component.spec()!r}: {source} has one file per level; add :LEVEL")
    data_file = AM_LEVEL_FILE.format(level=level)
    name = f"{source}/{data_file}"
    if Path(source).is_dir():
        _check_parquet(Path(name))
    # The same call serves the hub and a local directory in that layout, so tests exercise the hub path.
    return _load_dataset(source, data_file, name), RowPlaces(name)


# ---------------------------------------------------------------- rows


def load_component(
    component: DataComponent,
    *,
    question_column: str | None = None,
    answer_column: str | None = None,
    prompt_template: str = R1_INSTRUCTION,
    system_prompt: str | None = None,
):
    """Load one component as rows `{"prompt", "answer", "id", "level", "pass_rate"}` (prompt is a chat message
    list; pass_rate the row's labelled pass rate or None, see `stagerl.data.problems.labelled_pass_rate`).

    Logs the source's fields (their names and types) and the layout found in them.

    Args:
        component: what to load.
        question_column: the problem's column or nested field; found from the layout when None.
        answer_column: the gold answer's; found when None.
        prompt_template: user message, with `{problem}` replaced by the problem text.
        system_prompt: an optional system message.

    Returns:
        A `datasets.Dataset`.

    Raises:
        ValueError: a bad file, an unmappable layout, or a row without its problem or answer, naming the
            file and the line (or row).
    """
    ds, places = _load_raw(component)
    fields = schema_fields(ds)
    described = ", ".join(describe_fields(fields))
    logger.info("data %s: %d rows from %s; fields: %s", component.spec(), len(ds), places.name, described)
    layout = find_layout(ds, places.name, question_column, answer_column)
    logger.info("data %s: problem <- %s; answer <- %s", component.spec(), layout.question, layout.answer)
    has_id, has_level = "id" in ds.column_names, "level" in ds.column_names

    def to_row(row, index):
        question, answer = layout.values(row, places(index))
        level = component.level if component.level is not None else (row["level"] if has_level else 0)
        return {
            "prompt": chat_prompt(question, prompt_template, system_prompt),
            "answer": answer,
            "id": str(row["id"]) if has_id else problem_id(question),
            "level": int(level),
            "pass_rate": labelled_pass_rate(row),
        }

    return ds.map(to_row, with_indices=True, remove_columns=ds.column_names, features=_row_features())


def problem_id(problem: str) -> str:
    """The id of a problem that comes without one: a hash of its text (case and spacing aside).

    Not its file, row or level: the same problem keeps its identity in a mixed stage, a repeated level or a
    relabelled set, so per-problem statistics and `drop_solved` follow it across stages.

    >>> problem_id("What is  2 + 2?") == problem_id("what is 2 + 2?")
    True
    """
    text = " ".join(problem.lower().split())
    return "p-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def row_id(row) -> str:
    """The problem id of a training row: its `id`, else, as `load_component` names a row without one,
    `problem_id` of its problem's text: for rows built elsewhere (TRL's own datasets hold a `prompt` only),
    the prompt, or a conversational prompt's last user turn.

    >>> row_id({"prompt": [{"role": "user", "content": "What is 2 + 2?"}]}) == problem_id("What is 2 + 2?")
    True
    """
    if "id" in row:
        return str(row["id"])
    prompt = row["prompt"]
    if not isinstance(prompt, str):
        turns = [m["content"] for m in prompt if m.get("role") == "user"]
        prompt = turns[-1] if turns else prompt
    return problem_id(prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True))


def row_ids(dataset) -> list[str]:
    """`row_id` of every row of `dataset`, in row order."""
    if "id" in dataset.column_names:
        return [str(i) for i in dataset["id"]]
    return [row_id(row) for row in dataset]


def _row_features():
    """The rows' types, given to `map` explicitly: left to it, a returned column named like an input column
    keeps the input's type (an int `answer` or `id` stayed int), and components would not mix."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features(
        {
            "prompt": List(message),
            "answer": Value("string"),
            "id": Value("string"),
            "level": Value("int64"),
            "pass_rate": Value("float64"),  # a labelled pass rate, or None (`stagerl.data.problems`)
        }
    )


def load_stage_data(
    specs: list[str | DataComponent], *, seed: int = 0, stopping: str = "first_exhausted", **kwargs
):
    """Load and mix a stage's data components.

    Args:
        specs: components, as `SOURCE[:LEVEL][@WEIGHT]` or built (`DataComponent.from_trl`).
        seed: seed of the weighted interleaving.
        stopping: `first_exhausted` (the mix ends when a component runs out, so its shares follow the weights)
            or `all_exhausted_without_replacement` (every row once; once a component runs out the others
            fill the rest). No row is ever repeated; the log says which component ran out and what was left.
        **kwargs: passed to `load_component`.

    Returns:
        One `datasets.Dataset`.
    """
    from datasets import interleave_datasets

    components = [s if isinstance(s, DataComponent) else DataComponent.parse(s) for s in specs]
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
    tagged = [part.add_column("_component", [k] * len(part)) for k, part in enumerate(parts)]
    mixed = interleave_datasets(
        tagged, probabilities=[c.weight / total for c in components], seed=seed, stopping_strategy=stopping
    )
    used = Counter(mixed["_component"])
    shares = ", ".join(
        f"{c.spec()} {used[k]}/{len(part)} rows (weight share {c.weight / total:.2f}, "
        f"row share {used[k] / len(mixed):.2f})"
        for k, (c, part) in enumerate(zip(components, parts, strict=True))
    )
    what = "stops when a component runs out" if stopping == "first_exhausted" else "uses every row once"
    logger.info("data mix (%s) %s, no row repeated: %d rows: %s", stopping, what, len(mixed), shares)
    return mixed.remove_columns("_component")


def fingerprint(dataset) -> str:
    """A content hash of the rows (prompt, answer, id), stable across machines and runs."""
    h = hashlib.sha256()
    for row in dataset:
        h.update(json.dumps([row["prompt"], row["answer"], row["id"]], sort_keys=True).encode())
    return h.hexdigest()[:16]


def drop_zero_advantage(
    dataset, stats_paths: list[str], min_attempts: int, unsolved_min_attempts: int | None = None
):
    """Drop problems that earlier training always solved (and, if asked, never solved): zero GRPO advantage.

    A problem always solved so far will most likely stay solved. One never solved is different: a curriculum
    moves to harder levels because the model grows, so the later stages are where it may start to teach; it
    is kept unless `unsolved_min_attempts` says after how many all-wrong attempts to give it up.

    Args:
        dataset: rows with an `id` column.
        stats_paths: earlier stages' `problems.jsonl` files (`stagerl.data.problems`); counts are summed.
        min_attempts: attempts, all right, after which a problem is dropped as always solved.
        unsolved_min_attempts: attempts, all wrong, after which a problem is dropped as never solved (None:
            never dropped).

    Returns:
        `(dataset, {"always_solved": n, "never_solved": m})`.
    """
    from stagerl.data.problems import ProblemTable

    counts = {pid: (r.attempts, r.successes) for pid, r in ProblemTable.read(stats_paths).records.items()}
    always = {pid for pid, (a, s) in counts.items() if a >= min_attempts and s == a}
    never = set()
    if unsolved_min_attempts is not None:
        never = {pid for pid, (a, s) in counts.items() if a >= unsolved_min_attempts and s == 0}
    ids = dataset["id"]
    dropped = {"always_solved": sum(i in always for i in ids), "never_solved": sum(i in never for i in ids)}
    kept = dataset.filter(lambda row: row["id"] not in always and row["id"] not in never)
    logger.info(
        "dropped %d always-solved (>= %d attempts) and %d never-solved (%s) problems; %d remain",
        dropped["always_solved"],
        min_attempts,
        dropped["never_solved"],
        "kept" if unsolved_min_attempts is None else f">= {unsolved_min_attempts} attempts",
        len(kept),
    )
    return kept, dropped
