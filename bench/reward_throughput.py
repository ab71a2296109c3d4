"""Throughput of the accuracy reward against sequential in-process math-verify.

    flock /tmp/stagerl-cpu.lock .venv/bin/python bench/reward_throughput.py [--n 2000] [--workers N]

Same 2,000 (completion, gold) pairs for both sides. Baseline: one process, for each pair
``verify(parse("$" + gold + "$"), parse(completion))`` (as open-r1's accuracy reward does). Ours:
``stagerl.rewards.grade`` on a warm pool (worker start-up is paid once per training run, and is printed
separately). Four figures:

- distinct: 2,000 different problems, no repeated (answer, gold) pair;
- grpo: 125 prompts x 16 samples whose final answers repeat (as in GRPO groups);
- pool only: the distinct set with the in-process fast paths turned off (every pair goes to a worker),
  to show what the process pool alone buys;
- whole process: the grpo rows as a JSONL file, ``python -m stagerl.rewards.score`` against a Python process
  running the baseline loop over the same file, both timed from launch to exit (imports, worker start-up
  and file I/O included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from math_verify import parse, verify

from stagerl.rewards.accuracy import grade
from stagerl.rewards.extract import extract
from stagerl.rewards.pool import GradingPool, default_num_workers

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STEPS = "Let me think step by step. We compute the quantities one at a time and check each step. "


def _golds() -> list[str]:
    golds = []
    for name in ("eval/gsm8k_test.jsonl", "eval/math500.jsonl", "math_levels/math_levels_sample_1500.jsonl"):
        golds += [json.loads(line)["answer"] for line in (DATA / name).open()]
    return golds


def _completion(rng: random.Random, ans: str) -> str:
    body = STEPS * rng.randint(1, 6)
    form = rng.randrange(4)
    if form == 0:
        return f"{body}So the final answer is $\\boxed{{{ans}}}$."
    if form == 1:
        return f"{body}Therefore, the answer is ${ans}$."
    if form == 2:
        return f"{body}\n\nAnswer: {ans}"
    return f"{body}Putting it together, we get $\\boxed{{{ans}}}$ as required."


def make_pairs(n: int, grpo: bool, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    golds = _golds()
    comps, gs = [], []
    if not grpo:
        for g in rng.sample(golds, n):
            ans = g if rng.random() < 0.5 else rng.choice(golds)
            comps.append(_completion(rng, ans))
            gs.append(g)
        return comps, gs
    for g in rng.sample(golds, n // 16):
        wrong = rng.sample(golds, 3)
        for _ in range(16):
            ans = g if rng.random() < 0.5 else rng.choice(wrong)
            comps.append(_completion(rng, ans))
            gs.append(g)
    return comps, gs


def baseline(comps: list[str], golds: list[str]) -> float:
    start = time.perf_counter()
    for c, g in zip(comps, golds, strict=True):
        try:
            verify(parse("$" + g + "$"), parse(c))
        except Exception:
            pass
    return time.perf_counter() - start


def ours(comps: list[str], golds: list[str], workers: int, pool_only: bool) -> tuple[float, float]:
    pool = GradingPool(num_workers=workers, timeout=5)
    t0 = time.perf_counter()
    pool.grade_pairs([("1", "1.0"), ("2", "2.0")])  # start and warm the workers
    startup = time.perf_counter() - t0
    start = time.perf_counter()
    if pool_only:
        pairs = [(extract(c).answer or "", g) for c, g in zip(comps, golds, strict=True)]
        pool.grade_pairs(pairs)
    else:
        grade(comps, golds, pool=pool)
    elapsed = time.perf_counter() - start
    pool.close()
    return elapsed, startup


BASELINE_PROCESS = """
import json, sys
from math_verify import parse, verify
for line in open(sys.argv[1]):
    row = json.loads(line)
    try:
        verify(parse("$" + row["answer"] + "$"), parse(row["completion"]))
    except Exception:
        pass
"""


def whole_process(comps: list[str], golds: list[str], workers: int) -> tuple[float, float]:
    """Seconds from launch to exit: (baseline process, ``python -m stagerl.rewards.score``) on the same rows."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rows.jsonl"
        with path.open("w") as f:
            for c, g in zip(comps, golds, strict=True):
                f.write(json.dumps({"completion": c, "answer": g}) + "\n")
        env = {**os.environ, "STAGERL_REWARD_WORKERS": str(workers)}
        times = []
        for cmd in (
            [sys.executable, "-c", BASELINE_PROCESS, str(path)],
            [sys.executable, "-m", "stagerl.rewards.score", str(path), "-o", os.devnull],
        ):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--workers", type=int, default=default_num_workers())
    args = p.parse_args(argv)
    print(f"{args.n} pairs, {args.workers} workers")
    for label, grpo, pool_only in (
        ("distinct", False, False),
        ("grpo x16", True, False),
        ("pool only", False, True),
    ):
        comps, golds = make_pairs(args.n, grpo)
        base = baseline(comps, golds)
        t, startup = ours(comps, golds, args.workers, pool_only)
        print(
            f"{label:10s} sequential math-verify {len(comps) / base:7.1f} pairs/s | ours {len(comps) / t:8.1f} pairs/s"
            f" | ratio {base / t:5.2f}x  (worker start-up {startup:.1f}s, once)"
        )
    comps, golds = make_pairs(args.n, grpo=True)
    base, t = whole_process(comps, golds, args.workers)
    print(
        f"{'whole proc':10s} sequential math-verify {len(comps) / base:7.1f} pairs/s | ours {len(comps) / t:8.1f} pairs/s"
        f" | ratio {base / t:5.2f}x  (grpo rows, launch to exit)"
    )


if __name__ == "__main__":
    main()
