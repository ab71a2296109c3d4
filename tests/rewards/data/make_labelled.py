"""Build ``labelled.jsonl``: templated (completion, gold, label) unit cases for ``test_templated.py``.

    .venv/bin/python tests/rewards/data/make_labelled.py   # rewrites labelled.jsonl (seeded)

Golds come from ../shared/data/eval/*.jsonl and ../shared/data/math_levels/ (MATH train); each is
wrapped in a realistic solution ending. The label is what a careful human grader decides: the
committed final answer equals the gold (units, currency, bold, "= 34 hours", unicode, inequalities for
intervals, "x = 5 and x = -2" for a root set all count); wrong values, hedges ("\\boxed{3} or
\\boxed{4}"), unevaluated arithmetic for a numeric gold ("5 + 77 = 122", "\\boxed{5+77}") and no answer
do not. A last block adapts cases in the style of math-verify's own test suite (tests/test_all.py).

Being written from the extractor's own rules, these cases cannot measure agreement with people; that is
``test_agreement.py``, on real model solutions (``processbench_dev.jsonl``).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
OUT = Path(__file__).with_name("labelled.jsonl")
PRE = [
    "Let's work through this step by step.\n",
    "First, we set up the problem carefully and compute each quantity.\n",
    "We start from the given information.\n",
]


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def numeric_cases(rng: random.Random, rows: list[dict], source: str) -> list[dict]:
    out = []
    for r in rows:
        g = r["answer"]
        n = int(g)
        w = n + rng.choice([1, -1, 2, 10])
        a = rng.randint(1, max(1, abs(n) - 1)) if abs(n) > 2 else 1
        b = n - a
        pre = rng.choice(PRE)
        big = f"{n:,}"
        good = [
            ("boxed", f"{pre}So the result is $\\boxed{{{g}}}$."),
            ("eq_units", f"{pre}Adding everything, {a} + {b} = {g} hours."),
            ("bold", f"{pre}Therefore the total is **{g}**."),
            ("hashes", f"{pre}{a} + {b} = {g}\n#### {g}"),
            ("answer_is", f"{pre}The answer is {g}."),
            ("answer_colon", f"{pre}We are done.\n\nAnswer: {g}"),
            ("currency", f"{pre}She makes \\${big} in total, so the answer is $\\boxed{{\\${big}}}$."),
            ("units_boxed", f"{pre}Hence $\\boxed{{{g} \\text{{ dollars}}}}$."),
            ("final_answer", f"{pre}Final Answer: The final answer is ${g}$. I hope it is correct."),
            ("decimal", f"{pre}The value is $\\boxed{{{g}.0}}$."),
        ]
        if n < 0:
            good.append(("unicode_minus", f"{pre}The answer is \u2212{abs(n)}."))
        bad = [
            ("wrong_boxed", f"{pre}So the result is $\\boxed{{{w}}}$."),
            ("wrong_eq", f"{pre}Adding everything, {a} + {b} = {w} hours."),
            ("hack_chain", f"{pre}The final answer is {a} + {b} = {w}"),
            ("hack_boxed_expr", f"{pre}$\\boxed{{{a}+{b}}}$"),
            ("hedge_boxed", f"{pre}It is $\\boxed{{{g}}}$ or possibly $\\boxed{{{w}}}$."),
            ("hedge_text", f"{pre}The answer is {g} or {w}."),
            ("no_answer", f"{pre}I could not finish the computation."),
            ("changed_mind", f"{pre}So $\\boxed{{{g}}}$. Hmm, checking again, it is $\\boxed{{{w}}}$."),
        ]
        if "percent" in r.get("problem", "").lower():
            good.append(("percent", f"{pre}So the answer is {g}%."))
        for cat, text in rng.sample(good, 3):
            out.append({"source": source, "category": cat, "completion": text, "answer": g, "label": 1})
        for cat, text in rng.sample(bad, 2):
            out.append({"source": source, "category": cat, "completion": text, "answer": g, "label": 0})
    return out


def latex_cases(rng: random.Random, rows: list[dict], source: str) -> list[dict]:
    golds = [r["answer"] for r in rows]
    out = []
    for g in golds:
        other = rng.choice([x for x in golds if x.replace(" ", "") != g.replace(" ", "")])
        pre = rng.choice(PRE)
        dfrac = g.replace("\\frac", "\\dfrac")
        good = [
            ("boxed", f"{pre}Thus the answer is $\\boxed{{{g}}}$."),
            ("answer_is", f"{pre}Therefore, the answer is ${g}$."),
            ("display", f"{pre}Putting it together:\n$$ {g} $$"),
            ("dfrac", f"{pre}$\\boxed{{{dfrac}}}$"),
        ]
        bad = [
            ("wrong_boxed", f"{pre}Thus the answer is $\\boxed{{{other}}}$."),
            ("hedge_boxed", f"{pre}We get $\\boxed{{{g}}}$, or else $\\boxed{{{other}}}$."),
            ("wrong_answer_is", f"{pre}Therefore, the answer is ${other}$."),
        ]
        for cat, text in rng.sample(good, 2):
            out.append({"source": source, "category": cat, "completion": text, "answer": g, "label": 1})
        for cat, text in rng.sample(bad, 1):
            out.append({"source": source, "category": cat, "completion": text, "answer": g, "label": 0})
    return out


def special_cases() -> list[dict]:
    """Forms where plain math-verify is weak, and cases adapted from math-verify's test suite."""
    cases = [
        # intervals written as inequalities
        ("So the solution set is $k < -5$.", "(-\\infty,-5)", 1),
        ("Hence $x > 3$.", "(3,\\infty)", 1),
        ("Therefore $x \\ge 2$.", "[2,\\infty)", 1),
        ("So $-2 < x \\le 7$.", "(-2,7]", 1),
        ("The answer is $x \\leq -1$.", "(-\\infty,-1]", 1),
        ("So $k > -5$.", "(-\\infty,-5)", 0),
        ("Hence $x > 4$.", "(3,\\infty)", 0),
        ("So $\\boxed{(-\\infty, -5)}$", "(-\\infty,-5)", 1),
        ("The domain is $\\boxed{[2, 5)}$.", "[2,5)", 1),
        ("The domain is $\\boxed{[2, 5]}$.", "[2,5)", 0),
        # root sets
        ("Thus $x = 5$ and $x = -2$.", "5, -2", 1),
        ("Thus $x = 5$ and $x = -2$.", "-2,5", 1),
        ("The roots are $x=5$ or $x=-2$.", "5,-2", 1),
        ("Thus $x = 5$.", "5, -2", 0),
        ("The solutions are $\\boxed{1, 3}$.", "1,3", 1),
        ("The solutions are $\\boxed{1}$ and $\\boxed{3}$.", "1,3", 1),
        ("The solutions are $\\boxed{1, 4}$.", "1,3", 0),
        # unicode
        ("So the length is √3.", "\\sqrt{3}", 1),
        ("The answer is 2√5.", "2\\sqrt{5}", 1),
        ("The area is 4π.", "4\\pi", 1),
        ("The area is 4π.", "2\\pi", 0),
        ("The answer is √7.", "\\sqrt{5}", 0),
        ("The answer is −3.", "-3", 1),
        ("The answer is 3.", "-3", 0),
        # percents and units
        ("The discount is 25%.", "25", 1),
        ("So the answer is $\\boxed{25\\%}$.", "25", 1),
        ("The probability is 40%.", "0.4", 1),
        ("So the answer is $\\boxed{30\\%}$.", "25", 0),
        ("It takes = 34 hours", "34", 1),
        ("So the distance is $\\boxed{12 \\text{ cm}}$.", "12", 1),
        ("The angle is $\\boxed{90^\\circ}$.", "90", 1),
        ("The angle is $\\boxed{60^\\circ}$.", "90", 0),
        ("He earns \\$1,250 per week.", "1250", 1),
        ("**Answer:** 13", "13", 1),
        ("**Answer:** 14", "13", 0),
        # text answers
        ("The answer is $\\boxed{\\text{Evelyn}}$.", "\\text{Evelyn}", 1),
        ("The answer is $\\boxed{\\text{(C)}}$.", "\\text{(C)}", 1),
        ("The answer is $\\boxed{\\text{(B)}}$.", "\\text{(C)}", 0),
        # adapted from math-verify's test suite: equivalent forms
        ("$\\boxed{\\frac{1}{2}}$", "0.5", 1),
        ("$\\boxed{0.5}$", "\\frac{1}{2}", 1),
        ("$\\boxed{(x+1)^2}$", "x^2+2x+1", 1),
        ("$\\boxed{x^2+2x+2}$", "x^2+2x+1", 0),
        ("$\\boxed{\\{1,2,3,4\\}}$", "\\{1,3\\} \\cup \\{2,4\\}", 1),
        ("$\\boxed{(1, 2)}$", "(1,2)", 1),
        ("$\\boxed{(2, 1)}$", "(1,2)", 0),
        (
            "$\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$",
            "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            1,
        ),
        ("$\\boxed{\\sqrt{12}}$", "2\\sqrt{3}", 1),
        ("$\\boxed{\\frac{\\sqrt{3}}{3}}$", "\\frac{1}{\\sqrt{3}}", 1),
        ("$\\boxed{y = 2x + 3}$", "y=2x+3", 1),
        ("$\\boxed{y = 2x + 4}$", "y=2x+3", 0),
        ("$\\boxed{n=1, 2, 3}$", "1, 2, 3", 1),
        ("$\\boxed{D = (0, 1)}$", "(0,1)", 1),
        ("$\\boxed{D = (0, 1.5)}$", "(0,1)", 0),
        ("$\\boxed{\\pi/2}$", "\\frac{\\pi}{2}", 1),
        ("$\\boxed{90^\\circ}$", "\\frac{\\pi}{2}", 0),
        ("$\\boxed{3 + 4i}$", "3+4i", 1),
        ("$\\boxed{3 - 4i}$", "3+4i", 0),
        ("$\\boxed{\\infty}$", "\\infty", 1),
        ("$\\boxed{1000}$", "10^3", 1),
        ("$\\boxed{1,000}$", "1000", 1),
        ("$\\boxed{0.333}$", "\\frac{1}{3}", 0),
        ("$\\boxed{\\frac{2}{4}}$", "\\frac{1}{2}", 1),
        ("$\\boxed{-\\frac{1}{2}}$", "\\frac{1}{2}", 0),
        ("The final answer is $\\boxed{5}$. I hope it is correct.", "5", 1),
        ("$\\boxed{2}$, wait no: $\\boxed{3}$", "3", 0),
        ("</think>\nThe answer is $\\boxed{7}$.", "7", 1),
        ("<think>maybe \\boxed{6}</think>\nThe answer is $\\boxed{7}$.", "7", 1),
        ("<think>maybe \\boxed{7}</think>\nThe answer is $\\boxed{6}$.", "7", 0),
        ("", "7", 0),
        ("I don't know.", "7", 0),
    ]
    return [
        {"source": "special", "category": "special", "completion": c, "answer": g, "label": lab}
        for c, g, lab in cases
    ]


def main() -> None:
    rng = random.Random(0)
    gsm = [r for r in load(DATA / "eval" / "gsm8k_test.jsonl") if re.fullmatch(r"-?\d+", r["answer"])]
    comp = load(DATA / "eval" / "aime2024.jsonl") + load(DATA / "eval" / "aime2025.jsonl")
    comp += load(DATA / "eval" / "amc2023.jsonl")
    comp = [r for r in comp if re.fullmatch(r"-?\d+", r["answer"])]
    levels = load(DATA / "math_levels" / "math_levels_sample_1500.jsonl")
    math500 = load(DATA / "eval" / "math500.jsonl")
    ints = [r for r in levels if re.fullmatch(r"-?\d+", r["answer"])]
    latex = [r for r in math500 + levels if not re.fullmatch(r"-?\d+", r["answer"]) and len(r["answer"]) < 40]
    rows = []
    rows += numeric_cases(rng, rng.sample(gsm, 50), "gsm8k")
    rows += numeric_cases(rng, rng.sample(comp, 30), "aime_amc")
    rows += numeric_cases(rng, rng.sample(ints, 30), "math_levels")
    rows += latex_cases(rng, rng.sample(latex, 70), "math500_levels")
    rows += special_cases()
    with OUT.open("w") as f:
        f.write(json.dumps({"_comment": __doc__.strip().splitlines()[0] + " See make_labelled.py."}) + "\n")
        for i, row in enumerate(rows):
            f.write(json.dumps({"id": i, **row}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
