"""Agreement with human labels on tests/rewards/data/labelled.jsonl (built by data/make_labelled.py)."""

import json
from pathlib import Path

from math_verify import parse, verify

from rewards import grade

DATA = Path(__file__).with_name("data") / "labelled.jsonl"


def _rows():
    rows = [json.loads(line) for line in DATA.open()]
    return [r for r in rows if "label" in r]


def _score(preds, rows):
    agree = sum((p == 1.0) == (r["label"] == 1) for p, r in zip(preds, rows, strict=True))
    false_pos = sum(p == 1.0 and r["label"] == 0 for p, r in zip(preds, rows, strict=True))
    return agree / len(rows), false_pos


def test_agreement_beats_plain_math_verify():
    rows = _rows()
    ours = grade([r["completion"] for r in rows], [r["answer"] for r in rows])
    plain = []
    for r in rows:
        try:
            plain.append(1.0 if verify(parse("$" + r["answer"] + "$"), parse(r["completion"])) else 0.0)
        except Exception:
            plain.append(0.0)
    our_agree, our_fp = _score(ours, rows)
    mv_agree, mv_fp = _score(plain, rows)
    print(
        f"agreement ours {our_agree:.4f} (FP {our_fp}) vs math-verify {mv_agree:.4f} (FP {mv_fp}), n={len(rows)}"
    )
    assert our_agree >= 0.985
    assert our_fp <= mv_fp
    # No credit on hedges or hacks at all.
    bad = {"hack_chain", "hack_boxed_expr", "hedge_boxed", "hedge_text", "changed_mind"}
    assert all(p == 0.0 for p, r in zip(ours, rows, strict=True) if r["category"] in bad)
