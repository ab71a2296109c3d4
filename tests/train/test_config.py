"""Config errors surface before any model is loaded, naming the field and value."""

from pathlib import Path

import pytest

from train import grpo
from train.models import resolve_model

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs/stages/smoke.yaml")


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config error was raised")

    monkeypatch.setattr("train.models.resolve_model", refuse)


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
        # 128 prompts x 16 samples per rollout on 8 processes
        assert t.per_device_train_batch_size * 8 * t.steps_per_generation == 128 * 16
