"""Config errors surface before any model is loaded, naming the field and value."""

from pathlib import Path

import pytest

from stagerl.train import grpo
from stagerl.train.models import resolve_model

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs/stages/smoke.yaml")


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config error was raised")

    monkeypatch.setattr("stagerl.train.models.resolve_model", refuse)


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
        (["--drop_solved_stats", "/nonexistent/problems.jsonl"], FileNotFoundError, "problems.jsonl"),
        (["--decontaminate", "math5000"], ValueError, "math5000"),
    ],
)
def test_config_error_before_model_load(overrides, error, message):
    with pytest.raises(error) as err:
        run(*overrides)
    assert message in str(err.value)


def test_unknown_yaml_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(SMOKE).read_text() + "\nlearning_rat: 1.0e-5\n")
    with pytest.raises(ValueError, match="learning_rat"):
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


def test_paper_settings():
    for level in (1, 2, 3):
        _, t, m = grpo.make_parser().parse_args_and_config(
            ["--config", str(ROOT / f"configs/stages/level{level}.yaml"), "--use_cpu", "true"]
        )
        assert (t.learning_rate, t.num_generations, t.beta, t.entropy_coef) == (1e-6, 16, 0.001, 0.001)
        assert m.model_name_or_path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
        assert t.max_completion_length == (24576 if level == 3 else 16384)
        assert t.mask_truncated_completions == (level == 3)
        # 128 prompts x 16 samples per rollout on 8 processes, one optimizer step per rollout
        assert t.per_device_train_batch_size * 8 * t.steps_per_generation == 128 * 16
        assert t.gradient_accumulation_steps == t.steps_per_generation
        assert t.use_vllm and t.vllm_mode == "colocate" and t.vllm_enable_sleep_mode
        assert t.vllm_max_model_length >= t.max_completion_length


def test_paper_curriculum_matches_the_paper():
    """arXiv 2504.00829 section 4: level 2 at 16k until the reward plateaus, then level 3 at 24k with truncated
    completions masked and no entropy bonus; lr 1e-6, 16 samples, 128 prompts per step, KL 0.001; evaluated
    at T=0.6, top-p 0.95, averaging 16 samples. Read from the stages as the runner launches them."""
    from stagerl.curricula.plan import load_plan

    plan = load_plan(ROOT / "configs/curricula/am_math_paper.yaml")
    stages = []
    for node in plan.nodes.values():
        args = ["--config", str(node.stage.config_file), *node.stage.cli_args(), "--use_cpu", "true"]
        stages.append(grpo.make_parser().parse_args_and_config(args))
    (s2, t2, m2), (s3, t3, m3) = stages
    for _, t, m in stages:
        assert m.model_name_or_path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
        assert (t.learning_rate, t.num_generations, t.beta) == (1e-6, 16, 0.001)
        assert t.per_device_train_batch_size * 8 * t.steps_per_generation // t.num_generations == 128
    assert s2.data == ["a-m-team/AM-Math-Difficulty-RL:2"] and s3.data == ["a-m-team/AM-Math-Difficulty-RL:3"]
    assert (t2.max_completion_length, t2.entropy_coef, t2.mask_truncated_completions) == (16384, 0.001, False)
    assert (t3.max_completion_length, t3.entropy_coef, t3.mask_truncated_completions) == (24576, 0.0, True)
    assert s2.advance_plateau_delta is not None and t2.max_steps == 2000  # until the reward plateaus
    evaluation = plan.curricula[0].eval
    assert (evaluation["temperature"], evaluation["top_p"], evaluation["samples"]) == (0.6, 0.95, 16)


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
