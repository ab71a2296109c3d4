"""The overlong reward: DAPO's soft overlong punishment (Yu et al., 2025, eq. 13), as TRL implements it.

0 up to ``max_completion_length - soft_cache`` tokens, then a linear ramp down to -1 at
``max_completion_length``, and -1 beyond (a truncated completion). The ramp tells the policy that
it is running long before truncation cuts the answer off, instead of a cliff at the limit. The ramp is TRL's
``get_soft_overlong_punishment``; this factory gives it the registry's shape (keyword settings, a default
ramp of a quarter of the limit, checked settings) and the name the logs show.
"""

from __future__ import annotations

from collections.abc import Callable

from trl.rewards import get_soft_overlong_punishment


def overlong(max_completion_length: int, soft_cache: int | None = None) -> Callable[..., list[float]]:
    """Build the soft overlong penalty.

    Args:
        max_completion_length: the generation limit in tokens (GRPOConfig.max_completion_length).
        soft_cache: length of the ramp in tokens (DAPO's L_cache); default a quarter of the limit.

    Returns:
        ``overlong(completions, completion_ids, **kwargs) -> list[float]`` in [-1, 0], from the token counts
        TRL passes as ``completion_ids``.

    >>> fn = overlong(100, soft_cache=20)
    >>> fn(["a"] * 3, completion_ids=[[0] * 80, [0] * 90, [0] * 120])
    [0.0, -0.5, -1.0]
    """
    if max_completion_length <= 0:
        raise ValueError(f"max_completion_length must be > 0, got {max_completion_length}")
    cache = max_completion_length // 4 if soft_cache is None else soft_cache
    if not 0 < cache <= max_completion_length:
        raise ValueError(f"soft_cache must be in (0, {max_completion_length}], got {cache}")
    punish = get_soft_overlong_punishment(max_completion_len=max_completion_length, soft_punish_cache=cache)

    def overlong_fn(completions: list, completion_ids: list | None = None, **kwargs) -> list[float]:
        if completion_ids is None:  # lengths are tokens: a word count would be another penalty
            raise ValueError("the overlong reward needs completion_ids (TRL passes them to every reward)")
        return punish(completion_ids)

    overlong_fn.__name__ = overlong_fn.__qualname__ = "overlong"
    return overlong_fn
