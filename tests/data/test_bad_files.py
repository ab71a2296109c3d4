"""Bad data files fail while the stage's data loads, before any model, naming the file, the line (the row, for
parquet), the field and the value."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stagerl.data.sources import load_stage_data

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"problem": "1 + 1?", "answer": "2", "level": 1}


def jsonl(path: Path, *lines: str | dict) -> Path:
    """Write lines as given (a dict as its JSON) and return the path."""
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))
    return path


def fails(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        load_stage_data([spec])
    assert message in str(err.value)


def test_a_line_that_is_not_json(tmp_path):
    path = jsonl(tmp_path / "rows.jsonl", GOOD, "", '{"problem": "2 + 2?", "answer": 4', GOOD)
    fails(str(path), f"{path}:3: not a JSON object (Expecting ',' delimiter at column 34): ")


def test_a_line_that_is_json_but_not_an_object(tmp_path):
    path = jsonl(tmp_path / "rows.jsonl", GOOD, '["1 + 1?", "2"]')
    fails(str(path), f"{path}:2: not a JSON object (an array)")


def test_a_json_array_file_names_rows_by_index(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([GOOD, GOOD], indent=1))
    assert load_stage_data([str(path)])["answer"] == ["2", "2"]
    path.write_text(json.dumps([GOOD, "1 + 1?"], indent=1))
    fails(str(path), f"{path} row 1: not a JSON object but a string")
    path.write_text(json.dumps([GOOD, {**GOOD, "problem": ""}], indent=1))
    fails(str(path), f"{path} row 1: no question: problem is missing or empty")


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_jsonl_file(tmp_path, content):
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    fails(str(path), f"{path}: no rows (the file is empty)")


def test_an_empty_parquet_file(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"problem": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str)}).to_parquet(path)
    fails(str(path), f"{path}: no rows (the file is empty)")


def test_a_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    path.write_text('{"problem": "1 + 1?"}\n')
    fails(str(path), f"{path}: cannot be read as parquet (")


@pytest.mark.parametrize(
    "row,message",
    [
        ({"answer": "2", "level": 1}, "no question: problem is missing or empty"),
        ({"problem": "1 + 1?", "level": 1}, "no answer: answer is missing or empty"),
        ({**GOOD, "answer": None}, "no answer: answer is missing or empty"),
        ({**GOOD, "answer": "  "}, "no answer: answer is missing or empty"),
    ],
)
def test_a_row_without_its_question_or_answer_names_the_line(tmp_path, row, message):
    path = jsonl(tmp_path / "rows.jsonl", GOOD, "", GOOD, row)
    fails(str(path), f"{path}:4: {message}")


def test_a_parquet_row_without_an_answer_names_the_row(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame([GOOD, GOOD, {**GOOD, "answer": None}]).to_parquet(path)
    fails(str(path), f"{path} row 2: no answer: answer is missing or empty")


def test_a_missing_box_in_a_reference_solution_names_the_row(tmp_path):
    am = tmp_path / "am"
    am.mkdir()
    solutions = (r"so \boxed{2}", "forgot the box", r"\boxed{3}")  # most hold a box: a solution column
    rows = [{"problem": "p", "solution": solution} for solution in solutions]
    pd.DataFrame(rows).to_parquet(am / "math_difficulty_level_1.parquet")
    fails(
        f"{am}:1",
        f"{am}/math_difficulty_level_1.parquet row 1: no answer: the last \\boxed{{}} of solution is missing or empty",
    )


def test_a_bad_row_of_a_selected_level_names_its_line_in_the_file(tmp_path):
    rows = [{**GOOD, "level": 2}, GOOD, {**GOOD, "level": 2}, {"problem": "x", "answer": "", "level": 2}]
    path = jsonl(tmp_path / "rows.jsonl", *rows)
    assert len(load_stage_data([f"{path}:1"])) == 1
    fails(f"{path}:2", f"{path}:4: no answer")


@pytest.mark.parametrize("bad", ["hard", 1.5, None, True])
def test_a_level_that_is_not_a_whole_number(tmp_path, bad):
    path = jsonl(tmp_path / "rows.jsonl", GOOD, {**GOOD, "level": 2.0}, {**GOOD, "level": bad})
    fails(f"{path}:1", f"{path}:3: level {bad!r} is not a whole number")


def test_a_parquet_level_that_is_not_a_whole_number(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame([GOOD, {**GOOD, "level": 1.5}]).to_parquet(path)
    fails(f"{path}:1", f"{path} row 1: level 1.5 is not a whole number")


def test_a_bad_file_fails_the_stage_before_any_model_loads(tmp_path, monkeypatch):
    from stagerl.train import grpo

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the data error was raised")

    monkeypatch.setattr("stagerl.train.models.resolve_model", refuse)
    path = jsonl(tmp_path / "rows.jsonl", GOOD, "not json")
    with pytest.raises(ValueError, match=rf"{path}:2: not a JSON object"):
        grpo.main(
            [
                "--config",
                str(ROOT / "configs/stages/smoke.yaml"),
                "--data",
                str(path),
                "--output_dir",
                str(tmp_path / "stage"),
            ]
        )
