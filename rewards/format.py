"""The format rewards: `format`, open-r1's tag format, and `boxed_format`, reasoning then one boxed answer.

`format` means what it means in open-r1 (and in the recipes written for it): the completion is
``<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>``. `boxed_format` is this project's own shape for
answers graded by `accuracy`: some reasoning, then exactly one non-empty ``\\boxed{}``.

Both are binary on purpose: partial credits for shape invite a policy to farm them instead of solving. Both
take `think_open`: the chat template opened ``<think>`` in the prompt (DeepSeek-R1-Distill's does), so a
completion holds ``</think>`` but never ``<think>``; it is judged as if the block had been opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from stagerl.rewards.extract import find_boxes, to_text

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
# open-r1's rule, flags included: MULTILINE lets `$` match at the end of the `</answer>` line.
_TAGS = re.compile(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", re.DOTALL | re.MULTILINE)


def _opened(text: str, think_open: bool) -> str:
    """`text` as the model's whole reply: with the prompt's opening tag put back when the template opened it."""
    return _THINK_OPEN + "\n" + text if think_open else text


def format_reward(think_open: bool = False) -> Callable[..., list[float]]:
    """Build open-r1's format reward: ``<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>``.

    Args:
        think_open: the prompt ends with an opened ``<think>`` (the completion starts inside the block), so
            the completion is judged with ``<think>\\n`` put in front.

    Returns:
        ``format(completions, **kwargs) -> list[float]``: 1.0 when the completion has that shape, else 0.0.

    >>> fn = format_reward()
    >>> fn(["<think>\\n2 + 2 = 4\\n</think>\\n<answer>\\n4\\n</answer>", "<answer>4</answer>"])
    [1.0, 0.0]
    >>> format_reward(think_open=True)(["2 + 2 = 4\\n</think>\\n<answer>\\n4\\n</answer>"])
    [1.0]
    """

    def format_fn(completions: list, **kwargs) -> list[float]:
        return [float(bool(_TAGS.match(_opened(to_text(c), think_open)))) for c in completions]

    format_fn.__name__ = format_fn.__qualname__ = "format"
    return format_fn


def boxed_format_reward(
    think: bool = False,
    min_reasoning_chars: int = 20,
    max_trailing_chars: int = 200,
    think_open: bool = False,
) -> Callable[..., list[float]]:
    """Build the boxed-answer format reward: reasoning, then exactly one boxed final answer.

    Args:
        think: True requires ``<think>...</think>`` (non-empty) before the answer; False allows it
            (well-formed: one opening tag at the start, one closing tag) but does not require it.
        min_reasoning_chars: non-space characters of reasoning required before the box.
        max_trailing_chars: characters allowed after the box (a closing sentence, not a second answer).
        think_open: the prompt ends with an opened ``<think>``, so the completion is judged with it put in
            front (its ``</think>`` closes the prompt's block).

    Returns:
        ``boxed_format(completions, **kwargs) -> list[float]``: 1.0 when the shape is right, else 0.0.

    >>> fn = boxed_format_reward()
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

    def boxed_format_fn(completions: list, **kwargs) -> list[float]:
        return [one(_opened(to_text(c), think_open)) for c in completions]

    boxed_format_fn.__name__ = boxed_format_fn.__qualname__ = "boxed_format"
    return boxed_format_fn
