import csv
import json
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stagerl.data.levels import (
    LevelRules,
    adaptive_level,
    assign_level,
    difficulty_to_rate,
    needed_role,
    parse_record,
    read_records,
    retained,
)
from stagerl.data.sources import load_stage_data
from stagerl.train import label
from stagerl.train.generation import Sample
from stagerl.train.models import TINY_RANDOM, TINY_RANDOM_R1

# ---------------------------------------------------------------- the rules on hand-made pass-rate tables

DEFAULT = LevelRules()
KEEP_ALL, KEEP_NONE = LevelRules(retain_fraction=1.0), LevelRules(retain_fraction=0.0)
BOTH2 = LevelRules(both_partial_level=2)
THRESH = LevelRules(fail_at=0.25, solve_at=0.75)

TABLE = [
    # (rates, rules, level, reason)
    ({"small": 0.5}, DEFAULT, 1, "small_partial"),
    ({"small": 0.125}, DEFAULT, 1, "small_partial"),
    ({"small": 0.875}, DEFAULT, 1, "small_partial"),
    ({"small": 1.0}, DEFAULT, 0, "too_easy"),
    ({"small": 0.0, "medium": 1.0}, DEFAULT, 2, "small_fails_medium_solves"),
    ({"small": 0.0, "medium": 0.25}, DEFAULT, 2, "small_fails_medium_solves"),
    ({"small": 0.0, "medium": 0.0, "large": 0.0}, DEFAULT, 3, "large_fails"),
    ({"small": 0.0, "medium": 0.0, "large": 1.0}, KEEP_ALL, 3, "large_solved_retained"),
    ({"small": 0.0, "medium": 0.0, "large": 0.5}, KEEP_ALL, 3, "large_solved_retained"),
    ({"small": 0.0, "medium": 0.0, "large": 1.0}, KEEP_NONE, 0, "large_solved_dropped"),
    ({"small": 0.0, "medium": 0.0, "large": 0.0}, KEEP_NONE, 3, "large_fails"),
    # "both partial": level 1 by precedence, level 2 when asked; a tie (same partial rate) behaves alike
    ({"small": 0.5, "medium": 0.5}, DEFAULT, 1, "small_partial"),
    ({"small": 0.5, "medium": 0.5}, BOTH2, 2, "both_partial"),
    ({"small": 0.25, "medium": 0.75}, BOTH2, 2, "both_partial"),
    ({"small": 0.5, "medium": 1.0}, BOTH2, 1, "small_partial"),
    ({"small": 0.5, "medium": 0.0}, BOTH2, 1, "small_partial"),
    # exactly on a threshold: a failure / a full solve, never partial
    ({"small": 0.25, "medium": 0.25, "large": 0.25}, THRESH, 3, "large_fails"),
    ({"small": 0.75}, THRESH, 0, "too_easy"),
    ({"small": 0.5}, THRESH, 1, "small_partial"),
    ({"small": 0.25, "medium": 0.75}, THRESH, 2, "small_fails_medium_solves"),
    ({"small": 0.25, "medium": 0.5}, THRESH, 2, "small_fails_medium_solves"),
    # unknown or ungradable
    ({"small": None}, DEFAULT, 0, "ungradable"),
    ({"small": 0.0, "medium": None}, DEFAULT, 0, "ungradable"),
    ({}, DEFAULT, 0, "missing_small"),
    ({"small": 0.0}, DEFAULT, 0, "missing_medium"),
    ({"small": 0.0, "medium": 0.0}, DEFAULT, 0, "missing_large"),
    ({"small": 0.5}, BOTH2, 0, "missing_medium"),
]


@pytest.mark.parametrize("rates,rules,level,reason", TABLE)
def test_assign_level(rates, rules, level, reason):
    assert assign_level("p1", rates, rules) == (level, reason)


@pytest.mark.parametrize(
    "rates,rules,role",
    [
        ({}, DEFAULT, "small"),
        ({"small": 0.5}, DEFAULT, None),
        ({"small": 1.0}, DEFAULT, None),
        ({"small": 0.0}, DEFAULT, "medium"),
        ({"small": 0.0, "medium": 0.5}, DEFAULT, None),
        ({"small": 0.0, "medium": 0.0}, DEFAULT, "large"),
        ({"small": 0.0, "medium": 0.0, "large": 0.0}, DEFAULT, None),
        ({"small": 0.5}, BOTH2, "medium"),
        ({"small": 0.5, "medium": 0.0}, BOTH2, None),
        ({"small": None}, DEFAULT, None),
    ],
)
def test_needed_role_asks_larger_models_only_when_the_rules_need_them(rates, rules, role):
    assert needed_role(rates, rules) == role


def test_rules_reject_bad_settings():
    with pytest.raises(ValueError, match="fail_at"):
        LevelRules(fail_at=0.5, solve_at=0.5)
    with pytest.raises(ValueError, match="retain_fraction"):
        LevelRules(retain_fraction=1.5)
    with pytest.raises(ValueError, match="both_partial_level"):
        LevelRules(both_partial_level=3)


def test_retention_is_seeded_order_free_and_about_the_fraction():
    ids = [f"q{i}" for i in range(4000)]
    kept = {i for i in ids if retained(i, 0, 0.5)}
    assert 0.46 < len(kept) / len(ids) < 0.54
    assert kept == {i for i in reversed(ids) if retained(i, 0, 0.5)}
    assert kept != {i for i in ids if retained(i, 1, 0.5)}
    assert all(retained(i, 0, 1.0) for i in ids) and not any(retained(i, 0, 0.0) for i in ids)


@pytest.mark.parametrize(
    "level,attempts,successes,min_attempts,new",
    [
        (2, 8, 8, 1, 1),  # now easy: one level down
        (1, 8, 8, 1, 0),  # mastered at level 1: dropped
        (2, 8, 0, 1, 3),  # never solved: harder
        (3, 8, 0, 1, 3),  # capped at the top level
        (2, 8, 3, 1, 2),  # partial: stays
        (2, 0, 0, 1, 2),  # no statistics: stays
        (2, 3, 3, 4, 2),  # too few attempts: stays
        (2, 4, 4, 4, 1),  # exactly min_attempts: judged
    ],
)
def test_adaptive_level(level, attempts, successes, min_attempts, new):
    assert adaptive_level(level, attempts, successes, DEFAULT, min_attempts=min_attempts) == new


# ---------------------------------------------------------------- pass-rate records


def test_difficulty_bucket_inverts_exactly_with_sample_n():
    for k in range(9):
        assert difficulty_to_rate(int((1 - k / 8) * 10), 8) == k / 8
    assert difficulty_to_rate(0) == 1.0 and difficulty_to_rate(10) == 0.0 and difficulty_to_rate(9) == 0.05
    with pytest.raises(ValueError, match="difficulty=11"):
        difficulty_to_rate(11)


def test_record_formats():
    assert parse_record({"id": 1, "model": "m", "successes": 2, "samples": 4}) == ("1", "m", 2.0, 4.0)
    assert parse_record({"id": "a", "attempts": 8, "successes": 8}, "pol") == ("a", "pol", 8.0, 8.0)
    assert parse_record({"id": "a", "model": "m", "pass_rate": 0.25}) == ("a", "m", 0.25, 1.0)
    assert parse_record({"id": "a", "difficulty": 10, "sample_n": 8}, "s") == ("a", "s", 0.0, 1.0)
    with pytest.raises(ValueError, match="no 'model'"):
        parse_record({"id": "a", "pass_rate": 0.5})
    with pytest.raises(ValueError, match="none of"):
        parse_record({"id": "a", "model": "m"})


def test_read_records_sums_and_ignores_only_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [
        {"id": "a", "model": "m", "successes": 1, "samples": 2},
        {"id": "a", "model": "m", "successes": 2, "samples": 2},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"id": "b", "mod')
    assert read_records(path) == {("a", "m"): [3.0, 4.0]}
    path.write_text('{"id": "b", "mod\n' + json.dumps(lines[0]) + "\n")
    with pytest.raises(ValueError, match=":1: not a JSON line"):
        read_records(path)


# ---------------------------------------------------------------- labelling with a scripted generator

# Correct samples out of K=4 per (model, problem): q0 small partial -> L1; q1 small fails, medium some -> L2;
# q2 small/medium/large fail -> L3; q3 small always right -> discarded; q4 large solves -> seeded L3 or not.
SCRIPT = {
    "small": {0: 2, 1: 0, 2: 0, 3: 4, 4: 0, 5: 1},
    "medium": {1: 1, 2: 0, 4: 0},
    "large": {2: 0, 4: 4},
}
EXPECTED = {"q0": 1, "q1": 2, "q2": 3, "q3": 0, "q4": 3 if retained("q4", 0, 0.5) else 0, "q5": 1}


def write_problems(path, n=6):
    rows = [
        {
            "id": f"q{i}",
            "problem": f"Problem number {i}: what is {i} + 1?",
            "answer": str(i + 1),
            "level": 1 + i % 5,
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class ScriptedGenerator:
    """Stands in for stagerl.train.generation.open_generator: each model's generator returns the scripted
    number of right answers; `calls` records (model, problem) sampled, `events` each open and close."""

    def __init__(self, fail_after_calls=None, script=None, right="so \\boxed{{{answer}}}", truncated=False):
        self.calls, self.events = [], []
        self.fail_after_calls = fail_after_calls
        self.script, self.right, self.truncated = script or SCRIPT, right, truncated

    def __call__(self, model_path, **settings):
        self.events.append(("open", model_path))
        return ScriptedModel(self, model_path)


class ScriptedModel:
    def __init__(self, owner: ScriptedGenerator, model_path: str):
        self.owner, self.model_path = owner, model_path

    def sample(self, prompts, *, samples, **kwargs):
        owner = self.owner
        if owner.fail_after_calls is not None and len(owner.calls) >= owner.fail_after_calls:
            raise KeyboardInterrupt("killed")
        outs = []
        for prompt in prompts:
            i = int(re.search(r"Problem number (\d+)", prompt[-1]["content"])[1])
            owner.calls.append((self.model_path, i))
            right = owner.script[self.model_path][i]
            texts = [owner.right.format(answer=i + 1)] * right + ["so \\boxed{-7}"] * (samples - right)
            outs.append([Sample(text, owner.truncated) for text in texts])
        return outs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.owner.events.append(("close", self.model_path))


def no_template(model, think_open=None):
    """Stands in for stagerl.train.generation.template_settings for the scripted models, which have none."""
    return {"think_open": bool(think_open), "template_hash": None}


def run_label(tmp_path, generator, monkeypatch, *extra, out="out", models="small,medium,large"):
    monkeypatch.setattr("stagerl.train.generation.open_generator", generator)
    if "stagerl:" not in models:
        monkeypatch.setattr("stagerl.train.generation.template_settings", no_template)
    problems = tmp_path / "problems.jsonl"
    if not problems.exists():
        write_problems(problems)
    argv = [
        "--input",
        str(problems),
        "--models",
        models,
        "--samples",
        "4",
        "--output",
        str(tmp_path / out),
        "--batch-size",
        "2",
    ]
    return label.main(argv + list(extra))


def test_label_end_to_end_scripted(tmp_path, monkeypatch):
    gen = ScriptedGenerator()
    summary = run_label(tmp_path, gen, monkeypatch)
    out = tmp_path / "out"
    # larger models only see what the rules need
    assert sorted(i for m, i in gen.calls if m == "medium") == [1, 2, 4]
    assert sorted(i for m, i in gen.calls if m == "large") == [2, 4]
    with open(out / "pass_rates.csv") as f:
        table = {r["id"]: r for r in csv.DictReader(f)}
    assert {pid: int(r["level"]) for pid, r in table.items()} == EXPECTED
    assert (
        table["q0"]["pass_small"] == "0.5"
        and table["q1"]["pass_medium"] == "0.25"
        and table["q0"]["pass_large"] == ""
    )
    assert summary["reasons"]["too_easy"] == 1 and summary["problems"] == 6
    assert set(summary["by_input_level"]) == {"1", "2", "3", "4", "5"}
    assert (out / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    for level in (1, 2, 3):
        table = pq.read_table(out / f"math_difficulty_level_{level}.parquet")
        assert table.column_names[:4] == ["question", "answer", "id", "level"]
        assert sorted(table.column("id").to_pylist()) == sorted(k for k, v in EXPECTED.items() if v == level)


def test_each_model_is_loaded_once_and_each_batch_draws_new_samples(tmp_path, monkeypatch):
    """The tiny model labels three identical problems one batch at a time: one model load for the three
    batches (and for its three roles), and the batches' samples differ (one seeded stream, not one reseeded
    per batch)."""
    import transformers

    loads, drawn = [], []
    load = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **k: loads.append(a[0]) or load(*a, **k),
    )
    grade = label.grade_samples
    monkeypatch.setattr(
        label, "grade_samples", lambda golds, outs, *a, **k: drawn.append(outs) or grade(golds, outs, *a, **k)
    )
    rows = [{"id": f"same{i}", "problem": "What is 2 + 2?", "answer": "4"} for i in range(3)]
    (tmp_path / "same.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = [
        "--input",
        str(tmp_path / "same.jsonl"),
        "--models",
        TINY_RANDOM,
        "--samples",
        "4",
        "--batch-size",
        "1",
    ]
    label.main([*argv, "--max-new-tokens", "6", "--temperature", "1.0", "--output", str(tmp_path / "out")])
    assert len(drawn) == 3 and len(loads) == 1
    texts = [tuple(s.text for s in outs[0]) for outs in drawn]
    assert len(set(texts)) == 3


def test_labelling_grades_with_each_models_template_and_truncation(tmp_path, monkeypatch):
    """R1-Distill's template opens <think>: a box inside a thought that never closed is no answer, so the
    same scripted text that solves q0 for the ChatML model fails it for the R1 one; a cut-off completion
    earns nothing from a last-number fallback."""
    unclosed = "thinking... so \\boxed{{{answer}}} maybe"
    script = {TINY_RANDOM: {0: 4}, TINY_RANDOM_R1: {0: 4}}
    write_problems(tmp_path / "problems.jsonl", n=1)
    for model, expected in ((TINY_RANDOM, 4), (TINY_RANDOM_R1, 0)):
        gen = ScriptedGenerator(script=script, right=unclosed)
        summary = run_label(tmp_path, gen, monkeypatch, out=model[8:], models=model)
        records = (tmp_path / model[8:] / label.RESULTS_FILE).read_text().splitlines()
        assert json.loads(records[0])["successes"] == expected
        assert summary["templates"][model]["think_open"] is (expected == 0)
    fallback = ScriptedGenerator(script=script, right="the sum is {answer}")
    for truncated, expected in ((False, 4), (True, 0)):
        fallback.truncated = truncated
        run_label(tmp_path, fallback, monkeypatch, out=f"cut{truncated}", models=TINY_RANDOM)
        records = (tmp_path / f"cut{truncated}" / label.RESULTS_FILE).read_text().splitlines()
        assert json.loads(records[0])["successes"] == expected


def test_labelled_directory_is_curriculum_data(tmp_path, monkeypatch):
    run_label(tmp_path, ScriptedGenerator(), monkeypatch)
    ds = load_stage_data([f"{tmp_path / 'out'}:1"])
    assert sorted(ds["id"]) == ["q0", "q5"] and set(ds["level"]) == {1}
    row = ds[ds["id"].index("q0")]
    assert (
        row["answer"] == "1"
        and "Problem number 0" in row["prompt"][0]["content"]
        and "\\boxed{}" in row["prompt"][0]["content"]
    )


def test_resume_after_a_kill_continues_where_it_stopped(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        run_label(tmp_path, ScriptedGenerator(fail_after_calls=4), monkeypatch)
    results = tmp_path / "out" / label.RESULTS_FILE
    done = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(done) == 4  # two flushed batches of two problems
    with open(results, "a") as f:
        f.write('{"id": "q4", "model": "sm')  # torn by the kill
    gen = ScriptedGenerator()
    summary = run_label(tmp_path, gen, monkeypatch)
    assert sorted(i for m, i in gen.calls if m == "small") == [4, 5]  # the torn record is redone
    uninterrupted = run_label(tmp_path, ScriptedGenerator(), monkeypatch, out="fresh")
    assert summary["levels"] == uninterrupted["levels"] and summary["reasons"] == uninterrupted["reasons"]
    lines = results.read_text().splitlines()
    assert all(json.loads(line) for line in lines) and len(lines) == len(
        {(json.loads(x)["id"], json.loads(x)["model"]) for x in lines}
    )


def test_known_pass_rates_skip_generation(tmp_path, monkeypatch):
    rates = tmp_path / "rates.jsonl"
    rows = [
        {"id": "q0", "difficulty": 5, "sample_n": 8},  # no model: the small one, pass 4/8 -> L1
        {"id": "q1", "model": "small", "successes": 0, "samples": 4},
        {"id": "q1", "model": "medium", "pass_rate": 1.0},  # -> L2
        {"id": "q3", "model": "small", "pass_rate": 1.0},  # -> too easy
    ]
    rates.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gen = ScriptedGenerator(fail_after_calls=0)
    summary = run_label(tmp_path, gen, monkeypatch, "--pass-rates", str(rates), "--no-generate")
    assert gen.calls == []
    assert summary["reasons"] == {
        "missing_small": 3,
        "small_partial": 1,
        "small_fails_medium_solves": 1,
        "too_easy": 1,
    }
    # the same, generating only what is unknown
    gen = ScriptedGenerator()
    run_label(tmp_path, gen, monkeypatch, "--pass-rates", str(rates))
    assert not {(m, i) for m, i in gen.calls} & {("small", 0), ("small", 1), ("medium", 1), ("small", 3)}


def test_adaptive_mode_moves_easy_problems_down(tmp_path, monkeypatch):
    run_label(tmp_path, ScriptedGenerator(), monkeypatch, "--retain-fraction", "1")
    stats = tmp_path / "problems.jsonl"
    stats.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"id": "q0", "attempts": 8, "successes": 8},  # L1 mastered -> dropped
                {"id": "q1", "attempts": 8, "successes": 8},  # L2 -> L1
                {"id": "q2", "attempts": 8, "successes": 3},  # L3 stays
                {"id": "q4", "attempts": 8, "successes": 8},  # L3 -> L2
                {"id": "q5", "attempts": 8, "successes": 0},  # L1 -> L2
            ]
        )
    )
    out2 = tmp_path / "relabelled"
    summary = label.main(
        [
            "--mode",
            "adaptive",
            "--input",
            str(tmp_path / "out"),
            "--pass-rates",
            str(stats),
            "--output",
            str(out2),
        ]
    )
    levels = {
        lv: sorted(pq.read_table(out2 / f"math_difficulty_level_{lv}.parquet").column("id").to_pylist())
        for lv in (1, 2, 3)
    }
    assert levels == {1: ["q1"], 2: ["q4", "q5"], 3: ["q2"]}
    assert summary["reasons"] == {"down": 2, "mastered": 1, "same": 1, "up": 1}
    assert sorted(load_stage_data([f"{out2}:2"])["id"]) == ["q4", "q5"]


@pytest.mark.parametrize(
    "row",
    [
        {
            "messages": [
                {"role": "user", "content": "What is 2 + 3?"},
                {"role": "assistant", "content": "Two plus three is $\\boxed{5}$."},
            ]
        },
        {"prompt": [{"role": "user", "content": "What is 2 + 3?"}], "reward_model": {"ground_truth": "5"}},
        {"question": "What is 2 + 3?", "solution": "Adding, $2 + 3 = \\boxed{5}$."},
    ],
    ids=["chat", "verl", "reference-solution"],
)
def test_problems_load_from_every_layout_training_reads(tmp_path, row):
    path = tmp_path / "problems.parquet"
    pq.write_table(pa.Table.from_pylist([row] * 2), path)
    rows = label.load_problems(str(path))
    assert [(r["id"], r["question"], r["answer"]) for r in rows] == [
        ("problems-0", "What is 2 + 3?", "5"),
        ("problems-1", "What is 2 + 3?", "5"),
    ]


def test_a_layout_without_an_answer_fails_listing_the_fields(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps({"question": "What is 2 + 3?", "notes": "easy"}) + "\n")
    with pytest.raises(ValueError, match=r"problems\.jsonl.*notes"):
        label.load_problems(str(path))


def test_cli_errors_name_the_option(tmp_path):
    problems = write_problems(tmp_path / "p.jsonl")
    with pytest.raises(ValueError, match="--models"):
        label.main(["--input", str(problems), "--output", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="SMALL,MEDIUM,LARGE"):
        label.main(["--input", str(problems), "--models", "a,b", "--output", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="--pass-rates"):
        label.main(["--mode", "adaptive", "--input", str(tmp_path), "--output", str(tmp_path / "o")])


# ---------------------------------------------------------------- the real tiny model


def test_tiny_model_labelling_end_to_end(tmp_path):
    problems = write_problems(tmp_path / "p.jsonl", n=3)
    started = time.time()
    summary = label.main(
        [
            "--input",
            str(problems),
            "--models",
            "stagerl:tiny-random",
            "--samples",
            "2",
            "--max-new-tokens",
            "4",
            "--output",
            str(tmp_path / "out"),
            "--temperature",
            "1.0",
        ]
    )
    # A random model never answers right: small=medium=large fail, so everything is level 3.
    assert summary["levels"] == {"3": 3} and summary["reasons"] == {"large_fails": 3}
    records = [json.loads(line) for line in (tmp_path / "out" / label.RESULTS_FILE).read_text().splitlines()]
    assert [(r["model"], r["samples"]) for r in records] == [("stagerl:tiny-random", 2)] * 3  # sampled once
    assert len(load_stage_data([f"{tmp_path / 'out'}:3"])) == 3
    assert time.time() - started < 60
