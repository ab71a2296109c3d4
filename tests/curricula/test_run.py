"""Curricula end to end through launch.sh (slow tier)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def launch(*args, **kwargs):
    return subprocess.run(
        [str(ROOT / "launch.sh"), *map(str, args)], cwd=ROOT, capture_output=True, text=True, **kwargs
    )


def test_smoke_curriculum_end_to_end(tmp_path):
    proc = launch("configs/curricula/smoke.yaml", "--output_dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert [s["status"] for s in manifest["stages"]] == ["done"] * 3
    for i, s in enumerate(manifest["stages"], 1):
        final = tmp_path / "run" / f"stage-{i}-{s['name']}" / "final"
        assert s["checkpoint"] == str(final) and (final / "model.safetensors").is_file()
        assert s["metrics"]["steps"] == 2
    # stage k+1 started from stage k's export
    log2 = (tmp_path / "run" / "stage-2-level2" / "train.log").read_text()
    assert f"--model_name_or_path {tmp_path / 'run' / 'stage-1-level1' / 'final'}" in log2
    assert "| level3 | done | 2 |" in proc.stdout
    assert (tmp_path / "run" / "reward.png").stat().st_size > 1000
    # A second invocation has nothing left to do.
    again = launch("configs/curricula/smoke.yaml", "--output_dir", tmp_path / "run")
    assert again.returncode == 0 and again.stderr.count("done, skipped") == 3


def kill_test_curriculum(tmp_path) -> Path:
    spec = yaml.safe_load((ROOT / "configs/curricula/smoke.yaml").read_text())
    # A reward that varies for a random model, so the weights really move and the comparison can fail.
    spec["defaults"].update(reward_funcs=["accuracy", "tests.helpers.rewards.length_reward"], max_steps=4)
    path = tmp_path / "kill.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sigkill_during_stage2_then_rerun_matches_uninterrupted(tmp_path):
    curriculum = kill_test_curriculum(tmp_path)
    assert launch(curriculum, "--output_dir", tmp_path / "full").returncode == 0

    run = tmp_path / "killed"
    proc = subprocess.Popen([str(ROOT / "launch.sh"), str(curriculum), "--output_dir", str(run)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    marker = run / "stage-2-level2" / "checkpoint-2" / "stagerl_complete"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "stage 2 never reached its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    manifest = json.loads((run / "curriculum.json").read_text())
    assert [s["status"] for s in manifest["stages"]] == ["done", "running", "pending"]

    rerun = launch(curriculum, "--output_dir", run)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "stage 1 (level1): done, skipped" in rerun.stderr and "(level2): resuming" in rerun.stderr
    a = load_file(str(tmp_path / "full" / "stage-3-level3" / "final" / "model.safetensors"))
    b = load_file(str(run / "stage-3-level3" / "final" / "model.safetensors"))
    assert all(a[k].equal(b[k]) for k in a)


def test_from_stage_restarts_and_keeps_old_directories(tmp_path):
    run = tmp_path / "run"
    assert launch("configs/curricula/smoke.yaml", "--output_dir", run).returncode == 0
    proc = launch("configs/curricula/smoke.yaml", "--output_dir", run, "--from-stage", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stage 3/3 (level3): starting" in proc.stderr
    assert len(list(run.glob("stage-3-level3.replaced-*"))) == 1


def test_curriculum_with_eval_records_results_per_stage(tmp_path):
    spec = yaml.safe_load((ROOT / "configs/curricula/smoke.yaml").read_text())
    spec["stages"] = spec["stages"][:2]
    spec["eval"] = {
        "benchmarks": ["amc23", "aime24"],
        "limit": 2,
        "samples": 2,
        "max_new_tokens": 8,
        "initial": True,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = launch(path, "--output_dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert set(manifest["initial_eval"]) == {"amc23", "aime24"}
    for i, stage in enumerate(manifest["stages"], 1):
        assert set(stage["eval"]) == {"amc23", "aime24"} and all(0 <= v <= 1 for v in stage["eval"].values())
        summary = json.loads(
            (tmp_path / "run" / f"stage-{i}-{stage['name']}" / "eval" / "summary.json").read_text()
        )
        assert summary["benchmarks"]["amc23"]["problems"] == 2
    assert "amc23 pass@1" in proc.stdout and (tmp_path / "run" / "eval.png").is_file()
