"""Layouts: where a source's rows hold the problem and the gold answer, found from its fields and a sample.

The AM-Math schema is published nowhere, so every source is mapped the same way (and its fields logged):

- flat columns: the problem in `question`, `problem`, `prompt`, ...; the answer in `answer`, `ground_truth`,
  `solution`, ... (`QUESTION_COLUMNS`, `ANSWER_COLUMNS`), also as fields of a struct column;
- chat turns: a `messages` / `conversations` / `prompt` list of `{role, content}` (or ShareGPT's
  `{from, value}`) messages; the problem is the last user turn;
- verl style: the answer in a struct, `reward_model.ground_truth`;
- a reference solution only: the answer is the content of its last `\\boxed{...}` (`solution`, `response`,
  ...; an answer column whose values mostly hold `\\boxed` counts as one, as does a chat's last assistant
  turn).

A plain answer wins over one taken from a `\\boxed{}`. An explicit column (a column, or a nested field as
`reward_model.ground_truth`) wins over both. A layout that maps to nothing fails, listing the fields found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from stagerl.rewards.extract import find_boxes

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
