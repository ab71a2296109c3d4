"""The stage's rewards as the shipped level configs build them, called through TRL's reward signature: a
completion that never closes the reasoning block its template opened earns nothing."""

from pathlib import Path

import pytest

from stagerl.train import grpo
from stagerl.train.models import TINY_RANDOM, TINY_RANDOM_R1, resolve_model
from stagerl.train.stage_rewards import build_rewards, reasoning_block

ROOT = Path(__file__).resolve().parents[2]
LEVEL2 = str(ROOT / "configs/stages/level2.yaml")
CPU = ["--use_vllm", "false", "--bf16", "false", "--use_cpu", "true"]  # this machine's switches only


def stage_rewards(model: str, *overrides: str):
    stage_args, training_args, model_args = grpo.make_parser().parse_args_and_config(
        ["--config", LEVEL2, "--model_name_or_path", model, *CPU, *overrides]
    )
    template = reasoning_block(resolve_model(model), stage_args, training_args, model_args)
    funcs, settings = build_rewards(stage_args, training_args, template["think_open"])
    return template, dict(zip(stage_args.reward_funcs, funcs, strict=True)), settings, training_args


def call_as_trl(reward, texts: list[str], lengths: list[int], gold: str = "7") -> list:
    """What `GRPOTrainer._calculate_rewards` passes: prompts, conversational completions, completion ids and
    the dataset's other columns."""
    n = len(texts)
    return reward(
        prompts=[[{"role": "user", "content": "What is 3 + 4?"}]] * n,
        completions=[[{"role": "assistant", "content": t}] for t in texts],
        completion_ids=[[0] * k for k in lengths],
        answer=[gold] * n,
        id=["p"] * n,
        level=[2] * n,
        trainer_state=None,
    )


UNCLOSED = "Okay, 3 + 4 is 7, so \\boxed{7}. Wait, let me check the carry again, maybe"
CLOSED = "3 + 4 = 7, checked twice.\n</think>\nThe answer is \\boxed{7}."


def test_r1_template_is_detected_and_recorded():
    template, _, settings, training_args = stage_rewards(TINY_RANDOM_R1)
    assert template["think_open"] is True and template["detected"] is True
    assert settings["accuracy"] == {
        "max_completion_length": training_args.max_completion_length,
        "think_open": True,
    }


def test_unfinished_thinking_earns_nothing_under_the_level_config():
    _, rewards, _, args = stage_rewards(TINY_RANDOM_R1)
    cut_off, ended = args.max_completion_length, 40
    assert call_as_trl(rewards["accuracy"], [UNCLOSED, UNCLOSED, CLOSED], [cut_off, ended, ended]) == [
        0.0,
        0.0,
        1.0,
    ]


def test_chatml_model_grades_the_whole_completion():
    template, rewards, settings, _ = stage_rewards(TINY_RANDOM)
    assert template["think_open"] is False and settings["accuracy"]["think_open"] is False
    assert call_as_trl(rewards["accuracy"], ["3 + 4 = 7, so \\boxed{7}."], [20]) == [1.0]


@pytest.mark.parametrize(("override", "expected"), [("false", 1.0), ("true", 0.0)])
def test_the_setting_overrides_detection(override, expected):
    # A ChatML model told its prompt opens a block: a box without </think> no longer counts, and vice versa.
    model = TINY_RANDOM_R1 if override == "false" else TINY_RANDOM
    template, rewards, _, _ = stage_rewards(model, "--think_open", override)
    assert template["think_open"] is (override == "true") and template["detected"] is (override == "false")
    assert call_as_trl(rewards["accuracy"], ["so \\boxed{7}."], [10]) == [expected]


def test_a_reward_setting_wins_over_the_detected_one():
    _, rewards, settings, _ = stage_rewards(
        TINY_RANDOM_R1, "--reward_settings", '{"accuracy": {"think_open": false}}'
    )
    assert settings["accuracy"]["think_open"] is False
    assert call_as_trl(rewards["accuracy"], [UNCLOSED], [40]) == [1.0]
