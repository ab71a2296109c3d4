"""The demo's evaluation, old settings against today's, side by side on one machine: the wall-time ratio.

    python bench/demo_evaluation.py [--model stagerl:smollm2-135m-instruct] [--repeats 1]

Each run is the command the runner starts for one of the demo's evaluations (`configs/curricula/demo.yaml`'s
`eval:`: 3 benchmarks x 16 problems x 4 samples of at most 48 tokens, the demo stage's prompt), in a fresh
process as the runner starts it (imports, model load, generation, grading). "old" is how it ran before: batches
of 16 sequences and transformers' own top-p (a sort of the whole vocabulary at every token); "new" is today's
defaults (batches of 64, `stagerl.train.generation.Nucleus`). Only the batch composition differs in what is
sampled. Runs alternate (old, new, old, new, ...) so a machine's drift hits both; each run's wall time and
pass@1 are printed, then new/old of the summed wall times (target: at most 0.6).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_BATCH_SIZE = 16


def run_old(argv: list[str]) -> None:
    """In this process: the evaluation CLI with the old sampling (transformers' full-sort top-p)."""
    from transformers import TopPLogitsWarper

    from stagerl.train import evaluate, generation

    generation.Nucleus = TopPLogitsWarper  # Nucleus(top_p) and TopPLogitsWarper(top_p) filter alike
    evaluate.main([*argv, "--batch-size", str(OLD_BATCH_SIZE)])


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    if sys.argv[1:2] == ["--old"]:
        run_old(sys.argv[2:])
        return
    from stagerl.curricula.commands import evaluation_command
    from stagerl.curricula.plan import load_plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="stagerl:smollm2-135m-instruct", help="e.g. a demo stage's final/")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    plan = load_plan(str(ROOT / "configs/curricula/demo.yaml"))
    node = next(iter(plan.nodes.values()))
    spec = {**node.stage.asks(), **node.eval}
    times: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for kind in ("old", "new"):
                out = Path(tmp) / f"{kind}{i}"
                cmd = evaluation_command(spec, args.model, out, [sys.executable])
                if kind == "old":  # python -m stagerl.train.evaluate ARGS -> python THIS --old ARGS
                    cmd = [sys.executable, __file__, "--old", *cmd[3:]]
                times[kind].append(timed(cmd))
                summary = json.loads((out / "summary.json").read_text())
                passes = " ".join(f"{k} {m['pass@1']:.3f}" for k, m in summary["benchmarks"].items())
                print(f"run {i} {kind}: {times[kind][-1]:6.1f} s   pass@1 {passes}", flush=True)
    ratio = sum(times["new"]) / sum(times["old"])
    print(
        f"model {args.model}, {len(spec['benchmarks'])} benchmarks x {spec['limit']} problems x "
        f"{spec['samples']} samples x {spec['max_new_tokens']} tokens: new/old wall-time ratio = {ratio:.3f} "
        "(target <= 0.6)"
    )


if __name__ == "__main__":
    main()
