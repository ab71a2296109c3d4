"""A stage (`train/grpo.py`) against a plain TRL GRPOTrainer script at the level-2 stage's settings changed only
in size, on a random model of DeepSeek-R1-Distill-Qwen-1.5B's shape under ZeRO-2: tokens per second and peak GPU
memory, side by side in one run.

    python bench/gpu_stage.py                          # on a GPU machine; vLLM colocate rows when vLLM imports
    python bench/gpu_stage.py --cpu --shape tiny --accelerate-config configs/accelerate/ddp.yaml --completion-length 64
                                                       # the harness itself, in a minute on a CPU

Both sides get the same model, data, reward and GRPO settings (`configs/stages/level2.yaml` with the changes of
`sized_stage_args`), launched alike (`accelerate launch`), in alternation; the plain side is
`bench/plain_trl_grpo.py` (TRL's own GRPO script, none of the stage's machinery). Each process is wrapped by
`bench/peak_memory.py`, which records its peak allocated GPU memory at exit. Tokens per second: the tokens TRL
counted (`num_tokens`: prompts and completions of every rank) over the training loop's time (`train_runtime`,
start-up and export excluded). The model is random (`bench/random_model.py`) and almost never samples its end token,
so nearly every completion runs to `--completion-length` and both sides do equal work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from random_model import SHAPES, build_model

from stagerl.data.files import atomic_write_json
from stagerl.data.stage_dir import FINAL_DIR

ROOT = Path(__file__).resolve().parent.parent
LEVEL2 = "configs/stages/level2.yaml"
# 8 micro-batches of the config's 2 sequences per process: 16 completions, one group of its num_generations per
# optimizer step (the config: 128 micro-batches, on 8 processes).
STEPS_PER_GENERATION = 8


def sized_stage_args(
    model: str | Path,
    output_dir: str | Path,
    *,
    steps: int,
    completion_length: int,
    cpu: bool,
    config: str = LEVEL2,
) -> list[str]:
    """Command-line arguments that turn a level stage config into one of a few steps on `model`: changed only in
    size, and in what the GPU machines force (no hub, no vLLM); no checkpoint is saved (add `--save_steps`).

    Args:
        model: a model directory.
        output_dir: the stage directory.
        steps: optimizer steps.
        completion_length: `max_completion_length`.
        cpu: train on the CPU in float32 (no bf16).
        config: the stage YAML.

    Returns:
        Arguments for `train/grpo.py` or `bench/plain_trl_grpo.py`.
    """
    sizes = (
        f"--max_completion_length {completion_length} --max_steps {steps} --save_strategy no "
        f"--steps_per_generation {STEPS_PER_GENERATION} --gradient_accumulation_steps {STEPS_PER_GENERATION}"
    )
    # The GPU machines reach no hub (data: the shipped MATH sample's level 2), and vLLM cannot travel there.
    return [
        *["--config", config, "--model_name_or_path", str(model), "--output_dir", str(output_dir)],
        *["--data", "math-levels:2", "--use_vllm", "false"],
        *sizes.split(),
        *("--use_cpu true --bf16 false --dtype float32".split() if cpu else []),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(
    script: str, script_args: list[str], *, accelerate_config: str, num_processes: int, peak_dir: Path
) -> list[str]:
    """`accelerate launch` of `script` wrapped by `bench/peak_memory.py` (peak GPU memory per rank in `peak_dir`)."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    ports = ["--num_processes", str(num_processes), "--main_process_port", str(free_port())]
    return [*launcher, *ports, "bench/peak_memory.py", str(peak_dir), script, *script_args]


def throughput(output_dir: Path) -> dict:
    """Tokens per second of a finished run (its trainer state) and the peak GPU memory of its busiest rank."""
    final = output_dir / FINAL_DIR  # the stage's export; the plain script saves into its output_dir
    final = final if final.is_dir() else output_dir
    state = json.loads((final / "trainer_state.json").read_text())
    tokens = max(e["num_tokens"] for e in state["log_history"] if "num_tokens" in e)
    runtime = next(e["train_runtime"] for e in state["log_history"] if "train_runtime" in e)
    peaks = [float(p.read_text()) for p in (output_dir / "peak").iterdir()]
    return {
        "tokens_per_s": tokens / runtime,
        "peak_gb": max(peaks) / 2**30,
        "tokens": tokens,
        "train_runtime_s": runtime,
    }


def run(script: str, args: argparse.Namespace, model: Path, out: Path, extra: list[str]) -> dict:
    """One launch (its output in `out/launch.log`); returns `throughput(out)`."""
    script_args = [
        *sized_stage_args(
            model, out, steps=args.steps, completion_length=args.completion_length, cpu=args.cpu
        ),
        *extra,
    ]
    cmd = launch_command(
        script,
        script_args,
        accelerate_config=args.accelerate_config,
        num_processes=args.num_processes,
        peak_dir=out / "peak",
    )
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "launch.log", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = (out / "launch.log").read_text()[-3000:]
        raise RuntimeError(
            f"{script} exited with {proc.returncode}; the end of {out / 'launch.log'}:\n{tail}"
        )
    return throughput(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="r1-1.5b")
    parser.add_argument("--model", type=Path, help="a model directory (default: build one of --shape)")
    parser.add_argument("--accelerate-config", default="configs/accelerate/zero2.yaml")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--completion-length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (a check of the harness)")
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    variants = {"generate": []}
    if importlib.util.find_spec("vllm") is not None and not args.cpu:
        variants["vLLM colocate"] = """
            --use_vllm true --vllm_mode colocate --vllm_gpu_memory_utilization 0.3
        """.split()
    with tempfile.TemporaryDirectory(prefix="stagerl-gpu-bench-") as tmp:
        work = args.work or Path(tmp)
        model = args.model or build_model(work / "model", args.shape, "cpu" if args.cpu else "cuda")
        print(
            f"{model}, {args.num_processes} process(es), {args.accelerate_config}, {args.steps} steps, "
            f"{2 * STEPS_PER_GENERATION} completions of {args.completion_length} tokens per process per step"
        )
        print(f"{'generation':<14} {'side':<6} {'tokens/s':>10} {'peak GB':>8}")
        figures = {}
        for name, extra in variants.items():
            results = {"stage": [], "plain": []}
            for i in range(args.repeats):
                for side, script in (("stage", "train/grpo.py"), ("plain", "bench/plain_trl_grpo.py")):
                    results[side].append(run(script, args, model, work / f"{name}-{side}-{i}", extra))
            speeds = {
                side: statistics.median(r["tokens_per_s"] for r in runs) for side, runs in results.items()
            }
            for side, runs in results.items():
                print(f"{name:<14} {side:<6} {speeds[side]:>10.0f} {max(r['peak_gb'] for r in runs):>8.2f}")
            ratio = speeds["stage"] / speeds["plain"]
            print(f"{name:<14} stage/plain tokens-per-second ratio: {ratio:.3f}")
            figures[name] = {"runs": results, "tokens_per_s": speeds, "stage_over_plain": ratio}
        if args.json:
            atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
