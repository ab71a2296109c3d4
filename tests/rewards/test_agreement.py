"""Agreement with people on real model solutions: ProcessBench's human-labelled solutions (data/README.md).

The accuracy reward is the only teacher in GRPO, so it must agree with human correctness labels at least as
often as plain math-verify does, on every source, without more false positives (credit for a wrong
solution, which the policy would learn). Plain math-verify is run in the same test, as its README shows it.
"""

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from math_verify import parse, verify

from stagerl.rewards import grade

DATA = Path(__file__).with_name("data") / "processbench_dev.jsonl"
TARGET = 0.987  # issue #12: the same target is checked on the held-out half


def _plain_math_verify(row: dict) -> bool:
    try:
        return bool(verify(parse("$" + row["gold"] + "$"), parse(row["completion"])))
    except Exception:  # math-verify raises on some inputs; that is no credit
        return False


def _tally(rows: list[dict], preds: list[bool]) -> dict[str, dict[str, int]]:
    """Per source and "all": n, agree, fp (credit, labelled wrong), fn (no credit, labelled right)."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "agree": 0, "fp": 0, "fn": 0})
    for r, p in zip(rows, preds, strict=True):
        for key in (r["source"].rsplit("/", 1)[-1], "all"):
            table[key]["n"] += 1
            table[key]["agree"] += p == r["label"]
            table[key]["fp"] += p and not r["label"]
            table[key]["fn"] += r["label"] and not p
    return table


def test_agreement_with_people_beats_plain_math_verify(pool):
    rows = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    # Ours grades in the pool's worker processes while plain math-verify (signal.alarm: main thread only)
    # runs here, so the test takes as long as the slower of the two.
    with ThreadPoolExecutor(1) as ex:
        future = ex.submit(grade, [r["completion"] for r in rows], [r["gold"] for r in rows], pool=pool)
        plain = _tally(rows, [_plain_math_verify(r) for r in rows])
        ours = _tally(rows, [g == 1.0 for g in future.result()])
    report = {k: (ours[k]["agree"] / ours[k]["n"], plain[k]["agree"] / plain[k]["n"]) for k in ours}
    print({k: f"ours {o:.2%} vs plain {p:.2%}" for k, (o, p) in report.items()})
    for source, (o, p) in report.items():
        assert o >= p, f"{source}: ours {o:.2%} below plain math-verify {p:.2%}"
    assert report["all"][0] >= TARGET
    assert ours["all"]["fp"] <= plain["all"]["fp"]
