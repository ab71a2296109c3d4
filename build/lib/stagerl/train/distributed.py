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


def rank() -> int:
    """This process's global rank (0 in one process)."""
    return dist.get_rank() if _initialized() else 0
