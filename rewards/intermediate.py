"""Whether an earlier box is no final answer: an intermediate result, or the answer to another part.

A completion with several boxes commits to each of them unless it withdraws one
(:mod:`stagerl.rewards.retraction`). Two kinds of earlier boxes are not commitments to the question's
answer, so the last box alone is the answer:

1. An intermediate result: the last box is computed from it.

   - Its value is an operand in the computation that ends in the last box (in the last box's own sentence,
     or in an equation whose last side is the last box's value), written out or through a name the work
     gave it ("\\boxed{12} dollars ... $25 \\times 12 = \\boxed{300}$"); a fraction's numerator and
     denominator both are ("\\boxed{\\frac{9}{5}}. So $m = 9$, $n = 5$ and $m + n = \\boxed{14}$"). A
     number written as an exponent or subscript is not an operand.
   - Or it is a formula in a variable the work then gives a value ("\\boxed{\\frac{12}{T^2}}. Since
     $T = 13$, ... \\boxed{\\frac{12}{169}}"): the last box evaluates it.

2. The answer to another part: both boxes are labelled by the quantity they answer, and the labels name
   different quantities ("Damping ratio: \\boxed{0.05} - Damped natural frequency: \\boxed{99.9}", "the
   mean is \\boxed{14} and the standard deviation is \\boxed{3.5}", "$m - n = \\boxed{4}$"); or the earlier
   box is a verdict (yes, no, true, false) and the last is not: it answers a yes-or-no part.

   A label is the name a box is stated for: the first side of the equation the box ends ("$m - n = 9 - 5
   = \\boxed{4}$"), else the noun phrase before "is", "are", "=", ":" ... in the box's clause ("the
   distance modulus is"). Two labels name the same quantity when the words before their first
   preposition are the same once articles, discourse words and generic nouns ("answer", "value",
   "result") are dropped ("the area of the triangle" and "the area"); with no such word, all of them
   count ("the value of $x$" and "the value of $y$" differ). A clause that states a condition or names a
   position ("if it is weighted, ...", "Case 1:", "Option B", "Part (b)") labels nothing.

Hedges stay hedges, so neither rule can be bought by hedging:

- boxes offered as alternatives, with "or", "either", "alternatively" or "otherwise" in the sentence of
  either box, are never set aside;
- two boxes labelled as the same quantity are two answers for it, even if the work between uses the first
  ("$k = \\boxed{3}$. For $k = 3$, $2k + 1$ is odd, so $k = \\boxed{5}$"); only a formula evaluated
  (the variable case of rule 1) is set aside under the same label;
- boxes without labels, one for each case or option, are two answers.

Only the last box is graded once an earlier one is set aside, so a policy gains nothing by writing the
earlier one. Work is read up to ``MAX_WORK_CHARS`` before the last box, and labels in the
``MAX_LABEL_CHARS`` before each box, so a text full of boxes costs time linear in its length.
"""

from __future__ import annotations

import re

from stagerl.rewards.clean import clean_answer, spelling_key, split_top

# The computation that ends in the last box is written just before it.
MAX_WORK_CHARS = 2_000
# A label is a short name right before its box.
MAX_LABEL_CHARS = 200
# More content words than this before "is" make a sentence, not a name.
MAX_LABEL_WORDS = 8

_MATH_DELIM = re.compile(r"\$\$|\\\[|\\\]|\\\(|\\\)|\$")
_DISPLAY_LINES = re.compile(r"\s*\n\s*(?=\\\[|\$\$)|(?<=\\\[|\$\$)\s*\n\s*")
_CLOSER = re.compile(r"\s*(?:\$\$|\\\]|\\\)|\$)")
_SENTENCE_END = re.compile(r"\n|[.!?](?=\s|$)")
_ALTERNATIVE = re.compile(r"\b(?:or|either|alternatively|otherwise)\b", re.IGNORECASE)
_COPULA = re.compile(
    r"(?:\s(?:is|are|was|were|equals|is\s+equal\s+to)|=|:|\\approx|\\equiv)"
    r"(?:\s+(?:therefore|thus|then|now|hence|also|still|simply|given\s+by|approximately|about|exactly|roughly))*\s*$",
    re.IGNORECASE,
)
_CLAUSE_BOUNDARY = re.compile(
    r"[.!?;:,\n\u2013\u2014\u2022]|\s-\s|^\s*[-*]\s|\b(?:and|but|so|thus|hence|therefore|then|finally|which|where"
    r"|since|because|giving|gives|yields)\b",
    re.IGNORECASE,
)
_PAREN_GROUP = re.compile(r"\([^()]{0,40}\)")
_INLINE = re.compile(r"\$([^$]{1,80})\$|\\\((.{1,80}?)\\\)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\u27e8[^\u27e9]*\u27e9|\d+")
_STOPWORDS = frozenset(
    "a an the this that these those its our their his her my your we i you it there here also now "
    "final answer answers result results value values solution solutions required desired correct actual "
    "true exact exactly approximately about roughly".split()
)
_PRONOUNS = frozenset("it this that they these those which there he she we one".split())
_PREPOSITIONS = frozenset("of for in on at per between from to with by over under among that".split())
_NOT_A_NAME = frozenset(
    "if when whenever unless otherwise assuming suppose supposing provided case cases option options choice "
    "alternative alternatively either or scenario part step question problem item".split()
)
_VERDICTS = frozenset({"yes", "no", "true", "false"})
_OPERATOR = r"(?:[-+*/]|\\times|\\cdot|\\div|\\pm)"
_BEFORE_OP = re.compile(rf"(?P<op>{_OPERATOR})[\s{{}}()]*$")
_AFTER_OP = re.compile(rf"[\s{{}}()]*(?:{_OPERATOR}|\^)")  # matched at the operand's end
_SIGN = re.compile(r"(?:^|[=(,{\[]|\\le|\\ge|<|>)\s*-[\s{}()]*$")
_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d+)?|\.\d+)$")
_FRACTION = re.compile(r"^-?(?:\\[dt]?frac\{(?P<n>\d+)\}\{(?P<d>\d+)\}|(?P<n2>\d+)/(?P<d2>\d+))$")
_VARIABLE = re.compile(r"(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])")
_EQ = re.compile(r"(?<![<>!\\])=(?!=)")


def _math_fragment(line: str) -> tuple[str, str]:
    """``(prose, math)``: ``line`` split where the formula still open at its end begins ("" when none is)."""
    in_math, opener = False, None
    for m in _MATH_DELIM.finditer(line):
        d = m.group(0)
        if d in ("\\]", "\\)") or (in_math and d in ("$", "$$")):
            in_math = False
        else:
            in_math, opener = True, m
    return (line[: opener.start()], line[opener.end() :]) if in_math else (line, "")


def label(tail: str, start: int, floor: int) -> frozenset[str] | None:
    """The quantity the box at ``tail[start]`` is stated for, as a set of words; None when unlabelled.

    Args:
        tail: the text.
        start: where the box begins.
        floor: where the text that may label it begins (the end of the box before it, or 0).

    Returns:
        The label's words (see the module docstring), or None.

    >>> sorted(label("the distance modulus is $\\\\boxed{27.39}$", 25, 0))
    ['distance', 'modulus']
    """
    if floor < start - MAX_LABEL_CHARS:
        floor = start - MAX_LABEL_CHARS
    elif closer := _CLOSER.match(tail, floor):  # the formula of the box before closes first
        floor = closer.end()
    # A displayed formula on lines of its own belongs to the line that introduces it ("The mean is\n\\[\n").
    before = _DISPLAY_LINES.sub(" ", tail[floor:start])
    prose, math = _math_fragment(before.rsplit("\n", 1)[-1])
    if math.strip().endswith("="):
        name = split_top(math, _EQ)[0].strip()
        if re.search(r"[A-Za-z]", name) and len(name) <= 40:
            return frozenset({spelling_key(name)})
    elif math.strip():
        return None
    prose = re.sub(r"\*\*|__", "", prose)  # markdown bold: "**Damping ratio:**"
    copula = _COPULA.search(prose)
    if not copula:
        return None
    clause = _CLAUSE_BOUNDARY.split(prose[: copula.start()])[-1]
    clause = _INLINE.sub(
        lambda m: f" \u27e8{spelling_key(m.group(1) or m.group(2))}\u27e9 ", _PAREN_GROUP.sub(" ", clause)
    )
    words = [w.lower() for w in _WORD.findall(clause)]
    # A pronoun before "is" refers back ("By symmetry it is"); an opening preposition starts an adverbial, not
    # a name ("For the whole class the bill is"); neither is read as a label.
    if (
        not words
        or len(words) > MAX_LABEL_WORDS
        or _NOT_A_NAME.intersection(words)
        or words[-1] in _PRONOUNS
        or words[0] in _PREPOSITIONS
    ):
        return None
    cut = next((i for i, w in enumerate(words) if w in _PREPOSITIONS), len(words))
    head = [w for w in words[:cut] if w not in _STOPWORDS]
    names = head or [w for w in words if w not in _STOPWORDS and w not in _PREPOSITIONS]
    # A label names something: at least one word or formula that is not a bare number.
    return frozenset(names) if any(not w.isdigit() for w in names) else None


def _sentence_around(tail: str, start: int, end: int) -> str:
    """The sentence holding ``tail[start:end]`` (bounded), for the words that offer alternatives."""
    lo = max(0, start - MAX_LABEL_CHARS)
    ends = [m.end() for m in _SENTENCE_END.finditer(tail, lo, start)]
    after = _SENTENCE_END.search(tail, end, end + MAX_LABEL_CHARS)
    return tail[ends[-1] if ends else lo : after.start() if after else min(len(tail), end + MAX_LABEL_CHARS)]


def _is_operand(token: str, work: str) -> bool:
    """Whether ``token`` (a number or a name) is an operand of an operation in ``work``."""
    boundary = r"(?<![A-Za-z\\.\d^_])" if token[0].isdigit() else r"(?<![A-Za-z\\])"
    for m in re.finditer(boundary + re.escape(token) + r"(?![\d.A-Za-z])", work):
        before = work[max(0, m.start() - 12) : m.start()]
        if re.search(r"[\^_][\s{]*$", before):  # an exponent or subscript, not a value
            continue
        op = _BEFORE_OP.search(before)
        if (op and not (op["op"] == "-" and _SIGN.search(before))) or _AFTER_OP.match(work, m.end()):
            return True
    return False


def _computed_from(earlier: str, final: str, work: str) -> bool:
    """Whether the work that ends in the last box computes with the earlier box's value (rule 1)."""
    value = clean_answer(earlier)[0]
    frac = _FRACTION.match(value)
    if frac:
        operands = [frac["n"] or frac["n2"], frac["d"] or frac["d2"]]
    elif _NUMBER.match(value):
        operands = [value.lstrip("-")]
    else:
        return False
    # Restating the value ("\frac{9}{5}", "9/5") is not computing with it.
    restated = (
        rf"\\[dt]?frac\s*\{{?{operands[0]}\}}?\s*\{{?{operands[-1]}\}}?|{operands[0]}\s*/\s*{operands[-1]}"
    )
    work = re.sub(restated, " ", work) if frac else work
    # The computation: the last box's sentence, and equations whose last side is the last box's value.
    sentences = re.split(r"\n|[.;](?=\s)", work)
    final_key = spelling_key(clean_answer(final)[0])
    steps = [sentences[-1]] + [
        s
        for s in sentences[:-1]
        if _EQ.search(s) and spelling_key(clean_answer(_EQ.split(s)[-1])[0]) == final_key
    ]
    names = {
        op: [op]
        + [
            m.group(1)
            for m in re.finditer(rf"(?<![A-Za-z\\])([A-Za-z])\s*=\s*{re.escape(op)}(?![\d.])", work)
        ]
        for op in operands
    }
    return any(all(any(_is_operand(t, step) for t in names[op]) for op in operands) for step in steps)


def _evaluated(earlier: str, work: str) -> bool:
    """Whether the earlier box is a formula in a variable that the work then gives a value (rule 1)."""
    value = re.sub(r"\\[A-Za-z]+", " ", clean_answer(earlier)[0])
    return any(re.search(rf"(?<![A-Za-z\\]){v}\s*=\s*-?\d", work) for v in set(_VARIABLE.findall(value)))


def _is_verdict(box: str) -> bool:
    return re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", clean_answer(box)[0]).strip().lower() in _VERDICTS


def stands_aside(
    tail: str, earlier: tuple[str, int, int], final: tuple[str, int, int], floors: tuple[int, int]
) -> bool:
    """Whether an earlier box is no final answer next to the last one (see the module docstring).

    Args:
        tail: the text.
        earlier: ``(content, start, end)`` of the earlier box.
        final: ``(content, start, end)`` of the last box (its first part when several stand side by side).
        floors: where the text that may label each box begins: the end of the box before it, or 0.

    Returns:
        True when the earlier box is an intermediate result or another part's answer, and the two are not
        offered as alternatives.

    >>> text = "the weight is $\\\\boxed{\\\\frac{9}{5}}$ pounds. Finally, $m-n = 9-5 = \\\\boxed{4}$"
    >>> stands_aside(text, (r"\\frac{9}{5}", 14, 35), ("4", 65, 74), (0, 35))
    True
    """
    (e_content, e_start, e_end), (f_content, f_start, _) = earlier, final
    if _ALTERNATIVE.search(_sentence_around(tail, e_start, e_end)) or _ALTERNATIVE.search(
        _sentence_around(tail, f_start, f_start)
    ):
        return False
    if _is_verdict(e_content) and not _is_verdict(f_content):
        return True
    work = tail[max(e_end, f_start - MAX_WORK_CHARS) : f_start]
    if _evaluated(e_content, work):
        return True
    e_label, f_label = label(tail, e_start, floors[0]), label(tail, f_start, floors[1])
    if e_label is not None and f_label is not None:
        return e_label != f_label
    return _computed_from(e_content, f_content, work)
