"""Level data: every source becomes rows `{"prompt", "answer", "id", "level"}` for TRL's GRPOTrainer.

A stage's data is a list of components `SOURCE[:LEVEL][@WEIGHT]`, mixed by weight when there are several:

- `a-m-team/AM-Math-Difficulty-RL:2` — the paper's data on the hub, one parquet per level
  (`math_difficulty_level_{1,2,3}.parquet`, loaded with `datasets` and `data_files`). Any other hub id or a
  local directory in the same layout works too.
- `math-levels:1` — the shipped Hendrycks MATH train sample, levels 1-5 (`curricula/data/datasets/`).
- `arithmetic:1` — generated additions, levels 1-3 (`curricula/data/arithmetic.py`).
- `path/to/file.jsonl` or `.parquet` — local rows; `:LEVEL` filters on a `level` column (whole numbers).

Where the problem and the answer sit in a row (its layout) is found from the fields and a sample of rows,
the same way for every source, since the AM-Math schema is published nowhere (the fields are logged):

- flat columns: the problem in `question`, `problem`, `prompt`, ...; the answer in `answer`, `ground_truth`,
  `solution`, ... (`QUESTION_COLUMNS`, `ANSWER_COLUMNS`), also as fields of a struct column;
- chat turns: a `messages` / `conversations` / `prompt` list of `{role, content}` (or ShareGPT's
  `{from, value}`) messages; the problem is the last user turn;
- verl style: the answer in a struct, `reward_model.ground_truth`;
- a reference solution only: the answer is the content of its last `\boxed{...}` (`solution`, `response`,
  ...; an answer column whose values mostly hold `\boxed` counts as one, as does a chat's last assistant
  turn).

A plain answer wins over one taken from a `\boxed{}`. `question_column` / `answer_column` choose explicitly
(a column, or a nested field as `reward_model.ground_truth`). A layout that maps to nothing, and a bad file
(a line that is not a JSON object, an empty file, a row without its problem or answer, a level that is not a
whole number), fail while loading, which `train/grpo.py` does before it loads any model, with the file and
the line (row, for parquet) in the message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from curricula.data.prompts import R1_INSTRUCTION, chat_prompt
from rewards.extract import find_boxes

logger = logging.getLogger(__name__)

AM_MATH = "a-m-team/AM-Math-Difficulty-RL"
AM_LEVEL_FILE = "math_difficulty_level_{level}.parquet"
AM_LEVELS = (1, 2, 3)
MATH_LEVELS_FILE = Path(__file__).parent / "datasets" / "math_levels_sample_1500.jsonl"
BUILTIN_LEVELS = {"arithmetic": (1, 2, 3), "math-levels": (1, 2, 3, 4, 5)}

QUESTION_COLUMNS = ("question", "problem", "prompt", "query", "input")
ANSWER_COLUMNS = ("answer", "ground_truth", "solution", "gold", "target", "final_answer")
# Reference solutions: usable only through their last \boxed{} (a plain `response` is no answer).
SOLUTION_COLUMNS = ("reference_solution", "response", "output", "completion")
CHAT_COLUMNS = ("messages", "conversations", "prompt")
CHAT_KEYS = (("role", "content"), ("from", "value"))  # OpenAI style, ShareGPT style
ROLES = {"user": ("user", "human"), "assistant": ("assistant", "gpt")}
SAMPLE_ROWS = 100  # rows read to tell reference solutions (mostly holding \boxed{}) from plain answers
# The role of a chat whose last turn holds each side, and what auto-detection looks for (for errors).
TURNS = {"question": "user", "answer": "assistant"}
TRIED = {
    "question": f"no text field named {list(QUESTION_COLUMNS)}, no chat {list(CHAT_COLUMNS)} with a user turn",
    "answer": f"no answer field named {list(ANSWER_COLUMNS)}, no \\boxed{{}} in a solution "
    f"{list(ANSWER_COLUMNS + SOLUTION_COLUMNS)} or in a chat's assistant turn",
}

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
    """The flat column holding `what`: `wanted` when given, else the first of `candidates` present.

    For readers that take columns as they are (`train.label`); training data goes through `find_layout`,
    which also maps chat, nested and reference-solution layouts.
    """
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


def _load_dataset(path: str, data_files: str, name: str):
    """`datasets.load_dataset(path, data_files=...)`'s train split; a file it cannot read fails naming it."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        return load_dataset(path, data_files=data_files, split="train")
    # What the checks before this cannot see, e.g. a JSON value Arrow refuses.
    except DatasetGenerationError as err:
        raise ValueError(f"{name}: cannot be read as rows ({err.__cause__})") from err


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

    from curricula.data.arithmetic import arithmetic_rows

    source, level = component.source, component.level
    if source == "arithmetic":
        return Dataset.from_list(arithmetic_rows(level)), RowPlaces(component.spec())
    if source == "math-levels" or _is_local_file(source):
        path = MATH_LEVELS_FILE if source == "math-levels" else Path(source)
        return _select_level(*_read_local(path), level, component.spec())
    # A directory or hub dataset in the AM-Math layout: one parquet per level.
    if level is None:
        raise ValueError(f"data component {component.spec()!r}: {source} has one file per level; add :LEVEL")
    data_file = AM_LEVEL_FILE.format(level=level)
    name = f"{source}/{data_file}"
    if Path(source).is_dir():
        _check_parquet(Path(name))
    # The same call serves the hub and a local directory in that layout, so tests exercise the hub path.
    return _load_dataset(source, data_file, name), RowPlaces(name)


# ---------------------------------------------------------------- layouts: where the problem and answer are


@dataclass(frozen=True)
class Field:
    """Where one value sits in a row.

    Attributes:
        path: the column, then the names of nested struct fields (`("reward_model", "ground_truth")`).
        turn: for a chat column, the role (`user`, `assistant`) whose last message is the value.
        boxed: the value is the content of the last `\\boxed{...}` of that text (a reference solution).
    """

    path: tuple[str, ...]
    turn: str | None = None
    boxed: bool = False

    def __str__(self) -> str:
        text = ".".join(self.path)
        if self.turn is not None:
            text = f"the last {self.turn} turn of {text}"
        return f"the last \\boxed{{}} of {text}" if self.boxed else text

    def text(self, row: dict) -> str | None:
        """The value in `row` as text; None when it is missing or empty (no such box, blank, null, NaN)."""
        value = row
        for key in self.path:
            value = value.get(key) if isinstance(value, Mapping) else None  # rows of `map` are lazy mappings
        if self.turn is not None:
            value = _last_turn(value, self.turn)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        text = str(value)
        if self.boxed:
            boxes = find_boxes(text)
            text = (boxes[-1][0] or "").strip() if boxes else ""
        return text if text.strip() else None


def _last_turn(messages, role: str):
    """The content of the last message of `role` (or its ShareGPT name) in a chat; None when there is none."""
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and any(message.get(key) in ROLES[role] for key, _ in CHAT_KEYS):
            return next((message[c] for _, c in CHAT_KEYS if message.get(c) is not None), None)
    return None


@dataclass(frozen=True)
class Layout:
    """Where a source's rows hold the problem and the gold answer."""

    question: Field
    answer: Field

    def values(self, row: dict, place: str) -> tuple[str, str]:
        """The problem and the answer of `row`; fails naming `place` and the field of a missing or empty one."""
        question, answer = self.question.text(row), self.answer.text(row)
        for what, field, value in (("question", self.question, question), ("answer", self.answer, answer)):
            if value is None:
                raise ValueError(f"{place}: no {what}: {field} is missing or empty")
        return question, answer


def schema_fields(dataset) -> dict[tuple[str, ...], object]:
    """Every column and nested struct field of `dataset`, by path, with its Arrow type."""
    import pyarrow.types as pa_types

    def walk(fields, prefix):
        for field in fields:
            path = (*prefix, field.name)
            yield path, field.type
            if pa_types.is_struct(field.type):
                yield from walk(field.type.fields, path)

    return dict(walk(dataset.features.arrow_schema, ()))


def describe_fields(fields: dict[tuple[str, ...], object]) -> list[str]:
    """`["name: type", "struct.field: type", ...]`, as logged and listed in errors."""
    import pyarrow.types as pa_types

    def name(dtype) -> str:
        return "struct" if pa_types.is_struct(dtype) else str(dtype).replace("extension<arrow.json>", "json")

    return [f"{'.'.join(path)}: {name(dtype)}" for path, dtype in fields.items()]


def _kind(dtype) -> str:
    """`chat` (a list of role/content messages), `text` (a scalar: string, number, mixed JSON) or `other`."""
    import pyarrow.types as pa_types

    if pa_types.is_list(dtype) or pa_types.is_large_list(dtype):
        item = dtype.value_type
        keys = {f.name for f in item.fields} if pa_types.is_struct(item) else set()
        return "chat" if any(set(pair) <= keys for pair in CHAT_KEYS) else "other"
    return "other" if pa_types.is_nested(dtype) else "text"


def _named(fields: dict, names: tuple[str, ...], kind: str) -> list[tuple[str, ...]]:
    """Paths of the fields of `kind` called one of `names`, in the order of `names`, columns before nested."""
    by_depth = sorted(fields, key=len)
    return [path for name in names for path in by_depth if path[-1] == name and _kind(fields[path]) == kind]


def _holds(field: Field, sample: list[dict]) -> bool:
    return any(field.text(row) is not None for row in sample)


def _holds_solutions(field: Field, sample: list[dict]) -> bool:
    """Whether `field` holds reference solutions: most of its values in the sample hold a `\\boxed{}`.

    Most, not any: a plain answer column with a stray boxed answer stays plain, and a solution column where a
    few solutions lack their box stays a solution column (those rows then fail, naming their line).
    """
    texts = [text for text in map(field.text, sample) if text is not None]
    return 2 * sum(bool(find_boxes(text)) for text in texts) > len(texts)


def _question_candidates(fields: dict, sample: list[dict]) -> list[Field]:
    """Problem fields holding text in the sample: text columns first, then the user turn of chats."""
    found = [Field(p) for p in _named(fields, QUESTION_COLUMNS, "text")]
    found += [Field(p, "user") for p in _named(fields, CHAT_COLUMNS, "chat")]
    return [f for f in found if _holds(f, sample)]


def _answer_candidates(fields: dict, sample: list[dict]) -> list[Field]:
    """Plain answers first, then the last box of reference solutions."""
    answers = [Field(p) for p in _named(fields, ANSWER_COLUMNS, "text")]
    solutions = answers + [Field(p) for p in _named(fields, SOLUTION_COLUMNS, "text")]
    solutions += [Field(p, "assistant") for p in _named(fields, CHAT_COLUMNS, "chat")]
    plain = [f for f in answers if _holds(f, sample) and not _holds_solutions(f, sample)]
    return plain + [replace(f, boxed=True) for f in solutions if _holds_solutions(f, sample)]


def _explicit(fields: dict, column: str, what: str, name: str) -> Field:
    """The field a user named for `what` (a column, or a nested field as `a.b`); a chat gives its turn."""
    path = (column,) if (column,) in fields else tuple(column.split("."))
    if path not in fields:
        raise ValueError(
            f"{what}_column={column!r} is not a column or nested field of {name}; "
            f"fields found: {describe_fields(fields)}"
        )
    return Field(path, TURNS[what] if _kind(fields[path]) == "chat" else None)


def _choose(fields: dict, sample: list[dict], column: str | None, what: str, name: str) -> Field:
    """The field of `what` (`question` or `answer`): the named `column`, else the first candidate found."""
    if column is not None:
        field = _explicit(fields, column, what, name)
        # A named column of reference solutions gives their last box, as a detected one does.
        return replace(field, boxed=True) if what == "answer" and _holds_solutions(field, sample) else field
    found = (_question_candidates if what == "question" else _answer_candidates)(fields, sample)
    if not found:
        raise ValueError(
            f"cannot find the {what} in {name}: {TRIED[what]}; fields found: {describe_fields(fields)}; "
            f"set {what}_column (a column, or a nested field as a.b)"
        )
    return found[0]


def find_layout(
    dataset, name: str, question_column: str | None = None, answer_column: str | None = None
) -> Layout:
    """Find where `dataset`'s rows hold the problem and the answer (the rules are in the module docstring).

    Args:
        dataset: the rows (`datasets.Dataset`); its fields and first `SAMPLE_ROWS` rows are read.
        name: the source, for messages.
        question_column: the problem's column or nested field (`a.b`); found from common names when None.
        answer_column: the answer's; found when None. Reference solutions give their last `\\boxed{}`.

    Returns:
        The `Layout`.

    Raises:
        ValueError: naming `name` and listing the fields found, when the problem or the answer has no field.

    >>> from datasets import Dataset
    >>> rows = [{"prompt": [{"role": "user", "content": "1+1?"}], "reward_model": {"ground_truth": "2"}}]
    >>> layout = find_layout(Dataset.from_list(rows), "verl.parquet")
    >>> print(layout.question, "|", layout.answer)
    the last user turn of prompt | reward_model.ground_truth
    """
    fields = schema_fields(dataset)
    sample = dataset.select(range(min(len(dataset), SAMPLE_ROWS))).to_list()
    question = _choose(fields, sample, question_column, "question", name)
    return Layout(question, _choose(fields, sample, answer_column, "answer", name))


# ---------------------------------------------------------------- rows


def load_component(
    component: DataComponent,
    *,
    question_column: str | None = None,
    answer_column: str | None = None,
    prompt_template: str = R1_INSTRUCTION,
    system_prompt: str | None = None,
):
    """Load one component as rows `{"prompt", "answer", "id", "level"}` (prompt is a chat message list).

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
    tag = re.sub(r"[^A-Za-z0-9]+", "-", Path(component.source).name).strip("-")

    def to_row(row, index):
        question, answer = layout.values(row, places(index))
        level = component.level if component.level is not None else (row["level"] if has_level else 0)
        return {
            "prompt": chat_prompt(question, prompt_template, system_prompt),
            "answer": answer,
            "id": str(row["id"]) if has_id else f"{tag}-L{level}-{index}",
            "level": int(level),
        }

    return ds.map(to_row, with_indices=True, remove_columns=ds.column_names, features=_row_features())


def _row_features():
    """The rows' types, given to `map` explicitly: left to it, a returned column named like an input column
    keeps the input's type (an int `answer` or `id` stayed int), and components would not mix."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features(
        {"prompt": List(message), "answer": Value("string"), "id": Value("string"), "level": Value("int64")}
    )


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
