"""The overlong reward: DAPO's soft overlong punishment (Yu et al., 2025, eq. 13).

0 up to ``max_completion_length - soft_cache`` tokens, then a linear ramp down to -1 at
``max_completion_length``, and -1 beyond (a truncated completion). The ramp tells the policy that
it is running long before truncation cuts the answer off, instead of a cliff at the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stagerl.rewards.extract import to_text

logger = logging.getLogger(__name__)


def overlong(max_completion_length: int, soft_cache: int | None = None) -> Callable[..., list[float]]:
    """Build the soft overlong penalty.

    Args:
        max_completion_length: the generation limit in tokens (GRPOConfig.max_completion_length).
        soft_cache: length of the ramp in tokens (DAPO's L_cache); default a quarter of the limit.

    Returns:
        ``overlong(completions, completion_ids=..., **kwargs) -> list[float]`` in [-1, 0]. Lengths come
        from ``completion_ids``; without them, whitespace-separated words stand in (with a warning).

    >>> fn = overlong(100, soft_cache=20)
    >>> fn(["a"] * 3, completion_ids=[[0] * 80, [0] * 90, [0] * 120])
    [0.0, -0.5, -1.0]
    """
    if max_completion_length <= 0:
        raise ValueError(f"max_completion_length must be > 0, got {max_completion_length}")
    cache = max_completion_length // 4 if soft_cache is None else soft_cache
    if not 0 < cache <= max_completion_length:
        raise ValueError(f"soft_cache must be in (0, {max_completion_length}], got {cache}")
    start = max_completion_length - cache
    warned = False

    def overlong_fn(completions: list, completion_ids: list | None = None, **kwargs) -> list[float]:
        nonlocal warned
        if completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        else:
            if not warned:
                logger.warning("overlong: no completion_ids given; counting words instead of tokens")
                warned = True
            lengths = [len(to_text(c).split()) for c in completions]
        out = []
        for n in lengths:
            if n <= start:
                out.append(0.0)
            elif n <= max_completion_length:
                out.append((start - n) / cache)
            else:
                out.append(-1.0)
        return out

    overlong_fn.__name__ = overlong_fn.__qualname__ = "overlong"
    return overlong_fn
