"""Decisions that need no sympy, taken in the trainer process before anything goes to the pool.

- The anti-hack rule: when the gold answer is a plain number, the final answer must be a number
  literal. A policy otherwise learns to end with "5 + 77" or "5!" (math-verify evaluates them and accepts
  them for 82 and 120) and never does the arithmetic. A literal is known in every spelling of a number
  (see :func:`is_number_literal`): a sign inside a fraction or parentheses, thousands separators, bold,
  scientific notation; anything with an operation left in it is not one.
- Fast paths: an answer spelled like the gold, or two different integers, are decided here. Most GRPO
  samples fall in one of these, so they never pay for a round trip to a worker. The same fast paths tell
  whether two final answers of one completion are the same answer (a hedge is two different ones).
- Percent: a gold of "17.5\\%" asks for a number of percent, so a bare "17.5" is that answer.
- A function is the same whatever its argument is called: "f(n) = n" answers the gold "f(z)=z".
"""

from __future__ import annotations

import re
from fractions import Fraction

_INT = r"\d+(?:,\d{3})*"
_DEC = rf"(?:{_INT}(?:\.\d+)?|\.\d+)"
_FRAC = r"\\[dt]?frac\{[-+]?\d+\}\{[-+]?\d+\}|\\[dt]?frac\d\d|\d+/\d+"
# Scientific notation as _norm leaves it: "6\times10^{-3}", "6\cdot10^3", "6e-3".
_SCI = rf"(?P<mant>{_DEC})(?:(?:\\times|\\cdot|\*)10\^(?:\{{(?P<exp>[-+]?\d+)\}}|(?P<exp1>\d))|[eE](?P<exp2>[-+]?\d+))"
_LITERAL = re.compile(rf"^[-+]?\s*(?:{_SCI}|{_DEC}|{_FRAC})(?:\s*\\?%)?$")
_PLAIN_INT = re.compile(rf"^-?\s*{_INT}$")
_FRAC_PARTS = re.compile(
    r"^(?P<sign>-?)(?:\\frac(?:\{(?P<n>[-+]?\d+)\}|(?P<n1>\d))(?:\{(?P<d>[-+]?\d+)\}|(?P<d1>\d))"
    r"|(?P<n2>\d+)/(?P<d2>\d+))$"
)
_SCI_PARTS = re.compile(rf"^(?P<sign>[-+]?){_SCI}$")
# Bold and upright wrappers around a number ("\mathbf{5}", "\textbf{5}").
_WRAPPER = re.compile(r"\\(?:mathbf|textbf|boldsymbol|bm|mathrm|textrm)\{([^{}]*)\}")
_FUNCTION_DEF = re.compile(r"(?<![A-Za-z\\])(?P<f>[A-Za-z])\(\s*(?P<arg>[A-Za-z])\s*\)\s*=")
_PERCENT = re.compile(rf"^(?P<num>[-+]?(?:{_DEC}))\s*\\?%$")


def _norm(s: str) -> str:
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:)", "", s)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("$", "").replace("{,}", ",")
    s = re.sub(r"\^\{?\\circ\}?|\\circ|\\degree", "", s)  # 90^\circ is the number 90
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = _WRAPPER.sub(r"\1", s)
    return re.sub(r"\s+", "", s).rstrip(".")


def _literal(s: str) -> str:
    """``_norm(s)`` without one pair of parentheses around a number ("(-\\frac{1}{2})")."""
    s = _norm(s)
    if s.startswith("(") and s.endswith(")") and _LITERAL.match(s[1:-1]):
        return s[1:-1]
    return s


def is_number_literal(s: str) -> bool:
    """True for a single number written out, in any of its spellings; False for an expression.

    Numbers: "82", "-3.5", "1,000", "1{,}000", "\\frac{1}{2}", "\\frac{-35}{9}", "3/4", "25\\%",
    "(-\\frac{1}{2})", "\\left(-\\frac12\\right)", "\\mathbf{5}", "6 \\times 10^{-3}", "6\\cdot10^{-3}", "6e-3".
    Expressions: "5+77", "5!", "2^{10}", "\\sqrt{4}".

    Args:
        s: an answer string.

    Returns:
        Whether ``s`` is a single number written out (no operator left to evaluate).

    >>> is_number_literal("5+77"), is_number_literal("82"), is_number_literal("5!")
    (False, True, False)
    """
    return bool(_LITERAL.match(_literal(s)))


def _as_fraction(s: str) -> Fraction | None:
    """The value of a number literal (integer, decimal, numeric fraction, scientific notation), else None."""
    s = _literal(s)
    m = _FRAC_PARTS.match(s)
    sci = _SCI_PARTS.match(s)
    try:
        if m:
            num, den = m["n"] or m["n1"] or m["n2"], m["d"] or m["d1"] or m["d2"]
            return Fraction(int(num), int(den)) * (-1 if m["sign"] else 1)
        if sci:
            exp = int(sci["exp"] or sci["exp1"] or sci["exp2"])
            if abs(exp) > 400:  # a literal, but not one to expand
                return None
            return (
                Fraction(sci["mant"].replace(",", ""))
                * Fraction(10) ** exp
                * (-1 if sci["sign"] == "-" else 1)
            )
        if _PLAIN_INT.match(s) or re.fullmatch(rf"-?{_DEC}", s):
            return Fraction(s.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _is_integer(s: str, value: Fraction) -> bool:
    """Whether ``s`` (of value ``value``) is written as an integer ("4", not "4.0" or "8/2")."""
    return value.denominator == 1 and not re.search(r"[./^eE]|frac", _literal(s))


def prejudge(answer: str | None, gold: str) -> float | str:
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
    if is_number_literal(gold) and not is_number_literal(answer):
        return 0.0
    same = same_answer(answer, gold)
    return "pool" if same is None else float(same)


def same_answer(a: str, b: str) -> bool | None:
    """Whether two answers are the same, when that is plain without sympy.

    Args:
        a: an answer.
        b: another answer (or a gold).

    Returns:
        True (same spelling, or number literals of equal value), False (two different integers), or
        None when math-verify must decide (decimals against fractions are rounded there, symbols).

    >>> same_answer("0.5", r"\\frac{1}{2}"), same_answer("3", "4"), same_answer(r"\\sqrt{8}", r"2\\sqrt{2}")
    (True, False, None)
    """
    if _norm(a) == _norm(b) and _norm(a):
        return True
    va, vb = _as_fraction(a), _as_fraction(b)
    if va is None or vb is None:
        return None
    if va == vb:
        return True
    # Two integers that differ are different; decimals go to math-verify, which rounds them.
    if _is_integer(a, va) and _is_integer(b, vb):
        return False
    return None


def align_percent(answer: str, gold: str) -> tuple[str, str]:
    """Drop the percent sign when one side is "N\\%" and the other the bare number N.

    A question that asks for a percentage is answered by "17.5" as much as by "17.5\\%" (often followed
    by the word "percent", which extraction drops as a unit), but math-verify reads "17.5\\%" as 0.175.
    A bare 0.175 is left as it is: math-verify already accepts it.

    Args:
        answer: the extracted answer.
        gold: the gold answer.

    Returns:
        ``(answer, gold)``, without the percent sign when that rule applies, else unchanged.

    >>> align_percent("17.5", "17.5%"), align_percent("0.175", "17.5%")
    (('17.5', '17.5'), ('0.175', '17.5%'))
    """
    a, g = _PERCENT.match(_norm(answer)), _PERCENT.match(_norm(gold))
    if a and g:
        return a["num"], g["num"]
    percent, bare = (g, answer) if g else (a, gold)
    if percent is None or not is_number_literal(bare):
        return answer, gold
    value, number = _as_fraction(bare), _as_fraction(percent["num"])
    if value is None or number is None or value == number / 100:
        return answer, gold
    return (answer, g["num"]) if g else (a["num"], gold)


def align_argument(answer: str, gold: str) -> str:
    """Rename the argument of a function the answer defines to the one the gold uses.

    Args:
        answer: the extracted answer, as written ("f(n) = 2n + 1").
        gold: the gold answer ("f(x) = 2x + 1").

    Returns:
        ``answer`` with its argument renamed when both define the same function of one argument each
        ("f(x) = 2x + 1"), else ``answer`` unchanged.

    >>> align_argument("f(n) = n", "f(z)=z")
    'f(z) = z'
    """
    ans_defs = {(m["f"], m["arg"]) for m in _FUNCTION_DEF.finditer(answer)}
    gold_defs = {(m["f"], m["arg"]) for m in _FUNCTION_DEF.finditer(gold)}
    if len({arg for _, arg in ans_defs}) != 1 or len({arg for _, arg in gold_defs}) != 1:
        return answer
    old, new = next(iter(ans_defs))[1], next(iter(gold_defs))[1]
    same_names = {f for f, _ in ans_defs} == {f for f, _ in gold_defs}
    # Renaming onto a letter the answer already uses for something else would change its meaning.
    if old == new or not same_names or re.search(rf"(?<![A-Za-z\\]){new}(?![A-Za-z])", answer):
        return answer
    return re.sub(rf"(?<![A-Za-z\\]){old}(?![A-Za-z])", new, answer)


def is_relation(gold: str) -> bool:
    """Whether the gold itself is an equation or inequality (then the answer is compared unrewritten).

    Args:
        gold: the gold answer.

    Returns:
        True when ``gold`` contains a top-level ``=``, ``<``, ``>`` or a LaTeX relation.
    """
    return bool(re.search(r"(?<![\\{])=|<|>|\\le|\\ge|\\lt|\\gt|\\neq", gold))
