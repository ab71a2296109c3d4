"""Config errors surface before any model is loaded, naming the field and value."""

from pathlib import Path

import pytest

from stagerl.train import grpo
from stagerl.train.models import resolve_model

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs/stages/smoke.yaml")


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config error was raised")

    monkeypatch.setattr("stagerl.train.models.resolve_model", refuse)
    # the smoke stage's relative output_dir, runs/smoke-stage: a new one, whatever the checkout holds
    monkeypatch.chdir(tmp_path)


def run(*overrides):
    return grpo.main(["--config", SMOKE, *overrides])


@pytest.mark.parametrize(
    "overrides,error,message",
    [
        (["--no_such_field", "1"], ValueError, "no_such_field"),
        (["--data", "arithmetic:9"], ValueError, "level=9 is out of range"),
        (["--data", "math-levels:0"], ValueError, "level=0 is out of range"),
        (["--data", "missing/rows.jsonl"], FileNotFoundError, "missing/rows.jsonl"),
        (["--num_generations", "3"], ValueError, "num_generations (3)"),
        (["--reward_funcs", "acuracy"], ValueError, "acuracy"),
        (["--reward_settings", "{not json"], ValueError, "reward_settings"),
        (["--resume_from_checkpoint", "/nonexistent/checkpoint-9"], FileNotFoundError, "checkpoint-9"),
        (["--problem_stats", "/nonexistent/problems.jsonl"], FileNotFoundError, "problems.jsonl"),
        (["--drop_solved", "true"], ValueError, "drop_solved: true needs problem_stats"),
        (["--decontaminate", "math5000"], ValueError, "math5000"),
        (
            ["--advance_reward_threshold", "0.5", "--reward_funcs", "format"],
            ValueError,
            "advance_reward_threshold read the accuracy",
        ),
        (
            ["--select_prompts", "true", "--reward_funcs", "overlong"],
            ValueError,
            "select_prompts read the accuracy",
        ),
        (
            ["--learnability_sampling", "true", "--reward_funcs", "format"],
            ValueError,
            "learnability_sampling read the accuracy",
        ),
        (
            ["--learnability_sampling", "true", "--dataloader_num_workers", "2"],
            ValueError,
            "set dataloader_num_workers: 0",
        ),
        # A checkpoint inside a generation block would be resumed by regenerating the rest of the block.
        (
            ["--steps_per_generation", "2", "--save_steps", "1"],
            ValueError,
            "set save_steps to a multiple of 2",
        ),
        (["--num_iterations", "2", "--save_steps", "3"], ValueError, "set save_steps to a multiple of 2"),
        (
            ["--steps_per_generation", "4", "--gradient_accumulation_steps", "2", "--save_steps", "1"],
            ValueError,
            "set save_steps to a multiple of 2",
        ),
        # a ratio of the training steps, resolved as transformers resolves it
        (
            ["--steps_per_generation", "2", "--max_steps", "10", "--save_steps", "0.3"],
            ValueError,
            "save_steps=0.3 (every 3 of 10 steps) puts checkpoints inside a generation block",
        ),
        (["--learnability_weight", "survivl"], ValueError, "learnability_weight='survivl': valid values are"),
        (["--learnability_floor", "1"], ValueError, "learnability_floor=1.0 must be in [0, 1)"),
        (
            ["--replace_output_dir", "true", "--resume_from_checkpoint", "latest"],
            ValueError,
            "set one of them",
        ),
    ],
)
def test_config_error_before_model_load(overrides, error, message):
    with pytest.raises(error) as err:
        run(*overrides)
    assert message in str(err.value)


def test_a_save_steps_ratio_of_an_epoch_budget_is_checked_once_the_rows_are_built(tmp_path):
    """10 rows, 2 prompts a generation block of 2 steps: an epoch is 10 steps, so 0.3 saves inside a block
    (every 3 steps) and 0.2 between two (every 2)."""
    epoch = ["--max_steps", "-1", "--num_train_epochs", "1", "--max_train_samples", "10"]
    epoch += ["--steps_per_generation", "2", "--output_dir", str(tmp_path)]
    with pytest.raises(ValueError, match=r"save_steps=0.3 \(every 3 of 10 steps\) puts checkpoints inside"):
        run(*epoch, "--save_steps", "0.3")
    with pytest.raises(AssertionError, match="a model was loaded"):  # no config error: on to the model
        run(*epoch, "--save_steps", "0.2")


def used_stage_dir(path: Path) -> Path:
    for name in ("checkpoint-2", "checkpoint-10", "final"):
        (path / name).mkdir(parents=True)
    (path / "stage.json").write_text('{"status": "done"}')
    return path


def test_a_launch_that_does_not_resume_is_refused_a_used_stage_directory(tmp_path):
    stage = used_stage_dir(tmp_path / "stage")
    with pytest.raises(ValueError) as err:
        run("--output_dir", str(stage))
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(
        f"output_dir {stage} already holds a stage (2 checkpoints, checkpoint-2 to checkpoint-10, final/, "
        "stage.json): resume it with --resume_from_checkpoint latest, or start afresh in a new or empty output_dir"
    )
    assert "--replace_output_dir true moves this one aside" in line
    assert sorted(p.name for p in stage.iterdir()) == ["checkpoint-10", "checkpoint-2", "final", "stage.json"]


def test_replace_output_dir_moves_the_old_stage_aside_and_starts_afresh(tmp_path):
    stage = used_stage_dir(tmp_path / "stage")
    with pytest.raises(AssertionError, match="a model was loaded"):  # past the refusal, on to the model
        run("--output_dir", str(stage), "--replace_output_dir", "true")
    (aside,) = tmp_path.glob("stage.replaced-*")
    assert (aside / "stage.json").read_text() == '{"status": "done"}' and (aside / "checkpoint-10").is_dir()
    # the new stage has begun (its rows are built), in a directory of its own
    assert sorted(p.name for p in stage.iterdir()) == [".data"]


def test_unknown_yaml_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(SMOKE).read_text() + "\nlearning_rat: 1.0e-5\n")
    with pytest.raises(ValueError, match="learning_rat"):
        grpo.main(["--config", str(bad)])


def test_a_bad_choice_in_yaml_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(SMOKE).read_text() + "\nmix_stopping: all_exhausted\n")
    with pytest.raises(ValueError, match="mix_stopping='all_exhausted'"):
        grpo.main(["--config", str(bad)])


def test_unknown_builtin_model_lists_valid_names():
    with pytest.raises(ValueError, match="stagerl:tiny-random"):
        resolve_model("stagerl:nope")


@pytest.mark.parametrize("path", sorted((ROOT / "configs/stages").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_stage_yaml_parses(path):
    # --use_cpu: the real configs train in bf16, which transformers refuses on a CPU-only machine otherwise.
    stage, training, model = grpo.make_parser().parse_args_and_config(
        ["--config", str(path), "--use_cpu", "true"]
    )
    assert stage.data and stage.reward_funcs and training.num_generations >= 2


# What arXiv 2504.00829 ("How Difficulty-Aware Staged RL Enhances LLMs' Reasoning") sets, each with its source.
PAPER_41 = "arXiv 2504.00829 §4.1 (training setup)"
PAPER_43 = "arXiv 2504.00829 §4.3 (the staged run)"
PAPER_EVAL = "arXiv 2504.00829 (evaluation protocol)"
R1_DISTILL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


def check(value, expected, source: str) -> None:
    assert value == expected, f"{value!r} != {expected!r}, which {source} sets"


def test_paper_settings():
    for level in (1, 2, 3):
        _, t, m = grpo.make_parser().parse_args_and_config(
            ["--config", str(ROOT / f"configs/stages/level{level}.yaml"), "--use_cpu", "true"]
        )
        check(m.model_name_or_path, R1_DISTILL, PAPER_41)
        check(t.learning_rate, 1e-6, PAPER_41)
        check(t.num_generations, 16, PAPER_41)  # samples per prompt
        check(t.beta, 0.001, PAPER_41)  # KL coefficient
        check(t.entropy_coef, 0.001, PAPER_41)
        check(t.per_device_train_batch_size * 8 * t.steps_per_generation // t.num_generations, 128, PAPER_41)
        check(t.max_completion_length, 24576 if level == 3 else 16384, f"{PAPER_41} (16k); {PAPER_43} (24k)")
        check(t.mask_truncated_completions, level == 3, PAPER_43)
        # Ours, not the paper's: one optimizer step per rollout, vLLM colocated, its context fits a completion.
        assert t.gradient_accumulation_steps == t.steps_per_generation
        assert t.use_vllm and t.vllm_mode == "colocate" and t.vllm_enable_sleep_mode
        assert t.vllm_max_model_length >= t.max_completion_length


def test_paper_curriculum_matches_the_paper():
    """The staged run read from the stages as the runner launches them (`am_math_paper.yaml`)."""
    from stagerl.curricula.plan import load_plan

    plan = load_plan(ROOT / "configs/curricula/am_math_paper.yaml")
    stages = []
    for node in plan.nodes.values():
        args = ["--config", str(node.stage.config_file), *node.stage.cli_args(), "--use_cpu", "true"]
        stages.append(grpo.make_parser().parse_args_and_config(args))
    (s2, t2, _), (s3, t3, _) = stages
    for _, t, m in stages:
        check(m.model_name_or_path, R1_DISTILL, PAPER_41)
        check((t.learning_rate, t.num_generations, t.beta), (1e-6, 16, 0.001), PAPER_41)
        check(t.per_device_train_batch_size * 8 * t.steps_per_generation // t.num_generations, 128, PAPER_41)
    check(s2.data, ["a-m-team/AM-Math-Difficulty-RL:2"], f"{PAPER_43}: level 2 first")
    check(s3.data, ["a-m-team/AM-Math-Difficulty-RL:3"], f"{PAPER_43}: then level 3")
    check(t2.max_completion_length, 16384, f"{PAPER_43}: level 2 at 16k")
    check(t2.entropy_coef, 0.001, PAPER_41)
    check(t2.mask_truncated_completions, False, PAPER_43)
    check(t3.max_completion_length, 24576, f"{PAPER_43}: level 3 at 24k")
    check(t3.entropy_coef, 0.0, f"{PAPER_43}: no entropy bonus in the second stage")
    check(t3.mask_truncated_completions, True, f"{PAPER_43}: truncated completions masked")
    # "until the reward plateaus" (about step 1600 in the paper): a plateau rule under a 2000-step cap (ours).
    assert s2.advance_plateau_delta is not None and t2.max_steps == 2000
    evaluation = plan.curricula[0].eval
    check(evaluation["temperature"], 0.6, PAPER_EVAL)
    check(evaluation["top_p"], 0.95, PAPER_EVAL)
    check(evaluation["samples"], 16, f"{PAPER_EVAL}: the average of 16 samples")
    check(evaluation["max_new_tokens"], 32768, f"{PAPER_EVAL}: 32k tokens")


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"dataset_name": "org/set", "data": ["arithmetic:1"]}, "the data is given twice"),
        ({"dataset_name": "org/set", "datasets": [{"path": "x"}]}, "the data is given twice"),
        ({"datasets": [{"name": "main"}]}, r"datasets\[0\]: must be a mapping with a `path`"),
        ({"datasets": [{"path": "x", "weights": 2}]}, r"datasets\[0\]: unknown keys \['weights'\]"),
        ({"datasets": ["{not json"]}, r"datasets\[0\]: '\{not json' is not a JSON object"),
    ],
)
def test_trl_data_spelling_errors(fields, message):
    from stagerl.train.config import StageArguments

    with pytest.raises(ValueError, match=message):
        StageArguments(**fields)
