"""Find the final answer of a math solution, as a short LaTeX string.

Pure Python (regexes and linear scanners, no sympy), so it is cheap enough to run in the trainer
process before anything is sent to the grading pool. Whether two spellings are the same answer is left
to the pool when it needs sympy: extraction only reports the candidates.

Rules, in order (each was written against what real model solutions do, see tests/rewards/):

1. Thinking: only the text after the last ``</think>`` counts (a model tries candidate answers while
   thinking). A ``<think>`` that is never closed means the model never finished: no answer.
2. Boxes: empty boxes are ignored (they restate the instruction: "putting the answer within
   \\boxed{}, we get ..."). The last box is the answer; boxes side by side ("\\(\\boxed{3}\\) and
   \\(\\boxed{5}\\)") form one multi-part answer, whatever math delimiters wrap them. An earlier box is
   no final answer when it is an intermediate result the last box is computed from, or the answer to
   another part, each labelled by the quantity it answers (:mod:`stagerl.rewards.intermediate`).
3. Without a box: the section under the last answer heading ("### Final Answer", "**Final Answer**" alone
   on its line; up to the next markdown heading) is where the answer is, read by rules 4 and 5 with its
   bold value ("The product ... when T is 3 is **6**.") as the answer; what comes before it is the work,
   whose "answer" phrases are intermediate. Without a heading, or when its section holds no answer, the
   whole text is read.
4. "final answer is X", "the answer is X", "Answer: X", "#### X". When X is a sentence
   ("Verna received $7.00 in change"), the math inside it is the answer.
5. Fallback: a bold value on the last line; else a displayed formula announced by a conclusion
   ("Thus, the function is: \\[f(x) = 1 - x\\]") and followed by at most two sentences of commentary;
   else the last sentence or displayed formula that holds any math, stepping back over prose without
   math ("This completes the proof."). From a sentence: its last formula or number (a bare name such
   as \\(n\\) names the quantity and is passed over), or the last side of an equation written without
   math delimiters. Formulas listed in prose ("\\(-1, 0,\\) and \\(1\\)") are one list ("-1, 0, 1"), and so
   are values each labelled by a name ("Minimum: 1, Maximum: 3" -> "1, 3").

A hedge is two or more final answers that are not the same answer: every box but those rule 2 sets
aside, or every answer phrase, is a final answer. A self-correction is not a hedge: an answer withdrawn
by a retraction written between it and a later answer, in a later sentence ("\\boxed{6}. However, this
solution doesn't align ... is \\boxed{7}"), is no longer a final answer (see :mod:`stagerl.rewards.retraction`). Spellings of one
number ("\\boxed{11/36}" ... "\\boxed{\\frac{11}{36}}") are decided here; anything needing sympy is
returned in ``others`` and decided by equivalence in the pool.

Completions are untrusted: only the tail of long texts is scanned, answers longer than
``MAX_ANSWER_CHARS`` or nested deeper than ``MAX_DEPTH`` are rejected, and invalid UTF-8 is replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stagerl.rewards.clean import arity, clean_answer, labelled_values, spelling_key, unicode_math
from stagerl.rewards.intermediate import stands_aside
from stagerl.rewards.retraction import retracts
from stagerl.rewards.rules import same_answer

# Final answers sit at the end; scanning only the tail keeps a 1 MB completion as cheap as a short one.
TAIL_CHARS = 8_000
# Longer "answers" are rambling or adversarial; real final answers (even matrices) are far shorter.
MAX_ANSWER_CHARS = 400
# Deeper brace nesting is adversarial and would blow up the LaTeX parser's recursion.
MAX_DEPTH = 40
# A displayed formula longer than this is work, not an answer (and bounds the cost of scanning).
MAX_FORMULA_CHARS = 2_000
# Multi-part questions have a few parts; more boxes than this are not read as parts.
MAX_PARTS = 10
# The fallback steps back over at most this many trailing sentences without math.
MAX_SKIPPED_SENTENCES = 4
# A formula announced by a conclusion ("Thus, the answer is: \[...\]") may be followed by this many
# sentences of commentary and still be the answer.
MAX_AFTER_CONCLUSION = 2

_BOX_CMD = re.compile(r"\\(?:boxed|fbox)\s*")
# A box with nothing visible in it ("\boxed{}", "\boxed{\phantom{2}}"), with its math delimiters.
_EMPTY = r"\\(?:boxed|fbox)\s*\{\s*(?:\\phantom\{[^{}]*\}\s*)?\}"
_EMPTY_BOX = re.compile(rf"\\\(\s*{_EMPTY}\s*\\\)|\$\s*{_EMPTY}\s*\$|{_EMPTY}")
# Between boxes that form one answer: math delimiters and spaces, and at least one separator (a comma,
# "and", alignment). Boxes with nothing but spaces or prose between them are two answers.
_GAP_FILLER = re.compile(r"\\[()\[\]]|\$|\s")
_GAP_SEPARATORS = re.compile(r"(?:,|;|&|\\\\|\\q?quad|\\text\{(?:and|,)\}|and)+")
_ANSWER_PHRASE = re.compile(
    r"\banswer\b\s*(?:\*\*)?\s*(?:is\b|:|=)\s*:?\s*(?:\*\*)?\s*:?[ \t]*", re.IGNORECASE
)
_HASHES = re.compile(r"^\s*####\s*(?P<ans>[^\n]+)", re.MULTILINE)
# An answer heading alone on its line: "### Final Answer", "**Final Answer:**", "Answer:" (bounded
# repetition: linear time on lines of spaces or stars).
_HEADING = re.compile(r"^[#* \t]{0,12}(?:final[ \t]+)?answer[ \t*:]{0,12}$", re.MULTILINE | re.IGNORECASE)
_MARKDOWN_HEADING = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)
# Formulas are matched up to a bounded length, so that a text full of unclosed delimiters costs
# linear time, not quadratic.
_DISPLAY_BODY = rf"(?:\\\[(?P<a>.{{0,{MAX_FORMULA_CHARS}}}?)\\\]|\$\$(?P<b>.{{0,{MAX_FORMULA_CHARS}}}?)\$\$)"
_DISPLAY = re.compile(_DISPLAY_BODY, re.DOTALL)
_DISPLAY_START = re.compile(rf"\s*{_DISPLAY_BODY}", re.DOTALL)
# Inline math: \( \), or $ $ by the markdown rule (no space inside either dollar), so that the
# currency in "pay $30 now and $60 later" is not read as math.
_INLINE = re.compile(
    rf"\\\((?P<b>[^\n]{{1,{MAX_ANSWER_CHARS}}}?)\\\)|\$(?!\s)(?P<a>[^$\n]{{1,{MAX_ANSWER_CHARS}}}?)(?<![\s\\])\$(?!\d)"
)
_BOLD = re.compile(r"\*\*(?P<ans>[^*\n]+)\*\*(?!\s*:)")
# Math written without delimiters: a LaTeX word ("2\sqrt{5}", "4\pi") or a number ("2,280", "$7.00",
# "37.5%", "3/4"); not the digits of a word, exponent or subscript ("3rd", "x^2", "a_1").
_PLAIN_MATH = re.compile(
    r"(?<![\w.^_{\\])(?:-?(?:\d+(?:\.\d+)?)?(?:\\(?:sqrt|d?frac)(?:\{[^{}]*\}|\d)+|\\pi|\\infty)"
    r"|(?:\\?\$\s?)?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?:\\?%)?(?!\w))"
)
_CONCLUSION = re.compile(
    r"\b(?:therefore|thus|hence|so|finally|in conclusion|in summary)\b[^.]*:\s*$", re.IGNORECASE
)
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}\b")
# A bare quantity name ("n", "x_1", "A_{10}", "f(x)"): what is asked, not what was found.
_NAME = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?\s*$")
_MULTI_JOIN = re.compile(r"\s*(?:,|and|or|,\s*and|,\s*or)\s*")
_EQ = re.compile(r"(?<![<>!\\])=(?!=)")
_SENTENCE_END = re.compile(r"\n|[.!?](?=\s|$)")


@dataclass(frozen=True)
class Extraction:
    """The final answer of a completion.

    Attributes:
        answer: cleaned answer (last side of an equation, inequality as interval); None if none or hedged.
        raw: cleaned answer before equation/inequality rewriting (used when the gold is itself an
            equation or inequality); None when ``answer`` is None.
        hedged: True when the completion commits to several answers that are plainly different.
        kind: where the answer came from: "box", "phrase" (an answer phrase whose sentence ended), or
            "fallback" (anything else, including a phrase that runs into the end of the text: on a
            truncated completion that is what the model was still writing); None without an answer.
        others: the other final answers (cleaned like ``answer``) that extraction could not tell apart
            from ``answer`` without sympy; the completion hedges unless each is equivalent to it.
        parts: every non-empty box, in order, one part each, when there are several (a multi-part
            question answered part by part in separate boxes); empty otherwise.
    """

    answer: str | None
    raw: str | None = None
    hedged: bool = False
    kind: str | None = None
    others: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()


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


def find_boxes(text: str) -> list[tuple[str | None, int, int]]:
    """All ``\\boxed{}`` / ``\\fbox{}`` of a text.

    Args:
        text: the text to scan.

    Returns:
        ``(content, start, end)`` per outermost box, in order; ``content`` is None when the box never
        closes.
    """
    out: list[tuple[str | None, int, int]] = []
    for m in _BOX_CMD.finditer(text):
        if out and m.start() < out[-1][2]:  # a box inside a box is part of the outer one's answer
            continue
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


def _answer_region(text: str, think_open: bool) -> str | None:
    """The text the final answer may come from; None while the model is still thinking."""
    opened = think_open or "<think>" in text
    if "</think>" in text:
        after = text.rsplit("</think>", 1)[1]
        return None if "<think>" in after else after
    return None if opened else text


def _mask_inline(text: str) -> str:
    """``text`` with its inline formulas blanked out (same length), to find what lies outside them.

    The filler is NUL: not a space (a period before a formula does not end a sentence), not a word
    character (a number next to a formula is still a number).
    """
    return _INLINE.sub(lambda m: "\0" * len(m.group(0)), text)


def _formula(m: re.Match) -> str:
    """The formula inside a match of ``_INLINE``, ``_DISPLAY`` or ``_DISPLAY_START``."""
    return m.group("a") or m.group("b")


def _is_prose(s: str) -> bool:
    """Whether a sentence has words outside its math ("Verna received $7.00", not "34 hours")."""
    bare = _INLINE.sub(" ", s)
    bare = re.sub(r"\\[a-zA-Z]+", " ", bare)
    return len(_PROSE_WORD.findall(bare)) >= 2


def _formula_group(s: str, spans: list[re.Match], last: int) -> str:
    """The formula ``spans[last]`` with the formulas before it joined by "and"/commas ("$x=5$ and $x=-2$").

    A list's comma may sit inside the formula before the next ("\\(-1, 0,\\) and \\(1\\)"): it separates
    like one written outside, and is not repeated in the joined list ("-1, 0, 1").
    """
    group = [spans[last]]
    for prev in reversed(spans[:last]):
        comma = "," if _formula(prev).rstrip().endswith(",") else ""
        if _MULTI_JOIN.fullmatch(comma + s[prev.end() : group[0].start()]):
            group.insert(0, prev)
        else:
            break
    return ", ".join(_formula(m).strip().rstrip(",").rstrip() for m in group)


def _bold_answer(s: str) -> str | None:
    """The last bold part of ``s`` that is not a label ("**12 tomatoes**", "**west**", not "**Answer:**")."""
    bold = [m["ans"] for m in _BOLD.finditer(s) if not m["ans"].rstrip().endswith(":")]
    return bold[-1] if bold else None


def _math_in_sentence(s: str) -> str | None:
    """The answer a sentence states: its bold part, its labelled values, else its last formula or number.

    A formula that is a bare name ("\\(n\\)", "\\(f(x)\\)") is passed over: it names a quantity ("for
    all \\(x\\) and \\(y\\)"), it does not state one. An equation written without math delimiters
    ("Time = 8 / 4 = 2 weeks") gives its last side.
    """
    bold = _bold_answer(s)
    if bold:
        return bold
    listed = labelled_values(s)
    if listed and arity(listed) > 1:  # "Minimum: 1, Maximum: 3"
        return listed
    spans = list(_INLINE.finditer(s))
    masked = _mask_inline(s)
    eq = [m.end() for m in _EQ.finditer(masked)]
    if eq and not spans:
        rhs = s[eq[-1] :]
        return (_math_in_sentence(rhs) if _is_prose(rhs) else rhs) or rhs
    # (position, index of an inline formula) and (position, plain number or LaTeX word), in order.
    items: list[tuple[int, int | str]] = [(m.start(), i) for i, m in enumerate(spans)]
    items += [(m.start(), m.group(0)) for m in _PLAIN_MATH.finditer(masked)]
    items.sort(key=lambda it: it[0])
    items = [it for it in items if not (isinstance(it[1], int) and _NAME.match(_formula(spans[it[1]])))]
    if not items:
        return None
    last = items[-1][1]
    return _formula_group(s, spans, last) if isinstance(last, int) else last


@dataclass(frozen=True)
class _Stated:
    """One final answer as the text states it: the answer text, where it lies, whether its sentence ended."""

    text: str
    start: int
    end: int
    ended: bool = True


def _phrase_answers(tail: str, masked: str) -> list[_Stated]:
    """Answers stated by a phrase ("The answer is X", "Answer: X", "#### X"), in order.

    Args:
        tail: the text.
        masked: ``_mask_inline(tail)``, where sentence ends are searched (outside formulas).
    """
    found = []
    for m in _ANSWER_PHRASE.finditer(tail):
        end = _SENTENCE_END.search(masked, m.end())
        stop = end.start() if end else len(tail)
        ans = tail[m.end() : stop]
        if not ans.strip():  # "The answer is:" then a displayed formula
            d = _DISPLAY_START.match(tail, m.end())
            if d:
                found.append(_Stated(_formula(d), m.start(), d.end()))
            continue
        # "Final Answer: The final answer is $5$": the inner phrase is the one that counts.
        if _ANSWER_PHRASE.search(ans):
            continue
        if _is_prose(ans):
            ans = _math_in_sentence(ans) or ans
        found.append(_Stated(ans, m.start(), stop, end is not None))
    for m in _HASHES.finditer(tail):
        found.append(_Stated(m["ans"], m.start(), m.end(), m.end() < len(tail.rstrip())))
    return sorted(found, key=lambda a: a.start)


def _first_standing(spans: list[tuple[int, int]], masked: str) -> int:
    """Index of the first final answer not withdrawn: the one after the last retraction between two answers.

    Only the text between two answers is read, and only when a sentence ends in it: "\\boxed{3}, wait,
    \\boxed{4}" offers two answers in one breath, a hedge.

    Args:
        spans: ``(start, end)`` of each final answer in the text, in order.
        masked: the text with its inline formulas masked (``_mask_inline``): sentence ends and retraction
            phrases are searched outside formulas.

    Returns:
        The index into ``spans`` of the first answer after the last retraction (0 when none).
    """
    for i in range(len(spans) - 1, 0, -1):
        lo, hi = spans[i - 1][1], spans[i][0]
        if _SENTENCE_END.search(masked, lo, hi) and retracts(masked[lo:hi]):
            return i
    return 0


def _segments(text: str) -> list[tuple[str, str]]:
    """The text as a list of ("display", formula) and ("sentence", text), in order."""
    out = []
    last = 0
    for d in _DISPLAY.finditer(text):
        out += _sentences(text[last : d.start()])
        out.append(("display", _formula(d)))
        last = d.end()
    out += _sentences(text[last:])
    return out


def _sentences(text: str) -> list[tuple[str, str]]:
    """Prose as ("sentence", text) segments.

    A newline, or "." "!" "?" before a space, ends a sentence, except inside inline math ("$3. 5$") and
    in a number ("3.5").
    """
    masked = _mask_inline(text)
    out, last = [], 0
    for m in _SENTENCE_END.finditer(masked):
        out.append(("sentence", text[last : m.start()]))
        last = m.end()
    out.append(("sentence", text[last:]))
    return [seg for seg in out if seg[1].strip()]


def _fallback_answer(tail: str) -> str | None:
    """The answer of a completion without box or answer phrase (see rule 5 of the module docstring)."""
    bold = _bold_answer(tail.rstrip().rsplit("\n", 1)[-1])
    if bold:  # a bold value on the last line is how markdown-style solutions state their result
        return bold
    segments = _segments(tail)
    # "Therefore, the function is: \[f(x) = 1 - x\] This function is injective since ... \(-1\) ...":
    # a formula announced by a conclusion outranks the commentary after it.
    for j in range(len(segments) - 1, max(0, len(segments) - 2 - MAX_AFTER_CONCLUSION), -1):
        kind, seg = segments[j]
        if kind == "display":
            if seg.strip() and _CONCLUSION.search(segments[j - 1][1]):
                return seg
            break  # a later formula is the next step of the work, not commentary
    skipped = 0
    for kind, seg in reversed(segments):
        ans = seg if kind == "display" else _math_in_sentence(seg)
        if ans and ans.strip():
            return ans
        skipped += 1
        if skipped > MAX_SKIPPED_SENTENCES:
            return None
    return None


def _joins(gap: str) -> bool:
    """Whether the text between two boxes makes them one multi-part answer."""
    return len(gap) <= 100 and bool(_GAP_SEPARATORS.fullmatch(_GAP_FILLER.sub("", gap)))


def _from_boxes(tail: str, boxes: list[tuple[str | None, int, int]]) -> Extraction:
    if boxes[-1][0] is None:
        return Extraction(None)
    # Parts are every box, withdrawn or not: between the boxes of two parts lies the work of the second,
    # and a retraction there ("let's reconsider the minimum") is about that part, not the first.
    parts = _parts([b[0] for b in boxes if b[0] is not None])
    all_boxes = boxes
    boxes = boxes[_first_standing([(b[1], b[2]) for b in boxes], _mask_inline(tail)) :]
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        if prev[0] is not None and _joins(tail[prev[2] : group[0][1]]):
            group.insert(0, prev)
        else:
            break
    final = ", ".join(b[0] for b in group)
    members = {spelling_key(clean_answer(b[0])[0]) for b in group}
    floors = dict(zip((b[1] for b in all_boxes), [0, *(b[2] for b in all_boxes)], strict=False))
    answer = clean_answer(final)[0]
    others = []
    for b in reversed(boxes[: len(boxes) - len(group)]):
        # A box that repeats one part of a multi-part answer is not a different answer.
        if b[0] is None or (len(group) > 1 and spelling_key(clean_answer(b[0])[0]) in members):
            continue
        same = same_answer(clean_answer(b[0])[0], answer)
        if same is True or stands_aside(tail, b, (final, *group[0][1:]), (floors[b[1]], floors[group[0][1]])):
            continue
        others.insert(0, b[0])
        if same is False:  # a hedge already: the boxes before it change nothing
            break
    return _decide([*others, final], "box", parts)


def _parts(contents: list[str]) -> tuple[str, ...]:
    """The different single-part boxes, in order, when there are at least two."""
    if len(contents) > MAX_PARTS:
        return ()
    out: list[str] = []
    for content in contents:
        part = clean_answer(content)[0]
        if arity(part) > 1:
            return ()
        if not any(same_answer(part, seen) for seen in out):
            out.append(part)
    return tuple(out) if len(out) > 1 else ()


def _decide(candidates: list[str], kind: str, parts: tuple[str, ...] = ()) -> Extraction:
    """Clean the candidates; the last is the answer, the others must be the same answer."""
    cleaned = [clean_answer(c) for c in candidates]
    answer, raw = cleaned[-1]
    if not answer or len(answer) > MAX_ANSWER_CHARS or answer.count("{") > MAX_DEPTH:
        return Extraction(None, parts=parts)
    others: dict[str, str] = {}
    for other, _ in cleaned[:-1]:
        same = same_answer(other, answer)
        if same is False:
            return Extraction(None, hedged=True, parts=parts)
        if same is None and spelling_key(other) not in others:
            others[spelling_key(other)] = other
    return Extraction(answer, raw, kind=kind, others=tuple(others.values()), parts=parts)


def _from_prose(text: str, under_heading: bool) -> Extraction | None:
    """The answer of a text without boxes (rules 3 to 5 of the module docstring); None when it states none.

    Args:
        text: the whole text, or the section under its last answer heading.
        under_heading: ``text`` is the section under an answer heading, where a bold value anywhere
            states the answer.
    """
    masked = _mask_inline(text)
    phrases = _phrase_answers(text, masked)
    if phrases:
        phrases = phrases[_first_standing([(p.start, p.end) for p in phrases], masked) :]
        return _decide([p.text for p in phrases], "phrase" if phrases[-1].ended else "fallback")
    bold = _bold_answer(text) if under_heading else None
    if bold:
        return _decide([bold], "phrase")
    last = _fallback_answer(text)
    return _decide([last], "fallback") if last else None


def extract(completion: object, think_open: bool = False) -> Extraction:
    """Extract the final answer of a completion (see the module docstring for the rules).

    Args:
        completion: plain text, a conversational completion, bytes or None.
        think_open: the prompt already opened ``<think>`` (R1-style templates), so a completion without
            ``</think>`` never finished thinking.

    Returns:
        An :class:`Extraction`; its ``answer`` is None when there is no answer or the completion hedges.

    >>> extract("So 5 + 77 = 122. The final answer is 5 + 77 = 122").answer
    '122'
    >>> extract(r"It is \\boxed{3} or maybe \\boxed{4}").hedged
    True
    """
    text = _answer_region(to_text(completion), think_open)
    if text is None:
        return Extraction(None)
    tail = _EMPTY_BOX.sub(" ", unicode_math(text[-TAIL_CHARS:]))
    if not tail.strip():
        return Extraction(None)
    boxes = find_boxes(tail)
    if boxes:
        return _from_boxes(tail, boxes)
    headings = list(_HEADING.finditer(tail))
    if headings:
        # The section runs to the next markdown heading ("### Verification"), or to the end.
        after = _MARKDOWN_HEADING.search(tail, headings[-1].end())
        found = _from_prose(
            tail[headings[-1].end() : after.start() if after else len(tail)], under_heading=True
        )
        if found is not None:
            return found
    return _from_prose(tail, under_heading=False) or Extraction(None)


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
