"""Decisions that need no sympy, taken in the trainer process before anything goes to the pool.

- The anti-hack rule: when the gold answer is a plain number, the final answer must be a number
  literal. A policy otherwise learns to end with "5 + 77" (math-verify evaluates it and accepts it
  for 82) and never does the arithmetic.
- Fast paths: an answer spelled like the gold, or two different integers, are decided here. Most GRPO
  samples fall in one of these, so they never pay for a round trip to a worker.
"""

from __future__ import annotations

import re
from fractions import Fraction

_INT = r"\d+(?:,\d{3})*"
_DEC = rf"(?:{_INT}(?:\.\d+)?|\.\d+)"
_FRAC = r"\\[dt]?frac\{\d+\}\{\d+\}|\\[dt]?frac\d\d|\d+/\d+"
_LITERAL = re.compile(rf"^[-+]?\s*(?:{_DEC}|{_FRAC})(?:\s*\\?%)?$")
_PLAIN_INT = re.compile(rf"^-?\s*{_INT}$")


def _norm(s: str) -> str:
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:)", "", s)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("$", "")
    s = re.sub(r"\^\{?\\circ\}?|\\circ|\\degree", "", s)  # 90^\circ is the number 90
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    return re.sub(r"\s+", "", s).rstrip(".")


def is_number_literal(s: str) -> bool:
    """True for "82", "-3.5", "1,000", "\\frac{1}{2}", "3/4", "25\\%": numbers, not expressions.

    Args:
        s: an answer string.

    Returns:
        Whether ``s`` is a single number written out (no operator left to evaluate).

    >>> is_number_literal("5+77"), is_number_literal("82")
    (False, True)
    """
    return bool(_LITERAL.match(_norm(s)))


def _as_fraction(s: str) -> Fraction | None:
    s = _norm(s)
    if not _PLAIN_INT.match(s) and not re.fullmatch(rf"-?{_DEC}", s):
        return None
    try:
        return Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def prejudge(answer: str | None, gold: str) -> float | None | str:
    """Decide a pair without sympy when possible.

    Args:
        answer: the extracted final answer (None when none or hedged).
        gold: the gold answer.

    Returns:
        1.0 or 0.0 when decided, or the string ``"pool"`` when math-verify must decide.

    >>> prejudge("5 + 77", "82"), prejudge("82", "82"), prejudge("x^2", "x^2+0")
    (0.0, 1.0, 'pool')
    """
    if answer is None:
        return 0.0
    if _norm(answer) == _norm(gold) and _norm(gold):
        return 1.0
    if is_number_literal(gold) and not is_number_literal(answer):
        return 0.0
    a, g = _as_fraction(answer), _as_fraction(gold)
    if a is not None and g is not None:
        if a == g:
            return 1.0
        # Two integers that differ are different; decimals go to math-verify, which rounds them.
        if a.denominator == 1 and g.denominator == 1 and "." not in answer + gold:
            return 0.0
    return "pool"


def is_relation(gold: str) -> bool:
    """Whether the gold itself is an equation or inequality (then the answer is compared unrewritten).

    Args:
        gold: the gold answer.

    Returns:
        True when ``gold`` contains a top-level ``=``, ``<``, ``>`` or a LaTeX relation.
    """
    return bool(re.search(r"(?<![\\{])=|<|>|\\le|\\ge|\\lt|\\gt|\\neq", gold))
