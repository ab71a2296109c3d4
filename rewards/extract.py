"""Find the final answer of a math solution, as a short LaTeX string.

Pure Python (regexes and a linear brace scanner, no sympy), so it is cheap enough to run in the trainer
process before anything is sent to the grading pool, and its output is the cache key of the pool.

Rules, in order:

1. R1-style output: when ``</think>`` is present only the text after the last one counts (a model tries
   candidate answers while thinking; only what it commits to afterwards is its answer).
2. The last ``\\boxed{}`` / ``\\fbox{}``. Boxes that sit side by side ("\\boxed{3} and \\boxed{5}") form
   one multi-part answer. Boxes elsewhere that disagree with it are a hedge: no answer.
3. Without a box: "final answer is X", "the answer is X", "Answer: X", "#### X" (several that disagree
   are a hedge), then, on the last line, a displayed formula, a bold ``**X**``, the last side of an
   equation ("= 34 hours") or the last number.
4. Clean-up: strip ``$``, bold, trailing punctuation, units and currency after a number; map unicode
   (``√3``, ``π``, ``−``, ``≤``); reduce an equation chain to its last side ("5 + 77 = 122" -> "122",
   "x = 5 and x = -2" -> "5, -2"); turn a one-variable inequality into an interval ("k < -5" ->
   "(-\\infty, -5)").

Completions are untrusted: only the tail of long texts is scanned, answers longer than
``MAX_ANSWER_CHARS`` or nested deeper than ``MAX_DEPTH`` are rejected, and invalid UTF-8 is replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Final answers sit at the end; scanning only the tail keeps a 1 MB completion as cheap as a short one.
TAIL_CHARS = 8_000
# Longer "answers" are rambling or adversarial; real final answers (even matrices) are far shorter.
MAX_ANSWER_CHARS = 400
# Deeper brace nesting is adversarial and would blow up the LaTeX parser's recursion.
MAX_DEPTH = 40

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

_BOX_CMD = re.compile(r"\\(?:boxed|fbox)\s*")
_BOX_JOIN = re.compile(r"^\s*\$?\s*(?:,|;|&|\band\b|\\text\{\s*(?:and|,)\s*\}|\\quad|\\qquad)\s*\$?\s*$")
_ANSWER_PHRASE = re.compile(
    r"\banswer\b\s*(?:\*\*)?\s*(?:is\b|:|=)\s*:?\s*(?:\*\*)?\s*:?[ \t]*", re.IGNORECASE
)
_HASHES = re.compile(r"^\s*####\s*(?P<ans>[^\n]+)", re.MULTILINE)
_DISPLAY = re.compile(r"(?:\$\$(?P<a>(?:\\\$|[^$])+)\$\$|\\\[(?P<b>.+?)\\\])\s*\.?\s*$", re.DOTALL)
_BOLD = re.compile(r"\*\*(?P<ans>[^*\n]+)\*\*")
_INLINE_MATH = re.compile(r"\$(?P<a>[^$\n]+)\$|\\\((?P<b>.+?)\\\)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?%?|-?\.\d+")
# A sentence ends at a period followed by a space or the end (not the point of "3.5").
_SENTENCE_END = re.compile(r"(?<!\\)\.(?=\s|$)")

_NUMERIC_HEAD = r"-?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+|\\d?frac\{\d+\}\{\d+\})"
_UNIT_TAIL = re.compile(
    r"^(?P<num>" + _NUMERIC_HEAD + r")\s*(?:\\,|\\;|\\ |~)?\s*"
    r"(?:\\(?:text|mbox|mathrm|textbf)\{[^{}]*\}(?:\^\d)?|(?<=\s)[A-Za-z]{2,}[A-Za-z .]*?(?:\^\d)?)\s*$"
)
_CURRENCY = re.compile(r"\\\$|\$|\\text\{\s*\\\$\s*\}|USD|€|£")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(?P<inner>[^{}]*)\}$")
_REL = r"(?:<=|>=|<|>|\\leq?|\\geq?|\\lt|\\gt|\\leqslant|\\geqslant)"
_INEQ_ONE = re.compile(r"^(?P<var>[a-zA-Z])\s*(?P<op>" + _REL + r")\s*(?P<val>[^<>=]+)$")
_INEQ_ONE_REV = re.compile(r"^(?P<val>[^<>=]+?)\s*(?P<op>" + _REL + r")\s*(?P<var>[a-zA-Z])$")
_INEQ_TWO = re.compile(
    r"^(?P<lo>[^<>=]+?)\s*(?P<op1>" + _REL + r")\s*(?P<var>[a-zA-Z])\s*"
    r"(?P<op2>" + _REL + r")\s*(?P<hi>[^<>=]+)$"
)


@dataclass(frozen=True)
class Extraction:
    """The final answer of a completion.

    Attributes:
        answer: cleaned answer (last side of an equation, inequality as interval); None if none or hedged.
        raw: cleaned answer before equation/inequality rewriting (used when the gold is itself an
            equation or inequality); None when ``answer`` is None.
        hedged: True when the completion commits to several different final answers.
    """

    answer: str | None
    raw: str | None = None
    hedged: bool = False


def to_text(completion: object) -> str:
    """Turn a TRL completion (plain string, conversational list, bytes or None) into text.

    Args:
        completion: a string, a list of ``{"role", "content"}`` messages (the assistant turns are
            joined), bytes (decoded, invalid UTF-8 replaced) or None.

    Returns:
        The text, with lone surrogates replaced so that it can always be encoded.

    >>> to_text([{"role": "assistant", "content": "\\\\boxed{2}"}])
    '\\\\boxed{2}'
    """
    if completion is None:
        return ""
    if isinstance(completion, bytes):
        return completion.decode("utf-8", errors="replace")
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list):
        parts = []
        for msg in completion:
            if isinstance(msg, dict) and msg.get("role", "assistant") == "assistant":
                content = msg.get("content")
                if isinstance(content, list):  # multimodal content blocks
                    content = " ".join(c.get("text", "") for c in content if isinstance(c, dict))
                parts.append(content if isinstance(content, str) else "")
        completion = "\n".join(parts)
    if not isinstance(completion, str):
        completion = str(completion)
    # Lone surrogates (from a bad detokenisation) break pickling to workers and JSON output.
    return completion.encode("utf-8", errors="replace").decode("utf-8")


def _unicode(s: str) -> str:
    """Unicode math ("√3", "4π", "−2", "≤") as LaTeX."""
    if s.isascii():
        return s
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    return _SQRT_UNICODE.sub(lambda m: r"\sqrt{" + m.group(1).strip("{}()") + "}", s)


def _brace_group(text: str, start: int) -> tuple[str, int] | None:
    """Content of the balanced ``{...}`` opening at ``text[start]`` and the index after it."""
    depth = 0
    for i in range(start, min(len(text), start + 4 * MAX_ANSWER_CHARS)):
        ch = text[i]
        if ch == "\\":  # skip escaped characters such as \{ and \}
            continue
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
            if depth > MAX_DEPTH:
                return None
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def _boxes(text: str) -> list[tuple[str | None, int, int]]:
    """All boxes as (content or None when malformed, start, end)."""
    out = []
    for m in _BOX_CMD.finditer(text):
        pos = m.end()
        if pos < len(text) and text[pos] == "{":
            group = _brace_group(text, pos)
            if group is None:
                out.append((None, m.start(), pos))
            else:
                out.append((group[0], m.start(), group[1]))
        else:  # "\boxed 5": the argument is the next token
            tok = re.match(r"[^\s$]+", text[pos:])
            if tok:
                out.append((tok.group(0), m.start(), pos + tok.end()))
    return out


def _key(answer: str) -> str:
    """A spelling-insensitive form, to tell whether two final answers differ."""
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:| )", "", answer)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac")
    return re.sub(r"\s+", "", s).rstrip(".").lower()


def _split_top(s: str, seps: re.Pattern) -> list[str]:
    """Split on a separator pattern only outside braces/brackets/parentheses."""
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


_LIST_SEPS = re.compile(r"\s*(?:,|;|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b|\\quad|\\qquad)\s*")
_EQ_SEP = re.compile(r"(?<![<>!\\])=(?!=)")


_WORD_SEP = re.compile(r"\\text\{\s*(?:and|or)\s*\}|\b(?:and|or)\b")


def _last_sides(s: str) -> str:
    """Reduce equations to their last side, part by part: "x = 5 and x = -2" -> "5, -2".

    Parts joined by "and"/"or" become a list, so "3 or 4" is a set (which a single gold never equals).
    Parts without "=" next to parts with one are prose ("Adding, 16 + 18 = 34") and are dropped.
    """
    has_eq = bool(_EQ_SEP.search(s))
    if not has_eq and not _WORD_SEP.search(s):
        return s
    parts = [p.strip() for p in _split_top(s, _LIST_SEPS) if p.strip()]
    if has_eq and not any(_EQ_SEP.search(p) for p in parts[1:]):
        # "n = 1, 2, 3": one left-hand side for a whole list.
        parts[0] = _split_top(parts[0], _EQ_SEP)[-1].strip()
    elif has_eq:
        parts = [_split_top(p, _EQ_SEP)[-1].strip() for p in parts if _EQ_SEP.search(p)]
    parts = [_strip_units(p) for p in parts if p]
    return ", ".join(parts) if parts else s


def _strip_units(s: str) -> str:
    """ "34 hours", "10\\text{ cm}^2" -> the number. A gold that needs the unit is rare; a solution that
    adds one is common."""
    m = _UNIT_TAIL.match(s)
    return m["num"].strip() if m else s


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


def clean_answer(ans: str) -> tuple[str, str]:
    """Normalise an extracted answer string.

    Args:
        ans: the text found in a box or after an answer phrase.

    Returns:
        ``(answer, raw)``: ``answer`` with equations reduced to their last side and inequalities turned
        into intervals, ``raw`` without those two rewrites.

    >>> clean_answer("5 + 77 = 122.")
    ('122', '5 + 77 = 122')
    """
    s = _unicode(ans.strip())
    # Markdown and math delimiters around the answer.
    for _ in range(3):
        s = s.strip().strip("*").strip()
        s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
        s = re.sub(r"^\$+|\$+$", "", s).strip()
        s = re.sub(r"[.,;:!]+$", "", s).strip()
    s = s.replace("$", " ") if s.count("$") % 2 == 0 else s  # "$x=5$ and $x=-2$"
    s = re.sub(r"\\text\{\s*\}", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = _CURRENCY.sub("", s).strip() if re.search(r"\d", s) else s
    s = _strip_units(s)
    m = _TEXT_WRAP.match(s)
    if m and re.fullmatch(r"\s*" + _NUMERIC_HEAD + r"\s*", m["inner"]):
        s = m["inner"].strip()
    s = s.replace("\\%", "%").replace("%", "\\%")
    raw = s
    s = _last_sides(s)
    s = _interval(s)
    return s, raw


def _sentence(text: str) -> str:
    """The text up to the end of its first sentence, ignoring periods inside ``$...$`` ("3.5", "\\ldots")."""
    in_math = False
    for i, ch in enumerate(text):
        if ch == "\n":
            return text[:i]
        if ch == "$":
            in_math = not in_math
        elif ch == "." and not in_math and (i + 1 == len(text) or text[i + 1].isspace()):
            return text[:i]
    return text


def _phrase_answers(tail: str) -> list[str]:
    found = []
    for m in _ANSWER_PHRASE.finditer(tail):
        ans = _sentence(tail[m.end() :])
        # "Final Answer: The final answer is $5$": the inner phrase is the one that counts.
        if ans.strip() and not _ANSWER_PHRASE.search(ans):
            found.append(ans)
    for m in _HASHES.finditer(tail):
        found.append(m["ans"])
    return found


def _last_line_answer(tail: str) -> str | None:
    m = _DISPLAY.search(tail.rstrip())
    if m:
        return m.group("a") or m.group("b")
    lines = [ln for ln in tail.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = lines[-1]
    bold = _BOLD.findall(line)
    if bold:
        return bold[-1]
    sentences = [x for x in _SENTENCE_END.split(line) if x.strip()]
    last = sentences[-1] if sentences else line
    math = list(_INLINE_MATH.finditer(last))
    if math:
        # "$x = 5$ and $x = -2$": formulas joined only by "and"/"or"/commas are one multi-part answer.
        group = [math[-1]]
        for prev in reversed(math[:-1]):
            if re.fullmatch(r"\s*(?:,|and|or|,\s*and|,\s*or)\s*", last[prev.end() : group[0].start()]):
                group.insert(0, prev)
            else:
                break
        return ", ".join(m.group("a") or m.group("b") for m in group)
    if "=" in last:
        return last
    # Last resort: the last word that looks like math ("34", "4\\pi", "\\sqrt{3}", "\\$1,250").
    for word in reversed(last.split()):
        if re.search(r"\d|\\(?:sqrt|pi|frac|infty)", word):
            return word.strip(".,;:!?")
    return None


def extract(completion: object) -> Extraction:
    """Extract the final answer of a completion (see the module docstring for the rules).

    Args:
        completion: plain text, a conversational completion, bytes or None.

    Returns:
        An :class:`Extraction`; its ``answer`` is None when there is no answer or the completion hedges.

    >>> extract("So 5 + 77 = 122. The final answer is 5 + 77 = 122").answer
    '122'
    >>> extract(r"It is \\boxed{3} or maybe \\boxed{4}").hedged
    True
    """
    text = to_text(completion)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    tail = _unicode(text[-TAIL_CHARS:])
    if not tail.strip():
        return Extraction(None)

    boxes = _boxes(tail)
    candidates: list[str]
    if boxes:
        if boxes[-1][0] is None:
            return Extraction(None)
        # Merge side-by-side boxes at the end into one multi-part answer.
        group = [boxes[-1]]
        for prev in reversed(boxes[:-1]):
            if prev[0] is not None and _BOX_JOIN.match(tail[prev[2] : group[0][1]]):
                group.insert(0, prev)
            else:
                break
        final = ", ".join(b[0] for b in group)
        others = [b[0] for b in boxes[: len(boxes) - len(group)] if b[0] is not None]
        candidates = [*others, final] if len(group) == 1 else [final]
        if len(group) > 1 and any(_key(o) not in {_key(b[0]) for b in group} for o in others):
            return Extraction(None, hedged=True)
    else:
        candidates = _phrase_answers(tail)
        if not candidates:
            last = _last_line_answer(tail)
            candidates = [last] if last else []
    if not candidates:
        return Extraction(None)

    cleaned = [clean_answer(c) for c in candidates]
    if len({_key(a) for a, _ in cleaned}) > 1:
        return Extraction(None, hedged=True)
    answer, raw = cleaned[-1]
    if not answer or len(answer) > MAX_ANSWER_CHARS or answer.count("{") > MAX_DEPTH:
        return Extraction(None)
    return Extraction(answer, raw)


def extract_answer(text: object) -> str | None:
    """The final answer the grader uses.

    Args:
        text: a completion (plain string, conversational list, bytes or None).

    Returns:
        The cleaned final answer, or None when there is none or the completion hedges.

    >>> extract_answer("Adding, 16 + 18 = 34 hours.")
    '34'
    """
    return extract(text).answer
