"""A test reward that can stall a run at a known step, so a test can kill it mid-stage.

`stalling_length_reward` scores like `length_reward`. When `$STAGERL_TEST_STALL_AT_CALL` is set to N, its N-th
call on each rank (one call per step) writes the rank's pid to `$STAGERL_TEST_STALL_DIR/<pid>` and sleeps, so
the run cannot get past step N-1's checkpoint; the test then SIGKILLs the pids it finds there (torchrun starts
each worker in its own session, so killing the launcher's process group does not reach them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.helpers.rewards import half_constant_reward, length_reward

STALL_AT_ENV = "STAGERL_TEST_STALL_AT_CALL"
STALL_DIR_ENV = "STAGERL_TEST_STALL_DIR"

_calls = 0


def stalling_length_reward(completions, **kwargs) -> list[float]:
    """`length_reward`, stalling from call `$STAGERL_TEST_STALL_AT_CALL` on (see the module docstring)."""
    global _calls
    _calls += 1
    stall_at = os.environ.get(STALL_AT_ENV)
    if stall_at and _calls >= int(stall_at):
        stall_dir = Path(os.environ[STALL_DIR_ENV])
        stall_dir.mkdir(parents=True, exist_ok=True)
        (stall_dir / str(os.getpid())).write_text("")
        time.sleep(3600)
    return length_reward(completions, **kwargs)


def stalling_half_constant_reward(completions, **kwargs) -> list[float]:
    """`half_constant_reward`, stalling as `stalling_length_reward` does."""
    stalling_length_reward(completions, **kwargs)
    return half_constant_reward(completions, **kwargs)
