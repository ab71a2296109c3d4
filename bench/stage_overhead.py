"""Our stage (`train/grpo.py`) vs. a plain TRL GRPOTrainer script on the same model, data and steps.

    python bench/stage_overhead.py [--model stagerl:smollm2-135m-instruct] [--steps 6] [--repeats 2]

Both run as fresh processes, alternated (ours, plain, ours, plain, ...) so machine noise hits both alike;
the ratio of the median wall times is printed (target: at most 1.03).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="stagerl:smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    common = [
        "--config",
        "configs/stages/smoke.yaml",
        "--model_name_or_path",
        args.model,
        "--max_steps",
        str(args.steps),
        "--save_steps",
        str(args.steps),
    ]
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            ours.append(timed([sys.executable, "train/grpo.py", *common, "--output_dir", f"{tmp}/ours{i}"]))
            plain.append(
                timed([sys.executable, "bench/plain_trl_grpo.py", *common, "--output_dir", f"{tmp}/plain{i}"])
            )
            print(f"run {i}: stage {ours[-1]:.1f} s, plain TRL {plain[-1]:.1f} s", flush=True)
    ratio = statistics.median(ours) / statistics.median(plain)
    print(
        f"model {args.model}, {args.steps} steps: stage/plain wall-time ratio = {ratio:.3f} (target <= 1.03)"
    )


if __name__ == "__main__":
    main()
