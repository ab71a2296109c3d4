"""The format reward: reasoning, then exactly one boxed final answer (optionally R1-style thinking).

Binary on purpose: partial credits for shape invite a policy to farm them instead of solving.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from stagerl.rewards.extract import find_boxes, to_text

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def format_reward(
    think: bool = False,
    min_reasoning_chars: int = 20,
    max_trailing_chars: int = 200,
) -> Callable[..., list[float]]:
    """Build the format reward.

    Args:
        think: True requires ``<think>...</think>`` (non-empty) before the answer; False allows it
            (well-formed: one opening tag at the start, one closing tag) but does not require it.
        min_reasoning_chars: non-space characters of reasoning required before the box.
        max_trailing_chars: characters allowed after the box (a closing sentence, not a second answer).

    Returns:
        ``format(completions, **kwargs) -> list[float]``: 1.0 when the shape is right, else 0.0.

    >>> fn = format_reward()
    >>> fn(["Since 2 + 2 = 4 we have the result \\\\boxed{4}.", "\\\\boxed{4}"])
    [1.0, 0.0]
    """

    def one(text: str) -> float:
        n_open, n_close = text.count(_THINK_OPEN), text.count(_THINK_CLOSE)
        if n_open or n_close or think:
            if n_open > 1 or n_close != 1 or (think and n_open != 1):
                return 0.0
            head, answer_part = text.split(_THINK_CLOSE, 1)
            if n_open and not head.lstrip().startswith(_THINK_OPEN):
                return 0.0
            if think and not head.replace(_THINK_OPEN, "").strip():
                return 0.0
        else:
            answer_part = text
        boxes = find_boxes(answer_part)
        if len(boxes) != 1 or not boxes[0][0] or not boxes[0][0].strip():
            return 0.0
        _, start, end = boxes[0]
        before = text[: len(text) - len(answer_part) + start]
        reasoning = re.sub(r"\s|</?think>", "", before)
        if len(reasoning) < min_reasoning_chars:
            return 0.0
        if len(answer_part[end:].strip()) > max_trailing_chars:
            return 0.0
        return 1.0

    def format_fn(completions: list, **kwargs) -> list[float]:
        return [one(to_text(c)) for c in completions]

    format_fn.__name__ = format_fn.__qualname__ = "format"
    return format_fn
