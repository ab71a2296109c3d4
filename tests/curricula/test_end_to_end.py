"""Curricula and sweeps end to end through launch.sh, on the tiny random model (slow tier)."""

import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from tests.helpers.curricula import ROOT, SMOKE_SWEEP, write

pytestmark = pytest.mark.slow


def launch(*args, cwd=ROOT, **kwargs):
    return subprocess.run(
        [str(ROOT / "launch.sh"), *map(str, args)], cwd=cwd, capture_output=True, text=True, **kwargs
    )


def moving_curriculum(tmp_path, max_steps=4, **defaults) -> Path:
    """The smoke curriculum with a reward that varies for a random model, so the weights really move and a
    comparison of weights can fail; the smoke curriculum saves a checkpoint every step."""
    spec = yaml.safe_load((ROOT / "configs/curricula/smoke.yaml").read_text())
    spec["defaults"].update(
        reward_funcs=["accuracy", "tests.helpers.rewards.length_reward"], max_steps=max_steps, **defaults
    )
    return write(tmp_path, spec, "moving.yaml")


def weights(model_dir: Path) -> dict:
    return load_file(str(model_dir / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)


def kill_when(cmd: list[str], marker: Path, timeout: float = 300) -> None:
    """Run `cmd` and SIGKILL its whole process group as soon as `marker` exists."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"{marker} never appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_smoke_curriculum_end_to_end(tmp_path):
    proc = launch("configs/curricula/smoke.yaml", "--output_dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert [s["status"] for s in manifest["stages"]] == ["done"] * 3
    for i, s in enumerate(manifest["stages"], 1):
        final = tmp_path / "run" / f"stage-{i}-{s['name']}" / "final"
        assert tmp_path / "run" / s["checkpoint"] == final and (final / "model.safetensors").is_file()
        assert s["metrics"]["steps"] == 2
    # stage k+1 started from stage k's export
    log2 = (tmp_path / "run" / "stage-2-level2" / "train.log").read_text()
    assert f"--model_name_or_path {tmp_path / 'run' / 'stage-1-level1' / 'final'}" in log2
    assert "| level3 | done | 2 |" in proc.stdout
    assert (tmp_path / "run" / "reward.png").stat().st_size > 1000
    # A second invocation has nothing left to do.
    again = launch("configs/curricula/smoke.yaml", "--output_dir", tmp_path / "run")
    assert again.returncode == 0 and again.stderr.count("done, skipped") == 3


def test_sigkill_during_stage2_then_rerun_matches_uninterrupted(tmp_path):
    curriculum = moving_curriculum(tmp_path)
    assert launch(curriculum, "--output_dir", tmp_path / "full").returncode == 0

    run = tmp_path / "killed"
    kill_when(
        [str(ROOT / "launch.sh"), str(curriculum), "--output_dir", str(run)],
        run / "stage-2-level2" / "checkpoint-2" / "stagerl_complete",
    )
    manifest = json.loads((run / "curriculum.json").read_text())
    assert [s["status"] for s in manifest["stages"]] == ["done", "running", "pending"]

    rerun = launch(curriculum, "--output_dir", run)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "stage 1/3 (level1): done, skipped" in rerun.stderr and "(level2): resuming" in rerun.stderr
    assert same_weights(tmp_path / "full" / "stage-3-level3" / "final", run / "stage-3-level3" / "final")


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
    proc = launch(write(tmp_path, spec, "eval.yaml"), "--output_dir", tmp_path / "run")
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


def test_finished_run_moved_and_rerun_from_another_directory_does_nothing(tmp_path):
    curriculum = moving_curriculum(tmp_path, max_steps=2)
    first = launch(curriculum, "--output_dir", tmp_path / "run")
    assert first.returncode == 0, first.stderr[-3000:]
    (tmp_path / "run").rename(tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = launch(curriculum, "--output_dir", tmp_path / "moved", cwd=elsewhere)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("done, skipped") == 3 and "starting" not in again.stderr
    table = lambda out: [line for line in out.splitlines() if line.startswith("| level")]  # noqa: E731
    assert table(again.stdout) == table(first.stdout)


# --- sweeps ---


def launches(sweep_dir: Path) -> dict[str, int]:
    """Stage launches per node directory, counted from the `$ command` lines `run_logged` writes."""
    return {
        d.name: sum(line.startswith("$ ") for line in (d / "train.log").read_text().splitlines())
        for d in sorted((sweep_dir / "nodes").iterdir())
    }


def test_smoke_sweep_trains_each_stage_once(tmp_path):
    from stagerl.curricula.plan import load_plan

    sweep_dir = tmp_path / "sw"
    proc = launch("--sweep", SMOKE_SWEEP, "--output_dir", sweep_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    assert launches(sweep_dir) == {plan.nodes[n].dir.split("/")[1]: 1 for n in plan.nodes}
    assert len(list(sweep_dir.glob("nodes/*/final/model.safetensors"))) == 7
    assert len(list(sweep_dir.glob("nodes/*/stage.json"))) == 7
    lr3x = plan.nodes[plan.paths["1-2-3-lr3x"][2]]
    log = (sweep_dir / lr3x.dir / "train.log").read_text()
    assert f"--model_name_or_path {sweep_dir / plan.nodes[lr3x.parent].dir / 'final'}" in log
    assert "--learning_rate 3e-05" in log
    assert "7 stage trainings instead of 10: 30% saved" in proc.stdout
    for name in ("report.md", "report.csv", "rewards.png", "time.png"):
        assert (sweep_dir / name).stat().st_size > 100
    again = launch("--sweep", SMOKE_SWEEP, "--output_dir", sweep_dir)
    assert again.returncode == 0 and again.stderr.count("done, skipped") == 7
    assert set(launches(sweep_dir).values()) == {1}


def test_killed_sweep_resumes(tmp_path):
    from stagerl.curricula.plan import load_plan

    base = str(ROOT / "configs/curricula/smoke.yaml")
    spec = {
        "name": "kill",
        "base": base,
        "variations": [
            {"name": "1-2", "stages": ["level1", "level2"], "set": {"level2.max_steps": 4}},
            {"name": "1-mix", "stages": ["level1", {"name": "mix", "data": ["arithmetic:3"]}]},
        ],
    }
    path = write(tmp_path, spec, "s.yaml")
    plan = load_plan(path, sweep=True)
    level1, level2, mix = (plan.nodes[n] for n in (*plan.paths["1-2"], plan.paths["1-mix"][1]))
    sweep_dir = tmp_path / "sw"
    kill_when(
        [str(ROOT / "launch.sh"), "--sweep", str(path), "--output_dir", str(sweep_dir)],
        sweep_dir / level2.dir / "checkpoint-2" / "stagerl_complete",
    )
    status = {k: v["status"] for k, v in json.loads((sweep_dir / "sweep.json").read_text())["nodes"].items()}
    assert status == {level1.id: "done", level2.id: "running", mix.id: "pending"}

    rerun = launch("--sweep", path, "--output_dir", sweep_dir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"level1 [{level1.id}]: done, skipped" in rerun.stderr
    assert f"level2 [{level2.id}] (1-2): resuming" in rerun.stderr
    counts = launches(sweep_dir)
    assert counts == {level1.dir[6:]: 1, level2.dir[6:]: 2, mix.dir[6:]: 1}
    records = json.loads((sweep_dir / "sweep.json").read_text())["nodes"]
    assert {k: v["launches"] for k, v in records.items()} == {level1.id: 1, level2.id: 2, mix.id: 1}
    assert "Resuming from" in (sweep_dir / level2.dir / "train.log").read_text()
    assert all(n["status"] == "done" for n in records.values())


# --- killed at random instants, dozens of times ---


def survivors(run_dir: Path) -> list[str]:
    """Processes still working in `run_dir` (a trainer's command line names its stage directory)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(run_dir) in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.pid}: {cmdline[:200]}")
    return found


def kill_repeatedly(cmd: list[str], run_dir: Path, kills: int, seed: int, longest: float = 7.0) -> int:
    """Start `cmd` and SIGKILL it after a random delay, `kills` times (alternately its whole process group and
    the runner alone, whose stage must then die with it); returns how many kills landed before it finished.

    A stage launch spends ~3 s starting before it trains (80 steps, a checkpoint each, the older ones rotated
    out, in ~10 s), so delays up to `longest` = 7 s land in start-up, training, saves, rotation, the export and
    the records alike, and the run needs dozens of launches to finish."""
    import random

    rng = random.Random(seed)
    landed = 0
    for i in range(kills):
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            proc.wait(timeout=rng.uniform(0.3, longest))
            break  # finished before this kill
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL) if i % 2 else proc.kill()
            proc.wait()
            landed += 1
        deadline = time.time() + 15
        while survivors(run_dir) and time.time() < deadline:
            time.sleep(0.2)
        assert not survivors(run_dir), f"outlived the runner (kill {i}): {survivors(run_dir)}"
    return landed


def test_curriculum_killed_at_random_instants_ends_like_an_uninterrupted_run(tmp_path):
    # 4 rows, one prompt a step: an epoch is 4 steps, so nearly every resume is in a later epoch
    curriculum = moving_curriculum(tmp_path, max_steps=80, save_total_limit=2, max_train_samples=4)
    started = time.monotonic()
    assert launch(curriculum, "--output_dir", tmp_path / "full").returncode == 0
    # the delays scale with this machine's pace (7 s where the uninterrupted run takes 40 s), so that kills
    # land in training here too, not only in start-up
    longest = 7.0 * max(1.0, (time.monotonic() - started) / 40)
    run = tmp_path / "killed"
    landed = kill_repeatedly(
        [str(ROOT / "launch.sh"), str(curriculum), "--output_dir", str(run)], run, 30, seed=1, longest=longest
    )
    assert landed >= 15  # dozens of kills; how many land before the run finishes depends on the machine
    final = launch(curriculum, "--output_dir", run)
    assert final.returncode == 0, final.stderr[-3000:]
    # the kills did land in training: stages resumed from checkpoints past their first epoch
    resumed_at = [
        int(step)
        for log in run.glob("stage-*/train.log")
        for step in re.findall(r"Resuming from \S*checkpoint-(\d+)", log.read_text())
    ]
    assert any(step > 4 for step in resumed_at), resumed_at
    stages = json.loads((run / "curriculum.json").read_text())["stages"]
    full = json.loads((tmp_path / "full" / "curriculum.json").read_text())["stages"]
    assert [s["metrics"]["steps"] for s in stages] == [s["metrics"]["steps"] for s in full] == [80, 80, 80]
    for s in stages:
        assert same_weights(tmp_path / "full" / s["checkpoint"], run / s["checkpoint"]), s["name"]


def test_sweep_killed_at_random_instants_ends_like_an_uninterrupted_run(tmp_path):
    base = moving_curriculum(tmp_path, max_steps=80, save_total_limit=2)
    spec = {
        "name": "kills",
        "base": str(base),
        "variations": [
            {"name": "1-2", "stages": ["level1", "level2"]},
            {"name": "1-3", "stages": ["level1", "level3"]},
            {"name": "3", "stages": ["level3"]},
        ],
    }
    sweep = write(tmp_path, spec, "sweep.yaml")
    assert launch("--sweep", sweep, "--output_dir", tmp_path / "full").returncode == 0
    run = tmp_path / "killed"
    cmd = [str(ROOT / "launch.sh"), "--sweep", str(sweep), "--output_dir", str(run)]
    assert kill_repeatedly(cmd, run, 24, seed=2) >= 12
    final = launch("--sweep", sweep, "--output_dir", run)
    assert final.returncode == 0, final.stderr[-3000:]
    nodes = json.loads((run / "sweep.json").read_text())["nodes"]
    assert len(nodes) == 4 and all(n["status"] == "done" for n in nodes.values())
    for n in nodes.values():
        assert same_weights(tmp_path / "full" / n["checkpoint"], run / n["checkpoint"]), n["name"]


def test_study_sweep_smoke(tmp_path):
    """configs/sweeps/study.yaml as shipped (its arms, their budgets, the final evaluations), on the tiny model
    for at most 2 steps a stage and one seed: every arm's last stage is evaluated on every level, and the
    report has each arm's tokens (read from the stages' records) and its difference from `mixed` (from the
    evaluations' per-sample files)."""
    base = yaml.safe_load((ROOT / "configs/curricula/study.yaml").read_text())
    base["model"] = "stagerl:tiny-random"
    base["defaults"].update(max_steps=2, max_completion_length=8, save_steps=2)
    base["eval"].update(limit=1, max_new_tokens=4)
    sweep = yaml.safe_load((ROOT / "configs/sweeps/study.yaml").read_text())
    sweep.update(base=str(write(tmp_path, base, "study.yaml")), grid={"seed+data_seed": [[0, 0]]})
    proc = launch("--sweep", write(tmp_path, sweep, "sweep.yaml"), "--output_dir", tmp_path / "sw")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    names = {c.split("-seed=")[0] for c in record["curricula"]}
    assert names == {"staged", "mixed", "mixed-ds", "mixed-ds-select", "learnability-ds"}
    assert len(record["nodes"]) == 3 + 4  # staged's three stages, one stage for every other arm
    evaluated = [n for n in record["nodes"].values() if n.get("eval")]
    assert len(evaluated) == 5 and all(set(n["eval"]) == {"arith1", "arith2", "arith3"} for n in evaluated)
    assert set(record["starts"]["stagerl:tiny-random"]["eval"]) == {"arith1", "arith2", "arith3"}
    report = (tmp_path / "sw" / "report.md").read_text()
    with open(tmp_path / "sw" / "arms.csv") as f:
        arms = list(csv.DictReader(f))
    assert {r["arm"] for r in arms} == names and all(int(r["completion_tokens"]) > 0 for r in arms)
    compared = [r for r in arms if r["arm"] != "mixed"]
    assert compared and all(r["difference"] != "" and r["seeds_paired"] == "1" for r in compared)
    assert "Each arm minus mixed" in report and (tmp_path / "sw" / "arms.png").stat().st_size > 1000
