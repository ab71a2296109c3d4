import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stagerl.rewards import grade
from stagerl.rewards.pool import GradingPool

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
    assert time.monotonic() - start < pool.timeout * (1 + pool.retry_factor) + 1.0
    assert grade([r"\boxed{x+1}"], ["x+1"], pool=pool) == [1.0]  # still usable


def test_timeout_kills_and_replaces_worker_and_is_not_cached(pool):
    pids = set(pool.worker_pids)
    before = dict(pool.stats)
    pairs = [("2^{2^{2^{2^{2^{2}}}}}", "y+1"), ("x", "x")]
    assert pool.grade_pairs(pairs, timeout=0.5) == [0.0, 1.0]
    # Timed out, retried once with a longer limit, timed out again.
    assert pool.stats["timeouts"] == before["timeouts"] + 2
    assert pool.stats["retries"] == before["retries"] + 1
    assert set(pool.worker_pids) != pids
    assert pool.grade_pairs([("2y", "y+y")]) == [1.0]
    # A timeout is not remembered as a wrong answer: the next call grades the pair again.
    assert pool.grade_pairs(pairs[:1], timeout=0.5) == [0.0]
    assert pool.stats["timeouts"] == before["timeouts"] + 4


def test_a_slow_grade_gets_its_result_on_the_retry():
    # 1 ms is shorter than any grade (a machine under load); the retry has 2 s.
    with GradingPool(num_workers=1, timeout=0.001, retry_factor=2000) as slow:
        assert slow.grade_pairs([("(x+1)^2", "x^2+2x+1")]) == [1.0]
        assert slow.stats["timeouts"] == 1 and slow.stats["retries"] == 1
        assert slow.grade_pairs([("(x+1)^2", "x^2+2x+1")]) == [1.0]
        assert slow.stats["cache_hits"] == 1  # the retry's result was real, so it was cached


def test_default_timeout_is_read_when_the_pool_is_made(monkeypatch):
    monkeypatch.setenv("STAGERL_REWARD_TIMEOUT", "7.5")
    with GradingPool(num_workers=1) as p:  # workers start on the first grade: none here
        assert p.timeout == 7.5
    monkeypatch.delenv("STAGERL_REWARD_TIMEOUT")
    with GradingPool(num_workers=1) as p:
        assert p.timeout == 5.0
    with pytest.raises(ValueError, match="retry_factor"):
        GradingPool(num_workers=1, retry_factor=-1)


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


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hung_worker_dies_with_a_killed_trainer(tmp_path):
    """SIGKILL leaves the pool no chance to clean up; a worker stuck in sympy must still not outlive it."""
    script = tmp_path / "trainer.py"
    script.write_text(
        "from stagerl.rewards.pool import GradingPool\n"
        "if __name__ == '__main__':\n"
        "    pool = GradingPool(num_workers=1, timeout=600)\n"
        "    pool.grade_pairs([('1', '1')])\n"
        "    print(pool.worker_pids[0], flush=True)\n"
        "    pool.grade_pairs([('10^{10^{10^{10}}}', 'x+1')])  # hangs in the worker\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    worker = int(proc.stdout.readline())
    time.sleep(1.0)  # the worker is now grading the hanging pair
    assert _alive(worker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.1)
    survived = _alive(worker)
    if survived:  # do not leave it burning a core
        os.kill(worker, signal.SIGKILL)
    assert not survived, f"grading worker {worker} outlived its trainer"
