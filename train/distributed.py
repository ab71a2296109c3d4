"""Collectives that are no-ops in a single process, for code that runs the same on one rank or many."""

from __future__ import annotations

import functools

import torch.distributed as dist


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if _initialized():
        dist.barrier()


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank (`[obj]` in one process)."""
    if _initialized():
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def gather_to_main(obj) -> list | None:
    """Every rank's `obj`, in rank order, on rank 0 only (None on the others; `[obj]` in one process).

    Unlike `gather`, the other ranks receive nothing: for results only the first process writes.
    """
    if not _initialized():
        return [obj]
    main = dist.get_rank() == 0
    out = [None] * dist.get_world_size() if main else None
    dist.gather_object(obj, out, dst=0)
    return out if main else None


def rank() -> int:
    """This process's global rank (0 in one process)."""
    return dist.get_rank() if _initialized() else 0


def fail_together(fn):
    """`fn`, called on every rank at the same points, failing on every rank when it fails on any.

    A reward that raises on one rank would leave the others blocked in TRL's next gather until the collective
    times out (another machine's ranks are not stopped by this machine's launcher). Every call ends in one
    gather of the ranks' outcomes instead: the failing rank raises its own error, the others an error that
    names the rank and its message.

    Args:
        fn: a function every rank calls the same number of times (a reward function: once per step).

    Returns:
        The wrapped function (same name and signature).
    """

    @functools.wraps(fn)
    def together(*args, **kwargs):
        try:
            result, failure = fn(*args, **kwargs), None
        except Exception as e:
            result, failure = e, f"{type(e).__name__}: {e}"
        failures = [(r, f) for r, f in enumerate(gather(failure)) if f is not None]
        if failure is not None:
            raise result
        if failures:
            failed_rank, message = failures[0]
            raise RuntimeError(f"{fn.__name__} failed on rank {failed_rank}: {message}")
        return result

    return together
