"""Imported by the forkserver: loads math-verify and runs one grade, so every worker forked from it
starts warm (a cold start costs seconds of imports and parser construction per worker).

It also ties the forkserver's life to the trainer's: its workers hold its liveness pipe open (they inherit the
trainer's end of it), so it would not notice a trainer killed with SIGKILL, and neither would a worker hung in
sympy; with the kernel killing the forkserver with the trainer, and each worker with the forkserver
(`stagerl.rewards.pool`), none of them outlives it.
"""

import contextlib
import ctypes
import signal

from stagerl.rewards.equivalence import warm_up

with contextlib.suppress(OSError, AttributeError):  # PR_SET_PDEATHSIG is Linux only
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
warm_up()
