"""Evaluation: pass@k arithmetic, scoring with a stub generator end to end, the CLI, the shipped and generated
benchmarks, and real generation with the tiny model."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.data.benchmarks import BENCHMARKS, DEFAULT_BENCHMARKS, load_benchmark
from stagerl.data.prompts import R1_INSTRUCTION
from stagerl.train.evaluate import evaluate, ks_for, main, pass_at_k, score
from stagerl.train.generation import Sample
from stagerl.train.models import TINY_RANDOM, TINY_RANDOM_R1

DEMO_TEMPLATE = "{problem}\nGive the final answer as a number in \\boxed{}."  # configs/stages/demo.yaml's

# ---------------------------------------------------------------- pass@k and avg@K


def _pass_at_k_by_comb(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 1, 0.25),
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 0, 4, 0.0),
        (4, 1, 4, 1.0),
        (8, 3, 4, 1 - 5 / 70),  # 1 - C(5,4)/C(8,4)
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_binomial_formula_and_is_avg_for_k1():
    for n in range(1, 11):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n)
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_by_comb(n, c, k))


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(2, 1, 3)


def test_ks_are_powers_of_two_up_to_samples():
    assert ks_for(1) == [1]
    assert ks_for(5) == [1, 2, 4]
    assert ks_for(16) == [1, 2, 4, 8, 16]


def test_score_by_hand():
    grades = [[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0] * 4, [None] * 4]
    m = score(grades, 4)
    assert (m["problems"], m["graded"], m["ungradable"]) == (4, 3, 1)
    assert m["avg@4"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["pass@1"] == m["avg@4"]
    assert m["pass@2"] == pytest.approx((1 + 5 / 6 + 0) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)


def test_a_sample_that_cannot_be_graded_counts_as_wrong():
    """As lighteval and Qwen2.5-Math's harness count it; a problem with no graded sample (its gold cannot be
    parsed) stays out of the means."""
    m = score([[1.0, None, 1.0, None], [None] * 4], 4)
    assert (m["graded"], m["ungradable"], m["ungradable_samples"]) == (1, 1, 2)
    assert m["avg@4"] == m["pass@1"] == pytest.approx(0.5)
    assert m["pass@2"] == pytest.approx(5 / 6)


def test_every_process_of_a_launch_gets_its_share_of_every_benchmark():
    """The shipped benchmarks in order (MATH-500, then AIME 24, AIME 25 and AMC 23: 100 long problems) on 8
    processes: each generates for 12 or 13 of the 100, and all 600 exactly once."""
    from stagerl.train.evaluate import share_of

    sizes = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40}
    benchmark = [name for name, n in sizes.items() for _ in range(n)]
    shares = [share_of(len(benchmark), rank, 8) for rank in range(8)]
    assert len({len(share) for share in shares}) == 1  # padded alike: every process generates
    assert sorted({i for share in shares for i in share}) == list(range(600))
    hard = [sum(benchmark[i] != "math500" for i in set(share)) for share in shares]
    assert min(hard) >= 12 and max(hard) <= 13


# ---------------------------------------------------------------- end to end with a stub generator

BENCH_ROWS = [
    {"id": "p0", "problem": "What is 2 + 2?", "answer": "4"},
    {"id": "p1", "problem": "What is 3 squared?", "answer": "9"},
    {"id": "p2", "problem": "What is half of one?", "answer": "\\frac{1}{2}"},
]
# Per problem, which of the 4 samples is right: all, every other, none.
PATTERN = {"p0": [1, 1, 1, 1], "p1": [1, 0, 1, 0], "p2": [0, 0, 0, 0]}


@pytest.fixture
def bench_file(tmp_path):
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in BENCH_ROWS))
    return path


def make_stub(
    rows, pattern, calls, solution="Step by step. The answer is \\boxed{{{answer}}}.", truncated=False
):
    """Stands in for `open_generator`: its generators return a fixed right or wrong solution per (problem,
    sample), and record each call in `calls`."""
    by_problem = {r["problem"]: r for r in rows}

    class Stub:
        backend = "stub"

        def __init__(self, model, *, backend="auto", seed=0, batch_size=16):
            self.model, self.seed = model, seed

        def sample(self, prompts, *, samples, max_new_tokens, temperature, top_p=1.0):
            calls.append(
                {"model": self.model, "prompts": prompts, "samples": samples, "temperature": temperature}
            )
            outs = []
            for prompt in prompts:
                user = prompt[-1]["content"]
                row = next(r for p, r in by_problem.items() if user.startswith(p))
                right = pattern[row["id"]]
                outs.append(
                    [
                        Sample(
                            solution.format(answer=row["answer"]) if right[i] else "I get \\boxed{1234}.",
                            truncated,
                        )
                        for i in range(samples)
                    ]
                )
            return outs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    return Stub


def test_evaluate_end_to_end_with_stub(bench_file, tmp_path):
    calls = []
    out = tmp_path / "eval"
    summary = evaluate(
        TINY_RANDOM,
        [str(bench_file)],
        samples=4,
        temperature=0.7,
        output_dir=str(out),
        open_generator=make_stub(BENCH_ROWS, PATTERN, calls),
    )
    # One generation call for everything, with the training prompt format.
    assert len(calls) == 1 and calls[0]["samples"] == 4 and calls[0]["temperature"] == 0.7
    assert calls[0]["prompts"][0] == [
        {
            "role": "user",
            "content": "What is 2 + 2?\nPlease reason step by step, and put your final answer within \\boxed{}.",
        }
    ]
    m = summary["benchmarks"]["toy"]
    assert m["avg@4"] == pytest.approx(0.5)
    assert m["pass@1"] == pytest.approx(0.5)
    assert m["pass@2"] == pytest.approx((1 + 5 / 6 + 0) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)
    assert summary["settings"]["samples"] == 4

    # Files: summary.json (same content) and one line per sample.
    assert json.loads((out / "summary.json").read_text())["benchmarks"]["toy"] == m
    lines = [json.loads(line) for line in (out / "toy.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    assert [x["correct"] for x in lines if x["id"] == "p1"] == [1.0, 0.0, 1.0, 0.0]
    first = lines[0]
    assert (first["id"], first["sample"], first["gold"], first["extracted"]) == ("p0", 0, "4", "4")
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_evaluate_limit_and_several_benchmarks(bench_file):
    calls = []
    rows = BENCH_ROWS + load_benchmark("aime24", limit=2)
    pattern = {**PATTERN, **{r["id"]: [1] for r in rows[3:]}}
    summary = evaluate(
        TINY_RANDOM,
        [str(bench_file), "aime24"],
        samples=1,
        limit=2,
        open_generator=make_stub(rows, pattern, calls),
    )
    assert len(calls[0]["prompts"]) == 4  # 2 per benchmark
    assert summary["benchmarks"]["toy"]["avg@1"] == pytest.approx(1.0)  # p0 right, p1 sample 0 right
    assert summary["benchmarks"]["aime24"] == {
        "problems": 2,
        "graded": 2,
        "ungradable": 0,
        "ungradable_samples": 0,
        "avg@1": 1.0,
        "pass@1": 1.0,
    }


def test_evaluate_rejects_wrong_generator_output(bench_file):
    class Bad(make_stub(BENCH_ROWS, PATTERN, [])):
        def sample(self, prompts, **kw):
            return [[Sample("x", False)]] * len(prompts)

    with pytest.raises(ValueError, match="want 2 each"):
        evaluate(TINY_RANDOM, [str(bench_file)], samples=2, open_generator=Bad)


def test_cli_main_writes_summary(bench_file, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("stagerl.train.generation.open_generator", make_stub(BENCH_ROWS, PATTERN, calls))
    out = tmp_path / "cli"
    summary = main(
        [
            "--model",
            TINY_RANDOM,
            "--benchmarks",
            str(bench_file),
            "--samples",
            "2",
            "--temperature",
            "0.6",
            "--output",
            str(out),
        ]
    )
    assert summary["benchmarks"]["toy"]["avg@2"] == pytest.approx(0.5)  # p0: 2/2, p1: 1/2, p2: 0/2
    assert (out / "summary.json").is_file() and (out / "toy.jsonl").is_file()
    assert "toy" in capsys.readouterr().out


def test_cli_prompt_template_reaches_the_generator_and_the_summary(tmp_path, monkeypatch):
    calls = []
    rows = load_benchmark("arith1", limit=3)
    monkeypatch.setattr(
        "stagerl.train.generation.open_generator", make_stub(rows, {r["id"]: [1] for r in rows}, calls)
    )
    argv = ["--model", TINY_RANDOM, "--benchmarks", "arith1", "--limit", "3", "--output", str(tmp_path)]
    summary = main([*argv, "--prompt-template", DEMO_TEMPLATE])
    assert [p[-1]["content"] for p in calls[0]["prompts"]] == [
        f"{r['problem']}\nGive the final answer as a number in \\boxed{{}}." for r in rows
    ]
    assert summary["settings"]["prompt_template"] == DEMO_TEMPLATE
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["prompt_template"] == DEMO_TEMPLATE
    assert summary["benchmarks"]["arith1"]["avg@1"] == 1.0

    default = main(argv)
    assert default["settings"]["prompt_template"] == R1_INSTRUCTION
    assert calls[1]["prompts"][0][-1]["content"] == R1_INSTRUCTION.replace("{problem}", rows[0]["problem"])


def test_prompt_template_without_placeholder_is_refused(bench_file):
    with pytest.raises(ValueError, match="no {problem} placeholder"):
        evaluate(
            TINY_RANDOM,
            [str(bench_file)],
            prompt_template="Solve it.",
            open_generator=make_stub(BENCH_ROWS, PATTERN, []),
        )


def test_evaluate_grades_heldout_arithmetic(tmp_path):
    """arith1 through the same grader as training: a right boxed sum scores 1.0, a wrong one 0.0."""
    rows = load_benchmark("arith1")
    pattern = {r["id"]: [i % 2 == 0] for i, r in enumerate(rows)}  # every other problem answered right
    summary = evaluate(
        TINY_RANDOM,
        ["arith1"],
        prompt_template=DEMO_TEMPLATE,
        output_dir=str(tmp_path),
        open_generator=make_stub(rows, pattern, []),
    )
    lines = [json.loads(line) for line in (tmp_path / "arith1.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r["id"] for r in rows]
    assert [x["correct"] for x in lines] == [1.0 if pattern[r["id"]][0] else 0.0 for r in rows]
    assert summary["benchmarks"]["arith1"]["avg@1"] == pytest.approx(10 / 19)
    assert summary["benchmarks"]["arith1"]["ungradable"] == 0


# ---------------------------------------------------------------- grading as training grades


UNCLOSED = "Let me think. 2 + 2 is \\boxed{{{answer}}} I guess, but wait"  # a thought that never closed
CLOSED = "Let me think. 2 + 2 = 4.\n</think>\nThe answer is \\boxed{{{answer}}}."


def cli(monkeypatch, bench_file, out, model, solution, *extra, truncated=False):
    monkeypatch.setattr(
        "stagerl.train.generation.open_generator",
        make_stub(BENCH_ROWS, {r["id"]: [1, 1] for r in BENCH_ROWS}, [], solution, truncated),
    )
    argv = ["--model", model, "--benchmarks", str(bench_file), "--samples", "2", "--output", str(out)]
    return main([*argv, *extra])


def test_an_unclosed_reasoning_block_scores_zero_on_the_r1_template(bench_file, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from stagerl.data.prompts import template_hash
    from stagerl.train.models import resolve_model

    r1 = cli(monkeypatch, bench_file, tmp_path / "r1", TINY_RANDOM_R1, UNCLOSED)
    assert r1["benchmarks"]["toy"]["avg@2"] == 0.0
    r1_hash = template_hash(AutoTokenizer.from_pretrained(resolve_model(TINY_RANDOM_R1)))
    assert r1["settings"]["think_open"] is True and r1["settings"]["template_hash"] == r1_hash
    recorded = json.loads((tmp_path / "r1" / "summary.json").read_text())["settings"]
    assert (recorded["think_open"], recorded["template_hash"]) == (True, r1_hash)
    lines = [json.loads(line) for line in (tmp_path / "r1" / "toy.jsonl").read_text().splitlines()]
    assert {x["extracted"] for x in lines} == {None}

    closed = cli(monkeypatch, bench_file, tmp_path / "closed", TINY_RANDOM_R1, CLOSED)
    assert closed["benchmarks"]["toy"]["avg@2"] == 1.0
    # ChatML opens nothing: the same unclosed text is graded on its box; `--think-open true` overrides.
    chatml = cli(monkeypatch, bench_file, tmp_path / "chatml", TINY_RANDOM, UNCLOSED)
    assert chatml["settings"]["think_open"] is False and chatml["benchmarks"]["toy"]["avg@2"] == 1.0
    forced = cli(monkeypatch, bench_file, tmp_path / "forced", TINY_RANDOM, UNCLOSED, "--think-open", "true")
    assert forced["settings"]["think_open"] is True and forced["benchmarks"]["toy"]["avg@2"] == 0.0


def test_a_cut_off_completion_earns_no_fallback_answer(bench_file, tmp_path, monkeypatch):
    trailing = "Adding them up, the sum is {answer}"  # a last number, no box: the fallback answer
    finished = cli(monkeypatch, bench_file, tmp_path / "a", TINY_RANDOM, trailing)
    assert finished["benchmarks"]["toy"]["avg@2"] == 1.0
    cut = cli(monkeypatch, bench_file, tmp_path / "b", TINY_RANDOM, trailing, truncated=True)
    assert cut["benchmarks"]["toy"]["avg@2"] == 0.0
    lines = [json.loads(line) for line in (tmp_path / "b" / "toy.jsonl").read_text().splitlines()]
    assert {x["truncated"] for x in lines} == {True}


def test_unknown_benchmark_lists_valid_names():
    with pytest.raises(ValueError, match="gsm9k") as err:
        load_benchmark("gsm9k")
    assert all(name in str(err.value) for name in ("aime24", "math500", "arith1", "arith2", "arith3"))


def test_shipped_benchmarks_load():
    sizes = {name: len(load_benchmark(name)) for name in BENCHMARKS}
    assert sizes == {
        "math500": 500,
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
        "arith1": 19,
        "arith2": 180,
        "arith3": 200,
    }
    assert DEFAULT_BENCHMARKS == ("math500", "aime24", "aime25", "amc23")  # arith* only when named
    for name in BENCHMARKS:
        rows = load_benchmark(name)
        assert all(isinstance(r["answer"], str) for r in rows)
        assert all(r["problem"].strip() and r["answer"].strip() for r in rows)
        assert len({r["id"] for r in rows}) == len(rows)


def test_generated_benchmark_limit_is_a_stable_prefix():
    rows = load_benchmark("arith2", limit=5)
    assert [r["id"] for r in rows] == [f"arith2-heldout-{i:04d}" for i in range(5)]
    assert rows == load_benchmark("arith2")[:5] == load_benchmark("arith2", limit=5)
    assert all(r["problem"].startswith("What is ") and r["level"] == 2 for r in rows)


# ---------------------------------------------------------------- real generation with the tiny model


def test_generate_with_tiny_model():
    from stagerl.train.generation import generate

    prompts = ["What is 1 + 2?", [{"role": "user", "content": "What is 3 + 4? Think."}]]
    kw = dict(samples=3, max_new_tokens=6, temperature=1.0, seed=1, batch_size=4)
    outs = generate("stagerl:tiny-random", prompts, **kw)
    assert [len(o) for o in outs] == [3, 3]
    assert all(isinstance(s.text, str) for o in outs for s in o)
    assert all(s.truncated for o in outs for s in o)  # 6 random tokens, none of them the end token
    assert generate("stagerl:tiny-random", prompts, **kw) == outs  # same seed, same batch size: same samples
    assert len({s.text for o in outs for s in o}) > 1  # sampling, not greedy

    greedy = generate("stagerl:tiny-random", prompts[:1], samples=2, max_new_tokens=6, temperature=0)
    assert len(greedy[0]) == 2 and greedy[0][0] == greedy[0][1]


def test_a_completion_that_ends_is_not_truncated(tmp_path):
    """The end token is whatever the model's generation config names: made the first token greedy decoding
    picks, the completion ends at once (not cut off), where before it ran to max_new_tokens (cut off)."""
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    from stagerl.train.generation import generate
    from stagerl.train.models import resolve_model

    model = tmp_path / "model"
    shutil.copytree(resolve_model(TINY_RANDOM), model)
    kw = dict(samples=1, max_new_tokens=5, temperature=0)
    (cut,) = generate(str(model), ["What is 1 + 2?"], **kw)[0]
    assert cut.truncated and cut.text
    first = AutoTokenizer.from_pretrained(model)(cut.text, add_special_tokens=False)["input_ids"][0]
    config = GenerationConfig.from_pretrained(model)
    config.eos_token_id = first
    config.save_pretrained(model)
    (ended,) = generate(str(model), ["What is 1 + 2?"], **kw)[0]
    assert not ended.truncated and len(ended.text) < len(cut.text)


def test_nucleus_keeps_exactly_the_tokens_transformers_top_p_keeps():
    import torch
    from transformers import TopPLogitsWarper

    from stagerl.train.generation import Nucleus

    torch.manual_seed(0)
    peaked = torch.randn(32, 5000) * 6  # the nucleus lies within the 256 most likely tokens: the fast path
    flat = torch.randn(32, 5000) * 0.1  # it does not: the full sort
    for scores in (peaked, flat):
        for top_p in (0.5, 0.9, 0.95):
            expected = TopPLogitsWarper(top_p)(None, scores.clone())
            assert torch.equal(Nucleus(top_p)(None, scores.clone()), expected)
    kept = (Nucleus(0.9)(None, peaked) > -float("inf")).sum(dim=-1)
    assert kept.max() < 256 and kept.min() >= 1


def test_sampling_draws_what_transformers_own_top_p_draws():
    """Same seed and batch: our generation (Nucleus) samples the tokens transformers' warpers sample."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stagerl.train.generation import generate
    from stagerl.train.models import resolve_model

    prompts = ["What is 1 + 2?", "What is 30 + 4?"]
    kw = dict(samples=2, max_new_tokens=8, temperature=0.05, top_p=0.9, seed=3, batch_size=4)
    ours = [s.text for o in generate(TINY_RANDOM, prompts, **kw) for s in o]

    path = resolve_model(TINY_RANDOM)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
        for _ in range(2)
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(3)
    out = model.generate(**enc, do_sample=True, max_new_tokens=8, temperature=0.05, top_p=0.9, top_k=0)
    theirs = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert ours == theirs


def test_generate_rejects_bad_arguments():
    from stagerl.train.generation import generate

    with pytest.raises(ValueError, match="samples"):
        generate("stagerl:tiny-random", ["x"], samples=0, max_new_tokens=4, temperature=1.0)
    with pytest.raises(ValueError, match="top_p"):
        generate("stagerl:tiny-random", ["x"], samples=1, max_new_tokens=4, temperature=1.0, top_p=0)
    with pytest.raises(ValueError, match="prompt"):
        generate("stagerl:tiny-random", [42], samples=1, max_new_tokens=4, temperature=1.0)
    assert generate("stagerl:tiny-random", [], samples=1, max_new_tokens=4, temperature=1.0) == []


def test_evaluate_with_tiny_model_end_to_end(bench_file, tmp_path):
    summary = evaluate(
        "stagerl:tiny-random",
        [str(bench_file)],
        samples=2,
        max_new_tokens=8,
        temperature=1.0,
        batch_size=6,
        output_dir=str(tmp_path / "tiny"),
    )
    m = summary["benchmarks"]["toy"]
    assert m["problems"] == 3 and 0.0 <= m["avg@2"] <= m["pass@2"] <= 1.0
    assert len((tmp_path / "tiny" / "toy.jsonl").read_text().splitlines()) == 6


# ---------------------------------------------------------------- every process of a launch


@pytest.mark.slow
def test_two_processes_give_the_one_process_greedy_results(tmp_path, monkeypatch):
    """The runner's evaluation command under its launcher: 1 process, then `accelerate launch` of 2 CPU
    processes that split the problems (2 each, dealt in turn). Batches of 1 are never padded, so greedy
    completions must be the same either way, as must every grade and the summary."""
    from stagerl.curricula.commands import evaluation_command, launcher

    rows = [*BENCH_ROWS, {"id": "p3", "problem": "What is 5 + 6?", "answer": "11"}]
    bench = tmp_path / "four.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"benchmarks": [str(bench)], "samples": 2, "temperature": 0, "max_new_tokens": 12}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MAIN_PROCESS_PORT", str(sock.getsockname()[1]))
    root = Path(__file__).resolve().parents[2]
    results = {}
    for name, prefix in (("one", [sys.executable]), ("two", launcher("configs/accelerate/ddp.yaml", 2))):
        cmd = evaluation_command(spec, TINY_RANDOM, tmp_path / name, prefix) + ["--batch-size", "1"]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        lines = (tmp_path / name / "four.jsonl").read_text().splitlines()
        results[name] = (
            [json.loads(line) for line in lines],
            json.loads((tmp_path / name / "summary.json").read_text()),
        )
    assert "process 0/2: 2 prompts" in proc.stderr  # the first process generated its half only
    (one, one_summary), (two, two_summary) = results["one"], results["two"]
    assert len(one) == 8 and two == one
    assert two_summary["benchmarks"] == one_summary["benchmarks"]
