"""Normalise answer strings: what :mod:`stagerl.rewards.extract` found, and gold answers.

Pure Python (regexes, no sympy), cheap enough for the trainer process.

- Unicode math as LaTeX (``√3``, ``π``, ``−``, ``≤``).
- Delimiters, bold and trailing punctuation stripped ("!" stays: "5!" is a factorial); currency dropped.
- Units after a number or formula dropped, whatever they are built of: words in text ("34 hours",
  "8\\sqrt{3}\\text{ square inches}"), and products, quotients and powers of units ("15000 \\text{ kcal
  m}^{-2} \\text{ yr}^{-1}", "9.8\\,\\mathrm{m}\\,\\mathrm{s}^{-2}", "340 \\text{ m}/\\text{s}"); not words that
  make a clause ("5 \\text{ or } 6", "n \\text{ is even}"). An ordinal is its number ("12^{\\text{th}}" -> "12").
- Scientific notation in e-form as a power of ten ("6e-3" -> "6 \\times 10^{-3}"), which math-verify reads.
- An equation chain reduced to its last side ("5 + 77 = 122" -> "122", "x = 5 and x = -2" -> "5, -2"), and a
  list of labelled values to its values ("Minimum: 1, Maximum: 3" -> "1, 3").
- Sets written the way math-verify reads them, on both sides (:func:`set_notation`): a condition on one
  variable (a letter, a Greek letter, with a subscript or not) as the set it describes: an inequality or a
  chain of two as an interval ("k < -5" -> "(-\\infty, -5)", "3 < \\lambda \\le 4" -> "(3, 4]"), conditions
  joined by "or" as the union of theirs ("a \\le -2 \\text{ or } a = 1" -> "(-\\infty, -2] \\cup \\{1\\}"),
  set-builder notation and membership as the set of their condition ("\\{x \\mid -1 < x < 1\\}",
  "x \\in (-1, 1)" -> "(-1, 1)"); a vector (a one-row or one-column matrix, "\\langle a, b \\rangle") as
  the tuple of its entries.
"""

from __future__ import annotations

import re
from functools import lru_cache

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
    "\u2a7d": r"\le ",
    "\u2a7e": r"\ge ",
    "\u2208": r"\in ",
    "\u2209": r"\notin ",
    "\u2223": r"\mid ",
    "\u211d": r"\mathbb{R}",
    "\u207b\u00b9": "^{-1}",
    "\u207b\u00b2": "^{-2}",
    "\u207b\u00b3": "^{-3}",
}
_SQRT_UNICODE = re.compile(r"\u221a\s*(\{[^{}]*\}|\([^()]*\)|\d+(?:\.\d+)?|[A-Za-z])")

NUMERIC_HEAD = r"-?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+|\\d?frac\{\d+\}\{\d+\})"
"""A number at the start of an answer: integer, decimal, thousands commas or a numeric fraction."""
# A unit: up to three words in text ("\text{ kcal m}", "\mathrm{m/s}") or, after a number, a bare word
# ("hours", "km/h"); with a power ("^{-2}"). Units follow one another with or without a product or quotient
# sign. A digit is never part of a unit: "82 \text{ maybe 83}" holds a second number, not a unit.
_POWER = r"(?:\s*\^\s*(?:\{\s*[-+]?\d+\s*\}|[-+]?\d))?"
_TEXT_UNIT = (
    r"\\(?:text|mbox|mathrm|textrm|textbf|rm)\s*\{[\s~]*[A-Za-z(][^{}\s~\d]*(?:[\s~]+[^{}\s~\d]+){0,2}[\s~]*\}"
    + _POWER
)
_BARE_UNIT = r"(?:[A-Za-z]{2,}\.?|[A-Za-z]+/[A-Za-z]+)" + _POWER
_UNIT_JOIN = r"\s*(?:\\[,;: ]|~|\\cdot|/)?\s*"
# After a number, bare words too (each after a space: "34 hours", not the "x" of "34x").
_UNIT_TAIL = re.compile(
    rf"^(?P<num>{NUMERIC_HEAD})(?P<unit>(?:{_UNIT_JOIN}(?:{_TEXT_UNIT}|(?<=[\s,;~]){_BARE_UNIT})){{1,6}})\s*$"
)
# After any formula, units in text only: "8\sqrt{3} \text { square inches}", "4\pi\text{ cm}^2".
_TEXT_UNIT_TAIL = re.compile(
    rf"^(?P<head>.*?[\d}}\\a-zA-Z)])(?P<unit>(?:{_UNIT_JOIN}{_TEXT_UNIT}){{1,6}})\s*$"
)
# Words that make a clause, not a unit ("n \text{ is a perfect square}", "5 \text{ or } 6").
_UNIT_NOT = re.compile(
    r"\b(?:and|or|if|for|where|when|is|are|such|that|with|then|not|no|the|an|than|more|less|least|most|only|all)\b",
    re.IGNORECASE,
)
# An ordinal ("12^{\text{th}}", "3^{rd}", "21\text{st}", "2nd") is its number.
_ORD = r"(?:st|nd|rd|th)"
_ORDINAL = re.compile(
    rf"(?<=\d)(?:\s*\^\s*\{{\s*(?:\\(?:text|mathrm|textrm)\s*\{{\s*{_ORD}\s*\}}|(?:\\rm\s*)?{_ORD})\s*\}}"
    rf"|\s*\^\s*\\(?:text|mathrm|textrm)\s*\{{\s*{_ORD}\s*\}}"
    rf"|\s*\\(?:text|mathrm|textrm|textsuperscript)\s*\{{\s*{_ORD}\s*\}}|{_ORD}(?![A-Za-z]))"
)
_E_NOTATION = re.compile(r"(?P<m>-?(?:\d+(?:\.\d*)?|\.\d+))\s*[eE](?P<e>[-+]?\d+)")
# Currency signs; a backslash before a digit ("\15") is a "\$15" that lost its "$".
_CURRENCY = re.compile(r"\\\$|\$|\\text\{\s*\\\$\s*\}|USD|€|£|(?<!\\)\\(?=\d)")
_INNER_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
# Inline math delimiters left inside an answer that lists formulas; not the "\\" row break before "(".
_INNER_PARENS = re.compile(r"(?<!\\)\\[()]")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(?P<inner>[^{}]*)\}$")
# Longest spelling first, and a command only as a whole word ("\le" is not the start of "\left").
_REL = r"(?:<=|>=|<|>|\\(?:leqslant|geqslant|leq|geq|le|ge|lt|gt)(?![A-Za-z]))"
_GREEK = (
    r"\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho"
    r"|sigma|tau|upsilon|phi|varphi|chi|psi|omega)(?![A-Za-z])"
)
# One variable: a letter or a Greek letter, with a subscript or not ("x", "\lambda", "a_1", "x_{n}").
_VAR = rf"(?:[a-zA-Z]|{_GREEK})(?:_\{{?\w+\}}?)?"
_BOUND = rf"(?:(?!{_REL})[^<>=])+"  # a bound: anything without a relation in it
_INEQ_ONE = re.compile(rf"^(?P<var>{_VAR})\s*(?P<op>{_REL})\s*(?P<val>{_BOUND})$")
_INEQ_ONE_REV = re.compile(rf"^(?P<val>{_BOUND}?)\s*(?P<op>{_REL})\s*(?P<var>{_VAR})$")
_INEQ_TWO = re.compile(
    rf"^(?P<lo>{_BOUND}?)\s*(?P<op1>{_REL})\s*(?P<var>{_VAR})\s*(?P<op2>{_REL})\s*(?P<hi>{_BOUND})$"
)
# Constants a bound may hold besides numbers ("e" is Euler's number).
_CONSTANTS = re.compile(
    r"\\(?:infty|pi|sqrt|[dt]?frac|cdot|times|div|left|right|ln|log|exp|sin|cos|tan|cot|sec|csc|arcsin|arccos"
    r"|arctan)(?![A-Za-z])"
)
_POINT = re.compile(rf"^(?P<var>{_VAR})\s*=\s*(?P<val>[^<>=]+)$")
_LESS = ("<", "<=", r"\le", r"\leq", r"\lt", r"\leqslant")
_STRICT = ("<", ">", r"\lt", r"\gt")
_OR = re.compile(r"\s*(?:\\text\{\s*or\s*\}|\bor\b|\\lor\b|\\vee\b)\s*")
# Set-builder notation: "\{x \mid -1 < x < 1\}", "\left\{ t : t > 0 \right\}", "\{x \in \mathbb{R} | x > 0\}".
_SET_BUILDER = re.compile(
    rf"^(?:\\left\s*)?\\\{{\s*(?P<var>{_VAR})\s*(?:\\in\s*\\mathbb\s*\{{?\s*R\s*\}}?\s*)?"
    r"(?:\\middle\s*)?(?:\||\\mid\b|\\vert\b|:|\\colon\b)\s*(?P<cond>.+?)\s*(?:\\right\s*)?\\\}$"
)
_MEMBERSHIP = re.compile(rf"^(?P<var>{_VAR})\s*\\in\s*(?P<set>[(\[]|\\left|\\\{{)")
# A vector: a matrix of one row or one column (not vmatrix: that is a determinant), or angle brackets.
_MATRIX = re.compile(r"^\\begin\{(?P<env>[pbB]?matrix)\}(?P<body>.*)\\end\{(?P=env)\}$", re.DOTALL)
_ANGLE = re.compile(r"^\\langle\s*(?P<body>.*?)\s*\\rangle$")
_ROW_BREAK = re.compile(r"\s*\\\\\s*")
_CELL = re.compile(r"\s*&\s*")
# "Minimum: 1", "\text{Largest value: } 7": a value labelled by a name of at least two letters.
_LABELLED = re.compile(r"^(?P<name>[A-Za-z][A-Za-z ]*[A-Za-z])\s*:\s*(?P<value>\S.*)$", re.DOTALL)
_TEXT_LABEL = re.compile(r"\\(?:text|textbf|mathrm)\s*\{\s*([A-Za-z][A-Za-z ]*?)\s*(:?)\s*\}")
_ITEM_SEP = re.compile(r"\s*(?:,(?!\d{3}(?!\d))|;)\s*")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
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
    for tail in (_UNIT_TAIL, _TEXT_UNIT_TAIL):
        m = tail.match(s)
        if m and not _UNIT_NOT.search(m["unit"]) and m[1].count("{") == m[1].count("}"):
            return m[1].strip()
    return s


def _inequality(s: str) -> tuple[str, str, list[str]] | None:
    """``(variable, interval, bounds)`` for a one-variable inequality or a chain of two, else None.

    "k < -5" -> "(-\\infty, -5)", "-2 < x \\le 7" -> "(-2, 7]", "4 \\ge x > 3" -> "(3, 4]".
    """
    m = _INEQ_TWO.match(s)
    if m and (m["op1"] in _LESS) == (m["op2"] in _LESS):
        lo, hi, op_lo, op_hi = m["lo"].strip(), m["hi"].strip(), m["op1"], m["op2"]
        if op_lo not in _LESS:  # "4 \ge x > 3": read from the other end
            lo, hi, op_lo, op_hi = hi, lo, op_hi, op_lo
        interval = f"{'(' if op_lo in _STRICT else '['}{lo}, {hi}{')' if op_hi in _STRICT else ']'}"
        return m["var"], interval, [lo, hi]
    m = _INEQ_ONE.match(s)
    rev = False
    if not m:
        m = _INEQ_ONE_REV.match(s)
        rev = True
    if not m:
        return None
    op, val = m["op"], m["val"].strip()
    closed = op not in _STRICT
    if (op in _LESS) != rev:  # the variable is below the value
        return m["var"], rf"(-\infty, {val}{']' if closed else ')'}", [val]
    return m["var"], rf"{'[' if closed else '('}{val}, \infty)", [val]


def _interval(s: str) -> str | None:
    """A one-variable inequality, or a chain of two, as interval notation; None if ``s`` is not one."""
    found = _inequality(s)
    return found[1] if found else None


def _is_constant(bound: str) -> bool:
    """Whether a bound holds no variable ("-5", "\\frac{\\pi}{2}", "\\sqrt{3}"; not "t", "2r")."""
    return not re.search(r"[A-Za-df-z]", _CONSTANTS.sub(" ", bound))


def _condition_set(s: str) -> tuple[str, str] | None:
    """``(variable, set)`` for a condition on one variable: inequalities, "x = 1", joined by "or".

    Bounds are constants: "q < t" relates two variables, and stays a relation for math-verify to compare.
    """
    found = []
    for part in split_top(s, _OR):
        part = part.strip()
        point = _POINT.match(part)
        ineq = None if point else _inequality(part)
        if point and _is_constant(point["val"]):
            found.append((point["var"], rf"\{{{point['val'].strip()}\}}"))
        elif ineq and all(_is_constant(b) for b in ineq[2]):
            found.append(ineq[:2])
        else:
            return None
    # One variable throughout; "x = 1 or x = 2" is a list of values, left to the list rules.
    if len({var for var, _ in found}) != 1 or all(set_.startswith(r"\{") for _, set_ in found):
        return None
    return found[0][0], r" \cup ".join(set_ for _, set_ in found)


def _vector(s: str) -> str | None:
    """The tuple of a one-row or one-column matrix, or of "\\langle a, b \\rangle"; None otherwise."""
    m = _ANGLE.match(s)
    if m and len(split_top(m["body"], _COMMA)) > 1:
        return f"({m['body']})"
    m = _MATRIX.match(s)
    if not m:
        return None
    rows = [_CELL.split(r.strip()) for r in split_top(m["body"].strip(), _ROW_BREAK) if r.strip()]
    if len(rows) == 1:
        cells = rows[0]
    elif all(len(r) == 1 for r in rows):
        cells = [r[0] for r in rows]
    else:
        return None
    return "(" + ", ".join(c.strip() for c in cells) + ")" if len(cells) > 1 else None


def set_notation(s: str) -> str:
    """A set, interval or vector written in a notation math-verify does not compare, in one it does.

    Args:
        s: a cleaned answer or gold.

    Returns:
        ``s`` as interval, union or tuple notation when it is a condition on one variable, set-builder
        notation, a membership or a vector (see the module docstring); else ``s`` unchanged.

    >>> set_notation(r"a \\leqslant -2 \\text{ or } a = 1")
    '(-\\\\infty, -2] \\\\cup \\\\{1\\\\}'
    """
    vector = _vector(s)
    if vector:
        return vector
    m = _SET_BUILDER.match(s)
    if m:
        found = _condition_set(m["cond"])
        return found[1] if found and found[0] == m["var"] else s
    m = _MEMBERSHIP.match(s)
    if m:
        return s[m.start("set") :].strip()
    found = _condition_set(s) if _OR.search(s) or re.search(_REL, s) else None
    return found[1] if found else s


def labelled_values(s: str) -> str | None:
    """The values of a list whose every item is labelled by a name: "Minimum: 1, Maximum: 3" -> "1, 3".

    Args:
        s: an answer, or a sentence.

    Returns:
        The values joined by ", ", or None when an item has no label or its value is prose.
    """
    if ":" not in s:
        return None
    values = []
    for item in split_top(_TEXT_LABEL.sub(r"\1\2 ", s.strip().lstrip("-*\u2022 ")), _ITEM_SEP):
        m = _LABELLED.match(item.strip())
        if not m or _PROSE_WORD.search(m["value"]):
            return None
        values.append(m["value"].strip())
    return ", ".join(values)


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
        s = re.sub(r"[.,;:]+$", "", s).strip()
    return s


# Extraction cleans each box several times (parts, hedges, the answer); GRPO groups repeat answers.
@lru_cache(maxsize=8192)
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
    s = re.sub(r"\s+", " ", s).strip()
    s = _CURRENCY.sub("", s).strip() if re.search(r"\d", s) else s
    # What held a currency sign ("\text{\$}", "\ \text{USD}"), and the space before it.
    s = re.sub(r"(?:\s*(?:\\[,;: ]|~))*\s*\\text\{\s*\}", "", s).strip()
    s = strip_units(_ORDINAL.sub("", s))
    m = _TEXT_WRAP.match(s)
    if m and re.fullmatch(r"\s*" + NUMERIC_HEAD + r"\s*", m["inner"]):
        s = m["inner"].strip()
    s = s.replace("\\%", "%").replace("%", "\\%")
    s = _notation(labelled_values(s) or s)
    raw = _destructure(s)
    s = _last_sides(s)
    return _interval(s) or s, raw


def _notation(s: str) -> str:
    """Scientific notation in e-form as a power of ten, and sets as :func:`set_notation` writes them."""
    m = _E_NOTATION.fullmatch(s)
    if m:
        return rf"{m['m']} \times 10^{{{int(m['e'])}}}"
    return set_notation(s)


def clean_gold(gold: str) -> str:
    """Normalise a gold answer like an answer: delimiters ("$5,-2$", "\\[ ... \\]"), Unicode, units and ordinals
    go, and sets and vectors are written as :func:`set_notation` writes them.

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
    s = re.sub(r"\s+", " ", unicode_math(s)).strip()
    return _notation(strip_units(_ORDINAL.sub("", s)))
