"""Mathematical equivalence of an extracted answer and a gold answer, with math-verify.

This module runs inside the grading workers (``stagerl.rewards.pool``), never in the trainer: sympy can hang
on inputs such as ``10^{10^{10}}`` and math-verify's own timeout (``signal.alarm``) cannot stop a hung
C-level call, so its timeouts are turned off here and the pool kills the worker instead.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

# math-verify warns once per process that timeouts are off; the pool provides them.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_EXTRACTION = [LatexExtractionConfig(), ExprExtractionConfig()]


@lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple | None:
    """Parse a gold answer the way the reference ``verify(parse("$"+gold+"$"), ...)`` does.

    Args:
        gold: the gold answer as LaTeX (without ``$``).

    Returns:
        math-verify's parse result, or None when nothing could be parsed (GRPO samples 16 completions
        per prompt, so the cache saves 15 gold parses).
    """
    for wrapped in (f"${gold}$", f"\\boxed{{{gold}}}", gold):
        parsed = parse(wrapped, extraction_config=_EXTRACTION, parsing_timeout=None)
        if parsed:
            return tuple(parsed)
    return None


def warm_up() -> None:
    """Run one grade so that math-verify's parser and sympy caches are built (in the forkserver, once)."""
    try:
        grade_pair("\\frac{1}{2}", "0.5")
    except Exception:  # a failed warm-up only costs time later
        pass


def _text_key(s: str) -> str:
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", s)
    return re.sub(r"[\s$().]", "", s).lower()


def grade_pair(answer: str, gold: str) -> float | None:
    """Grade one extracted answer against one gold answer.

    Args:
        answer: the extracted, cleaned final answer (LaTeX without ``$``).
        gold: the gold answer.

    Returns:
        1.0 if equivalent, 0.0 if not, None when the gold answer itself cannot be parsed.

    >>> grade_pair(r"\\frac{1}{2}", "0.5")
    1.0
    """
    gold_parsed = parse_gold(gold)
    if gold_parsed is None:
        # Text answers ("Monday") may not parse as math; an identical spelling is still a match.
        if _text_key(gold) and _text_key(answer) == _text_key(gold):
            return 1.0
        return None
    pred = parse(f"${answer}$", extraction_config=_EXTRACTION, parsing_timeout=None)
    if not pred:
        pred = parse(answer, extraction_config=_EXTRACTION, parsing_timeout=None)
    if not pred:
        return 1.0 if _text_key(answer) == _text_key(gold) else 0.0
    ok = verify(list(gold_parsed), pred, timeout_seconds=None)
    return 1.0 if ok else 0.0
