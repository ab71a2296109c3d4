"""Plans: curriculum and sweep files, their errors, node identity and the tree."""

import json
from pathlib import Path

import pytest

from stagerl.curricula.plan import load_plan, node_id
from stagerl.curricula.spec import diff, load_curriculum, load_sweep
from tests.helpers.curricula import BASE, ROOT, SMOKE_BASE, SMOKE_SWEEP, write

# --- curricula ---


@pytest.mark.parametrize("path", sorted((ROOT / "configs/curricula").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_curriculum_parses(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = load_curriculum(path)
    assert spec.stages and all(Path(s.config).is_file() and s.config_file.is_file() for s in spec.stages)


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


def test_evaluation_asks_as_the_stage_trains(tmp_path):
    from stagerl.curricula.commands import evaluation_command

    spec = {**BASE, "eval": {"benchmarks": ["arith1"]}}
    spec["stages"] = [{**BASE["stages"][0], "system_prompt": "Be brief.", "prompt_template": "Q: {problem}"}]
    stage = load_curriculum(write(tmp_path, spec)).stages[0]
    assert stage.asks() == {"prompt_template": "Q: {problem}", "system_prompt": "Be brief."}
    cmd = evaluation_command({**stage.asks(), **spec["eval"]}, "m", tmp_path / "e", ["python"])
    assert cmd[cmd.index("--system-prompt") + 1] == "Be brief."
    assert cmd[cmd.index("--prompt-template") + 1] == "Q: {problem}"
    assert set(load_curriculum(write(tmp_path, BASE)).stages[0].asks()) == {"prompt_template"}  # smoke.yaml's


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda s: s["stages"][0].update(learning_rat=1), "unknown stage fields ['learning_rat']"),
        (lambda s: s["stages"][1].update(name="a"), "stage name 'a' is used twice"),
        (lambda s: s["stages"][0].update(config="nope.yaml"), "config nope.yaml does not exist"),
        (lambda s: s["stages"][1]["advance"].update(treshold=1), "unknown advance keys ['treshold']"),
        (lambda s: s.update(stagez=[]), "unknown keys ['stagez']"),
        (lambda s: s["stages"][0].update(output_dir="x"), "`output_dir` is set by the curriculum runner"),
        (lambda s: s.update(eval={"benchmarks": ["math500"], "sample": 2}), "unknown eval keys ['sample']"),
        (lambda s: s["stages"][0].update(decontaminate=[]), "['decontaminate'] = [] cannot override"),
    ],
)
def test_bad_curriculum_errors_name_the_problem(tmp_path, mutate, message):
    spec = json.loads(json.dumps(BASE))
    mutate(spec)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_curriculum(write(tmp_path, spec))
    assert message in str(err.value) and "c.yaml" in str(err.value)


def test_config_path_is_kept_as_written_and_found_from_any_directory(tmp_path, monkeypatch):
    spec = json.loads(json.dumps(BASE))
    spec["defaults"]["config"] = "configs/stages/smoke.yaml"
    path = write(tmp_path, spec)
    monkeypatch.chdir(ROOT)
    here = load_plan(path)
    monkeypatch.chdir(tmp_path)
    elsewhere = load_plan(path)
    assert here.curricula[0].resolved() == elsewhere.curricula[0].resolved()
    assert list(here.nodes) == list(elsewhere.nodes)
    assert elsewhere.curricula[0].stages[0].config == "configs/stages/smoke.yaml"


def test_diff_lists_nested_changes():
    assert diff({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}], "c": 1}) == [
        "a[1].b: 2 -> 3",
        "c: '<absent>' -> 1",
    ]


def test_curriculum_is_the_one_branch_tree(tmp_path):
    plan = load_plan(write(tmp_path, BASE))
    assert plan.kind == "curriculum" and plan.record_file == "curriculum.json"
    assert [n.dir for n in plan.nodes.values()] == ["stage-1-a", "stage-2-b"]
    a, b = plan.nodes.values()
    assert b.parent == a.id and plan.paths["t"] == [a.id, b.id]


# --- sweeps ---


def by_name(curricula):
    return {c.name: c for c in curricula}


@pytest.mark.parametrize("path", sorted((ROOT / "configs/sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_parses(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_plan(path, sweep=True).curricula


def test_smoke_sweep_shares_prefixes():
    plan = load_plan(SMOKE_SWEEP, sweep=True)
    assert list(plan.paths) == ["1-2-3", "1-2-3-lr3x", "1-mix", "2-3"]
    assert len(plan.nodes) == 7 and plan.trainings_alone == 10
    p = plan.paths
    assert p["1-2-3"][:2] == p["1-2-3-lr3x"][:2] and p["1-2-3"][2] != p["1-2-3-lr3x"][2]
    assert p["1-mix"][0] == p["1-2-3"][0]
    assert not set(p["2-3"]) & set(p["1-2-3"])  # level2 from the base model is another stage
    assert plan.nodes[p["1-2-3-lr3x"][2]].stage.overrides["learning_rate"] == 3.0e-5
    assert plan.nodes[p["1-mix"][1]].stage.overrides["max_steps"] == 2  # a new stage gets the base defaults
    assert all(n.dir == f"nodes/{n.id}-{n.name}" for n in plan.nodes.values())


def test_grid_crosses_variations(tmp_path):
    spec = {
        "name": "g",
        "base": SMOKE_BASE,
        "variations": [{"name": "a"}, {"name": "b", "stages": ["level2", "level3"]}],
        "grid": {"level3.learning_rate": [1.0e-5, 3.0e-5], "advance": [{}, {"reward_threshold": 0.5}]},
    }
    plan = load_plan(write(tmp_path, spec, "s.yaml"), sweep=True)
    names = [c.name for c in plan.curricula]
    assert len(names) == 8 and names[0] == "a-level3.learning_rate=1e-05-advance=none"
    assert "b-level3.learning_rate=3e-05-advance=reward_threshold=0.5" in names
    cur = by_name(plan.curricula)["b-level3.learning_rate=3e-05-advance=reward_threshold=0.5"]
    assert [s.name for s in cur.stages] == ["level2", "level3"]
    assert cur.stages[1].overrides["learning_rate"] == 3.0e-5
    assert all(s.overrides["advance_reward_threshold"] == 0.5 for s in cur.stages)
    assert cur.arm == cur.name and cur.point == {  # no seed axis: every curriculum is its own arm
        "level3.learning_rate": 3.0e-5,
        "advance": {"reward_threshold": 0.5},
    }
    # `advance` sets every stage, so it splits at the root: 2 x (level1, level2, 2 level3) for a,
    # 2 x (level2, 2 level3) for b.
    assert plan.trainings_alone == 4 * 3 + 4 * 2
    assert len(plan.nodes) == 2 * 4 + 2 * 3


def test_grid_axis_moving_several_keys_and_the_seed_axis(tmp_path):
    spec = {
        "name": "g",
        "base": SMOKE_BASE,
        "variations": [{"name": "a"}, {"name": "b", "stages": ["level1"]}],
        "grid": {"seed+data_seed": [[0, 10], [1, 11]], "level1.learning_rate": [1.0e-5, 3.0e-5]},
        "report": {"baseline": "b-level1.learning_rate=3e-05"},
    }
    plan = load_plan(write(tmp_path, spec, "s.yaml"), sweep=True)
    assert len(plan.curricula) == 2 * 2 * 2  # the pairs move together: not 2 x 2 x 2 x 2
    cur = by_name(plan.curricula)["b-seed=1-data_seed=11-level1.learning_rate=3e-05"]
    assert cur.point == {"seed": 1, "data_seed": 11, "level1.learning_rate": 3.0e-5}
    assert cur.seed_point == {"seed": 1, "data_seed": 11} and cur.arm == "b-level1.learning_rate=3e-05"
    assert [(s.overrides["seed"], s.overrides["data_seed"]) for s in cur.stages] == [(1, 11)]
    assert plan.report == {"baseline": "b-level1.learning_rate=3e-05"}
    arms = {c.arm for c in plan.curricula}
    assert arms == {f"{v}-level1.learning_rate={lr}" for v in "ab" for lr in ("1e-05", "3e-05")}
    plain = load_plan(
        write(tmp_path, {"base": SMOKE_BASE, "grid": {"data_seed": [1, 2]}}, "p.yaml"), sweep=True
    )
    assert all(c.seed_point == {} for c in plain.curricula) and plain.report == {}  # no `seed` moved


def test_grid_over_stage_orders(tmp_path):
    spec = {"base": SMOKE_BASE, "grid": {"stages": [["level1", "level2", "level3"], ["level1", "level3"]]}}
    plan = load_plan(write(tmp_path, spec, "orders.yaml"), sweep=True)
    assert [c.name for c in plan.curricula] == [
        "orders-stages=level1+level2+level3",
        "orders-stages=level1+level3",
    ]
    assert len(plan.nodes) == 4 and plan.trainings_alone == 5


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
        (
            lambda s: s["variations"][0].update(set={"learning_rat": 1}),
            "curriculum 'a': stage 'level1': unknown stage fields",
        ),
        (lambda s: s["variations"].append({"name": "a"}), "curriculum name 'a' is used twice"),
        (lambda s: s.update(base="nope.yaml"), "base curriculum nope.yaml does not exist"),
        (lambda s: s.update(grid={"max_steps": []}), "non-empty list"),
        (
            lambda s: s.update(grid={"seed+data_seed": [[0, 0], [1]]}),
            "'seed+data_seed': [1] must be a list of 2 values",
        ),
        (
            lambda s: s.update(grid={"seed+data_seed": [[0, 0]], "seed": [1]}),
            "grid axis 'seed': ['seed'] is already moved",
        ),
        (
            lambda s: s.update(report={"baseline": "b"}),
            "report: baseline 'b' is not an arm of the sweep; arms: ['a']",
        ),
        (lambda s: s.update(report={"baselin": "a"}), "report: unknown keys ['baselin']"),
    ],
)
def test_bad_sweep_errors_name_the_problem(tmp_path, mutate, message):
    spec = {"base": SMOKE_BASE, "variations": [{"name": "a"}]}
    mutate(spec)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_sweep(write(tmp_path, spec, "s.yaml"))
    assert message in str(err.value) and "s.yaml" in str(err.value)


def test_stage_commands_name_their_tracker_run_and_the_stage_they_follow(tmp_path):
    from stagerl.curricula.commands import node_command

    def flags(plan, node_id):
        cmd = node_command(plan, plan.nodes[node_id], tmp_path, ["python"])
        return {
            flag: cmd[cmd.index(flag) + 1] if flag in cmd else None
            for flag in ("--run_name", "--run_group", "--previous_stage", "--eval_follows")
        }

    plan = load_plan(SMOKE_SWEEP, sweep=True)
    level1, level2, lr3x = plan.paths["1-2-3-lr3x"]
    # Shared by several curricula: named by its path in the tree; in one curriculum: <curriculum>/<stage>.
    root = {
        "--run_name": "smoke/level1",
        "--run_group": "smoke",
        "--previous_stage": None,
        "--eval_follows": None,
    }
    assert flags(plan, level1) == root
    assert flags(plan, level2)["--run_name"] == "smoke/level1/level2"
    assert flags(plan, lr3x)["--run_name"] == "1-2-3-lr3x/level3"
    assert flags(plan, lr3x)["--previous_stage"] == str(tmp_path / plan.nodes[level2].dir)
    curriculum = load_plan(write(tmp_path, {**BASE, "eval": {"benchmarks": ["arith1"]}}))
    first, second = curriculum.paths["t"]
    after = {"--run_name": "t/b", "--run_group": "t", "--eval_follows": "true"}
    assert flags(curriculum, second) == {**after, "--previous_stage": str(tmp_path / "stage-1-a")}


def test_last_only_evaluates_each_curriculums_last_stage(tmp_path):
    spec = json.loads(json.dumps(BASE))
    spec["eval"] = {"benchmarks": ["arith1"], "last_only": True}
    plan = load_plan(write(tmp_path, spec))
    assert [n.evaluated for n in plan.nodes.values()] == [False, True]
    del spec["eval"]["last_only"]
    assert all(n.evaluated for n in load_plan(write(tmp_path, spec)).nodes.values())
