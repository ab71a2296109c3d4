"""Which learnability weight feeds dynamic sampling more groups it keeps: E[p (1 - p)] (`variance`, the default)
or the group survival probability 1 - p^n - (1 - p)^n (`survival`), beside plain passes.

A simulation on measured pass rates, not a training run: the pool is ORZ-MATH's 8,659 test problems whose
pass rate a model measured (`../shared/data/difficulty_signals/`, difficulty = int((1 - pass rate) * 10)); each
problem's true pass rate p is drawn uniformly inside its difficulty bucket, once. Every batch draws `--batch`
problems with the stage's own `PromptSampler`, samples n = `--group-size` completions per problem, each right
with probability p, and scores the groups back into the sampler (with the lag a stage has), so posteriors
learn from attempts as in a stage. Printed per arm: the share of drawn groups with a right and a wrong
completion (what dynamic sampling keeps: a higher share means fewer refill rounds), over the whole run and over
its last half, with the sampler told the rows' labelled pass rates (the bucket's middle, as the stage reads a
`difficulty` column) and without. The model does not learn here: p stays fixed, so a weight's effect on what
the model then solves is not measured.

    .venv/bin/python bench/learnability_weights.py
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from stagerl.data.problems import Group, labelled_pass_rate
from stagerl.train.sampling import Learnability, PromptSampler

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ROOT.parent / "shared" / "data" / "difficulty_signals" / "orz_math_difficulty_8659.jsonl"
LAG = 2  # a stage's lag with spg = GA (`selection_lag`)


def run_arm(ids, truth, labels, weight, args) -> dict:
    learnability = None
    if weight != "passes":
        learnability = Learnability(labels, weight=weight, group_size=args.group_size)
    sampler = PromptSampler(ids, seed=args.seed, lag=LAG, learnability=learnability)
    rng = random.Random(args.seed)
    kept = []
    for _ in range(args.batches):
        groups = []
        for row in sampler.draw(args.batch):
            pid = ids[row]
            accuracy = tuple(float(rng.random() < truth[pid]) for _ in range(args.group_size))
            groups.append(Group(pid, accuracy, len(set(accuracy)) == 1))
        sampler.observe(groups)
        kept.append(sum(not g.zero_variance for g in groups) / len(groups))
    half = kept[len(kept) // 2 :]
    return {
        "kept_share": round(sum(kept) / len(kept), 4),
        "kept_share_last_half": round(sum(half) / len(half), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--group-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [json.loads(line) for line in SIGNALS.read_text().splitlines()]
    rng = random.Random(args.seed)
    # bucket d holds pass rates in (1 - (d + 1) / 10, 1 - d / 10]
    truth = {r["id"]: 1 - (r["difficulty"] + rng.random()) / 10 for r in rows}
    ids = [r["id"] for r in rows]
    labelled = {r["id"]: labelled_pass_rate(r) for r in rows}
    arms = {}
    for told in ("labelled", "unlabelled"):
        labels = labelled if told == "labelled" else {}
        for weight in ("passes", "variance", "survival"):
            if weight == "passes" and told == "unlabelled":
                continue  # passes read no labels
            arms[f"{weight}/{told}" if weight != "passes" else weight] = run_arm(
                ids, truth, labels, weight, args
            )
    every = sum(1 - p**args.group_size - (1 - p) ** args.group_size for p in truth.values()) / len(truth)
    print(f"{len(ids)} problems, batches of {args.batch} x {args.batches}, n = {args.group_size}")
    print(f"pool's mean survival probability (what uniform draws keep): {every:.4f}")
    for name, result in arms.items():
        print(f"{name:24s} {json.dumps(result)}")


if __name__ == "__main__":
    main()
