"""What accelerate's collectives do not: a gather to the first process only, and failing every rank together.

Everything else goes through accelerate (`gather_object`, `PartialState().wait_for_everyone()`), which is a
no-op in a single process.
"""

from __future__ import annotations

import functools

import torch.distributed as dist
from accelerate.utils import gather_object


def gather_to_main(obj) -> list | None:
    """Every rank's `obj`, in rank order, on rank 0 only (None on the others; `[obj]` in one process).

    accelerate's `gather_object` hands every rank everything; evaluation results are written by the first
    process alone, so the others need not receive them.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    main = dist.get_rank() == 0
    out = [None] * dist.get_world_size() if main else None
    dist.gather_object(obj, out, dst=0)
    return out if main else None


def fail_together(fn):
    """`fn`, called on every rank at the same points, failing on every rank when it fails on any.

    A reward that raises on one rank would leave the others blocked in TRL's next gather until the collective
    times out (another machine's ranks are not stopped by this machine's launcher). Every call ends in one
    gather of the ranks' outcomes instead: the failing rank raises its own error, the others an error that
    names the rank and its message.

    Args:
        fn: a function every rank calls the same number of times (a reward function: once per round).

    Returns:
        The wrapped function (same name and signature).
    """

    @functools.wraps(fn)
    def together(*args, **kwargs):
        try:
            result, failure = fn(*args, **kwargs), None
        except Exception as e:
            result, failure = e, f"{type(e).__name__}: {e}"
        failures = [(r, f) for r, f in enumerate(gather_object([failure])) if f is not None]
        if failure is not None:
            raise result
        if failures:
            failed_rank, message = failures[0]
            raise RuntimeError(f"{fn.__name__} failed on rank {failed_rank}: {message}")
        return result

    return together
