import json
from pathlib import Path

import pytest
import yaml

from curricula.run import Manifest, ManifestError, main, run_curriculum
from curricula.spec import diff, load_curriculum

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, spec, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


BASE = {"name": "t", "model": "stagerl:tiny-random", "defaults": {"config": str(ROOT / "configs/stages/smoke.yaml")},
        "stages": [{"name": "a", "data": ["arithmetic:1"], "max_steps": 2},
                   {"name": "b", "data": ["arithmetic:2@0.5", "math-levels:1@0.5"], "max_steps": 3,
                    "advance": {"reward_threshold": 0.5, "window": 2}}]}  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "configs/curricula").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_curriculum_parses(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = load_curriculum(path)
    assert spec.stages and all(Path(s.config).is_file() for s in spec.stages)


def test_paper_curriculum_is_level2_then_level3_with_plateau():
    spec = load_curriculum(ROOT / "configs/curricula/am_math_paper.yaml")
    assert [s.config for s in spec.stages] == ["configs/stages/level2.yaml", "configs/stages/level3.yaml"]
    assert "advance_plateau_delta" in spec.stages[0].overrides


def test_stage_overrides_become_cli_args(tmp_path):
    spec = load_curriculum(write(tmp_path, BASE))
    args = spec.stages[1].cli_args()
    assert args[args.index("--data") + 1 : args.index("--data") + 3] == [
        "arithmetic:2@0.5",
        "math-levels:1@0.5",
    ]
    assert args[args.index("--advance_reward_threshold") + 1] == "0.5"


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda s: s["stages"][0].update(learning_rat=1), "unknown stage fields ['learning_rat']"),
        (lambda s: s["stages"][1].update(name="a"), "stage name 'a' is used twice"),
        (lambda s: s["stages"][0].update(config="nope.yaml"), "config nope.yaml does not exist"),
        (lambda s: s["stages"][1]["advance"].update(treshold=1), "unknown advance keys ['treshold']"),
        (lambda s: s.update(stagez=[]), "unknown keys ['stagez']"),
        (lambda s: s["stages"][0].update(output_dir="x"), "`output_dir` is set by the curriculum runner"),
    ],
)
def test_bad_curriculum_errors_name_the_problem(tmp_path, mutate, message):
    spec = json.loads(json.dumps(BASE))
    mutate(spec)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_curriculum(write(tmp_path, spec))
    assert message in str(err.value) and "c.yaml" in str(err.value)


def test_changed_curriculum_is_refused_with_the_change(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Manifest(run_dir, load_curriculum(write(tmp_path, BASE)))
    changed = json.loads(json.dumps(BASE))
    changed["stages"][0]["max_steps"] = 5
    with pytest.raises(ManifestError, match=r"stages\[0\]\.overrides\.max_steps: 2 -> 5"):
        Manifest(run_dir, load_curriculum(write(tmp_path, changed)))


def test_corrupt_manifest_is_refused_and_nothing_deleted(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "stage-1-a" / "checkpoint-1").mkdir(parents=True)
    (run_dir / "curriculum.json").write_text('{"stages": [')
    with pytest.raises(SystemExit, match="unreadable"):
        main([str(write(tmp_path, BASE)), "--output_dir", str(run_dir)])
    assert (run_dir / "curriculum.json").read_text() == '{"stages": ['
    assert (run_dir / "stage-1-a" / "checkpoint-1").is_dir()


def test_dry_run_prints_chained_commands(tmp_path, capsys):
    run_curriculum(load_curriculum(write(tmp_path, BASE)), tmp_path / "run", dry_run=True)
    out = capsys.readouterr().out.splitlines()
    commands = [line for line in out if not line.startswith("#")]
    assert len(commands) == 2
    assert "--model_name_or_path stagerl:tiny-random" in commands[0]
    assert f"--model_name_or_path {tmp_path / 'run' / 'stage-1-a' / 'final'}" in commands[1]
    assert not (tmp_path / "run").exists()


def test_accelerate_launcher(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MACHINE_RANK", "1")
    run_curriculum(load_curriculum(write(tmp_path, BASE)), tmp_path / "run", dry_run=True,
                   accelerate_config="configs/accelerate/zero3.yaml", num_processes=2)  # fmt: skip
    out = capsys.readouterr().out
    assert "accelerate.commands.launch --config_file configs/accelerate/zero3.yaml --num_processes 2" in out
    assert "--machine_rank 1" in out


def test_diff_lists_nested_changes():
    assert diff({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}], "c": 1}) == [
        "a[1].b: 2 -> 3",
        "c: '<absent>' -> 1",
    ]


def test_multi_node_counts_processes_and_only_primary_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NUM_MACHINES", "2")
    monkeypatch.setenv("MACHINE_RANK", "1")
    spec = load_curriculum(write(tmp_path, BASE))
    run_curriculum(spec, tmp_path / "run", dry_run=True, num_processes=8)
    assert (
        "--num_processes 16 --num_machines 2 --machine_rank 1" in capsys.readouterr().out
    )  # total, per accelerate
    (tmp_path / "run").mkdir()
    Manifest(tmp_path / "run", spec)
    assert not (tmp_path / "run" / "curriculum.json").exists()  # the primary node keeps the record
    monkeypatch.setenv("MACHINE_RANK", "0")
    Manifest(tmp_path / "run", spec)
    assert (tmp_path / "run" / "curriculum.json").exists()
