import os
import signal
import threading
import time

import pytest

from rewards import grade
from rewards.pool import GradingPool

HANG = r"\boxed{10^{10^{10}}}"  # sympy never finishes this against a symbolic gold


def test_pool_grades_and_caches(pool):
    before = pool.stats["cache_hits"]
    assert pool.grade_pairs([("1/2", "0.5"), ("3", "4"), ("1/2", "0.5")]) == [1.0, 0.0, 1.0]
    assert pool.grade_pairs([("1/2", "0.5")]) == [1.0]
    assert pool.stats["cache_hits"] >= before + 2


def test_fork_context_is_refused():
    with pytest.raises(ValueError, match="fork"):
        GradingPool(num_workers=1, timeout=1, context="fork")


ADVERSARIAL = [
    (HANG, "x+1"),
    (r"\boxed{9^{9^{9^{9}}}}", "x+1"),
    (HANG, "82"),
    ("x" * 1_000_000 + r" \boxed{3}", "x+1"),
    ("\\boxed{" + "{" * 10_000 + "}" * 10_000 + "}", "x+1"),
    ("\\boxed{" + "{" * 10_000, "x+1"),
    ("\ud800\udfff \\boxed{\ud83d}", "x+1"),
    (b"\\boxed{\xff\xfe}", "x+1"),
    ("", "x+1"),
    (None, "x+1"),
]


@pytest.mark.parametrize("completion, gold", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_score_zero_in_time(pool, completion, gold):
    start = time.monotonic()
    assert grade([completion], [gold], pool=pool) == [0.0]
    assert time.monotonic() - start < pool.timeout + 1.0
    assert grade([r"\boxed{x+1}"], ["x+1"], pool=pool) == [1.0]  # still usable


def test_timeout_kills_and_replaces_worker(pool):
    pids = set(pool.worker_pids)
    before = pool.stats["timeouts"]
    assert pool.grade_pairs([("2^{2^{2^{2^{2^{2}}}}}", "y+1"), ("x", "x")]) == [0.0, 1.0]
    assert pool.stats["timeouts"] == before + 1
    assert set(pool.worker_pids) != pids
    assert pool.grade_pairs([("2y", "y+y")]) == [1.0]


def test_worker_killed_mid_run_is_replaced(pool):
    pool.grade_pairs([("1", "1.0")])  # workers up and warm
    pairs = [(f"{i}x", f"{i}*x") for i in range(2, 200)]
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", pool.grade_pairs(pairs)))
    t.start()
    time.sleep(0.2)
    victim = pool.worker_pids[0]
    os.kill(victim, signal.SIGKILL)
    t.join(timeout=30)
    assert not t.is_alive()
    assert out["r"] == [1.0] * len(pairs)
    assert victim not in pool.worker_pids
    assert pool.grade_pairs([("7", "7.0")]) == [1.0]
