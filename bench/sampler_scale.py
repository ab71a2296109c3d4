"""The prompt samplers at the scale of real pools: one draw over 1,000,000 problems, on one core.

For each sampler dynamic sampling, GRESO and learnability can use (plain passes, GRESO, learnability by variance
and by survival), on a pool where every problem has earlier stages' records (the worst case: GRESO reads a
streak, learnability a posterior, for every problem): the time to build the sampler, its first draw (which
computes the pass's order and coins), the mean of the next draws (each scored and folded in, a refill beside
it), and the checkpoint's sampler state, written and read back, after those draws and at the end of a
paper-sized stage (1,600 steps of 128 prompts: 204,800 groups of distinct problems, 1,600 batches drawn in one
epoch).

    .venv/bin/python bench/sampler_scale.py                      # 1,000,000 problems, batches of 128
    .venv/bin/python bench/sampler_scale.py --problems 200000

Pinned to the first CPU this process may use; nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from stagerl.data.problems import Group, ProblemRecord, ProblemTable
from stagerl.train.sampling import SAMPLER_FILE, Greso, Learnability, PromptSampler

GROUP_SIZE = 16
PAPER_STEPS, PAPER_BATCH = 1600, 128


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def history_of(ids: list[str], rng: random.Random) -> ProblemTable:
    """Every problem with an earlier stage's record: 16 attempts, a random number right, a streak on one side."""
    table = ProblemTable()
    for pid in ids:
        right = rng.randrange(GROUP_SIZE + 1)
        side = "right" if right == GROUP_SIZE else "wrong" if right == 0 else None
        table.records[pid] = ProblemRecord(
            attempts=GROUP_SIZE,
            successes=right,
            groups=1,
            right_streak=int(side == "right"),
            wrong_streak=int(side == "wrong"),
        )
    return table


def groups_for(sampler: PromptSampler, rows: list[int], rng: random.Random) -> list[Group]:
    groups = []
    for row in rows:
        accuracy = tuple(float(rng.random() < 0.3) for _ in range(GROUP_SIZE))
        groups.append(Group(sampler.ids[row], accuracy, len(set(accuracy)) == 1))
    return groups


def checkpoint_round_trip(sampler: PromptSampler, build) -> dict:
    """Write the sampler's checkpoint state to a file and read it into a fresh sampler: seconds and MB."""
    with tempfile.TemporaryDirectory() as tmp:
        files, write_s = timed(sampler.checkpoint_files)
        path = Path(tmp) / SAMPLER_FILE
        _, io_s = timed(lambda: path.write_text(files[SAMPLER_FILE]))
        restored = build()
        _, read_s = timed(lambda: restored.load_checkpoint(tmp))
        return {
            "write_s": round(write_s + io_s, 3),
            "read_s": round(read_s, 3),
            "mb": round(path.stat().st_size / 1e6, 2),
        }


def paper_sized(sampler: PromptSampler, rng: random.Random) -> None:
    """The state of a paper-sized stage: 204,800 distinct problems scored, 1,600 batches drawn this epoch."""
    pool = sampler.ids[: PAPER_STEPS * PAPER_BATCH]
    for pid in pool:
        sampler.stage_table.records[pid] = ProblemRecord(
            attempts=GROUP_SIZE, successes=rng.randrange(GROUP_SIZE + 1), groups=1
        )
    sampler.drawn = [list(range(k * PAPER_BATCH, (k + 1) * PAPER_BATCH)) for k in range(PAPER_STEPS)]
    sampler.skipped_at = [0] * PAPER_STEPS
    sampler.drawn_learnability = [0.1] * PAPER_STEPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--draws", type=int, default=5, help="draws after the first, averaged")
    args = parser.parse_args()
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    rng = random.Random(0)
    ids = [f"problem-{i}" for i in range(args.problems)]
    history, history_s = timed(lambda: history_of(ids, rng))
    rates = {pid: rng.random() for pid in ids}
    print(
        f"{args.problems:,} problems, batches of {args.batch}, on CPU {core}; history built in {history_s:.1f} s"
    )
    kinds = {
        "passes": dict(),
        "greso": dict(greso=lambda: Greso(0.25, 0.5)),
        "learnability-variance": dict(learnability=lambda: Learnability(rates, weight="variance")),
        "learnability-survival": dict(
            learnability=lambda: Learnability(rates, weight="survival", group_size=GROUP_SIZE)
        ),
    }
    results = {}
    for kind, parts in kinds.items():

        def build(parts=parts, kind=kind):
            made = {name: make() for name, make in parts.items()}
            return PromptSampler(ids, seed=0, lag=1, history=history if kind != "passes" else None, **made)

        sampler, build_s = timed(build)
        first, first_s = timed(lambda s=sampler: s.draw(args.batch))
        sampler.observe(groups_for(sampler, first, rng))
        draw_s = refill_s = 0.0
        for _ in range(args.draws):
            rows, t = timed(lambda s=sampler: s.draw(args.batch))
            draw_s += t
            taken = {sampler.ids[r] for r in rows}
            (more, _), t = timed(lambda s=sampler, taken=taken: s.refill(args.batch // 2, taken))
            refill_s += t
            sampler.observe(groups_for(sampler, rows + more, rng))
        results[kind] = {
            "build_s": round(build_s, 2),
            "first_draw_s": round(first_s, 3),
            "draw_s": round(draw_s / args.draws, 3),
            "refill_s": round(refill_s / args.draws, 3),
            "checkpoint": checkpoint_round_trip(sampler, build),
        }
        paper_sized(sampler, rng)
        results[kind]["checkpoint_paper_stage"] = checkpoint_round_trip(sampler, build)
        print(f"{kind:24s} {json.dumps(results[kind])}", flush=True)
    slowest = max(max(r["first_draw_s"], r["draw_s"]) for r in results.values())
    print(json.dumps({"problems": args.problems, "batch": args.batch, "slowest_draw_s": slowest, **results}))


if __name__ == "__main__":
    main()
