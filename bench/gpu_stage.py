"""A stage (`train/grpo.py`) against a plain TRL GRPOTrainer script, on a randomly initialised
Qwen2.5-1.5B-shaped model under ZeRO-2: tokens per second and peak GPU memory, side by side in one run.

    python bench/gpu_stage.py                          # on a GPU machine; vLLM colocate rows when vLLM imports
    python bench/gpu_stage.py --shape tiny --accelerate-config configs/accelerate/ddp.yaml --num-processes 1
                                                       # the harness itself, in a minute on a CPU

Both sides get the same model, rows, reward and GRPO settings, launched alike (`accelerate launch`), in
alternation; the plain side is `bench/plain_trl_grpo.py` (TRL's own GRPO script, none of the stage's
machinery). Each process is wrapped by `bench/peak_memory.py`, which records its peak allocated GPU memory
at exit. Tokens per second: the tokens TRL counted (`num_tokens`: prompts and completions of every rank)
over the training loop's time (`train_runtime`, start-up and export excluded). The model is random and never
emits its end token, so every completion runs to `--completion-length` and both sides do equal work; the
reward is the completion length (a random model never earns accuracy, so accuracy alone has no variance).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHAPES = {
    # Qwen2.5-1.5B's dimensions (config.json of Qwen/Qwen2.5-1.5B).
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024),
}  # fmt: skip


def build_model(shape: str, out: Path) -> Path:
    """A random model of `shape` with the tiny built-in tokenizer (the GPU machines reach no hub)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from stagerl.train.models import TINY_RANDOM, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TINY_RANDOM))
    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run(script: str, args: argparse.Namespace, model: Path, out: Path, extra: list[str]) -> dict:
    """One launch; returns tokens per second and the peak GPU memory of its busiest process."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", args.accelerate_config,
           "--num_processes", str(args.num_processes), "bench/peak_memory.py", str(out / "peak"), script,
           "--config", "configs/stages/smoke.yaml", "--model_name_or_path", str(model), "--output_dir", str(out),
           "--reward_funcs", "tests.helpers.rewards.length_reward", "--max_steps", str(args.steps),
           "--save_steps", str(args.steps), "--max_completion_length", str(args.completion_length),
           "--num_generations", "8", "--per_device_train_batch_size", "8", "--use_cpu", str(args.cpu).lower(),
           "--bf16", str(not args.cpu).lower(), "--dtype", "float32" if args.cpu else "bfloat16", *extra]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    final = (
        out / "final" if (out / "final").is_dir() else out
    )  # the stage's export, or the plain script's dir
    state = json.loads((final / "trainer_state.json").read_text())
    tokens = max(e["num_tokens"] for e in state["log_history"] if "num_tokens" in e)
    runtime = next(e["train_runtime"] for e in state["log_history"] if "train_runtime" in e)
    peaks = [float(p.read_text()) for p in (out / "peak").iterdir()]
    return {"tokens_per_s": tokens / runtime, "peak_gb": max(peaks) / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1.5b")
    parser.add_argument("--accelerate-config", default="configs/accelerate/zero2.yaml")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--completion-length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (a check of the harness)")
    args = parser.parse_args()
    variants = {"generate": []}
    if importlib.util.find_spec("vllm") is not None and not args.cpu:
        variants["vLLM colocate"] = ["--use_vllm", "true", "--vllm_mode", "colocate",
                                     "--vllm_gpu_memory_utilization", "0.3"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="stagerl-gpu-bench-") as tmp:
        model = build_model(args.shape, Path(tmp) / "model")
        print(f"{args.shape} model, {args.num_processes} process(es), {args.accelerate_config}, {args.steps} steps, "
              f"8 completions of {args.completion_length} tokens per process per step (one prompt's group)")  # fmt: skip
        print(f"{'generation':<14} {'side':<6} {'tokens/s':>10} {'peak GB':>8}")
        for name, extra in variants.items():
            results = {"stage": [], "plain": []}
            for i in range(args.repeats):
                for side, script in (("stage", "train/grpo.py"), ("plain", "bench/plain_trl_grpo.py")):
                    results[side].append(run(script, args, model, Path(tmp) / f"{name}-{side}-{i}", extra))
            for side, runs in results.items():
                speed = statistics.median(r["tokens_per_s"] for r in runs)
                print(f"{name:<14} {side:<6} {speed:>10.0f} {max(r['peak_gb'] for r in runs):>8.2f}")
            ratio = statistics.median(r["tokens_per_s"] for r in results["stage"]) / statistics.median(
                r["tokens_per_s"] for r in results["plain"]
            )
            print(f"{name:<14} stage/plain tokens-per-second ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
