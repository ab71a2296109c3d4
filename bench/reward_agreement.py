"""Agreement of the accuracy reward with human labels on real model solutions, beside plain math-verify.

    flock /tmp/stagerl-cpu.lock .venv/bin/python bench/reward_agreement.py [--data FILE] [--show-disagreements]
        [--save-verdicts FILE] [--changed-since FILE]

Data: ``tests/rewards/data/processbench_dev.jsonl`` (ProcessBench solutions with human final-answer
labels, see the README there). Ours: ``stagerl.rewards.grade`` (extraction, hedging, anti-hack rule, pool).
Plain math-verify: ``verify(parse("$" + gold + "$"), parse(completion))`` with default settings, in this
process. Per source: rows, agreement with the labels, false positives (credit for a solution labelled
wrong) and false negatives (no credit for one labelled right), for both graders.

To see what a change to the grader did: ``--save-verdicts before.json`` on the old code, then
``--changed-since before.json`` on the new one lists every row whose verdict changed, so that a gain on
one shape cannot hide a loss on another.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

from math_verify import parse, verify

from stagerl.data.files import atomic_write_json
from stagerl.rewards.accuracy import grade
from stagerl.rewards.extract import extract

DATA = Path(__file__).resolve().parents[1] / "tests" / "rewards" / "data" / "processbench_dev.jsonl"


def load(path: Path) -> list[dict]:
    """Rows of a labelled JSONL file (``id``, ``source``, ``gold``, ``completion``, ``label``)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plain_math_verify(rows: list[dict]) -> list[bool]:
    """The reference grader: math-verify with default settings, as its README shows it."""
    out = []
    for r in rows:
        try:
            out.append(bool(verify(parse("$" + r["gold"] + "$"), parse(r["completion"]))))
        except Exception:  # math-verify raises on some inputs; that is no credit
            out.append(False)
    return out


def tally(rows: list[dict], preds: list[bool]) -> dict[str, dict[str, int]]:
    """Per source (short name) and "all": n, agree, fp, fn."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "agree": 0, "fp": 0, "fn": 0})
    for r, p in zip(rows, preds, strict=True):
        for key in (r["source"].rsplit("/", 1)[-1], "all"):
            t = table[key]
            t["n"] += 1
            t["agree"] += p == r["label"]
            t["fp"] += p and not r["label"]
            t["fn"] += r["label"] and not p
    return dict(table)


def format_table(ours: dict, plain: dict) -> str:
    """Side-by-side table of two tallies."""
    lines = [
        f"{'source':14s} {'n':>5s} | {'ours':>8s} {'FP':>3s} {'FN':>3s} | {'plain':>8s} {'FP':>3s} {'FN':>3s}"
    ]
    for key in sorted(ours, key=lambda k: (k == "all", k)):
        o, p = ours[key], plain[key]
        lines.append(
            f"{key:14s} {o['n']:5d} | {o['agree'] / o['n']:8.2%} {o['fp']:3d} {o['fn']:3d}"
            f" | {p['agree'] / p['n']:8.2%} {p['fp']:3d} {p['fn']:3d}"
        )
    return "\n".join(lines)


def changed_verdicts(old: dict[str, bool], rows: list[dict], ours: list[bool]) -> list[str]:
    """One line per row whose verdict differs from ``old`` (a --save-verdicts file): id, label, old, new."""
    return [
        f"{r['id']:22s} label={r['label']!s:5s} old={old[r['id']]!s:5s} new={o!s:5s}"
        f" gold={r['gold']!r} ours={extract(r['completion']).answer!r}"
        for r, o in zip(rows, ours, strict=True)
        if old[r["id"]] != o
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="labelled JSONL file")
    p.add_argument("--show-disagreements", action="store_true", help="list the rows where ours is wrong")
    p.add_argument("--save-verdicts", type=Path, help="write our verdict per row id to this JSON file")
    p.add_argument(
        "--changed-since",
        type=Path,
        help="list the rows whose verdict differs from this --save-verdicts file",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rows = load(args.data)
    old = None
    if args.changed_since:
        old = json.loads(args.changed_since.read_text(encoding="utf-8"))
        missing = [r["id"] for r in rows if r["id"] not in old]
        if missing:
            p.error(
                f"--changed-since {args.changed_since}: no verdict for {len(missing)} rows (first: {missing[0]})"
            )
    ours = [g == 1.0 for g in grade([r["completion"] for r in rows], [r["gold"] for r in rows])]
    plain = plain_math_verify(rows)
    print(format_table(tally(rows, ours), tally(rows, plain)))
    if args.save_verdicts:
        atomic_write_json(args.save_verdicts, {r["id"]: o for r, o in zip(rows, ours, strict=True)})
    if old is not None:
        changed = changed_verdicts(old, rows, ours)
        print(f"{len(changed)} verdicts changed since {args.changed_since}")
        print("\n".join(changed))
    if args.show_disagreements:
        for r, o, m in zip(rows, ours, plain, strict=True):
            if o != r["label"]:
                kind = "FP" if o else "FN"
                ext = extract(r["completion"])
                print(
                    f"{r['id']:22s} {kind} plain={'ok' if m == r['label'] else 'x '} gold={r['gold']!r} ours={ext.answer!r}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
