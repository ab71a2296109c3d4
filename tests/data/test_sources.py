import json
import logging

import pandas as pd
import pytest

from stagerl.data.sources import DataComponent, drop_zero_advantage, fingerprint, load_stage_data


def write_am_layout(root, levels=(1, 2, 3), columns=("question", "answer")):
    """Parquet files named and shaped like a-m-team/AM-Math-Difficulty-RL (one per level)."""
    q, a = columns
    for level in levels:
        rows = [{q: f"L{level} problem {i}: 1+{i}?", a: str(1 + i)} for i in range(5)]
        pd.DataFrame(rows).to_parquet(root / f"math_difficulty_level_{level}.parquet")
    return root


def test_component_parse():
    assert DataComponent.parse("a-m-team/AM-Math-Difficulty-RL:3") == DataComponent(
        "a-m-team/AM-Math-Difficulty-RL", 3, 1.0
    )
    assert DataComponent.parse("rows.jsonl@2") == DataComponent("rows.jsonl", None, 2.0)
    with pytest.raises(ValueError, match="weight must be > 0"):
        DataComponent.parse("arithmetic:1@0")


@pytest.mark.parametrize(
    "spec,valid",
    [
        ("arithmetic:4", "[1, 2, 3]"),
        ("math-levels:0", "[1, 2, 3, 4, 5]"),
        ("a-m-team/AM-Math-Difficulty-RL:7", "[1, 2, 3]"),
    ],
)
def test_level_out_of_range_names_value_and_valid_levels(spec, valid):
    with pytest.raises(ValueError, match="out of range") as err:
        DataComponent.parse(spec).check()
    assert f"level={spec.rsplit(':', 1)[1]}" in str(err.value) and f"valid levels: {valid}" in str(err.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        DataComponent.parse("nope.jsonl").check()


def test_hub_layout_loads_each_level(tmp_path):
    write_am_layout(tmp_path)
    ds = load_stage_data([f"{tmp_path}:2"])
    assert len(ds) == 5 and set(ds["level"]) == {2}
    row = ds[0]
    assert row["answer"] == "1"
    assert row["prompt"][-1]["role"] == "user" and "L2 problem 0" in row["prompt"][-1]["content"]
    assert "\\boxed{}" in row["prompt"][-1]["content"]
    assert DataComponent.parse(f"{tmp_path}:4").valid_levels() == (1, 2, 3)
    with pytest.raises(ValueError, match="level=4 is out of range"):
        DataComponent.parse(f"{tmp_path}:4").check()


def test_column_auto_detection_and_error(tmp_path):
    write_am_layout(tmp_path, levels=(1,), columns=("problem", "ground_truth"))
    assert load_stage_data([f"{tmp_path}:1"])[0]["answer"] == "1"
    bad = tmp_path / "bad"
    bad.mkdir()
    write_am_layout(bad, levels=(1,), columns=("text", "label"))
    with pytest.raises(ValueError, match=r"fields found: \['text: \w+', 'label: \w+'\]"):
        load_stage_data([f"{bad}:1"])
    assert load_stage_data([f"{bad}:1"], question_column="text", answer_column="label")[0]["answer"] == "1"


def test_local_jsonl_with_level_filter_and_system_prompt(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"q{i}", "answer": i, "level": i % 2}) + "\n"
            for i in range(6)
        )
    )
    ds = load_stage_data([f"{path}:1"], system_prompt="Be brief.")
    assert ds["id"] == ["p1", "p3", "p5"] and ds[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert ds["answer"] == ["1", "3", "5"]  # strings, although the file's answers are numbers
    mixed = load_stage_data([f"{path}:1", "arithmetic:1"])  # so it mixes with sources of text answers
    assert {type(a) for a in mixed["answer"]} == {str} and len(mixed) >= 3
    with pytest.raises(ValueError, match=r"levels found: \[0, 1\]"):
        load_stage_data([f"{path}:5"])


def test_builtin_sources_and_mix():
    ds = load_stage_data(["arithmetic:1@3", "math-levels:1@1"], seed=0)
    assert set(ds["level"]) == {1}
    ids = ds["id"]
    assert any(i.startswith("arith-") for i in ids) and any(i.startswith("math_train_") for i in ids)
    assert fingerprint(ds) == fingerprint(load_stage_data(["arithmetic:1@3", "math-levels:1@1"], seed=0))


def write_rows(path, prefix: str, n: int):
    path.write_text(
        "".join(
            json.dumps({"id": f"{prefix}{i}", "problem": f"{prefix} {i}?", "answer": str(i)}) + "\n"
            for i in range(n)
        )
    )
    return str(path)


@pytest.mark.parametrize("stopping", ["first_exhausted", "all_exhausted_without_replacement"])
def test_a_weighted_mix_never_repeats_a_row(tmp_path, caplog, stopping):
    small, big = write_rows(tmp_path / "small.jsonl", "s", 30), write_rows(tmp_path / "big.jsonl", "b", 300)
    with caplog.at_level(logging.INFO, logger="stagerl.data.sources"):
        mixed = load_stage_data([f"{small}@1", f"{big}@1"], seed=0, stopping=stopping)
    ids = mixed["id"]
    assert len(ids) == len(set(ids))  # `all_exhausted` drew the small file's rows about ten times each
    from_small = sum(i.startswith("s") for i in ids)
    assert from_small == 30
    if stopping == "first_exhausted":  # the shares follow the weights: the mix ends with the small file
        assert abs(from_small / len(ids) - 0.5) < 0.1 and len(ids) < 90
    else:  # every row once: the big file fills the rest
        assert len(ids) == 330
    assert f"{small}@1 30/30 rows" in caplog.text and stopping in caplog.text


def test_drop_zero_advantage(tmp_path):
    ds = load_stage_data(["arithmetic:1"]).select(range(4))
    ids = ds["id"]
    stats = tmp_path / "problems.jsonl"
    rows = [(ids[0], 4, 4), (ids[1], 4, 0), (ids[2], 4, 2), (ids[3], 2, 2)]  # last: too few attempts to judge
    stats.write_text("".join(json.dumps({"id": i, "attempts": a, "successes": s}) + "\n" for i, a, s in rows))
    kept, dropped = drop_zero_advantage(ds, [str(stats)], min_attempts=4)
    # A never-solved problem stays for the later stages unless a threshold says when to give it up.
    assert dropped == {"always_solved": 1, "never_solved": 0}
    assert kept["id"] == [ids[1], ids[2], ids[3]]
    kept, dropped = drop_zero_advantage(ds, [str(stats)], min_attempts=4, unsolved_min_attempts=4)
    assert dropped == {"always_solved": 1, "never_solved": 1} and kept["id"] == [ids[2], ids[3]]
    assert (
        drop_zero_advantage(ds, [str(stats)], min_attempts=4, unsolved_min_attempts=5)[1]["never_solved"] == 0
    )


def test_a_problem_keeps_its_identity_across_files_levels_and_mixes(tmp_path):
    """Rows without ids are named by their problem, so what an earlier stage learned about a problem follows
    it into a relabelled set, another level or a mixed stage (and `drop_solved` can fire there)."""
    problems = [
        {"problem": f"What is {i} + {i}?", "answer": str(2 * i), "level": 1 + i % 2} for i in range(6)
    ]
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(p) + "\n" for p in problems))
    relabelled = tmp_path / "relabelled.jsonl"  # the same problems, other levels, other order
    relabelled.write_text("".join(json.dumps({**p, "level": 3}) + "\n" for p in reversed(problems)))
    seen = load_stage_data([str(first)])
    again = load_stage_data([f"{relabelled}:3@0.5", "arithmetic:1@0.5"], seed=1)
    assert set(seen["id"]) <= set(again["id"])
    stats = tmp_path / "problems.jsonl"  # stage 1 solved every problem every time
    stats.write_text("".join(json.dumps({"id": i, "attempts": 8, "successes": 8}) + "\n" for i in seen["id"]))
    kept, dropped = drop_zero_advantage(again, [str(stats)], min_attempts=4)
    # every row of those problems goes, the arithmetic rows stay
    assert dropped["always_solved"] == sum(i in set(seen["id"]) for i in again["id"]) == 6
    assert not set(kept["id"]) & set(seen["id"]) and all(i.startswith("arith-") for i in kept["id"])


def test_stage_decontamination_removes_benchmark_problems(tmp_path):
    from stagerl.data.benchmarks import load_benchmark
    from stagerl.data.decontaminate import filter_contaminated

    leaked = load_benchmark("math500")[:3]
    path = tmp_path / "rows.jsonl"
    rows = [{"id": f"leak{i}", "problem": r["problem"], "answer": r["answer"]} for i, r in enumerate(leaked)]
    rows += [{"id": f"ok{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept, removed = filter_contaminated(load_stage_data([str(path)]), ["math500"])
    assert removed == 3 and kept["id"] == [f"ok{i}" for i in range(5)]
