"""Test-only rewards: a random tiny model never earns the accuracy reward, so tests that need a learning
signal (parameters must change, resumed runs must match) use these, by dotted path in `reward_funcs`."""

import json
import os


def length_reward(completions, **kwargs) -> list[float]:
    """Longer completions score higher (varies within a group, so GRPO advantages are non-zero)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [len(t) / 100.0 for t in texts]


def half_constant_reward(completions, id, **kwargs) -> list[float]:  # noqa: A002 - TRL passes the `id` column
    """0 for the problems whose id hashes even (their groups have zero variance), the length reward for the
    others: what dynamic sampling must drop, and what prompt selection learns to skip."""
    lengths = length_reward(completions)
    return [0.0 if _even(pid) else score for pid, score in zip(id, lengths, strict=True)]


def _even(problem_id: str) -> bool:
    import hashlib

    return hashlib.sha256(problem_id.encode()).digest()[0] % 2 == 0


PROMPT_LOG_ENV = "STAGERL_TEST_PROMPT_LOG"


def logged_length_reward(prompts, completions, **kwargs) -> list[float]:
    """`length_reward`, which also appends the prompts it scores to the file `$STAGERL_TEST_PROMPT_LOG`, a JSON
    line a call: the prompts a stage generated for, in order."""
    with open(os.environ[PROMPT_LOG_ENV], "a") as log:
        log.write(json.dumps(prompts) + "\n")
    return length_reward(completions)


FAIL_RANK_ENV = "STAGERL_TEST_FAIL_RANK"
_calls = 0


def failing_length_reward(completions, **kwargs) -> list[float]:
    """`length_reward`, except that its second call on the rank `$STAGERL_TEST_FAIL_RANK` raises (a grading
    failure on that rank alone)."""
    global _calls
    _calls += 1
    if _calls == 2 and os.environ.get("RANK") == os.environ.get(FAIL_RANK_ENV):
        raise RuntimeError("the grading pool died")
    return length_reward(completions, **kwargs)
