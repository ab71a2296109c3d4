"""Test-only rewards: a random tiny model never earns the accuracy reward, so tests that need a learning
signal (parameters must change, resumed runs must match) use these, by dotted path in `reward_funcs`."""


def length_reward(completions, **kwargs) -> list[float]:
    """Longer completions score higher (varies within a group, so GRPO advantages are non-zero)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [len(t) / 100.0 for t in texts]
