"""Row layouts of level sources: flat columns, chat turns, verl's nested ground truth, reference solutions.

Each layout is written as parquet files in the AM-Math directory layout (`math_difficulty_level_N.parquet`)
and loaded through `load_stage_data(["DIR:N"])`, the path the hub dataset takes.
"""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from stagerl.data.sources import load_stage_data

SOLUTION = r"We add: $\frac{1}{2} + \frac{1}{2} = 1$, then double it. So the answer is $\boxed{\frac{2}{1}}$."


def am_dir(root, rows_by_level: dict[int, list[dict]]):
    """A directory shaped like a-m-team/AM-Math-Difficulty-RL: one parquet per level."""
    root.mkdir(exist_ok=True)
    for level, rows in rows_by_level.items():
        pd.DataFrame(rows).to_parquet(root / f"math_difficulty_level_{level}.parquet")
    return root


def chat(*turns: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in turns]


def user_text(row: dict) -> str:
    return row["prompt"][-1]["content"]


def load(root, level: int = 1, **kwargs):
    return load_stage_data([f"{root}:{level}"], prompt_template="{problem}", **kwargs)


def test_messages_with_an_answer_column(tmp_path):
    rows = [
        {"messages": chat(("system", "Be terse."), ("user", f"{i} + 1?")), "answer": str(i + 1)}
        for i in range(3)
    ]
    ds = load(am_dir(tmp_path / "am", {1: rows}))
    assert [user_text(r) for r in ds] == ["0 + 1?", "1 + 1?", "2 + 1?"]
    assert ds["answer"] == ["1", "2", "3"] and set(ds["level"]) == {1}


def test_messages_without_an_answer_take_the_assistant_turns_last_box(tmp_path):
    rows = [
        {
            "messages": chat(
                ("user", "Example?"), ("assistant", r"\boxed{0}"), ("user", "Sum?"), ("assistant", SOLUTION)
            )
        }
    ]
    ds = load(am_dir(tmp_path / "am", {2: rows}), level=2)
    assert user_text(ds[0]) == "Sum?"  # the last user turn: earlier turns are few-shot examples
    assert ds[0]["answer"] == r"\frac{2}{1}" and ds[0]["level"] == 2


def test_sharegpt_conversations(tmp_path):
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "1 + 1?"},
                {"from": "gpt", "value": r"It is \boxed{2}."},
            ]
        }
    ]
    ds = load(am_dir(tmp_path / "am", {1: rows}))
    assert (user_text(ds[0]), ds[0]["answer"]) == ("1 + 1?", "2")


@pytest.mark.parametrize("problem_column", ["prompt", "problem"])
def test_verl_reward_model_ground_truth(tmp_path, problem_column):
    def problem(i):
        return chat(("user", f"{i} * 2?")) if problem_column == "prompt" else f"{i} * 2?"

    rows = [
        {
            "data_source": "am-math",
            problem_column: problem(i),
            "ability": "math",
            "reward_model": {"ground_truth": str(2 * i), "style": "rule"},
            "extra_info": {"index": i, "split": "train"},
        }
        for i in range(4)
    ]
    ds = load(am_dir(tmp_path / "am", {3: rows}), level=3)
    assert [user_text(r) for r in ds] == [f"{i} * 2?" for i in range(4)]
    assert ds["answer"] == ["0", "2", "4", "6"]


def test_reference_solution_only(tmp_path):
    rows = [
        {"problem": "Double one.", "solution": SOLUTION},
        {"problem": "Nest.", "solution": r"\boxed{\{1, \{2\}\}}"},
    ]
    ds = load(am_dir(tmp_path / "am", {1: rows}))
    assert ds["answer"] == [r"\frac{2}{1}", r"\{1, \{2\}\}"]


def test_plain_answer_wins_over_a_reference_solution(tmp_path):
    # `solution` holding short answers (no \boxed) stays a plain answer; with \boxed it is a solution, and a
    # plain `answer` column beside it is preferred.
    plain = [{"problem": "p", "solution": "7"}]
    assert load(am_dir(tmp_path / "plain", {1: plain}))["answer"] == ["7"]
    both = [{"problem": "p", "solution": SOLUTION, "response": r"\boxed{9}", "final_answer": "2"}]
    assert load(am_dir(tmp_path / "both", {1: both}))["answer"] == ["2"]


def test_a_stray_box_leaves_an_answer_column_plain(tmp_path):
    # Only a column whose values mostly hold a box is a reference solution (see test_bad_files for one with a
    # solution missing its box).
    stray = [{"problem": "p", "answer": a} for a in ("1", r"\boxed{2}", "3")]
    assert load(am_dir(tmp_path / "am", {1: stray}))["answer"] == ["1", r"\boxed{2}", "3"]


def test_explicit_columns_may_name_nested_fields_and_chats(tmp_path):
    rows = [
        {"query": "ignored", "messages": chat(("user", "real?")), "meta": {"gold": "5", "answer": "wrong"}}
    ]
    root = am_dir(tmp_path / "am", {1: rows})
    ds = load(root, question_column="messages", answer_column="meta.gold")
    assert (user_text(ds[0]), ds[0]["answer"]) == ("real?", "5")
    with pytest.raises(
        ValueError, match=r"answer_column='meta.nope' is not a column or nested field of .*meta.gold"
    ):
        load(root, answer_column="meta.nope")


def test_features_and_layout_are_logged(tmp_path, caplog):
    rows = [{"prompt": chat(("user", "1+1?")), "reward_model": {"ground_truth": "2", "style": "rule"}}]
    root = am_dir(tmp_path / "am", {1: rows})
    with caplog.at_level(logging.INFO, logger="stagerl.data.sources"):
        load(root)
    fields = [r.getMessage() for r in caplog.records if "fields:" in r.getMessage()]
    assert len(fields) == 1  # once per component
    assert f"1 rows from {root}/math_difficulty_level_1.parquet" in fields[0]
    assert "prompt: list<item: struct<role: string, content: string>>" in fields[0]
    assert "reward_model: struct, reward_model.ground_truth: string, reward_model.style: string" in fields[0]
    assert "problem <- the last user turn of prompt; answer <- reward_model.ground_truth" in caplog.text


def test_unmappable_layout_lists_columns_and_nested_fields(tmp_path):
    rows = [{"text": "1+1?", "label": "2", "meta": {"source": "x", "difficulty": 3}}]
    root = am_dir(tmp_path / "am", {1: rows})
    with pytest.raises(ValueError) as err:
        load(root)
    message = str(err.value)
    assert f"cannot find the question in {root}/math_difficulty_level_1.parquet" in message
    for field in ("'text: ", "'label: ", "'meta: struct'", "'meta.source: ", "'meta.difficulty: int64'"):
        assert field in message
    assert "set question_column" in message
    no_answer = am_dir(tmp_path / "no-answer", {1: [{"problem": "p", "response": "no box here"}]})
    with pytest.raises(
        ValueError, match=r"cannot find the answer in .*fields found: \['problem: \w+', 'response: \w+'\]"
    ):
        load(no_answer)


def test_local_jsonl_uses_the_same_layouts(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [
        {"prompt": chat(("user", f"q{i}")), "reward_model": {"ground_truth": str(i)}, "level": 1 + i % 2}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_stage_data([f"{path}:2"], prompt_template="{problem}")
    assert [user_text(r) for r in ds] == ["q1", "q3"] and ds["answer"] == ["1", "3"]
