"""The GPU check (`bench/gpu_check.sh`): its `--cpu` mode runs the four parts at tiny shapes, so the script that a
lent GPU machine runs once cannot rot between loans (slow tier: about 2 minutes on 2 cores); its time budgets."""

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cpu_mode_runs_every_part_and_writes_their_figures(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--cpu", "--out", str(out), "--work", str(work)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert (out / "gpu_check.log").stat().st_size > 0
    setup = result["setup"]
    assert setup["preflight"]["figures"]["imports"]["stagerl.train.grpo"] == "ok", setup["preflight"]["error"]
    assert setup["models"]["figures"]["vocab_size"] == 1024, setup["models"]["error"]
    parts = result["parts"]
    assert list(parts) == ["stage", "stage_vs_plain", "loss_memory", "evaluate"]
    for name, part in parts.items():
        assert set(part) == {"status", "seconds", "figures", "error"}
        assert part["status"] == "ok", f"{name}: {part['error']}"
    stage = parts["stage"]["figures"]
    assert stage["steps"] == 2 and stage["tokens_per_s"] > 0 and len(stage["grad_norm"]) == 2
    assert stage["kill_and_resume"] == {
        **stage["kill_and_resume"],
        "resumed_from": "checkpoint-2",
        "steps": 4,
    }
    bench = parts["stage_vs_plain"]["figures"]
    assert bench["stage_over_plain"] == bench["tokens_per_s"]["stage"] / bench["tokens_per_s"]["plain"]
    memory = parts["loss_memory"]["figures"]
    assert (
        memory["completion_tokens"] == 256 and memory["sequences"] == 2 and memory["logged"]["grad_norm"] > 0
    )
    assert memory["beta"] > 0 and memory["entropy_coef"] > 0  # the level config's loss terms, as it sets them
    assert parts["evaluate"]["figures"]["math500"]["problems"] == 2


def test_a_part_past_its_budget_is_killed_with_all_its_processes_and_the_next_part_runs(
    tmp_path, monkeypatch
):
    import psutil

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    check = gpu_check.Check(gpu_check.CPU, tmp_path, tmp_path)
    pid_file = tmp_path / "pid"
    # Like torchrun's workers, the grandchild runs in a session of its own: killing the process group misses it.
    spawn = (
        "import subprocess; p = subprocess.Popen(['sleep', '60'], start_new_session=True); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); p.wait()"
    )
    parts: dict = {}
    left = check.timed(parts, "slow", 3, lambda figures: check.run_ok([sys.executable, "-c", spawn]))
    assert parts["slow"]["status"] == "failed" and "out of time" in parts["slow"]["error"]
    assert 2.5 < parts["slow"]["seconds"] < 30 and left == 0
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the part's grandchild outlived its budget"
        time.sleep(0.1)
    check.timed(parts, "next", 10, lambda figures: figures.update(ran=True))
    assert parts["next"] == {
        "status": "ok",
        "seconds": parts["next"]["seconds"],
        "figures": {"ran": True},
        "error": None,
    }
