"""Answers in shapes the first rules were not written against (issue 35), graded end to end.

Each shape has several differently worded cases and at least one that must stay 0; the hedges at the end
must score 0 whatever rule lets an earlier box stand aside, so that no new rule can be bought by hedging.
"""

import pytest

from stagerl.rewards import grade

INTERMEDIATE = [
    # The box holds a fraction whose numerator and denominator the work then combines (report p + q).
    (
        r"The ratio of the two areas is $\boxed{\frac{7}{3}}$, so $p = 7$ and $q = 3$."
        "\n\n"
        r"Therefore $p + q = \boxed{10}$.",
        "10",
        1.0,
    ),
    (
        r"the chance that both draws are red is \(\boxed{\frac{8}{15}}\). Written as \(a/b\) in lowest terms,"
        r" the requested quantity is \(b - a = 15 - 8 = \boxed{7}\).",
        "7",
        1.0,
    ),
    # The boxed value is used in the next computation.
    (
        r"One ticket costs $\boxed{12}$ dollars. For the 25 students of the class the bill is"
        r" $25 \times 12 = \boxed{300}$ dollars.",
        "300",
        1.0,
    ),
    # A formula in terms of a quantity the text then gives a value to.
    (
        r"In terms of the side, the area is $\boxed{\frac{\sqrt{3}}{4}s^2}$. With $s = 2$ we get"
        r" $\frac{\sqrt{3}}{4} \cdot 4 = \boxed{\sqrt{3}}$.",
        r"\sqrt{3}",
        1.0,
    ),
    (
        r"Hence $h(T) = \boxed{\frac{5}{T + 1}}$. The problem fixes $T = 9$, so $h = \boxed{\frac{1}{2}}$.",
        r"\frac{1}{2}",
        1.0,
    ),
    # The last box is the answer: the intermediate value itself is not credited.
    (
        r"The ratio of the two areas is $\boxed{\frac{7}{3}}$, so $p = 7$ and $q = 3$. Therefore"
        r" $p + q = \boxed{10}$.",
        r"\frac{7}{3}",
        0.0,
    ),
]


OTHER_PARTS = [
    # Every sub-question answered in its own labelled box; the gold is the last one asked.
    (
        "- Period: $\\boxed{2}$ s\n- Amplitude: $\\boxed{0.5}$ m\n- Maximum speed: $\\boxed{1.57}$ m/s",
        "1.57",
        1.0,
    ),
    (r"So the sample mean is $\boxed{14}$ and the standard deviation is $\boxed{3.5}$.", "3.5", 1.0),
    (
        r"The wavelength of the emitted light is \(\boxed{500 \text{ nm}}\). Hence the photon energy is"
        r" \(\boxed{2.48 \text{ eV}}\).",
        "2.48",
        1.0,
    ),
    # Labels on the lines that introduce displayed boxes.
    (
        "The mean of the sample is\n\\[\n\\boxed{14}\n\\]\nand its standard deviation is\n\\[\n\\boxed{3.5}\n\\]",
        "3.5",
        1.0,
    ),
    # A yes-or-no part, then the value asked for.
    (r"Can the board be tiled? $\boxed{\text{No}}$. The fewest cells left bare: $\boxed{2}$", "2", 1.0),
    (r"$\boxed{\text{Yes}}$ $\boxed{6}$", "6", 1.0),
    # The gold is an earlier part: the last box is the answer, so this one is not credited.
    (r"So the sample mean is $\boxed{14}$ and the standard deviation is $\boxed{3.5}$.", "14", 0.0),
]


HEDGES = [
    # Two boxes for the same quantity.
    (
        r"The perimeter is $\boxed{12}$ cm. Measured along the other edge, the perimeter is $\boxed{14}$ cm.",
        "14",
        0.0,
    ),
    (r"So $x = \boxed{4}$. By the second equation, $x = \boxed{6}$.", "6", 0.0),
    ("The area is\n\\[\n\\boxed{12}\n\\]\nMeasured again, the area is\n\\[\n\\boxed{15}\n\\]", "15", 0.0),
    # Either ... or, with or without a computation from the first box.
    (r"The missing digit is either $\boxed{3}$ or $\boxed{8}$.", "8", 0.0),
    (r"So $n = \boxed{5}$. Or, counting the empty set too, $n = 5 + 1 = \boxed{6}$.", "6", 0.0),
    (r"Either the answer is $\boxed{\frac{7}{3}}$, or else $7 + 3 = \boxed{10}$.", "10", 0.0),
    # A box per option.
    (
        r"If the coin is fair, the probability is $\boxed{\frac{1}{2}}$; if it is weighted, the probability is"
        r" $\boxed{\frac{2}{3}}$.",
        r"\frac{2}{3}",
        0.0,
    ),
    (r"Case 1: $\boxed{4}$. Case 2: $\boxed{6}$.", "6", 0.0),
    (r"(A) $\boxed{10}$ (B) $\boxed{12}$", "12", 0.0),
    (r"Option A gives $\boxed{10}$ and option B gives $\boxed{12}$.", "12", 0.0),
    # A check between the boxes uses the first value only as a check, not to compute the second.
    (r"So $k = \boxed{3}$. For $k = 3$ the sum is odd, so $k = \boxed{5}$.", "5", 0.0),
]


# What the rules got right and must keep.
KEPT = [
    # A thought cut off before </think> (R1's template) earns nothing, even with a box in it.
    (r"<think>The sum is \boxed{7}, let me check that", "7", 0.0),
    # Cut off right after </think>, before the answer.
    ("<think>So the sum is \\boxed{7}.</think>\n", "7", 0.0),
    (r"It is \boxed{3} or \boxed{4}", "4", 0.0),
    (r"So $\boxed{2}$. Checking again, it is $\boxed{3}$.", "3", 0.0),
    # A retracted first answer: the last is graded.
    (r"So $\boxed{2}$. Wait, that is wrong: the sum is $\boxed{3}$.", "3", 1.0),
    # An unfinished final box after a complete one is no answer (it must not fall back to the earlier box).
    (r"So the total is $\boxed{12}$. Adding the last row, the total is $\boxed{1", "12", 0.0),
    (r"So the total is $\boxed{12}$, that is $\boxed{", "12", 0.0),
]


UNITS = [
    # Compound units: products and powers of units.
    (r"The net production is $\boxed{15000 \text{ kcal m}^{-2} \text{ yr}^{-1}}$.", "15000", 1.0),
    (r"so $g = \boxed{9.8\,\mathrm{m}\,\mathrm{s}^{-2}}$", "9.8", 1.0),
    (r"The concentration is \(\boxed{2.5 \text{ mol L}^{-1}}\).", "2.5", 1.0),
    (r"The speed of sound here is $\boxed{340 \text{ m}/\text{s}}$.", "340", 1.0),
    (r"The flux is $\boxed{3.2 \times 10^{4} \text{ W m}^{-2}}$.", "32000", 1.0),
    # Ordinals read as numbers, with the words after them.
    (r"She will be in the $\boxed{12^{\text{th}}\text{ grade}}$.", "12", 1.0),
    (r"It is the $\boxed{3^{rd}}$ term.", "3", 1.0),
    (r"so he finished \(\boxed{21\text{st}}\)", "21", 1.0),
    # An answer without the gold's unit stays right.
    (r"The net production is $\boxed{15000}$.", r"15000 \text{ kcal m}^{-2} \text{ yr}^{-1}", 1.0),
    # The number is still what is graded.
    (r"The net production is $\boxed{15000 \text{ kcal m}^{-2} \text{ yr}^{-1}}$.", "1500", 0.0),
    (r"It is the $\boxed{12^{\text{th}}}$ term.", "13", 0.0),
    (r"so $\boxed{5 \text{ or } 6}$", "5", 0.0),
    # A second number is not a unit.
    (r"so $\boxed{82 \text{ maybe 83}}$", "82", 0.0),
]


LITERALS = [
    # Scientific notation in its common spellings.
    (r"so the concentration is $\boxed{6 \times 10^{-3}}$", "0.006", 1.0),
    (r"so the concentration is $\boxed{6\cdot10^{-3}}$", "0.006", 1.0),
    (r"so the concentration is $\boxed{6e-3}$", "0.006", 1.0),
    (r"The population is $\boxed{1.2 \times 10^{4}}$.", "12000", 1.0),
    (r"so the concentration is $\boxed{6 \times 10^{-2}}$", "0.006", 0.0),
    # A sign inside a fraction or parentheses.
    (r"The slope is $\boxed{\frac{-35}{9}}$.", r"-\frac{35}{9}", 1.0),
    (r"The slope is $\boxed{(-\frac{1}{2})}$.", r"-\frac{1}{2}", 1.0),
    (r"The slope is $\boxed{\left(-\frac12\right)}$.", r"-\frac{1}{2}", 1.0),
    (r"The slope is $\boxed{\frac{-35}{9}}$.", r"\frac{35}{9}", 0.0),
    # Thousands separators and bold.
    (r"There are $\boxed{1{,}000}$ seats.", "1000", 1.0),
    (r"There are $\boxed{12{,}345}$ seats.", "12345", 1.0),
    (r"The answer is $\boxed{\mathbf{5}}$.", "5", 1.0),
    (r"The answer is $\boxed{\textbf{5}}$.", "5", 1.0),
    # A factorial is an expression, not a literal with a trailing "!".
    (r"The number of orders is $\boxed{5!}$", "5", 0.0),
    (r"The number of orders is $\boxed{5!}$", "120", 0.0),
    (r"The number of orders is $\boxed{(5+77)}$", "82", 0.0),
]


SETS = [
    # Set-builder notation against an interval.
    (r"The solution set is $\boxed{(-1, 1)}$.", r"\{x|-1 < x < 1\}", 1.0),
    (r"so $t$ ranges over $\boxed{(2, 5]}$", r"\{t \mid 2 < t \le 5\}", 1.0),
    (r"so the answer is $\boxed{\{y \mid y \geq 0\}}$", r"[0, +\infty)", 1.0),
    (r"The solution set is $\boxed{[-1, 1]}$.", r"\{x|-1 < x < 1\}", 0.0),
    # An inequality in any variable against an interval.
    (r"Hence $\boxed{3 < \lambda \leq 4}$.", "(3,4]", 1.0),
    (r"Hence $\boxed{-2 \le \theta < 0}$.", "[-2, 0)", 1.0),
    (r"Hence $\boxed{3 < \lambda < 4}$.", "(3,4]", 0.0),
    # Unions, "or" and Unicode symbols.
    (r"so $a \in \boxed{(-\infty, -2] \cup \{1\}}$", r"a \leqslant -2 \text{ or } a = 1", 1.0),
    (r"The range is $\boxed{(-\infty, -3) \cup (3, \infty)}$.", "(-∞, -3) ∪ (3, +∞)", 1.0),
    (r"so $\boxed{x < -3 \text{ or } x > 3}$", "(-∞, -3) ∪ (3, +∞)", 1.0),
    (r"so $\boxed{m \le -2 \text{ or } m = 1}$", r"(-\infty, -2] \cup \{1\}", 1.0),
    (r"so $\boxed{x < -3 \text{ or } x > 2}$", "(-∞, -3) ∪ (3, +∞)", 0.0),
    # Vectors against tuples, both ways.
    (r"so $\boxed{(-7,16,5)}$", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}", 1.0),
    (r"so $\mathbf{v} = \boxed{\begin{pmatrix} 1 \\ -2 \end{pmatrix}}$", "(1,-2)", 1.0),
    (r"so $\boxed{\begin{bmatrix} 3 & 0 & 4 \end{bmatrix}}$", "(3, 0, 4)", 1.0),
    (r"so $\boxed{(-7,16,-5)}$", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}", 0.0),
    # "name: value" lists against the gold's list.
    (r"$\boxed{\text{Minimum: } 1, \text{ Maximum: } 3}$", "1,3", 1.0),
    ("Smallest value: 2, largest value: 7", "2, 7", 1.0),
    (r"$\boxed{\text{Shortest: } 4; \text{ longest: } 9}$", "4,9", 1.0),
    (r"$\boxed{\text{Minimum: } 1, \text{ Maximum: } 4}$", "1,3", 0.0),
]


SHAPES = {
    "intermediate": INTERMEDIATE,
    "other_parts": OTHER_PARTS,
    "hedges": HEDGES,
    "kept": KEPT,
    "units": UNITS,
    "literals": LITERALS,
    "sets": SETS,
}


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        pytest.param(*case, id=f"{shape}-{i}")
        for shape, cases in SHAPES.items()
        for i, case in enumerate(cases)
    ],
)
def test_shape(pool, completion, gold, expected):
    assert grade([completion], [gold], pool=pool) == [expected]
