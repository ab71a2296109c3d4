"""Score a JSONL file of completions offline.

    python -m stagerl.rewards.score IN.jsonl [-o OUT.jsonl] [--completion-field completion] \
        [--answer-field answer] [--timeout 5] [--batch-size 512]

Each row is written back with ``reward`` (float) and ``extracted`` (the final answer found, or null),
to stdout unless ``-o`` is given. A progress bar and a one-line summary go to stderr. Bad rows (not
JSON, not an object, missing field) are reported with their line number and scored 0.0; a row whose
gold answer cannot be graded gets ``reward: null``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter

from tqdm import tqdm

from stagerl.rewards.accuracy import grade
from stagerl.rewards.cli import run_command, setup_logging
from stagerl.rewards.extract import extract_answer

logger = logging.getLogger("stagerl.rewards.score")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser.

    Returns:
        An ``argparse.ArgumentParser`` for ``python -m stagerl.rewards.score``.
    """
    p = argparse.ArgumentParser(prog="python -m stagerl.rewards.score", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="input JSONL file ('-' for stdin)")
    p.add_argument("-o", "--output", help="output JSONL file (default: stdout)")
    p.add_argument("--completion-field", default="completion", help="field holding the model output")
    p.add_argument("--answer-field", default="answer", help="field holding the gold answer")
    p.add_argument("--timeout", type=float, default=None, help="seconds per grade (default 5)")
    p.add_argument("--batch-size", type=int, default=512, help="rows graded per pool call")
    return p


def _flush(batch: list, args, out, counts: Counter) -> None:
    rows = [row for row, _ in batch if row is not None]
    if rows:
        rewards = grade(
            [row[args.completion_field] for row in rows],
            [row[args.answer_field] for row in rows],
            timeout=args.timeout,
        )
        it = iter(zip(rows, rewards, strict=True))
    for row, error in batch:
        if row is None:
            out.write(json.dumps(error, ensure_ascii=False) + "\n")
            continue
        row, reward = next(it)
        row["extracted"] = extract_answer(row[args.completion_field])
        row["reward"] = reward
        counts["correct" if reward == 1.0 else "ungradable" if reward is None else "wrong"] += 1
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    batch.clear()


def main(argv: list[str] | None = None) -> int:
    """Run the scorer.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0, or 2 when the input cannot be opened.
    """
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", errors="replace")
    except OSError as e:
        logger.error("cannot open %s: %s", args.input, e)
        return 2
    # Written beside the output and renamed at the end: a killed run leaves no partial OUT.
    partial = f"{args.output}.partial" if args.output else None
    counts: Counter = Counter()
    batch: list = []
    out = sys.stdout
    try:
        if partial:
            out = open(partial, "w", encoding="utf-8")
        for lineno, line in enumerate(tqdm(src, desc="scoring", unit="row", file=sys.stderr), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("row is not a JSON object")
                missing = [f for f in (args.completion_field, args.answer_field) if f not in row]
                if missing:
                    raise ValueError(f"missing field(s) {missing}")
                batch.append((row, None))
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                logger.warning("line %d: %s; scored 0", lineno, e)
                counts["bad"] += 1
                batch.append((None, {"line": lineno, "error": str(e), "reward": 0.0, "extracted": None}))
            if len(batch) >= args.batch_size:
                _flush(batch, args, out, counts)
        _flush(batch, args, out, counts)
    finally:
        if src is not sys.stdin:
            src.close()
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    if partial:
        os.replace(partial, args.output)
    total = sum(counts.values())
    graded = counts["correct"] + counts["wrong"]
    acc = counts["correct"] / graded if graded else 0.0
    sys.stderr.write(
        f"scored {total} rows: {counts['correct']} correct, {counts['wrong']} wrong, "
        f"{counts['ungradable']} ungradable gold, {counts['bad']} bad rows; accuracy {acc:.4f}\n"
    )
    return 0


if __name__ == "__main__":
    run_command(main)
