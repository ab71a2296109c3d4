"""Overhead of the curriculum runner: the three-stage smoke curriculum against its three stages run by hand.

    flock /tmp/stagerl-cpu.lock .venv/bin/python bench/curriculum_overhead.py [--repeats 3]

Side by side in one invocation (the order alternates between repeats, so machine load drifts evenly):

- curriculum: `python -m stagerl.curricula.run configs/curricula/smoke.yaml --output_dir TMP` (spec check, manifest,
  three `train/grpo.py` launches, report and plot);
- single stages: `python train/grpo.py --config <stage YAML> <the same overrides> --model_name_or_path <the
  previous stage's final/> --output_dir TMP/stage-k`, three times, summed.

Each side runs in a fresh directory; output goes to log files. Printed: the median wall time of each side and
their ratio (target <= 1.10: the runner adds little beyond the stage trainings themselves).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stagerl.curricula.spec import load_curriculum
from stagerl.data.stage_dir import FINAL_DIR

ROOT = Path(__file__).resolve().parent.parent

CURRICULUM = ROOT / "configs/curricula/smoke.yaml"


def _timed(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "ab") as out:
        subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def run_curriculum(work: Path) -> float:
    """Wall time of the whole curriculum through the runner."""
    cmd = [sys.executable, "-m", "stagerl.curricula.run", str(CURRICULUM), "--output_dir", str(work / "run")]
    return _timed(cmd, work / "curriculum.log")


def run_singles(work: Path) -> list[float]:
    """Wall time of each stage launched by hand, chained through the exports."""
    spec = load_curriculum(CURRICULUM)
    model, times = spec.model, []
    for k, stage in enumerate(spec.stages, 1):
        out = work / f"stage-{k}"
        cmd = [
            sys.executable,
            str(ROOT / "train/grpo.py"),
            "--config",
            str(stage.config_file),
            *stage.cli_args(),
        ]
        cmd += ["--model_name_or_path", model, "--output_dir", str(out)]
        times.append(_timed(cmd, work / "singles.log"))
        model = str(out / FINAL_DIR)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side (default 1)")
    args = parser.parse_args(argv)
    curriculum, singles = [], []
    with tempfile.TemporaryDirectory(prefix="stagerl-bench-") as tmp:
        for r in range(args.repeats):
            order = ("curriculum", "singles") if r % 2 == 0 else ("singles", "curriculum")
            for side in order:
                work = Path(tmp) / f"{side}-{r}"
                work.mkdir()
                if side == "curriculum":
                    curriculum.append(run_curriculum(work))
                    print(f"repeat {r + 1}: curriculum {curriculum[-1]:.1f} s", flush=True)
                else:
                    parts = run_singles(work)
                    singles.append(sum(parts))
                    detail = " + ".join(f"{t:.1f}" for t in parts)
                    print(f"repeat {r + 1}: single stages {singles[-1]:.1f} s ({detail})", flush=True)
    c, s = statistics.median(curriculum), statistics.median(singles)
    print(f"curriculum runner (3 stages):     {c:.1f} s (median of {len(curriculum)})")
    print(f"single stages (3 x train/grpo.py): {s:.1f} s (median of {len(singles)})")
    print(f"ratio: {c / s:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
