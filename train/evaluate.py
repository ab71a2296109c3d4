"""Evaluate a model on the shipped benchmarks: pass@1 as avg@K and the unbiased pass@k.

Launch:

    python -m stagerl.train.evaluate --model RUN/stage-1-level1/final --benchmarks math500,aime24,aime25,amc23 \
        --samples 8 --output RUN/stage-1-level1/eval
    python -m stagerl.train.evaluate --model stagerl:smollm2-135m-instruct --benchmarks math500 --limit 40 \
        --samples 1 --max-new-tokens 256 --temperature 0          # a quick CPU check
    python -m stagerl.train.evaluate --model RUN/stage-3-level3/final --benchmarks arith1,arith2,arith3 \
        --prompt-template $'{problem}\\nGive the final answer as a number in \\\\boxed{}.'  # as demo.yaml asks
    accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes 8 -m stagerl.train.evaluate \
        --model RUN/stage-1-level1/final --samples 16 --max-new-tokens 32768      # GPUs: one vLLM engine each

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
  so evaluation and reward agree on what "correct" means: a completion the generator cut off at
  `--max-new-tokens` earns nothing from a fallback answer, and when the model's own chat template opens a
  reasoning block (DeepSeek-R1-Distill's prompt ends with `<think>`) no answer counts until the completion
  closes it (`--think-open auto`: read from the template; `true`/`false` override it). Both, and the
  template's hash, are recorded in the summary's settings. A sample that cannot be graded against a gold
  the other samples were graded against counts as wrong (as lighteval and Qwen2.5-Math's harness count an
  answer they cannot parse), and is counted beside (`ungradable_samples`); a problem none of whose samples
  could be graded (its gold cannot be parsed) is left out of the means and counted (`ungradable`).
- The model is loaded once (`stagerl.train.generation.open_generator`: vLLM where it can run, on a GPU or with
  vLLM's CPU build, else transformers; `--backend` chooses), and all benchmarks' prompts go to it in one call.
- Under `accelerate launch` (any number of processes and machines) the problems are dealt to the processes
  in turn (process r takes problems r, r + N, ...), so every process gets its share of every benchmark: AIME's
  long completions do not all land on one; each generates its share with its own model or engine (data
  parallelism) and its own seed (seed + process index); the first process gathers the completions, grades
  them and writes the results.
- Outputs (with `--output DIR`): `DIR/<benchmark>.jsonl` (one line per sample) and `DIR/summary.json`, both
  written atomically. Without `--output` nothing is written; the summary is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from stagerl.data.benchmarks import BENCHMARKS, DEFAULT_BENCHMARKS, benchmark_name, load_benchmark
from stagerl.data.prompts import R1_INSTRUCTION
from stagerl.data.stage_dir import EVAL_SUMMARY
from stagerl.rewards.cli import run_command, setup_logging
from stagerl.train.generation import BACKENDS, DEFAULT_BATCH_SIZE, THINK_OPEN_CHOICES, Sample
from stagerl.train.grading import grade_samples

logger = logging.getLogger(__name__)

OpenGenerator = Callable[..., object]  # `stagerl.train.generation.open_generator`'s signature
# How long a process that finished its share waits for the slowest one in the final gather (the default of
# 30 minutes is shorter than an uneven split of a long evaluation can take).
GATHER_TIMEOUT = timedelta(hours=12)


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

    A problem none of whose samples could be graded (None: its gold cannot be parsed) is left out; in the
    others, a sample that could not be graded counts as wrong.

    Args:
        grades: one list of K grades (1.0, 0.0, or None where it could not be graded) per problem.
        samples: K.

    Returns:
        `{"problems", "graded", "ungradable", "ungradable_samples", "avg@K", "pass@1", "pass@2", ...}`
        (fractions in [0, 1]); pass@1 equals avg@K; `ungradable_samples` counts the samples counted wrong
        for want of a grade.

    >>> score([[1.0, 0.0], [0.0, None], [None, None]], 2)
    {'problems': 3, 'graded': 2, 'ungradable': 1, 'ungradable_samples': 1, 'avg@2': 0.25, 'pass@1': 0.25, 'pass@2': 0.5}
    """
    gradable = [row for row in grades if any(g is not None for g in row)]
    counted = [[0.0 if g is None else g for g in row] for row in gradable]
    metrics: dict = {
        "problems": len(grades),
        "graded": len(counted),
        "ungradable": len(grades) - len(counted),
        "ungradable_samples": sum(g is None for row in gradable for g in row),
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
    batch_size: int = DEFAULT_BATCH_SIZE,
    prompt_template: str = R1_INSTRUCTION,
    system_prompt: str | None = None,
    think_open: bool | None = None,
    output_dir: str | None = None,
    backend: str = "auto",
    open_generator: OpenGenerator | None = None,
) -> dict | None:
    """Generate, grade and score; optionally write per-sample results and the summary.

    Args:
        model: model directory, hub id or built-in name, passed to `generate_fn`.
        benchmarks: shipped benchmark names or jsonl paths.
        samples: K completions per problem.
        limit: only the first N problems of each benchmark.
        max_new_tokens, temperature, top_p, seed, batch_size: generation settings (temperature 0 = greedy).
        prompt_template: user message; `{problem}` is replaced by the problem text.
        system_prompt: optional system message.
        think_open: whether the prompt opens a reasoning block, so that no answer counts before `</think>`;
            None reads it from the model's chat template (`stagerl.train.generation.template_settings`).
        output_dir: where to write `<benchmark>.jsonl` and `summary.json` (None: write nothing).
        backend: "auto", "transformers" or "vllm" (`stagerl.train.generation.open_generator`).
        open_generator: `stagerl.train.generation.open_generator` or anything with its signature (tests pass
            a stub).

    Returns:
        On the first process, the summary: `{"model", "settings", "benchmarks": {name: metrics},
        "wall_time_s"}`; None on the others of a multi-process launch (they only generate their share).
    """
    from stagerl.data.prompts import chat_prompt
    from stagerl.train.generation import template_settings

    if open_generator is None:
        from stagerl.train.generation import open_generator
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
    template = template_settings(model, think_open)
    settings = {
        "samples": samples,
        "limit": limit,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "prompt_template": prompt_template,
        "system_prompt": system_prompt,
        **template,
    }
    logger.info("evaluating %s on %s: %d problems x %d samples", model, list(data), len(prompts), samples)
    state = launch_state()  # before the generator: a vLLM engine joins the launch's process group
    with open_generator(
        model, backend=backend, seed=seed + state.process_index, batch_size=batch_size
    ) as generator:
        settings["backend"] = generator.backend
        completions = generate_shared(
            generator,
            prompts,
            state,
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
        )
    if completions is None:
        return None
    if len(completions) != len(prompts) or any(len(c) != samples for c in completions):
        raise ValueError(
            f"the generator returned {len(completions)} lists for {len(prompts)} prompts (want {samples} each)"
        )

    summary: dict = {"model": model, "settings": settings, "benchmarks": {}}
    offset = 0
    for name, rows in data.items():
        outs = completions[offset : offset + len(rows)]
        offset += len(rows)
        grades = grade_samples([row["answer"] for row in rows], outs, template["think_open"])
        summary["benchmarks"][name] = score(grades, samples)
        logger.info("%s: %s", name, summary["benchmarks"][name])
        if output_dir is not None:
            _write_samples(Path(output_dir) / f"{name}.jsonl", rows, outs, grades, template["think_open"])
    summary["wall_time_s"] = round(time.time() - start, 1)
    if output_dir is not None:
        from stagerl.data.files import atomic_write_json

        atomic_write_json(Path(output_dir) / EVAL_SUMMARY, summary)
    return summary


def launch_state():
    """The launch's process group (accelerate's `PartialState`; one process when not launched)."""
    import torch
    from accelerate import PartialState

    # cpu: without a GPU, accelerate forms the launch's process group over gloo only when told it is on CPU.
    return PartialState(cpu=not torch.cuda.is_available(), timeout=GATHER_TIMEOUT)


def share_of(count: int, process: int, processes: int) -> list[int]:
    """The prompt indices one process of a launch generates for: every `processes`-th, from its own index, so
    each benchmark (the prompts come benchmark by benchmark) is spread over all processes; padded with a repeat
    so every process has as many as the first (a vLLM engine joins the launch's process group, so no process
    may sit one out). The repeats are dropped when the shares are merged.

    >>> share_of(5, 0, 2), share_of(5, 1, 2), share_of(1, 1, 2)
    ([0, 2, 4], [1, 3, 3], [0])
    """
    share = list(range(process, count, processes))
    length = -(-count // processes)
    return share + [share[-1] if share else 0] * (length - len(share))


def generate_shared(generator, prompts: list, state, **sampling) -> list[list[Sample]] | None:
    """Generate for `prompts` with every process of the launch, each its share (`share_of`); gathered on the
    first.

    Args:
        generator: this process's generator (`stagerl.train.generation.open_generator`).
        prompts: every prompt of the evaluation, in order.
        state: the launch (`launch_state`).
        **sampling: `generator.sample`'s settings.

    Returns:
        On the first process, the samples for all `prompts` in order; None on the others.
    """
    from stagerl.train.distributed import gather_to_main

    if state.num_processes == 1:
        return generator.sample(prompts, **sampling)
    share = share_of(len(prompts), state.process_index, state.num_processes)
    logger.info("process %d/%d: %d prompts", state.process_index, state.num_processes, len(set(share)))
    outs = generator.sample([prompts[i] for i in share], **sampling)
    shares = gather_to_main(list(zip(share, outs, strict=True)))
    if shares is None:
        return None
    merged: dict[int, list[Sample]] = {}
    for index, out in (pair for share in shares for pair in share):
        merged.setdefault(index, out)
    return [merged[i] for i in range(len(prompts))]


def _write_samples(path: Path, rows, outs, grades, think_open: bool) -> None:
    from stagerl.data.files import atomic_write_text
    from stagerl.rewards.extract import extract

    lines = []
    for row, samples, row_grades in zip(rows, outs, grades, strict=True):
        for i, (sample, correct) in enumerate(zip(samples, row_grades, strict=True)):
            record = {
                "id": row["id"],
                "sample": i,
                "gold": row["answer"],
                "extracted": extract(sample.text, think_open=think_open).answer,
                "correct": correct,
                "truncated": sample.truncated,
                "completion": sample.text,
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
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"sequences per generation batch, per process (transformers; default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--prompt-template",
        default=R1_INSTRUCTION,
        help="user message; {problem} is replaced by the problem (default: the R1 step-by-step instruction)",
    )
    p.add_argument("--system-prompt", default=None)
    p.add_argument(
        "--think-open",
        choices=THINK_OPEN_CHOICES,
        default="auto",
        help="whether the prompt opens a reasoning block, so no answer counts before </think> "
        "(default auto: read from the model's chat template)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto (default): vLLM where it can run (a GPU, or vLLM's CPU build), else transformers",
    )
    p.add_argument("--output", default=None, help="directory for <benchmark>.jsonl and summary.json")
    return p


def main(argv: list[str] | None = None) -> dict | None:
    """Run the CLI; returns the summary dict (None on the other processes of a multi-process launch)."""
    args = build_parser().parse_args(argv)
    setup_logging()
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
        think_open=THINK_OPEN_CHOICES[args.think_open],
        output_dir=args.output,
        backend=args.backend,
    )
    if summary is None:
        return None
    print(format_table(summary))
    if args.output:
        print(f"results in {args.output}/")
    return summary


if __name__ == "__main__":
    run_command(main)
