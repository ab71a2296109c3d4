"""Collectives that are no-ops in a single process, for code that runs the same on one rank or many."""

from __future__ import annotations

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
