"""Templated cases (tests/rewards/data/labelled.jsonl, built by data/make_labelled.py) as unit cases.

These sentences were generated from the extractor's own rules, so they cannot measure agreement with
people: that is tests/rewards/test_agreement.py, on real model solutions. Here they only guard the
shapes they cover (units, currency, bold, hashes, hedges, unevaluated arithmetic) against regressions.
"""

import json
from pathlib import Path

from stagerl.rewards import grade

DATA = Path(__file__).with_name("data") / "labelled.jsonl"
HACKS_AND_HEDGES = {"hack_chain", "hack_boxed_expr", "hedge_boxed", "hedge_text", "changed_mind"}


def test_templated_cases_grade_as_labelled(pool):
    rows = [r for r in map(json.loads, DATA.open()) if "label" in r]
    ours = grade([r["completion"] for r in rows], [r["answer"] for r in rows], pool=pool)
    wrong = [
        (r["category"], r["completion"][-80:], r["answer"])
        for p, r in zip(ours, rows, strict=True)
        if (p == 1.0) != (r["label"] == 1)
    ]
    assert not wrong
    # No credit on hedges or hacks at all.
    assert all(p == 0.0 for p, r in zip(ours, rows, strict=True) if r["category"] in HACKS_AND_HEDGES)
