"""Reward functions by name, for stage YAMLs (``reward_funcs: [accuracy, boxed_format]``).

Names mean what they mean in open-r1 and TRL: `accuracy` grades the final answer against the gold one,
`format` is open-r1's tag format (``<think>...</think><answer>...</answer>``); `boxed_format` is this
project's "reasoning, then one box".

A name is a key of :data:`REWARDS` or, as a fallback, a dotted import path to a factory or to a
plain reward function (``mypkg.rewards.my_reward``), found from the working directory too, as in TRL.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable

from stagerl.rewards.accuracy import accuracy
from stagerl.rewards.format import boxed_format_reward, format_reward
from stagerl.rewards.overlong import overlong

RewardFunc = Callable[..., list]

REWARDS: dict[str, Callable[..., RewardFunc]] = {
    "accuracy": accuracy,
    "boxed_format": boxed_format_reward,
    "format": format_reward,
    "overlong": overlong,
}
"""Factories: each takes keyword settings and returns a reward function with TRL's signature."""


def _import(path: str) -> Callable:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"unknown reward {path!r}; valid names: {sorted(REWARDS)} or a dotted import path")
    if os.getcwd() not in sys.path:  # as TRL's GRPO script: a user's own module in the working directory
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"unknown reward {path!r} ({e}); valid names: {sorted(REWARDS)} or a dotted import path"
        ) from e


def lookup(name: str) -> Callable:
    """The factory or plain reward function ``name`` stands for (ValueError, listing the valid names, if none)."""
    return REWARDS[name] if name in REWARDS else _import(name)


def is_factory(obj: Callable) -> bool:
    """A reward function takes ``completions``; a factory does not."""
    try:
        return "completions" not in inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False


def build_reward_funcs(names: list[str], settings: dict[str, dict] | None = None) -> list[RewardFunc]:
    """Build reward functions from names.

    Args:
        names: registry keys or dotted import paths.
        settings: ``settings[name]`` are keyword arguments for that name's factory.

    Returns:
        Reward functions, in the order of ``names``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones), settings for a name not in
            ``names``, or settings given for a plain function.

    >>> funcs = build_reward_funcs(["boxed_format", "overlong"], {"overlong": {"max_completion_length": 64}})
    >>> [f.__name__ for f in funcs]
    ['boxed_format', 'overlong']
    """
    settings = settings or {}
    stray = set(settings) - set(names)
    if stray:
        raise ValueError(f"settings given for rewards not listed in names: {sorted(stray)}")
    funcs = []
    for name in names:
        obj = lookup(name)
        kwargs = settings.get(name) or {}
        if is_factory(obj):
            try:
                funcs.append(obj(**kwargs))
            except TypeError as e:
                valid = sorted(inspect.signature(obj).parameters)
                raise ValueError(f"bad settings for reward {name!r}: {e}; its settings: {valid}") from e
        else:
            if kwargs:
                raise ValueError(f"reward {name!r} is a plain function, no settings: {sorted(kwargs)}")
            funcs.append(obj)
    return funcs
