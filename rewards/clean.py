"""Normalise answer strings: what :mod:`stagerl.rewards.extract` found, and gold answers.

Pure Python (regexes, no sympy), cheap enough for the trainer process.

- Unicode math as LaTeX (``√3``, ``π``, ``−``, ``≤``).
- Delimiters, bold and trailing punctuation stripped; currency and units after a number dropped
  ("\\$1,250", "34 hours", "8\\sqrt{3}\\text{ square inches}").
- An equation chain reduced to its last side ("5 + 77 = 122" -> "122", "x = 5 and x = -2" -> "5, -2").
- A one-variable inequality as an interval ("k < -5" -> "(-\\infty, -5)").
"""

from __future__ import annotations

import re

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00d7": r"\times ",
    "\u22c5": r"\cdot ",
    "\u00b7": r"\cdot ",
    "\u00f7": r"\div ",
    "\u03c0": r"\pi",
    "\u221e": r"\infty",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\ne ",
    "\u00b0": r"^\circ ",
    "\u00bd": r"\frac{1}{2}",
    "\u00bc": r"\frac{1}{4}",
    "\u00be": r"\frac{3}{4}",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u222a": r"\cup ",
    "\u2229": r"\cap ",
    "\u00b1": r"\pm ",
    "\u2205": r"\emptyset ",
}
_SQRT_UNICODE = re.compile(r"\u221a\s*(\{[^{}]*\}|\([^()]*\)|\d+(?:\.\d+)?|[A-Za-z])")

NUMERIC_HEAD = r"-?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+|\\d?frac\{\d+\}\{\d+\})"
"""A number at the start of an answer: integer, decimal, thousands commas or a numeric fraction."""
_UNIT_TAIL = re.compile(
    r"^(?P<num>" + NUMERIC_HEAD + r")\s*(?:\\,|\\;|\\ |~)?\s*"
    r"(?:\\(?:text|mbox|mathrm|textbf)\{[^{}]*\}(?:\^\d)?|(?<=\s)[A-Za-z]{2,}[A-Za-z .]*?(?:\^\d)?)\s*$"
)
# A unit written as text after any formula, up to three words: "8\sqrt{3} \text { square inches}",
# "4\pi\text{ cm}^2", "\text{ miles per hour}"; not a clause ("n \text{ is a perfect square}").
_TEXT_UNIT_TAIL = re.compile(
    r"^(?P<head>.*?[\d}\\a-zA-Z)])\s*(?:\\[,;: ]|~)?\s*"
    r"\\(?:text|mbox|mathrm)\s*\{\s*[A-Za-z.]+(?: [A-Za-z.]+){0,2}\s*\}(?:\^\{?\d\}?)?\s*$"
)
_UNIT_NOT = re.compile(
    r"\\(?:text|mbox|mathrm)\s*\{\s*(?:and|or|if|for|where|when|is|are|such|that|with|then)\b"
)
# Currency signs; a backslash before a digit ("\15") is a "\$15" that lost its "$".
_CURRENCY = re.compile(r"\\\$|\$|\\text\{\s*\\\$\s*\}|USD|€|£|(?<!\\)\\(?=\d)")
_INNER_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
# Inline math delimiters left inside an answer that lists formulas; not the "\\" row break before "(".
_INNER_PARENS = re.compile(r"(?<!\\)\\[()]")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(?P<inner>[^{}]*)\}$")
_REL = r"(?:<=|>=|<|>|\\leq?|\\geq?|\\lt|\\gt|\\leqslant|\\geqslant)"
_INEQ_ONE = re.compile(r"^(?P<var>[a-zA-Z])\s*(?P<op>" + _REL + r")\s*(?P<val>[^<>=]+)$")
_INEQ_ONE_REV = re.compile(r"^(?P<val>[^<>=]+?)\s*(?P<op>" + _REL + r")\s*(?P<var>[a-zA-Z])$")
_INEQ_TWO = re.compile(
    r"^(?P<lo>[^<>=]+?)\s*(?P<op1>" + _REL + r")\s*(?P<var>[a-zA-Z])\s*"
    r"(?P<op2>" + _REL + r")\s*(?P<hi>[^<>=]+)$"
)
_LIST_SEPS = re.compile(r"\s*(?:,|;|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b|\\quad|\\qquad)\s*")
_COMMA = re.compile(r"\s*,(?!\d{3}(?!\d))\s*")  # a list comma, not the thousands comma of "1,000"
_TUPLE_EQ = re.compile(r"\((?P<lhs>[^=]+)\)\s*=\s*\((?P<rhs>[^=]+)\)")
_EQ_SEP = re.compile(r"(?<![<>!\\])=(?!=)")
_WORD_SEP = re.compile(r"\\text\{\s*(?:and|or)\s*\}|\b(?:and|or)\b")


def unicode_math(s: str) -> str:
    """Unicode math as LaTeX.

    Args:
        s: any text.

    Returns:
        ``s`` with "√3", "4π", "−2", "≤" ... written as LaTeX.

    >>> unicode_math("2√5")
    '2\\\\sqrt{5}'
    """
    if s.isascii():
        return s
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    return _SQRT_UNICODE.sub(lambda m: r"\sqrt{" + m.group(1).strip("{}()") + "}", s)


def spelling_key(answer: str) -> str:
    """A spelling-insensitive form: two answers with the same key are the same answer.

    Args:
        answer: a cleaned answer.

    Returns:
        ``answer`` without spacing commands, ``\\left``/``\\right``, ``dfrac``, spaces and case.
    """
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:| )", "", answer)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac")
    return re.sub(r"\s+", "", s).rstrip(".").lower()


def split_top(s: str, seps: re.Pattern) -> list[str]:
    """Split on a separator pattern only outside braces, brackets and parentheses.

    Args:
        s: the string to split.
        seps: separator pattern (matched at each top-level position).

    Returns:
        The parts, separators removed (one part when no separator is found).
    """
    parts, depth, last = [], 0, 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif depth == 0:
            m = seps.match(s, i)
            if m and m.end() > i:
                parts.append(s[last:i])
                last = i = m.end()
                continue
        i += 1
    parts.append(s[last:])
    return parts


def arity(answer: str) -> int:
    """How many parts a comma-separated answer has ("1, 2" -> 2, "(2,32), (8,18)" -> 2, "1,000" -> 1).

    Args:
        answer: a cleaned answer or gold.

    Returns:
        The number of non-empty top-level parts.
    """
    return len([p for p in split_top(answer.replace("$", ""), _COMMA) if p.strip()])


def _last_sides(s: str) -> str:
    """Reduce equations to their last side, part by part: "x = 5 and x = -2" -> "5, -2".

    Parts joined by "and"/"or" become a list, so "3 or 4" is a set (which a single gold never equals).
    Parts without "=" next to parts with one are prose ("Adding, 16 + 18 = 34") and are dropped.
    """
    has_eq = bool(_EQ_SEP.search(s))
    if not has_eq and not _WORD_SEP.search(s):
        return s
    parts = [p.strip() for p in split_top(s, _LIST_SEPS) if p.strip()]
    if has_eq and not any(_EQ_SEP.search(p) for p in parts[1:]):
        # "n = 1, 2, 3": one left-hand side for a whole list.
        parts[0] = split_top(parts[0], _EQ_SEP)[-1].strip()
    elif has_eq:
        parts = [split_top(p, _EQ_SEP)[-1].strip() for p in parts if _EQ_SEP.search(p)]
    parts = [strip_units(p) for p in parts if p]
    return ", ".join(parts) if parts else s


def strip_units(s: str) -> str:
    """Drop a unit after a number or formula: "34 hours", "10\\text{ cm}^2" -> the number.

    A gold that needs the unit is rare; a solution that adds one is common, and some golds carry one
    ("8\\sqrt{3} \\text { square inches}").

    Args:
        s: an answer without delimiters.

    Returns:
        ``s`` without its unit (unchanged when it has none).
    """
    m = _UNIT_TAIL.match(s)
    if m:
        return m["num"].strip()
    m = _TEXT_UNIT_TAIL.match(s)
    if m and not _UNIT_NOT.search(s) and m["head"].count("{") == m["head"].count("}"):
        return m["head"].strip()
    return s


def _interval(s: str) -> str:
    """A one-variable inequality as interval notation: "k < -5" -> "(-\\infty, -5)"."""
    strict = {"<": True, ">": True, r"\lt": True, r"\gt": True}

    def is_lt(op: str) -> bool:
        return op in ("<", "<=", r"\le", r"\leq", r"\lt", r"\leqslant")

    m = _INEQ_TWO.match(s)
    if m and is_lt(m["op1"]) and is_lt(m["op2"]):
        lo = "(" if strict.get(m["op1"], False) else "["
        hi = ")" if strict.get(m["op2"], False) else "]"
        return f"{lo}{m['lo'].strip()}, {m['hi'].strip()}{hi}"
    m = _INEQ_ONE.match(s)
    rev = False
    if not m:
        m = _INEQ_ONE_REV.match(s)
        rev = True
    if m:
        op, val = m["op"], m["val"].strip()
        below = is_lt(op) != rev  # the variable is below the value
        closed = not strict.get(op, False)
        if below:
            return rf"(-\infty, {val}{']' if closed else ')'}"
        return rf"{'[' if closed else '('}{val}, \infty)"
    return s


def _destructure(s: str) -> str:
    """A tuple equation as equations, part by part: "(f(n), g(n)) = (n, 1)" -> "f(n) = n, g(n) = 1"."""
    m = _TUPLE_EQ.fullmatch(s)
    if not m:
        return s
    lhs, rhs = split_top(m["lhs"], _COMMA), split_top(m["rhs"], _COMMA)
    if len(lhs) < 2 or len(lhs) != len(rhs) or any(re.search(r"\d", x) for x in lhs):
        return s
    return ", ".join(f"{x.strip()} = {y.strip()}" for x, y in zip(lhs, rhs, strict=True))


def _strip_delimiters(s: str) -> str:
    """Markdown bold, math delimiters and trailing punctuation around an answer."""
    for _ in range(3):
        s = s.strip().strip("*").strip()
        s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
        s = re.sub(r"^\$+|\$+$", "", s).strip()
        s = re.sub(r"[.,;:!]+$", "", s).strip()
    return s


def clean_answer(ans: str) -> tuple[str, str]:
    """Normalise an extracted answer string.

    Args:
        ans: the text found in a box or after an answer phrase.

    Returns:
        ``(answer, raw)``: ``answer`` with equations reduced to their last side and inequalities turned
        into intervals, ``raw`` without those two rewrites (a tuple equation is split into equations).

    >>> clean_answer("5 + 77 = 122.")
    ('122', '5 + 77 = 122')
    """
    s = _strip_delimiters(unicode_math(ans))
    s = _INNER_BOX.sub(r"\1", s)  # "180^\circ - 90^\circ = \boxed{90^\circ}"
    s = s.replace("$", " ") if s.count("$") % 2 == 0 else s  # "$x=5$ and $x=-2$"
    s = _INNER_PARENS.sub(" ", s)  # "-1, 0,\) and \(1": the outer "\(" "\)" went with the delimiters
    s = re.sub(r"\\text\{\s*\}", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = _CURRENCY.sub("", s).strip() if re.search(r"\d", s) else s
    s = strip_units(s)
    m = _TEXT_WRAP.match(s)
    if m and re.fullmatch(r"\s*" + NUMERIC_HEAD + r"\s*", m["inner"]):
        s = m["inner"].strip()
    s = s.replace("\\%", "%").replace("%", "\\%")
    raw = _destructure(s)
    s = _last_sides(s)
    s = _interval(s)
    return s, raw


def clean_gold(gold: str) -> str:
    """Normalise a gold answer: math delimiters ("$5,-2$", "\\[ ... \\]") and a unit after the value go.

    Args:
        gold: the gold answer as given in the data.

    Returns:
        The gold as bare LaTeX.

    >>> clean_gold(r"8\\sqrt{3} \\text { square inches}")
    '8\\\\sqrt{3}'
    """
    s = gold.strip()
    if re.fullmatch(r"\\\[.*\\\]|\$\$.*\$\$", s, flags=re.DOTALL):
        s = s[2:-2]
    elif s.count("$") % 2 == 0:  # "$5,-2$", "$f(n)=n$, $g(n)=1$"
        s = s.replace("$", " ")
    return strip_units(re.sub(r"\s+", " ", s).strip())
