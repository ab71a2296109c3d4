"""A pool of grading worker processes with a hard wall-clock limit per item.

Why not ``multiprocessing.Pool`` or threads: a grade that hangs inside sympy (``10^{10^{10}}``) can
only be stopped by killing its process, and ``Pool`` cannot kill one task. Here each worker has its
own pipe; the parent sends it a chunk of items, the worker answers item by item, and an item that
runs past its limit gets its worker SIGKILLed and replaced, and is retried once with a longer limit
(``retry_factor`` times the limit): a loaded machine makes honest grades slow, and that must not cost
the answer its credit. If the retry times out too, the item scores 0.0. A worker that dies for any other
reason is replaced and its item retried once. So ``grade_pairs`` always returns, after at most
``timeout * (1 + retry_factor)`` seconds per hung item.

Workers start from a ``forkserver`` (``spawn`` where there is none), never from ``fork``: the
trainer holds torch threads and CUDA state that a forked child must not inherit. The forkserver
imports math-verify once, so a replacement worker is ready in milliseconds.

Results are cached by (answer, gold): GRPO samples 16 completions per prompt, and many share their
final answer. Timeouts are not cached: under load they say more about the machine than about the
answer, so the pair is graded again the next time it comes.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait

logger = logging.getLogger(__name__)

MAX_FAILED_STARTS = 5
STARTUP_TIMEOUT = 120.0
"""Seconds a new worker may take to import and warm up math-verify (a loaded machine is slow)."""
RETRY_FACTOR = 3.0
"""A timed-out item is retried once with this many times the limit."""


def default_timeout() -> float:
    """Seconds one grade may run: env ``STAGERL_REWARD_TIMEOUT``, else 5.

    Read when a pool is made, so that a launcher or test can set the variable after import.

    Returns:
        The limit in seconds.
    """
    return float(os.environ.get("STAGERL_REWARD_TIMEOUT", "5"))


def default_num_workers() -> int:
    """Worker count: env ``STAGERL_REWARD_WORKERS``, else this process's share of the CPUs (at most 8).

    Under a multi-process launch every rank has its own pool, so the CPUs are split by ``LOCAL_WORLD_SIZE``.

    Returns:
        The number of workers to start.
    """
    env = os.environ.get("STAGERL_REWARD_WORKERS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def _worker_main(conn) -> None:
    """Worker loop: receive chunks of (index, answer, gold), send back (index, result) one by one."""
    # Ctrl-C goes to the whole process group; the parent decides, workers must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker hung in sympy would outlive a trainer killed with SIGKILL (it never reads its closed pipe):
    # have the kernel kill it with the process that started it, the trainer under spawn, else the
    # forkserver, which goes with the trainer (see `stagerl.rewards.warm`).
    with contextlib.suppress(OSError, AttributeError):  # PR_SET_PDEATHSIG is Linux only
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    from stagerl.rewards.equivalence import grade_pair, warm_up

    # Under spawn (or a cold forkserver) the first parse builds math-verify's parser; do it before
    # saying "ready", so that the time limit measures grading and not start-up.
    warm_up()
    try:
        conn.send("ready")
    except (BrokenPipeError, OSError):
        return
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):  # parent gone
            return
        if chunk is None:
            return
        for idx, answer, gold in chunk:
            try:
                result = grade_pair(answer, gold)
            except Exception:  # RecursionError, sympy errors: a wrong or odd answer, not a crash
                result = 0.0
            try:
                conn.send((idx, result))
            except (BrokenPipeError, OSError):
                return


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: object
    pending: deque = field(default_factory=deque)  # indices sent, not yet answered (first = running)
    deadline: float = 0.0
    ready: bool = False  # set when the worker has imported and warmed up math-verify


class GradingPool:
    """Grade (answer, gold) pairs in worker processes, with a per-item time limit and a cache.

    Args:
        num_workers: worker processes (default :func:`default_num_workers`).
        timeout: seconds one item may run before its worker is killed (default
            :func:`default_timeout`, read now).
        retry_factor: a timed-out item is retried once with ``retry_factor * timeout`` seconds before
            it scores 0.0; 0 turns the retry off.
        context: multiprocessing start method, "forkserver" (default on Linux) or "spawn"; "fork" is
            refused (see the module docstring).
        cache_size: how many (answer, gold) results to keep.

    >>> pool = GradingPool(num_workers=1, timeout=5)
    >>> pool.grade_pairs([("1/2", "0.5"), ("3", "4")])
    [1.0, 0.0]
    >>> pool.close()
    """

    def __init__(
        self,
        num_workers: int | None = None,
        timeout: float | None = None,
        context: str | None = None,
        cache_size: int = 200_000,
        retry_factor: float = RETRY_FACTOR,
    ) -> None:
        self.num_workers = num_workers or default_num_workers()
        self.timeout = float(timeout if timeout is not None else default_timeout())
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if retry_factor < 0:
            raise ValueError(f"retry_factor must be >= 0, got {retry_factor!r}")
        self.retry_factor = float(retry_factor)
        method = context or os.environ.get("STAGERL_REWARD_MP_CONTEXT")
        if method is None:
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        if method == "fork":
            raise ValueError("context 'fork' is unsafe next to torch threads; use 'forkserver' or 'spawn'")
        self._ctx = mp.get_context(method)
        if method == "forkserver":
            # Imported once in the server, inherited by every worker it forks.
            self._ctx.set_forkserver_preload(["stagerl.rewards.warm"])
        self._cache: OrderedDict[tuple[str, str], float | None] = OrderedDict()
        self._cache_size = cache_size
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failed_starts = 0
        self.stats = {"graded": 0, "cache_hits": 0, "timeouts": 0, "retries": 0, "worker_deaths": 0}
        # atexit holds only a weak reference: an unused pool can still be garbage collected.
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())

    # -- workers -----------------------------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True, name="stagerl-grader")
        proc.start()
        child.close()  # so that the parent sees EOF when the worker dies
        return _Worker(proc, parent, deadline=time.monotonic() + STARTUP_TIMEOUT)

    def _ensure_workers(self) -> None:
        while len(self._workers) < self.num_workers:
            self._workers.append(self._start_worker())

    def _kill(self, w: _Worker) -> None:
        try:
            w.process.kill()
        except (OSError, ValueError):
            pass
        w.process.join(timeout=1)
        w.conn.close()

    @property
    def worker_pids(self) -> list[int]:
        """PIDs of the live workers (for tests and monitoring)."""
        return [w.process.pid for w in self._workers]

    # -- grading -----------------------------------------------------------------------------------
    def grade_pairs(self, pairs: list[tuple[str, str]], timeout: float | None = None) -> list[float | None]:
        """Grade pairs of (extracted answer, gold).

        Args:
            pairs: (answer, gold) strings; duplicates are graded once.
            timeout: per-item limit for this call (default: the pool's).

        Returns:
            One result per pair: 1.0, 0.0, or None when the gold cannot be parsed. Items that time out
            twice (the retry has a longer limit) or kill their worker twice score 0.0; timeouts are
            not cached.
        """
        limit = self.timeout if timeout is None else float(timeout)
        with self._lock:
            if self._closed:
                raise RuntimeError("GradingPool is closed")
            todo = []
            for key in dict.fromkeys(pairs):
                if key in self._cache:
                    self._cache.move_to_end(key)
                    self.stats["cache_hits"] += 1
                else:
                    todo.append(key)
            fresh: dict[tuple[str, str], float | None] = {}
            if todo:
                results, timed_out = self._run(todo, limit)
                for j, (key, result) in enumerate(zip(todo, results, strict=True)):
                    fresh[key] = result
                    if j not in timed_out:
                        self._cache[key] = result
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
            self.stats["cache_hits"] += len(pairs) - len(dict.fromkeys(pairs))
            return [fresh[key] if key in fresh else self._cache[key] for key in pairs]

    def _run(self, items: list[tuple[str, str]], limit: float) -> tuple[list[float | None], set[int]]:
        """Grade items in the workers; returns the results and the indices that timed out for good."""
        self._ensure_workers()
        n = len(items)
        results: list = [None] * n
        done = [False] * n
        attempts = [0] * n
        limits = [limit] * n  # raised for the retry of an item that timed out
        timed_out: set[int] = set()  # items that timed out at least once
        gave_up: set[int] = set()  # items scored 0.0 because they timed out for good
        queue = deque(range(n))
        remaining = n
        # Small chunks amortise the pipe round trip yet keep both workers busy to the end of a batch.
        chunk_size = max(1, min(16, n // (4 * self.num_workers)))

        def finish(i: int, value: float | None) -> None:
            nonlocal remaining
            if not done[i]:
                done[i], results[i] = True, value
                remaining -= 1

        def replace(w: _Worker) -> None:
            if not w.ready:
                self._failed_starts += 1
                if self._failed_starts >= MAX_FAILED_STARTS:
                    self.close()
                    raise RuntimeError(
                        f"{MAX_FAILED_STARTS} grading workers in a row died before they were ready. Workers "
                        "re-import the main script (forkserver/spawn): guard its top-level code with "
                        "`if __name__ == '__main__':`"
                    )
            self._kill(w)
            self._workers[self._workers.index(w)] = self._start_worker()

        while remaining:
            now = time.monotonic()
            for w in self._workers:
                if w.ready and not w.pending and queue:
                    chunk = [queue.popleft() for _ in range(min(chunk_size, len(queue)))]
                    try:
                        w.conn.send([(i, *items[i]) for i in chunk])
                    except (BrokenPipeError, OSError):
                        queue.extendleft(reversed(chunk))
                        self.stats["worker_deaths"] += 1
                        replace(w)
                        continue
                    w.pending.extend(chunk)
                    w.deadline = now + limits[chunk[0]]
            busy = [w for w in self._workers if w.pending or not w.ready]
            wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout=wait_s))
            now = time.monotonic()
            for w in busy:
                if w.conn in ready:
                    try:
                        while w.conn.poll():
                            msg = w.conn.recv()
                            if msg == "ready":
                                w.ready = True
                                self._failed_starts = 0
                                continue
                            i, value = msg
                            w.pending.remove(i)
                            finish(i, value)
                            if w.pending:
                                w.deadline = now + limits[w.pending[0]]
                    except (EOFError, OSError, ConnectionResetError):
                        # The worker died (OOM killer, segfault, someone's kill -9): retry its item once.
                        self.stats["worker_deaths"] += 1
                        logger.warning("grading worker %s died; replacing it", w.process.pid)
                        if w.pending:
                            attempts[w.pending[0]] += 1
                            self._requeue(w, queue, finish, give_up=attempts[w.pending[0]] >= 2)
                        replace(w)
                        continue
                if not w.ready and now >= w.deadline:
                    logger.warning(
                        "grading worker %s did not start in %.0fs; replacing it",
                        w.process.pid,
                        STARTUP_TIMEOUT,
                    )
                    replace(w)
                elif w.pending and now >= w.deadline:
                    i = w.pending[0]
                    retry = i not in timed_out and self.retry_factor > 0
                    self.stats["timeouts"] += 1
                    self.stats["retries"] += retry
                    logger.warning(
                        "grading timed out after %.1fs; killed worker %s (answer %.80r, gold %.80r)%s",
                        limits[i],
                        w.process.pid,
                        items[i][0],
                        items[i][1],
                        f"; retrying with {limit * self.retry_factor:.1f}s" if retry else "",
                    )
                    timed_out.add(i)
                    limits[i] = limit * self.retry_factor
                    if not retry:
                        gave_up.add(i)
                    self._requeue(w, queue, finish, give_up=not retry)
                    replace(w)
        self.stats["graded"] += n
        return results, gave_up

    @staticmethod
    def _requeue(w: _Worker, queue: deque, finish, give_up: bool) -> None:
        """Put a dead or hung worker's items back in the queue, its running item first.

        With ``give_up`` the running item scores 0.0 instead (its retry timed out too, or it killed its
        worker twice).
        """
        running = w.pending.popleft()
        if give_up:
            finish(running, 0.0)
        else:
            w.pending.appendleft(running)
        queue.extendleft(reversed(w.pending))
        w.pending.clear()

    def close(self) -> None:
        """Stop the workers (a polite sentinel, then SIGKILL after 1 s). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 1.0
        for w in self._workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=1)
            w.conn.close()
        self._workers = []

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
