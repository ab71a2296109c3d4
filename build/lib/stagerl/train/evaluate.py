"""Evaluate a model on the shipped benchmarks: pass@1 as avg@K and the unbiased pass@k.

Launch:

    python -m stagerl.train.evaluate --model RUN/stage-1-level1/final --benchmarks math500,aime24,aime25,amc23 \
        --samples 8 --output RUN/stage-1-level1/eval
    python -m stagerl.train.evaluate --model stagerl:smollm2-135m-instruct --benchmarks math500 --limit 40 \
        --samples 1 --max-new-tokens 256 --temperature 0          # a quick CPU check
    python -m stagerl.train.evaluate --model RUN/stage-3-level3/final --benchmarks arith1,arith2,arith3 \
        --prompt-template $'{problem}\\nGive the final answer as a number in \\\\boxed{}.'  # as demo.yaml asks

Choices, and why:
- Prompts are built by the training's `chat_prompt`, by default with its default template
  (`stagerl.data.prompts.R1_INSTRUCTION`: the problem, then "reason step by step ... \\boxed{}");
  `--prompt-template` gives a stage's own template when it has one, so a stage is measured in the format
  it was trained on (in a shell, `$'...'` turns `\\n` into the newline a YAML "\\n" gives). The
  template is recorded in the summary's settings.
- `arith1`..`arith3` are the generated arithmetic levels' held-out problems, never drawn for training
  (`stagerl.data.arithmetic`), so a level is measured on problems the model has not seen.
- pass@1 is avg@K, the mean correctness over K samples per problem (the R1-style report; less noisy than
  one sample). pass@k for k = 2, 4, ... <= K uses the unbiased estimator of Chen et al. (2021),
  1 - C(n-c, k) / C(n, k), averaged over problems.
- Grading is `stagerl.rewards.grade` (the training reward's extraction and math-verify, in its hard-timeout pool),
  so evaluation and reward agree on what "correct" means. A problem whose gold answer cannot be graded is
  left out of the means and counted (`ungradable`).
- All benchmarks' prompts go to the generator in one call, so the model is loaded once.
- Outputs (with `--output DIR`): `DIR/<benchmark>.jsonl` (one line per sample) and `DIR/summary.json`, both
  written atomically. Without `--output` nothing is written; the summary is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stagerl.data.benchmarks import BENCHMARKS, DEFAULT_BENCHMARKS, benchmark_name, load_benchmark
from stagerl.data.prompts import R1_INSTRUCTION

logger = logging.getLogger(__name__)

GenerateFn = Callable[..., list[list[str]]]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from n samples with c correct (Chen et al. 2021, eq. 1).

    Args:
        n: samples drawn.
        c: correct samples.
        k: the k of pass@k (1 <= k <= n).

    Returns:
        1 - C(n-c, k) / C(n, k), computed as a stable product.

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 2), pass_at_k(4, 0, 4), pass_at_k(4, 3, 2)
    (0.25, 0.5, 0.0, 1.0)
    """
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def ks_for(samples: int) -> list[int]:
    """The k reported for K samples: powers of two up to K.

    >>> ks_for(1), ks_for(6), ks_for(8)
    ([1], [1, 2, 4], [1, 2, 4, 8])
    """
    ks, k = [], 1
    while k <= samples:
        ks.append(k)
        k *= 2
    return ks


def score(grades: Sequence[Sequence[float | None]], samples: int) -> dict:
    """Benchmark metrics from per-problem grades.

    Args:
        grades: one list of K grades (1.0, 0.0, or None for an ungradable gold) per problem.
        samples: K.

    Returns:
        `{"problems", "graded", "ungradable", "avg@K", "pass@1", "pass@2", ...}` (fractions in [0, 1]);
        pass@1 equals avg@K.

    >>> score([[1.0, 0.0], [0.0, 0.0], [None, None]], 2)
    {'problems': 3, 'graded': 2, 'ungradable': 1, 'avg@2': 0.25, 'pass@1': 0.25, 'pass@2': 0.5}
    """
    counted = [[g for g in row if g is not None] for row in grades]
    counted = [row for row in counted if row]
    metrics: dict = {
        "problems": len(grades),
        "graded": len(counted),
        "ungradable": len(grades) - len(counted),
    }
    denom = max(1, len(counted))
    metrics[f"avg@{samples}"] = sum(sum(row) / len(row) for row in counted) / denom
    for k in ks_for(samples):
        usable = [row for row in counted if len(row) >= k]
        value = sum(pass_at_k(len(row), int(sum(row)), k) for row in usable) / max(1, len(usable))
        metrics[f"pass@{k}"] = value
    return metrics


def evaluate(
    model: str,
    benchmarks: Sequence[str] = DEFAULT_BENCHMARKS,
    *,
    samples: int = 1,
    limit: int | None = None,
    max_new_tokens: int = 2048,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 16,
    prompt_template: str = R1_INSTRUCTION,
    system_prompt: str | None = None,
    output_dir: str | None = None,
    generate_fn: GenerateFn | None = None,
) -> dict:
    """Generate, grade and score; optionally write per-sample results and the summary.

    Args:
        model: model directory, hub id or built-in name, passed to `generate_fn`.
        benchmarks: shipped benchmark names or jsonl paths.
        samples: K completions per problem.
        limit: only the first N problems of each benchmark.
        max_new_tokens, temperature, top_p, seed, batch_size: generation settings (temperature 0 = greedy).
        prompt_template: user message; `{problem}` is replaced by the problem text.
        system_prompt: optional system message.
        output_dir: where to write `<benchmark>.jsonl` and `summary.json` (None: write nothing).
        generate_fn: `stagerl.train.generation.generate` or anything with its signature (tests pass a stub).

    Returns:
        The summary: `{"model", "settings", "benchmarks": {name: metrics}, "wall_time_s"}`.
    """
    from stagerl.data.prompts import chat_prompt
    from stagerl.rewards import extract_answer, grade

    if generate_fn is None:
        from stagerl.train.generation import generate as generate_fn
    if samples < 1:
        raise ValueError(f"samples={samples}: must be >= 1")
    if "{problem}" not in prompt_template:
        # Without the placeholder every prompt would be the same text, with no problem in it.
        raise ValueError(f"prompt_template={prompt_template!r} has no {{problem}} placeholder")
    if temperature == 0 and samples > 1:
        logger.warning("temperature=0 (greedy) with samples=%d: every sample is the same", samples)
    start = time.time()
    data = {benchmark_name(spec): load_benchmark(spec, limit) for spec in benchmarks}
    prompts = [
        chat_prompt(row["problem"], prompt_template, system_prompt) for rows in data.values() for row in rows
    ]
    settings = {
        "samples": samples,
        "limit": limit,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "prompt_template": prompt_template,
        "system_prompt": system_prompt,
    }
    logger.info("evaluating %s on %s: %d problems x %d samples", model, list(data), len(prompts), samples)
    completions = generate_fn(
        model,
        prompts,
        samples=samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        batch_size=batch_size,
    )
    if len(completions) != len(prompts) or any(len(c) != samples for c in completions):
        raise ValueError(
            f"generate_fn returned {len(completions)} lists for {len(prompts)} prompts (want {samples} each)"
        )

    summary: dict = {"model": model, "settings": settings, "benchmarks": {}}
    offset = 0
    for name, rows in data.items():
        outs = completions[offset : offset + len(rows)]
        offset += len(rows)
        flat = [text for per_problem in outs for text in per_problem]
        golds = [row["answer"] for row in rows for _ in range(samples)]
        flat_grades = grade(flat, golds)
        grades = [flat_grades[i * samples : (i + 1) * samples] for i in range(len(rows))]
        summary["benchmarks"][name] = score(grades, samples)
        logger.info("%s: %s", name, summary["benchmarks"][name])
        if output_dir is not None:
            _write_samples(Path(output_dir) / f"{name}.jsonl", rows, outs, grades, extract_answer)
    summary["wall_time_s"] = round(time.time() - start, 1)
    if output_dir is not None:
        from stagerl.data.files import atomic_write_json

        atomic_write_json(Path(output_dir) / "summary.json", summary)
    return summary


def _write_samples(path: Path, rows, outs, grades, extract_answer) -> None:
    from stagerl.data.files import atomic_write_text

    lines = []
    for row, texts, row_grades in zip(rows, outs, grades, strict=True):
        for i, (text, correct) in enumerate(zip(texts, row_grades, strict=True)):
            record = {
                "id": row["id"],
                "sample": i,
                "gold": row["answer"],
                "extracted": extract_answer(text),
                "correct": correct,
                "completion": text,
            }
            lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


def format_table(summary: dict) -> str:
    """The summary as a plain-text table (percentages)."""
    lines = []
    for name, m in summary["benchmarks"].items():
        passes = "  ".join(f"{k}={v * 100:5.1f}" for k, v in m.items() if k.startswith("pass@"))
        lines.append(f"{name:<10} n={m['graded']:<4} {passes}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stagerl.train.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory, hub id or built-in name (stagerl:...)")
    p.add_argument(
        "--benchmarks",
        default=",".join(DEFAULT_BENCHMARKS),
        help=f"comma-separated names ({', '.join(BENCHMARKS)}) or jsonl paths "
        f"(default: {','.join(DEFAULT_BENCHMARKS)})",
    )
    p.add_argument("--samples", type=int, default=1, help="K completions per problem (default 1)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--temperature", type=float, default=0.6, help="0 = greedy (default 0.6)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16, help="sequences per generation batch")
    p.add_argument(
        "--prompt-template",
        default=R1_INSTRUCTION,
        help="user message; {problem} is replaced by the problem (default: the R1 step-by-step instruction)",
    )
    p.add_argument("--system-prompt", default=None)
    p.add_argument("--output", default=None, help="directory for <benchmark>.jsonl and summary.json")
    return p


def main(argv: list[str] | None = None) -> dict:
    """Run the CLI; returns the summary dict."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not benchmarks:
        raise ValueError(f"--benchmarks={args.benchmarks!r}: no benchmark named")
    summary = evaluate(
        args.model,
        benchmarks,
        samples=args.samples,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
        prompt_template=args.prompt_template,
        system_prompt=args.system_prompt,
        output_dir=args.output,
    )
    print(format_table(summary))
    if args.output:
        print(f"results in {args.output}/")
    return summary


if __name__ == "__main__":
    main()
