"""Whether the text between two final answers withdraws the first one (a self-correction).

A model that states an answer, says that it is wrong, and states another has given one final answer:
the last. People grade it so, and a reward that scored it as a hedge would punish the very behaviour RL is
meant to grow (R1-Zero's "aha": "Wait, ..."). Two answers with nothing withdrawn between them stay a hedge
("3 or 4", "it could be 3; it could also be 4", "\\boxed{3}. Alternatively, \\boxed{4}").

Only the text between the two answers is read, so a retraction elsewhere in the solution changes nothing.
Grading the last answer after a retraction gives a policy nothing to gain from writing several: only the
last one is graded.

The phrases, as the model solutions of ProcessBench write them (tests/rewards/data/), each matched only in
the forms listed beside it in ``_PHRASES``:

- An interjection that stops the work: "Wait,", "But wait", "Hmm, wait" (R1-Zero's aha). A "wait" inside a
  sentence ("how long Paul will wait") is not one.
- A sentence that sets the record straight: "Actually, ...", "Correction: ...", "On second thought".
- A verdict on what came before: "However, this calculation is incorrect", "This is also incorrect", "our
  answer is actually incorrect", "this isn't right", "However, this is not the final answer", "this
  solution doesn't align with ...", "This doesn't make sense!", "which contradicts our previous conclusion".
- A mistake owned: "we made a mistake", "there is an error in", "realizing the mistake", "The initial steps
  incorrectly simplified".
- A redo: "Let me recompute", "Let's re-evaluate", "Let us re-examine", "Let's reconsider", "let's correct
  it", "Let's start over", "Upon closer examination", "Upon re-checking", "upon further review".

Left out on purpose, because they announce a check or another way rather than withdraw the answer, so a
different answer after them is a second answer (a hedge): "Let me verify", "Checking again", "Let me
recheck", "double-check", "Alternatively", "Let's go back to", a bare "However", and a case dismissed
by name ("\\(n = 2\\) does not work", "this case does not work", "this contradicts our assumption": case
analysis and proofs by contradiction, not a withdrawn answer).
"""

from __future__ import annotations

import re

# What the writer says about the answer or work before: "this calculation is incorrect", "this isn't right".
_SUBJECT = r"(?:this|that|it|which|the|our|my)(?:\s+[\w-]{1,20}){0,2}"
# The answer or its work, not a case being tried: "this solution doesn't align", not "this case does not work".
_ANSWER_SUBJECT = r"(?:this|that|it|which)(?:\s+(?:answer|result|solution|value|calculation|conclusion|approach|reasoning))?"
_VERDICT = (
    r"(?:incorrect|wrong|erroneous|mistaken|flawed|not\s+(?:quite\s+|entirely\s+)?(?:right|correct|accurate))"
)
_PHRASES = (
    # "Wait,", "But wait", "Hmm, wait": an interjection that stops the work (not "Paul will wait").
    r"(?:^|[.!?:;\n]\s{0,4}|\b(?:but|oh|hmm|no),?\s{1,4})(?:\*\*)?wait\b",
    # "Actually, ...", "Correction: ...", "On second thought": a sentence that sets the record straight.
    r"(?:^|[.!?\n]\s{0,4})(?:\*\*)?(?:actually|correction|on\s+second\s+thought|on\s+reflection)\b",
    # "However, this calculation is incorrect", "This is also incorrect", "our answer is actually incorrect",
    # "This result seems incorrect", "this is not entirely correct".
    rf"\b{_SUBJECT}\s+(?:is|was|seems|appears)\s+(?:to\s+be\s+)?(?:also\s+|still\s+|actually\s+)?{_VERDICT}\b(?!-)",
    # "this isn't right", "that wasn't correct".
    r"\b(?:isn't|wasn't|isn’t|wasn’t)\s+(?:quite\s+|entirely\s+)?(?:right|correct|accurate)\b(?!-)",
    # "However, this is not the final answer", "this is not the correct answer either".
    r"\b(?:is|was)\s+(?:still\s+|also\s+)?not\s+the\s+(?:final\s+|correct\s+|right\s+)?answer\b",
    # "this solution doesn't align with", "This doesn't make sense!", "this does not satisfy the condition".
    rf"\b{_ANSWER_SUBJECT}\s+(?:still\s+|also\s+)?(?:doesn't|does\s+not|doesn’t)\s+"
    r"(?:align|match|fit|satisfy|make\s+sense|work|hold)\b",
    # "which contradicts our previous conclusion" (not a proof by contradiction: "contradicts our assumption").
    r"\bcontradicts\s+(?:our|my|the)\s+(?:previous|earlier|initial|above|first)\b",
    # "we made a mistake", "there is an error in", "realizing the mistake", "a miscalculation" (not "trial and
    # error": an article or owner comes first).
    r"\b(?:a|an|the|my|our|this|that)\s+(?:\w{1,20}\s+)?(?:mistake|error|miscalculation|oversight)s?\b",
    # "The initial steps incorrectly simplified", "I miscalculated".
    r"\b(?:incorrectly|mistakenly|erroneously|wrongly|miscalculated)\b",
    # "Let me recompute", "Let's re-evaluate", "let us re-examine", "let's correct it", "Let's start over"
    # (not "let's rewrite" or "let's rearrange": those are steps, not a redo).
    r"\blet(?:'s|’s|\s+me|\s+us)\s+(?:re-?(?:compute|calculate|evaluate|examine|consider|do|think|visit"
    r"|assess|count|solve|work)|correct|fix|start\s+over|try\s+again)",
    # "Upon closer examination", "Upon re-checking", "upon further review", "Upon reevaluation".
    r"\bupon\s+(?:further|closer|careful|second|re-?\w{3,20})\b",
)
# Bounded repetition only, so a search costs time linear in the text.
_RETRACTION = re.compile("|".join(_PHRASES), re.IGNORECASE)


def retracts(between: str) -> bool:
    """Whether ``between``, the text between two final answers, withdraws the first.

    Args:
        between: the text after the first answer and before the second (math delimiters included).

    Returns:
        True when it holds a retraction phrase (see the module docstring).

    >>> retracts("$. However, this calculation is incorrect. Recomputing, we get $")
    True
    >>> retracts("$. Alternatively, counting the other way, we get $")
    False
    """
    return _RETRACTION.search(between) is not None
