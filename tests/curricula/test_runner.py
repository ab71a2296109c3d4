"""The runner with training faked: records, dry run and emitted commands, the loop for curricula and sweeps,
evaluation (also on several machines), moved run directories, the report."""

import csv
import json
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from stagerl.curricula import run as run_mod
from stagerl.curricula.commands import launcher
from stagerl.curricula.plan import load_plan
from stagerl.curricula.report import write_report
from stagerl.curricula.run import Record, RecordError, main, run_plan
from tests.helpers.curricula import BASE, ROOT, SMOKE_BASE, SMOKE_SWEEP, write

PLAIN = launcher(None, 1)


class FakeTrainer:
    """Stands in for `run_logged`: records each launch and writes what a finished stage leaves behind."""

    def __init__(self, fail_on: str | None = None):
        self.launches, self.publishes, self.fail_on = [], [], fail_on

    def __call__(self, cmd, log_path):
        if "stagerl.train.publish" in cmd:  # after an evaluation: its results to the tracker, the push
            self.publishes.append((Path(cmd[cmd.index("stagerl.train.publish") + 1]).name, cmd[-1]))
            return 0
        out = Path(cmd[cmd.index("--output_dir") + 1])
        model = cmd[cmd.index("--model_name_or_path") + 1]
        assert model.startswith("stagerl:") or Path(model).is_dir(), f"parent {model} not trained yet"
        self.launches.append(out.name)
        if self.fail_on and self.fail_on in out.name:
            return 1
        (out / "final").mkdir(parents=True, exist_ok=True)
        record = {
            "steps": 2,
            "reward_start": 0.1,
            "reward_end": 0.5,
            "wall_time_s": 3.0,
            "reward_history": [[1, 0.1], [2, 0.5]],
        }
        record["generation"] = {"rollouts": 8, "completion_tokens": 100}  # what `stage.json` counts
        (out / "stage.json").write_text(json.dumps(record))
        return 0


@pytest.fixture
def fake(monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(run_mod, "run_logged", trainer)
    return trainer


def write_summary(out_dir, pass_at_1: dict) -> None:
    """What `stagerl.train.evaluate` leaves in its output directory, as far as the runner reads it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"benchmarks": {name: {"pass@1": value} for name, value in pass_at_1.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary))


def fake_eval(calls, scores=None):
    def evaluate(eval_spec, model, out_dir, log_path, prefix):
        calls.append(model)
        write_summary(out_dir, {b: next(scores) if scores else 0.5 for b in eval_spec["benchmarks"]})

    return evaluate


# --- records ---


def test_changed_curriculum_is_refused_with_the_change(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Record(run_dir, load_plan(write(tmp_path, BASE)))
    changed = json.loads(json.dumps(BASE))
    changed["stages"][0]["max_steps"] = 5
    with pytest.raises(RecordError, match=r"stages\[0\]\.overrides\.max_steps: 2 -> 5"):
        Record(run_dir, load_plan(write(tmp_path, changed)))


def test_corrupt_record_is_refused_and_nothing_deleted(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "stage-1-a" / "checkpoint-1").mkdir(parents=True)
    (run_dir / "curriculum.json").write_text('{"stages": [')
    with pytest.raises(SystemExit, match="unreadable"):
        main([str(write(tmp_path, BASE)), "--output_dir", str(run_dir)])
    assert (run_dir / "curriculum.json").read_text() == '{"stages": ['
    assert (run_dir / "stage-1-a" / "checkpoint-1").is_dir()


def test_corrupt_sweep_record_is_refused(tmp_path):
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text('{"nodes": [')
    with pytest.raises(SystemExit, match="unreadable"):
        main(["--sweep", str(SMOKE_SWEEP), "--output_dir", str(tmp_path / "sw")])
    assert (tmp_path / "sw" / "sweep.json").read_text() == '{"nodes": ['


def test_a_second_runner_on_the_same_directory_is_refused(tmp_path, fake):
    plan = load_plan(write(tmp_path, BASE))
    (tmp_path / "run").mkdir()
    with run_mod.locked(tmp_path / "run"), pytest.raises(RecordError, match="another runner is using"):
        run_plan(plan, tmp_path / "run", PLAIN)
    assert fake.launches == []


# --- dry run, launcher, emitted commands ---


def test_dry_run_prints_chained_commands(tmp_path, capsys):
    assert main([str(write(tmp_path, BASE)), "--output_dir", str(tmp_path / "run"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    commands = [line for line in out if line and not line.startswith("#")]
    assert len(commands) == 2
    assert "--model_name_or_path stagerl:tiny-random" in commands[0]
    assert f"--model_name_or_path {tmp_path / 'run' / 'stage-1-a' / 'final'}" in commands[1]
    assert not (tmp_path / "run").exists()


def test_a_stage_yaml_that_replaces_its_output_dir_runs_in_a_curriculum(tmp_path, capsys):
    """`replace_output_dir: true` in a stage YAML (for launching that stage alone, again) would meet the
    runner's `--resume_from_checkpoint latest` on every launch and be refused; the runner, which always resumes,
    sets it false, and a curriculum entry may not set it."""
    from stagerl.train.grpo import parse_stage_args

    stage_yaml = yaml.safe_load((ROOT / "configs/stages/smoke.yaml").read_text())
    config = write(tmp_path, {**stage_yaml, "replace_output_dir": True}, "stage.yaml")
    spec = {**BASE, "defaults": {"config": str(config)}}
    assert main([str(write(tmp_path, spec)), "--output_dir", str(tmp_path / "run"), "--dry-run"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("#")]
    for command in commands:
        argv = shlex.split(command)
        if "--problem_stats" in argv:  # an earlier stage's file, which that stage would have written
            stats = Path(argv[argv.index("--problem_stats") + 1])
            stats.parent.mkdir(parents=True, exist_ok=True)
            stats.touch()
        stage_args, training_args, _ = parse_stage_args(argv[argv.index(str(ROOT / "train/grpo.py")) + 1 :])
        assert training_args.resume_from_checkpoint == "latest" and not stage_args.replace_output_dir
    entry = {**BASE, "stages": [{**BASE["stages"][0], "replace_output_dir": True}]}
    with pytest.raises(ValueError, match="`replace_output_dir` is set by the curriculum runner"):
        load_plan(write(tmp_path, entry, "entry.yaml"))


def test_sweep_dry_run_prints_tree_and_savings(tmp_path, capsys):
    assert main(["--sweep", str(SMOKE_SWEEP), "--output_dir", str(tmp_path / "sw"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 curricula, 7 distinct stages" in out
    assert "7 stage trainings instead of 10: 30% saved" in out
    assert "│   │   └── level3 [" in out and "(1-2-3, 1-2-3-lr3x, 1-mix)" in out
    assert not (tmp_path / "sw").exists()


def test_accelerate_launcher(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MACHINE_RANK", "1")
    main(
        [
            str(write(tmp_path, BASE)),
            "--output_dir",
            str(tmp_path / "run"),
            "--dry-run",
            "--accelerate-config",
            "configs/accelerate/zero3.yaml",
            "--num-processes",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert "accelerate.commands.launch --config_file configs/accelerate/zero3.yaml --num_processes 2" in out
    assert "--machine_rank 1" in out


def test_multi_node_counts_processes_and_only_primary_writes(tmp_path, capsys, monkeypatch, fake):
    monkeypatch.setenv("NUM_MACHINES", "2")
    assert "--num_processes 16 --num_machines 2" in " ".join(launcher(None, 8))  # total, per accelerate
    plan = load_plan(write(tmp_path, BASE))
    (tmp_path / "run").mkdir()
    Record(tmp_path / "run", plan, writer=False)
    assert not (tmp_path / "run" / "curriculum.json").exists()  # the primary node keeps the record
    Record(tmp_path / "run", plan)
    assert (tmp_path / "run" / "curriculum.json").exists()


def test_emit_commands_in_dependency_order(tmp_path, capsys):
    sweep_dir = tmp_path / "sw"
    main(["--sweep", str(SMOKE_SWEEP), "--output_dir", str(sweep_dir), "--emit", "commands"])
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
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    root = plan.paths["1-2-3"][0]
    main(["--sweep", str(SMOKE_SWEEP), "--output_dir", str(sweep_dir), "--emit", "slurm"])
    script = capsys.readouterr().out
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    submits = [line for line in script.splitlines() if "sbatch --parsable" in line]
    assert len(submits) == 7
    for nid, node in plan.nodes.items():
        line = next(s for s in submits if s.startswith(f"job_{nid}="))
        if node.parent is None:
            assert "--dependency" not in line
        else:
            assert f"--dependency=afterok:$job_{node.parent} " in line
    # A node finished on disk is left out; its children then start at once.
    (sweep_dir / plan.nodes[root].dir / "final").mkdir(parents=True)
    (sweep_dir / plan.nodes[root].dir / "stage.json").write_text("{}")
    main(["--sweep", str(SMOKE_SWEEP), "--output_dir", str(sweep_dir), "--emit", "slurm"])
    script = capsys.readouterr().out
    assert script.count("sbatch --parsable") == 6 and f"job_{root}" not in script


def test_emit_works_for_a_curriculum(tmp_path, capsys):
    main([str(write(tmp_path, BASE)), "--output_dir", str(tmp_path / "run"), "--emit", "slurm"])
    script = capsys.readouterr().out
    assert script.count("sbatch --parsable") == 2 and script.count("--dependency=afterok") == 1


# --- the loop, training faked ---


def test_curriculum_record_is_the_one_branch_view_with_relative_paths(tmp_path, fake):
    plan = load_plan(write(tmp_path, BASE))
    record, failed = run_plan(plan, tmp_path / "run", PLAIN)
    assert not failed and fake.launches == ["stage-1-a", "stage-2-b"]
    saved = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert [s["status"] for s in saved["stages"]] == ["done", "done"]
    assert [s["checkpoint"] for s in saved["stages"]] == ["stage-1-a/final", "stage-2-b/final"]
    assert saved["stages"][1]["metrics"]["steps"] == 2 and saved["spec"]["model"] == "stagerl:tiny-random"


def test_runner_trains_each_node_once_and_resumes_nothing(tmp_path, fake):
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    record, failed = run_plan(plan, tmp_path / "sw", PLAIN)
    assert not failed and len(fake.launches) == 7 == len(set(fake.launches))
    assert all(n["status"] == "done" and n["launches"] == 1 for n in record.nodes.values())
    run_plan(plan, tmp_path / "sw", PLAIN)
    assert len(fake.launches) == 7
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved["curricula"]["2-3"]["nodes"] == plan.paths["2-3"]


def test_failed_node_stops_only_its_subtree_and_is_retried(tmp_path, fake):
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    level2 = plan.nodes[plan.paths["1-2-3"][1]]
    fake.fail_on = level2.id
    record, failed = run_plan(plan, tmp_path / "sw", PLAIN)
    assert failed == [level2.id, *plan.paths["1-2-3"][2:], plan.paths["1-2-3-lr3x"][2]]
    assert len(fake.launches) == 5  # level1, level2 (failed), mix23, and 2-3's two stages
    assert record.nodes[level2.id]["status"] == "failed"
    fake.fail_on = None
    record, failed = run_plan(plan, tmp_path / "sw", PLAIN)
    assert not failed and record.nodes[level2.id]["launches"] == 2
    assert len(fake.launches) == 5 + 3


def test_failed_curriculum_stage_exits_non_zero_with_the_log(tmp_path, fake, caplog):
    fake.fail_on = "stage-2"
    with pytest.raises(SystemExit, match="did not finish"):
        main([str(write(tmp_path, BASE)), "--output_dir", str(tmp_path / "run")])
    assert "stage 2/2 (b) failed with exit code 1" in caplog.text and "train.log" in caplog.text
    saved = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert [s["status"] for s in saved["stages"]] == ["done", "failed"]


def test_edited_sweep_reuses_unchanged_nodes(tmp_path, fake):
    spec = yaml.safe_load(SMOKE_SWEEP.read_text())
    spec["base"] = SMOKE_BASE
    run_plan(load_plan(write(tmp_path, spec, "s.yaml"), sweep=True), tmp_path / "sw", PLAIN)
    spec["variations"].append({"name": "1-2-3-lr10x", "set": {"level3.learning_rate": 1.0e-4}})
    run_plan(load_plan(write(tmp_path, spec, "s.yaml"), sweep=True), tmp_path / "sw", PLAIN)
    assert len(fake.launches) == 7 + 1


def test_stage_finished_while_the_record_was_not_updated_is_adopted_not_retrained(tmp_path, fake):
    plan = load_plan(write(tmp_path, BASE))
    run_plan(plan, tmp_path / "run", PLAIN)
    # The runner died after stage 2 finished but before it recorded it.
    saved = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    saved["stages"][1].update(status="running", checkpoint=None, metrics={})
    (tmp_path / "run" / "curriculum.json").write_text(json.dumps(saved))
    record, failed = run_plan(plan, tmp_path / "run", PLAIN)
    assert not failed and len(fake.launches) == 2
    assert record.nodes[plan.paths["t"][1]]["status"] == "done"


def test_from_stage_moves_old_directories_aside_in_a_sweep(tmp_path, fake):
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    run_plan(plan, tmp_path / "sw", PLAIN)
    run_plan(plan, tmp_path / "sw", PLAIN, from_stage=3)
    assert len(fake.launches) == 7 + 2  # the two third stages (of 1-2-3 and 1-2-3-lr3x) again
    assert len(list((tmp_path / "sw" / "nodes").glob("*.replaced-*"))) == 2


def test_moved_run_directory_and_another_working_directory(tmp_path, fake, monkeypatch):
    spec = json.loads(json.dumps(BASE))
    spec["defaults"]["config"] = "configs/stages/smoke.yaml"
    path = write(tmp_path, spec)
    monkeypatch.chdir(ROOT)
    run_plan(load_plan(path), tmp_path / "run", PLAIN)
    before = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    shutil.move(tmp_path / "run", tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    record, failed = run_plan(load_plan(path), tmp_path / "moved", PLAIN)
    assert not failed and len(fake.launches) == 2  # nothing retrained
    after = json.loads((tmp_path / "moved" / "curriculum.json").read_text())
    assert [s["checkpoint"] for s in after["stages"]] == [s["checkpoint"] for s in before["stages"]]


# --- evaluation ---


def test_every_node_is_evaluated_once_and_start_models_when_asked(tmp_path, fake, monkeypatch):
    evaluated = []
    monkeypatch.setattr(run_mod, "evaluate_model", fake_eval(evaluated))
    spec = {
        "base": SMOKE_BASE,
        "variations": [
            {"name": "a"},
            {
                "name": "b",
                "set": {"level3.learning_rate": 3.0e-5},
                "eval": {"benchmarks": ["math500"], "limit": 2, "initial": True},
            },
        ],
    }
    plan = load_plan(write(tmp_path, spec, "s.yaml"), sweep=True)
    record, failed = run_plan(plan, tmp_path / "sw", PLAIN)
    assert not failed and len(evaluated) == 4 == len(set(evaluated))  # the start model, then b's path
    assert evaluated[0] == "stagerl:tiny-random"
    assert record.nodes[plan.paths["b"][2]]["eval"] == {"math500": 0.5}
    assert "eval" not in record.nodes[plan.paths["a"][2]]  # a's own level3 has no eval
    evaluated_dirs = {plan.nodes[n].dir.split("/")[1] for n in plan.paths["b"]}
    assert {name for name, _ in fake.publishes} == evaluated_dirs and fake.publishes[0][
        1
    ] == '{"math500": 0.5}'
    run_plan(plan, tmp_path / "sw", PLAIN)
    assert len(evaluated) == 4
    text = write_report(tmp_path / "sw", plan, record.data)
    assert "math500 (last stage)" in text and "| start | done | 0 |" in text


def two_machines(tmp_path, monkeypatch, plan, grading_s=1.0):
    """Two runners stand in for two machines: every launch, of a stage or of an evaluation, is a rendezvous of
    both (it times out after 2 s). Rank 0 lives on the primary and writes the stage's export, or the
    evaluation's summary after `grading_s` of grading. Returns each machine's failures and launches."""
    rendezvous = threading.Barrier(2, timeout=2.0)
    launches: dict[int, list[str]] = {0: [], 1: []}

    def launch(cmd, log_path):
        if "stagerl.train.publish" in cmd:
            return 0
        machine = 0 if log_path.name in ("train.log", "eval.log") else 1
        evaluation = "stagerl.train.evaluate" in cmd
        out = Path(cmd[cmd.index("--output" if evaluation else "--output_dir") + 1])
        launches[machine].append(f"eval {out.parent.name}" if evaluation else out.name)
        try:
            rendezvous.wait()
        except threading.BrokenBarrierError:
            return 1
        if machine == 0 and evaluation:
            time.sleep(grading_s)  # the first process grades everything after the others left
            write_summary(out, {"math500": 0.25})
        elif machine == 0 and not evaluation:
            (out / "final").mkdir(parents=True, exist_ok=True)
            (out / "stage.json").write_text(json.dumps({"steps": 1}))
            rendezvous.wait()  # every rank leaves after the export, as `train/grpo.py` does
        elif not evaluation:
            rendezvous.wait()
        return 0

    monkeypatch.setattr(run_mod, "run_logged", launch)
    monkeypatch.setattr(run_mod, "EVAL_WAIT_S", 0.2)
    results = {}

    def machine(rank):
        results[rank] = run_plan(plan, tmp_path / "run", PLAIN, machine_rank=rank)[1]

    threads = [threading.Thread(target=machine, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, launches


def test_every_machine_evaluates_its_share_and_waits_for_the_primary_record(tmp_path, monkeypatch):
    plan = load_plan(write(tmp_path, {**BASE, "eval": {"benchmarks": ["math500"]}}))
    results, launches = two_machines(tmp_path, monkeypatch, plan)
    assert results == {0: [], 1: []}
    expected = ["stage-1-a", "eval stage-1-a", "stage-2-b", "eval stage-2-b"]
    assert launches == {0: expected, 1: expected}
    saved = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert [s["eval"] for s in saved["stages"]] == [{"math500": 0.25}] * 2


def test_a_secondary_gives_up_waiting_for_an_evaluation_record_and_says_on_what(
    tmp_path, monkeypatch, caplog
):
    """The primary's grading outlasts the secondary's patience: the secondary does not wait forever, and says
    what it waited for."""
    monkeypatch.setattr(run_mod, "EVAL_RECORD_TIMEOUT_S", 1.0)
    plan = load_plan(
        write(tmp_path, {**BASE, "stages": BASE["stages"][:1], "eval": {"benchmarks": ["math500"]}})
    )
    results, _ = two_machines(tmp_path, monkeypatch, plan, grading_s=3.0)
    assert results == {0: [], 1: [plan.paths[plan.name][0]]}
    assert "waiting for the primary machine (MACHINE_RANK 0) to record the evaluation of" in caplog.text
    assert "stage-1-a/final" in caplog.text


# --- the report ---


def test_report_compares_curricula(tmp_path, fake):
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    record, _ = run_plan(plan, tmp_path / "sw", PLAIN)
    record.nodes[plan.paths["2-3"][1]]["eval"] = {"math500": {"pass@1": 0.25}}
    for entry in record.nodes.values():
        entry["launch_s"] = 4.0  # launches take longer than their training loops (3.0 s in stage.json)
    text = write_report(tmp_path / "sw", plan, record.data)
    assert "7 stage trainings instead of 10: 30% saved" in text
    assert "| 2-3 | level2 -> level3 | done | 4 | 0.500 | 8 | 0.250 |" in text
    assert "28 s for the sweep, 40 s if each curriculum ran alone (training loops only: 21 s vs 30 s)" in text
    csv_lines = (tmp_path / "sw" / "report.csv").read_text().splitlines()
    assert csv_lines[0].endswith("cumulative_time_s,eval_math500") and len(csv_lines) == 1 + 10
    for png in ("rewards.png", "time.png", "eval.png"):
        assert (tmp_path / "sw" / png).stat().st_size > 1000


def test_report_over_seeds(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(run_mod, "evaluate_model", fake_eval([], iter([0.2, 0.5, 0.4, 0.5] * 4)))
    spec = {
        "name": "s",
        "base": SMOKE_BASE,
        "variations": [{"name": "a", "stages": ["level1"]}],
        "grid": {"seed": [0, 1]},
    }
    base = yaml.safe_load(Path(SMOKE_BASE).read_text())
    base["eval"] = {"benchmarks": ["x", "y"]}
    spec["base"] = str(write(tmp_path, base, "base.yaml"))
    plan = load_plan(write(tmp_path, spec, "s.yaml"), sweep=True)
    record, _ = run_plan(plan, tmp_path / "sw", PLAIN)
    text = write_report(tmp_path / "sw", plan, record.data)
    # final x over seeds 0.2 and 0.4: mean 0.3, half the range 0.1; mean over benchmarks (0.35, 0.45)
    assert "| a | 2 | 0.300 ± 0.100 | 0.500 ± 0.000 | 0.400 ± 0.050 |" in text


# --- several machines: a shared run directory ---


def test_a_secondary_machine_refuses_a_run_directory_the_primary_does_not_write(tmp_path, monkeypatch, fake):
    """On a local disk the secondary never finds the primary's mark for this run: refused in one line, nothing
    launched. A mark left by another run (another rendezvous) does not count."""
    monkeypatch.setattr(run_mod, "SENTINEL_WAIT_S", 0.5)
    for key, value in {"NUM_MACHINES": "2", "MAIN_PROCESS_IP": "node0", "MAIN_PROCESS_PORT": "29500"}.items():
        monkeypatch.setenv(key, value)
    plan = str(write(tmp_path, BASE))
    monkeypatch.setenv("MACHINE_RANK", "1")
    with pytest.raises(SystemExit) as refused:
        main([plan, "--output_dir", str(tmp_path / "local")])
    assert str(refused.value).startswith(
        f"error: {tmp_path / 'local'} is not shared with the primary machine"
    )
    assert "MAIN_PROCESS_PORT=29500" in str(refused.value) and "\n" not in str(refused.value)
    assert fake.launches == []

    shared = tmp_path / "shared"
    monkeypatch.setenv("MACHINE_RANK", "0")
    monkeypatch.setenv("MAIN_PROCESS_PORT", "29400")  # an earlier run's rendezvous
    shared.mkdir()
    run_mod.check_shared(shared.resolve(), primary=True)
    monkeypatch.setenv("MACHINE_RANK", "1")
    monkeypatch.setenv("MAIN_PROCESS_PORT", "29500")
    with pytest.raises(SystemExit, match="is not shared"):
        main([plan, "--output_dir", str(shared)])
    monkeypatch.setenv("MAIN_PROCESS_PORT", "29400")
    run_mod.check_shared(shared.resolve(), primary=False)  # this run's mark: accepted


# --- the report's arms: tokens, and each arm minus a baseline with a paired bootstrap interval ---

SAMPLES = 4  # per problem, in the fake per-sample evaluation files


def right_answers(arm: str, seed: int, problem: int) -> int:
    """How many of a problem's samples are right, per arm: `shifted` is `mixed` plus one on every (seed,
    problem), `staged` differs from it by an uneven amount."""
    base = (problem + seed) % 3
    return {"mixed": base, "shifted": base + 1, "staged": (7 * problem + 3 * seed) % 5}[arm]


def write_samples(plan, problems: int):
    """A stand-in for `evaluate_model` that writes the per-sample files (`id`, `sample`, `correct`) of the
    curriculum whose stage it evaluates, by `right_answers`; `shifted` lists its problems in reverse order."""
    specs = {c.name: c for c in plan.curricula}

    def evaluate(eval_spec, model, out_dir, log_path, prefix):
        spec = specs[plan.nodes[Path(model).parent.name.split("-")[0]].curricula[0]]
        out_dir.mkdir(parents=True, exist_ok=True)
        order = range(problems)[:: -1 if spec.arm == "shifted" else 1]
        for bench in eval_spec["benchmarks"]:
            right = {p: right_answers(spec.arm, spec.seed_point["seed"], p) for p in order}
            samples = [
                {"id": f"{bench}-{p}", "sample": k, "correct": k < right[p]}
                for p in order
                for k in range(SAMPLES)
            ]
            lines = [json.dumps(sample) for sample in samples]
            (out_dir / f"{bench}.jsonl").write_text("\n".join(lines) + "\n")
        return write_summary(out_dir, dict.fromkeys(eval_spec["benchmarks"], 0.5))

    return evaluate


def run_arms(tmp_path, monkeypatch, *, problems: int = 12, seeds: int = 3, report=None):
    """A sweep of three arms (`mixed`, the baseline; `staged`, whose first stage is `mixed`'s; `shifted`) over
    `seeds` seeds moving `seed` and `data_seed` together, run with training and evaluation faked."""
    base = yaml.safe_load(Path(SMOKE_BASE).read_text())
    base["eval"] = {"benchmarks": ["x", "y"]}
    variations = [
        {"name": "mixed", "stages": ["level1"]},
        {"name": "staged", "stages": ["level1", "level2"]},
        {"name": "shifted", "stages": ["level1"], "set": {"learning_rate": 3.0e-5}},
    ]
    spec = {
        "name": "arms",
        "base": str(write(tmp_path, base, "base.yaml")),
        "variations": variations,
        "grid": {"seed+data_seed": [[s, s] for s in range(seeds)]},
        "report": {"baseline": "mixed"} if report is None else report,
    }
    plan = load_plan(write(tmp_path, spec, "arms.yaml"), sweep=True)
    monkeypatch.setattr(run_mod, "run_logged", FakeTrainer())
    monkeypatch.setattr(run_mod, "evaluate_model", write_samples(plan, problems))
    record, failed = run_plan(plan, tmp_path / "sw", PLAIN)
    assert not failed
    text = write_report(tmp_path / "sw", plan, record.data)
    with open(tmp_path / "sw" / "arms.csv") as f:
        rows = {(r["arm"], r["benchmark"]): r for r in csv.DictReader(f)}
    return text, rows


def test_report_gives_each_arm_tokens_and_its_difference_from_the_baseline(tmp_path, monkeypatch):
    text, rows = run_arms(tmp_path, monkeypatch)
    # Tokens: 100 per stage (FakeTrainer); staged's level1 is mixed's, counted in both.
    assert "| mixed | 3 | 24 | 300 | 0.250 | 0.250 | 0.250 |" in text
    assert "| staged | 3 | 48 | 600 |" in text and "| shifted | 3 | 24 | 300 | 0.500 |" in text
    expected = sum(
        right_answers("staged", s, p) - right_answers("mixed", s, p) for s in range(3) for p in range(12)
    )
    expected /= SAMPLES * 3 * 12
    for bench in ("x", "y", "mean"):
        row = rows[("staged", bench)]
        low, estimate, high = float(row["ci_low"]), float(row["difference"]), float(row["ci_high"])
        assert estimate == pytest.approx(expected, abs=1e-12)
        assert low < estimate < high and high - low > 0.05
        assert (row["seeds_paired"], row["problems"]) == ("3", "24" if bench == "mean" else "12")
    assert rows[("mixed", "x")]["difference"] == ""  # the baseline itself
    assert f"| staged | 3 | {expected:+.3f} [" in text
    assert (tmp_path / "sw" / "arms.png").stat().st_size > 1000


def test_the_bootstrap_is_paired_by_seed_and_problem(tmp_path, monkeypatch):
    """`shifted` is `mixed` plus 0.25 on every (seed, problem), while both vary over problems and seeds: paired,
    every replicate's difference is 0.25; an unpaired bootstrap would spread with the problems' spread, and so
    would pairing by position (`shifted` lists its problems in reverse)."""
    text, rows = run_arms(tmp_path, monkeypatch)
    assert len({right_answers("mixed", s, p) for s in range(3) for p in range(12)}) == 3
    for bench in ("x", "y", "mean"):
        row = rows[("shifted", bench)]
        assert [float(row[k]) for k in ("ci_low", "difference", "ci_high")] == pytest.approx(
            [0.25] * 3, abs=1e-12
        )
    assert "| shifted | 3 |" + " +0.250 [+0.250, +0.250] |" * 3 in text


def test_the_interval_shrinks_with_more_problems(tmp_path, monkeypatch):
    widths = []
    for problems in (15, 150):
        (tmp_path / str(problems)).mkdir()
        _, rows = run_arms(tmp_path / str(problems), monkeypatch, problems=problems)
        row = rows[("staged", "mean")]
        widths.append(float(row["ci_high"]) - float(row["ci_low"]))
    assert widths[1] < widths[0] / 2


def test_without_a_baseline_no_differences_are_reported(tmp_path, monkeypatch):
    text, rows = run_arms(tmp_path, monkeypatch, report={})
    assert "| staged | 3 | 48 | 600 |" in text and " minus " not in text
    assert all(r["difference"] == "" and r["baseline"] == "" for r in rows.values())
