"""Decontamination: normalisation, n-gram matching, the filter on lists and datasets, and the CLI."""

from __future__ import annotations

import json
import logging

import pytest

from stagerl.data.benchmarks import load_benchmark
from stagerl.data.decontaminate import (
    BenchmarkIndex,
    filter_contaminated,
    main,
    ngrams,
    problem_text,
    words,
)
from stagerl.data.prompts import R1_INSTRUCTION

BENCH = [
    {
        "id": "b0",
        "problem": "Roslyn has ten boxes. Five of the boxes contain pencils, four of the boxes contain pens, and "
        "two of the boxes contain both pens and pencils. How many boxes contain neither pens nor pencils?",
        "answer": "3",
    },
    {
        "id": "b1",
        "problem": "Compute $\\dbinom{31}{28}$.",
        "answer": "4495",
    },
    {
        "id": "b2",
        "problem": "A die is rolled twice. The probability of two sixes is $\\frac{m}{n}$, where $m$ and $n$ are "
        "relatively prime positive integers. Find $m+n$.",
        "answer": "37",
    },
    {
        "id": "b3",
        "problem": "Two coins are flipped. The probability of two heads is $\\frac{m}{n}$, where $m$ and $n$ are "
        "relatively prime positive integers. Find $m+n$.",
        "answer": "5",
    },
]


@pytest.fixture
def bench(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in BENCH))
    return str(path)


def chat_row(problem, id_):
    return {"prompt": [{"role": "user", "content": R1_INSTRUCTION.replace("{problem}", problem)}], "id": id_}


def test_words_normalise_case_latex_and_spacing():
    assert words("Find  $\\frac{1}{2}$,  THEN stop.") == words("find \\frac 1 2 then stop")
    assert words("ﬁnd x_1") == ["find", "x", "1"]  # NFKC folds the ligature
    assert words("Look: [asy]draw((0,0)--(1,1));[/asy] done") == ["look", "done"]


def test_ngrams_short_texts_are_one_gram():
    assert ngrams("one two three four", 3) == {"one two three", "two three four"}
    assert ngrams("one two", 13) == {"one two"}
    assert ngrams("$$", 13) == set()
    with pytest.raises(ValueError, match="ngram=0"):
        ngrams("x", 0)


def test_problem_text_prefers_problem_column_then_chat_user_messages():
    assert problem_text({"problem": "P", "prompt": [{"role": "user", "content": "U"}]}) == "P"
    row = {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}
    assert problem_text(row) == "U"
    assert problem_text({"q": "Q"}, text_column="q") == "Q"
    with pytest.raises(ValueError, match="columns found"):
        problem_text({"answer": "1"})


def test_index_ignores_boilerplate_shared_by_benchmark_problems(bench):
    index = BenchmarkIndex([bench], ngram=8)
    assert index.boilerplate > 0
    # The shared sentence alone says nothing about which problem was copied.
    boiler = (
        "The answer is $\\frac{m}{n}$, where $m$ and $n$ are relatively prime positive integers. Find $m+n$."
    )
    assert index.match(boiler) is None
    copy = index.match(BENCH[2]["problem"])
    assert copy is not None and (copy.id, copy.overlap) == ("b2", 1.0)


def test_filter_contaminated_list_rows(bench, caplog):
    rows = [
        chat_row(BENCH[0]["problem"], "exact copy"),
        chat_row(BENCH[0]["problem"].upper().replace(" ", "  "), "reformatted copy"),
        chat_row("Compute $\\dbinom{31}{28}.$", "short exact copy"),
        chat_row("Compute $\\dbinom{30}{28}$ by hand.", "different short problem"),
        chat_row("What is 2 + 2? Show that the answer is even and explain.", "unrelated"),
        {"problem": BENCH[2]["problem"], "answer": "37", "id": "copy via problem column"},
    ]
    with caplog.at_level(logging.INFO, logger="stagerl.data.decontaminate"):
        kept, removed = filter_contaminated(rows, benchmarks=[bench])
    assert removed == 4
    assert [r["id"] for r in kept] == ["different short problem", "unrelated"]
    assert "removed 4 of 6 rows sharing a 13-gram" in caplog.text


def test_filter_contaminated_min_overlap(bench):
    # A near-template: one changed clause keeps part of the problem's 13-grams.
    variant = BENCH[0]["problem"].replace("Five of the boxes", "Six of the boxes")
    rows = [chat_row(variant, "variant"), chat_row(BENCH[0]["problem"], "copy")]
    _, any_overlap = filter_contaminated(rows, benchmarks=[bench])
    kept, strict = filter_contaminated(rows, benchmarks=[bench], min_overlap=0.9)
    assert (any_overlap, strict) == (2, 1)
    assert [r["id"] for r in kept] == ["variant"]


def test_filter_contaminated_dataset_with_shipped_benchmarks():
    from datasets import Dataset

    math500 = load_benchmark("math500", limit=3)
    rows = [chat_row(r["problem"], f"leak-{i}") for i, r in enumerate(math500)]
    rows += [
        chat_row(f"What is {a} + {a}? Add them up carefully and give one number.", f"ok-{a}")
        for a in range(3)
    ]
    ds = Dataset.from_list([{**r, "answer": "0", "level": 1} for r in rows])
    kept, removed = filter_contaminated(ds, benchmarks=["math500"])
    assert removed == 3
    assert isinstance(kept, Dataset) and kept["id"] == ["ok-0", "ok-1", "ok-2"]
    same, none_removed = filter_contaminated(kept)  # all shipped benchmarks by default
    assert none_removed == 0 and len(same) == 3


def test_cli_reports_overlaps(bench, tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    rows = [
        {"question": BENCH[0]["problem"], "answer": "3", "id": "t0"},
        {
            "question": "An unrelated question about adding seven and eight together.",
            "answer": "15",
            "id": "t1",
        },
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = main(["--data", str(data), "--benchmarks", bench])
    entry = report[str(data)]
    assert (entry["rows"], entry["contaminated"]) == (2, 1)
    assert entry["matches"][0]["id"] == "t0" and entry["matches"][0]["benchmark_id"] == "b0"
    assert "1 of 2 rows" in capsys.readouterr().out
