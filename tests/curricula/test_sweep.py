"""Sweeps: expansion, node identity, the prefix tree, dry run, emitted commands, the runner (training faked),
the report; and end to end on the smoke sweep (slow tier)."""

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from curricula import sweep as sweep_mod
from curricula.sweep import main, run_sweep
from curricula.sweep_report import write_sweep_report
from curricula.sweep_spec import build_tree, load_sweep, node_id

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs/sweeps/smoke.yaml"
BASE = str(ROOT / "configs/curricula/smoke.yaml")


def write(tmp_path, spec, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def by_name(sweep):
    return {c.name: c for c in sweep.curricula}


# --- expansion and identity ---


@pytest.mark.parametrize("path", sorted((ROOT / "configs/sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_parses(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_sweep(path).curricula


def test_smoke_sweep_shares_prefixes():
    sweep = load_sweep(SMOKE)
    tree = build_tree(sweep.curricula)
    assert list(tree.paths) == ["1-2-3", "1-2-3-lr3x", "1-mix", "2-3"]
    assert len(tree.nodes) == 7 and tree.trainings_alone == 10
    p = tree.paths
    assert p["1-2-3"][:2] == p["1-2-3-lr3x"][:2] and p["1-2-3"][2] != p["1-2-3-lr3x"][2]
    assert p["1-mix"][0] == p["1-2-3"][0]
    assert not set(p["2-3"]) & set(p["1-2-3"])  # level2 from the base model is another stage
    assert tree.nodes[p["1-2-3-lr3x"][2]].stage.overrides["learning_rate"] == 3.0e-5
    assert tree.nodes[p["1-mix"][1]].stage.overrides["max_steps"] == 2  # a new stage gets the base defaults


def test_grid_crosses_variations(tmp_path):
    spec = {"name": "g", "base": BASE,
            "variations": [{"name": "a"}, {"name": "b", "stages": ["level2", "level3"]}],
            "grid": {"level3.learning_rate": [1.0e-5, 3.0e-5], "advance": [{}, {"reward_threshold": 0.5}]}}  # fmt: skip
    sweep = load_sweep(write(tmp_path, spec))
    names = [c.name for c in sweep.curricula]
    assert len(names) == 8 and names[0] == "a-level3.learning_rate=1e-05-advance=none"
    assert "b-level3.learning_rate=3e-05-advance=reward_threshold=0.5" in names
    cur = by_name(sweep)["b-level3.learning_rate=3e-05-advance=reward_threshold=0.5"]
    assert [s.name for s in cur.stages] == ["level2", "level3"]
    assert cur.stages[1].overrides["learning_rate"] == 3.0e-5
    assert all(s.overrides["advance_reward_threshold"] == 0.5 for s in cur.stages)
    tree = build_tree(sweep.curricula)
    # `advance` sets every stage, so it splits at the root: 2 x (level1, level2, 2 level3) for a,
    # 2 x (level2, 2 level3) for b.
    assert tree.trainings_alone == 4 * 3 + 4 * 2
    assert len(tree.nodes) == 2 * 4 + 2 * 3


def test_grid_over_stage_orders(tmp_path):
    spec = {"base": BASE, "grid": {"stages": [["level1", "level2", "level3"], ["level1", "level3"]]}}
    sweep = load_sweep(write(tmp_path, spec, "orders.yaml"))
    assert [c.name for c in sweep.curricula] == [
        "orders-stages=level1+level2+level3",
        "orders-stages=level1+level3",
    ]
    tree = build_tree(sweep.curricula)
    assert len(tree.nodes) == 4 and tree.trainings_alone == 5


def test_node_identity():
    stage = {"name": "x", "config": "a.yaml", "config_sha256": "f0", "overrides": {"max_steps": 2}}
    same = {**stage, "name": "renamed", "config": "/elsewhere/a.yaml"}
    assert node_id(stage, None, "m", False) == node_id(same, None, "m", False)
    assert node_id(stage, None, "m", False) != node_id(stage, None, "other", False)
    assert node_id(stage, "p1", "m", False) != node_id(stage, "p2", "m", False)
    assert node_id(stage, "p1", "m", False) != node_id(stage, "p1", "m", True)
    assert node_id(stage, None, "m", False) != node_id({**stage, "config_sha256": "f1"}, None, "m", False)
    assert node_id(stage, None, "m", False) != node_id(
        {**stage, "overrides": {"max_steps": 3}}, None, "m", False
    )


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda s: s.update(grids={}), "unknown keys ['grids']"),
        (lambda s: s["variations"][0].update(sets={}), "variation 1: unknown keys ['sets']"),
        (lambda s: s["variations"][0].update(stages=["level9"]), "stage 'level9' is neither a base stage"),
        (lambda s: s["variations"][0].update(set={"level9.max_steps": 1}), "has no stage 'level9'"),
        (lambda s: s["variations"][0].update(set={"learning_rat": 1}), "curriculum 'a': stage 'level1': unknown stage fields"),
        (lambda s: s["variations"].append({"name": "a"}), "curriculum name 'a' is used twice"),
        (lambda s: s.update(base="nope.yaml"), "base curriculum nope.yaml does not exist"),
        (lambda s: s.update(grid={"max_steps": []}), "non-empty list"),
    ],
)  # fmt: skip
def test_bad_sweep_errors_name_the_problem(tmp_path, mutate, message):
    spec = {"base": BASE, "variations": [{"name": "a"}]}
    mutate(spec)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_sweep(write(tmp_path, spec))
    assert message in str(err.value) and "s.yaml" in str(err.value)


# --- dry run and emitted commands ---


def test_dry_run_prints_tree_and_savings(tmp_path, capsys):
    assert main([str(SMOKE), "--output_dir", str(tmp_path / "sw"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 curricula, 7 distinct stages" in out
    assert "7 stage trainings instead of 10: 30% saved" in out
    assert "│   │   └── level3 [" in out and "(1-2-3, 1-2-3-lr3x, 1-mix)" in out
    assert not (tmp_path / "sw").exists()


def test_emit_commands_in_dependency_order(tmp_path, capsys):
    sweep_dir = tmp_path / "sw"
    main([str(SMOKE), "--output_dir", str(sweep_dir), "--emit", "commands"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7
    made = set()
    for line in lines:
        args = shlex.split(line)
        model, out = args[args.index("--model_name_or_path") + 1], args[args.index("--output_dir") + 1]
        assert model == "stagerl:tiny-random" or model in made  # a parent's export, emitted earlier
        made.add(f"{out}/final")
    assert not sweep_dir.exists()


def test_emit_slurm_chains_jobs_on_parents(tmp_path, capsys):
    sweep_dir = tmp_path / "sw"
    tree = build_tree(load_sweep(SMOKE).curricula)
    root = tree.paths["1-2-3"][0]
    main([str(SMOKE), "--output_dir", str(sweep_dir), "--emit", "slurm"])
    script = capsys.readouterr().out
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    submits = [line for line in script.splitlines() if "sbatch --parsable" in line]
    assert len(submits) == 7
    for nid, node in tree.nodes.items():
        line = next(s for s in submits if s.startswith(f"job_{nid}="))
        if node.parent is None:
            assert "--dependency" not in line
        else:
            assert f"--dependency=afterok:$job_{node.parent} " in line
    # A node finished on disk is left out; its children then start at once.
    (sweep_dir / tree.nodes[root].dir / "final").mkdir(parents=True)
    (sweep_dir / tree.nodes[root].dir / "stage.json").write_text("{}")
    main([str(SMOKE), "--output_dir", str(sweep_dir), "--emit", "slurm"])
    script = capsys.readouterr().out
    assert script.count("sbatch --parsable") == 6 and f"job_{root}" not in script


# --- the runner, with training faked ---


class FakeTrainer:
    """Stands in for `run_logged`: records each launch and writes what a finished stage leaves behind."""

    def __init__(self, fail_on: str | None = None):
        self.launches, self.fail_on = [], fail_on

    def __call__(self, cmd, log_path):
        out = Path(cmd[cmd.index("--output_dir") + 1])
        model = cmd[cmd.index("--model_name_or_path") + 1]
        assert model.startswith("stagerl:") or Path(model).is_dir(), f"parent {model} not trained yet"
        self.launches.append(out.name)
        if self.fail_on and self.fail_on in out.name:
            return 1
        (out / "final").mkdir(parents=True, exist_ok=True)
        record = {"steps": 2, "reward_start": 0.1, "reward_end": 0.5, "wall_time_s": 3.0,
                  "reward_history": [[1, 0.1], [2, 0.5]]}  # fmt: skip
        (out / "stage.json").write_text(json.dumps(record))
        return 0


def test_runner_trains_each_node_once_and_resumes_nothing(tmp_path, monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(sweep_mod, "run_logged", fake)
    sweep = load_sweep(SMOKE)
    manifest, tree, failed = run_sweep(sweep, tmp_path / "sw")
    assert not failed and len(fake.launches) == 7 == len(set(fake.launches))
    assert all(n["status"] == "done" and n["launches"] == 1 for n in manifest.nodes.values())
    run_sweep(sweep, tmp_path / "sw")
    assert len(fake.launches) == 7
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved["curricula"]["2-3"]["nodes"] == tree.paths["2-3"]


def test_failed_node_stops_only_its_subtree_and_is_retried(tmp_path, monkeypatch):
    sweep = load_sweep(SMOKE)
    tree = build_tree(sweep.curricula)
    level2 = tree.nodes[tree.paths["1-2-3"][1]]
    fake = FakeTrainer(fail_on=level2.id)
    monkeypatch.setattr(sweep_mod, "run_logged", fake)
    manifest, _, failed = run_sweep(sweep, tmp_path / "sw")
    assert failed == [level2.id, *tree.paths["1-2-3"][2:], tree.paths["1-2-3-lr3x"][2]]
    assert len(fake.launches) == 5  # level1, level2 (failed), mix23, and 2-3's two stages
    assert manifest.nodes[level2.id]["status"] == "failed"
    fake.fail_on = None
    manifest, _, failed = run_sweep(sweep, tmp_path / "sw")
    assert not failed and manifest.nodes[level2.id]["launches"] == 2
    assert len(fake.launches) == 5 + 3


def test_edited_sweep_reuses_unchanged_nodes(tmp_path, monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(sweep_mod, "run_logged", fake)
    spec = yaml.safe_load(SMOKE.read_text())
    spec["base"] = BASE
    run_sweep(load_sweep(write(tmp_path, spec)), tmp_path / "sw")
    spec["variations"].append({"name": "1-2-3-lr10x", "set": {"level3.learning_rate": 1.0e-4}})
    run_sweep(load_sweep(write(tmp_path, spec)), tmp_path / "sw")
    assert len(fake.launches) == 7 + 1


def test_every_node_is_evaluated_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "run_logged", FakeTrainer())
    evaluated = []

    def fake_eval(eval_spec, model, out_dir, log_path):
        evaluated.append(model)
        return {b: 0.5 for b in eval_spec["benchmarks"]}

    monkeypatch.setattr(sweep_mod, "evaluate_model", fake_eval)
    spec = {"base": BASE, "variations": [{"name": "a"}, {"name": "b", "set": {"level3.learning_rate": 3.0e-5},
                                                        "eval": {"benchmarks": ["math500"], "limit": 2}}]}  # fmt: skip
    sweep = load_sweep(write(tmp_path, spec))
    manifest, tree, failed = run_sweep(sweep, tmp_path / "sw")
    assert not failed and len(evaluated) == 3 == len(set(evaluated))  # b's path; a's own level3 has no eval
    assert manifest.nodes[tree.paths["b"][2]]["eval"] == {"math500": 0.5}
    assert "eval" not in manifest.nodes[tree.paths["a"][2]]
    run_sweep(sweep, tmp_path / "sw")
    assert len(evaluated) == 3
    assert "math500 (last stage)" in write_sweep_report(tmp_path / "sw", manifest.data, tree)


def test_corrupt_sweep_record_is_refused(tmp_path):
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text('{"nodes": [')
    with pytest.raises(SystemExit, match="unreadable"):
        main([str(SMOKE), "--output_dir", str(tmp_path / "sw")])
    assert (tmp_path / "sw" / "sweep.json").read_text() == '{"nodes": ['


def test_report_compares_curricula(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "run_logged", FakeTrainer())
    sweep = load_sweep(SMOKE)
    manifest, tree, _ = run_sweep(sweep, tmp_path / "sw")
    manifest.nodes[tree.paths["2-3"][1]]["eval"] = {"math500": {"pass@1": 0.25}}
    for record in manifest.nodes.values():
        record["launch_s"] = 4.0  # launches take longer than their training loops (3.0 s in stage.json)
    text = write_sweep_report(tmp_path / "sw", manifest.data, tree)
    assert "7 stage trainings instead of 10: 30% saved" in text
    assert "| 2-3 | level2 -> level3 | done | 4 | 0.500 | 8 | 0.250 |" in text
    assert "28 s for the sweep, 40 s if each curriculum ran alone (training loops only: 21 s vs 30 s)" in text
    csv_lines = (tmp_path / "sw" / "report.csv").read_text().splitlines()
    assert csv_lines[0].endswith("cumulative_time_s,eval_math500") and len(csv_lines) == 1 + 10
    for png in ("rewards.png", "time.png", "eval.png"):
        assert (tmp_path / "sw" / png).stat().st_size > 1000


# --- end to end (slow) ---


def launch_sweep(*args, **kwargs):
    return subprocess.run(
        [str(ROOT / "launch.sh"), "--sweep", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        **kwargs,
    )


def launches(sweep_dir: Path) -> dict[str, int]:
    """Stage launches per node directory, counted from the `$ command` lines `run_logged` writes."""
    return {
        d.name: sum(line.startswith("$ ") for line in (d / "train.log").read_text().splitlines())
        for d in sorted((sweep_dir / "nodes").iterdir())
    }


@pytest.mark.slow
def test_smoke_sweep_trains_each_stage_once(tmp_path):
    sweep_dir = tmp_path / "sw"
    proc = launch_sweep(SMOKE, "--output_dir", sweep_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tree = build_tree(load_sweep(SMOKE).curricula)
    assert launches(sweep_dir) == {tree.nodes[n].dir.split("/")[1]: 1 for n in tree.nodes}
    assert len(list(sweep_dir.glob("nodes/*/final/model.safetensors"))) == 7
    assert len(list(sweep_dir.glob("nodes/*/stage.json"))) == 7
    lr3x = tree.nodes[tree.paths["1-2-3-lr3x"][2]]
    log = (sweep_dir / lr3x.dir / "train.log").read_text()
    assert f"--model_name_or_path {sweep_dir / tree.nodes[lr3x.parent].dir / 'final'}" in log
    assert "--learning_rate 3e-05" in log
    assert "7 stage trainings instead of 10: 30% saved" in proc.stdout
    for name in ("report.md", "report.csv", "rewards.png", "time.png"):
        assert (sweep_dir / name).stat().st_size > 100
    again = launch_sweep(SMOKE, "--output_dir", sweep_dir)
    assert again.returncode == 0 and again.stderr.count("done, skipped") == 7
    assert set(launches(sweep_dir).values()) == {1}


@pytest.mark.slow
def test_killed_sweep_resumes(tmp_path):
    spec = {"name": "kill", "base": BASE,
            "variations": [{"name": "1-2", "stages": ["level1", "level2"], "set": {"level2.max_steps": 4}},
                           {"name": "1-mix", "stages": ["level1", {"name": "mix", "data": ["arithmetic:3"]}]}]}  # fmt: skip
    path = write(tmp_path, spec)
    tree = build_tree(load_sweep(path).curricula)
    level1, level2, mix = (tree.nodes[n] for n in (*tree.paths["1-2"], tree.paths["1-mix"][1]))
    sweep_dir = tmp_path / "sw"
    proc = subprocess.Popen([str(ROOT / "launch.sh"), "--sweep", str(path), "--output_dir", str(sweep_dir)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    marker = sweep_dir / level2.dir / "checkpoint-2" / "stagerl_complete"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the second node never reached its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    status = {k: v["status"] for k, v in json.loads((sweep_dir / "sweep.json").read_text())["nodes"].items()}
    assert status == {level1.id: "done", level2.id: "running", mix.id: "pending"}

    rerun = launch_sweep(path, "--output_dir", sweep_dir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"level1 [{level1.id}]: done, skipped" in rerun.stderr
    assert f"level2 [{level2.id}] (1-2): resuming" in rerun.stderr
    counts = launches(sweep_dir)
    assert counts == {level1.dir[6:]: 1, level2.dir[6:]: 2, mix.dir[6:]: 1}
    records = json.loads((sweep_dir / "sweep.json").read_text())["nodes"]
    assert {k: v["launches"] for k, v in records.items()} == {level1.id: 1, level2.id: 2, mix.id: 1}
    assert "Resuming from" in (sweep_dir / level2.dir / "train.log").read_text()
    nodes = json.loads((sweep_dir / "sweep.json").read_text())["nodes"]
    assert all(n["status"] == "done" for n in nodes.values())
