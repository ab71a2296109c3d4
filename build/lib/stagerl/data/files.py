"""Crash safety: atomic writes, failpoints that stop a process inside a crash window, and dying with a parent.

Every record the project writes goes to a temporary name first, then is renamed. A rename within one
directory is atomic on POSIX, so a reader (or a resumed run after `kill -9`) sees either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

FAILPOINT_ENV = "STAGERL_FAILPOINT"
DIE_WITH_PARENT_ENV = "STAGERL_DIE_WITH_PARENT"


_failpoint_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """SIGKILL this process here when `$STAGERL_FAILPOINT` is `name` (or `name@N`: at its N-th passage).

    How tests stop a run exactly inside a crash window (between two writes that must both happen) and then
    check that the resumed run is right. Costs one dictionary lookup when unset.
    """
    wanted, _, nth = os.environ.get(FAILPOINT_ENV, "").partition("@")
    if wanted == name:
        _failpoint_hits[name] = _failpoint_hits.get(name, 0) + 1
        if _failpoint_hits[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (PR_SET_PDEATHSIG).

    A launched stage must not outlive a killed runner (two trainers would write one stage directory), nor a
    distributed worker its launcher. Each process asks for itself, since the setting is not inherited.
    """
    parent = os.getppid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the call above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def cache_root() -> Path:
    """The project's local cache (`$STAGERL_CACHE`, default `~/.cache/stagerl`): built models, field lists."""
    return Path(os.environ.get("STAGERL_CACHE") or Path.home() / ".cache" / "stagerl")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (temp file in the same directory, fsync, rename).

    Args:
        path: destination file; its parent directory is created if missing.
        text: the full new content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes files private; records are ordinary readable files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON to `path` atomically.

    >>> import tempfile, json, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> atomic_write_json(p, {"a": 1}); json.loads(p.read_text())
    {'a': 1}
    """
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary file name beside `path` for a library that writes by name (parquet, PNG); it
    replaces `path` only once the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | os.PathLike):
    """Yield a temporary sibling directory that replaces `path` only once the block succeeds.

    An existing `path` is swapped out and removed after the new one is in place, so a kill at any moment
    leaves either the old complete directory or the new complete one (plus, at worst, a stray temp dir).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary shared directory
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
