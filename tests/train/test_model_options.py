"""ModelConfig options reach the model as in TRL's GRPO script; vLLM asked for where it cannot run fails fast;
LoRA stages export a merged model; a 2-process launch builds the rows once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stagerl.train import grpo

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs/stages/smoke.yaml")


class Stop(Exception):
    """Raised by the patched model loader: the test has what it wanted."""


def test_model_options_arrive_in_from_pretrained(tmp_path, monkeypatch):
    seen = {}

    def capture(model_id, **kwargs):
        seen.update(model_id=model_id, **kwargs)
        raise Stop

    monkeypatch.setattr("trl.trainer.grpo_trainer.create_model_from_path", capture)
    with pytest.raises(Stop):
        grpo.main(
            [
                "--config",
                SMOKE,
                "--model_name_or_path",
                "stagerl:tiny-random",
                "--output_dir",
                str(tmp_path),
                "--attn_implementation",
                "eager",
                "--model_revision",
                "abc123",
                "--dtype",
                "bfloat16",
                "--trust_remote_code",
                "true",
            ]
        )
    assert seen["model_id"].endswith("tiny-random")
    assert (seen["attn_implementation"], seen["revision"], seen["dtype"]) == ("eager", "abc123", "bfloat16")
    assert seen["trust_remote_code"] is True


def test_vllm_config_without_vllm_fails_before_model_load(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the vLLM check")

    monkeypatch.setattr("stagerl.train.models.resolve_model", refuse)
    from trl import import_utils

    monkeypatch.setattr(import_utils, "is_vllm_available", lambda: False)  # also where vLLM is installed
    with pytest.raises(ValueError, match=r'pip install -e "\.\[vllm\]"'):
        grpo.main(
            [
                "--config",
                str(ROOT / "configs/stages/level1.yaml"),
                "--use_cpu",
                "true",
                "--output_dir",
                str(tmp_path),
            ]
        )


@pytest.mark.slow
def test_lora_stage_trains_adapters_and_exports_a_merged_model(tmp_path):
    from transformers import AutoModelForCausalLM

    from stagerl.train.models import TINY_RANDOM, resolve_model

    cmd = [
        sys.executable,
        "train/grpo.py",
        "--config",
        SMOKE,
        "--model_name_or_path",
        TINY_RANDOM,
        "--reward_funcs",
        "accuracy",
        "tests.helpers.rewards.length_reward",
        "--max_steps",
        "3",
        "--learning_rate",
        "0.05",
        "--use_peft",
        "--lora_r",
        "4",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--output_dir",
        str(tmp_path / "stage"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = tmp_path / "stage" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file() and not (
        checkpoint / "model.safetensors"
    ).exists()
    base = load_file(Path(resolve_model(TINY_RANDOM)) / "model.safetensors")
    final = tmp_path / "stage" / "final"
    assert not list(final.glob("adapter_*"))
    merged = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32).state_dict()
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed), changed


@pytest.mark.slow
def test_two_process_launch_builds_the_rows_once(tmp_path):
    from tests.train.test_distributed import ACCELERATE, free_port

    builds = tmp_path / "builds.txt"
    launch = f"{ACCELERATE} launch --config_file configs/accelerate/ddp.yaml --num_processes 2"
    cmd = [*launch.split(), "--main_process_port", str(free_port()), "tests/helpers/count_builds.py"]
    cmd += ["--config", SMOKE, "--model_name_or_path", "stagerl:tiny-random", "--max_steps", "1"]
    cmd += ["--output_dir", str(tmp_path / "stage")]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "STAGERL_TEST_BUILDS": str(builds)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert builds.read_text().splitlines() == ["rank 0"]  # built by the main process; rank 1 read its copy
    log = proc.stdout + proc.stderr
    assert log.count("INFO stagerl.train.stage_data: data: 2000 rows") == 1  # INFO from the main process only
    assert json.loads((tmp_path / "stage" / "stage.json").read_text())["data"]["rows"] == 2000
