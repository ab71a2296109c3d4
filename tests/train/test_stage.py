"""End-to-end stages on the tiny random model (slow tier: each stage is a real `train/grpo.py` process)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

TINY_STAGE = [
    "--config", "configs/stages/smoke.yaml",
    "--model_name_or_path", "stagerl:tiny-random",
    "--reward_funcs", "accuracy", "tests.helpers.rewards.length_reward",
    "--max_steps", "4", "--save_steps", "2",
]  # fmt: skip


def run_stage(output_dir, *extra):
    cmd = [sys.executable, "train/grpo.py", *TINY_STAGE, "--output_dir", str(output_dir), *extra]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(model_dir):
    return load_file(str(Path(model_dir) / "model.safetensors"))


def test_smoke_stage_end_to_end(tmp_path):
    from train.models import TINY_RANDOM, resolve_model

    run_stage(tmp_path / "stage")
    stage = tmp_path / "stage"
    final = stage / "final"
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "trainer_state.json",
    ):
        assert (final / name).is_file(), name
    for step in (2, 4):
        ckpt = stage / f"checkpoint-{step}"
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
                     "stagerl_complete", "problems.jsonl"):  # fmt: skip
            assert (ckpt / name).is_file(), f"{ckpt.name}/{name}"
    record = json.loads((stage / "stage.json").read_text())
    assert record["status"] == "done" and record["steps"] == 4
    assert record["data"]["specs"] == ["arithmetic:1"] and len(record["data"]["fingerprint"]) == 16
    assert len(record["reward_history"]) == 4 and record["reward_start"] is not None
    assert record["config"]["grpo"]["max_steps"] == 4 and record["version"]["trl"] == "1.16.0"
    problems = [json.loads(line) for line in (stage / "problems.jsonl").open()]
    assert sum(p["attempts"] for p in problems) == 4 * 4  # 4 steps x 4 completions, all graded
    # The policy was trained: parameters moved away from the initial model.
    before, after = weights(resolve_model(TINY_RANDOM)), weights(final)
    assert any(not before[k].equal(after[k]) for k in before)
    # The export loads as a plain model for the next stage.
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(final).num_parameters() > 0


def test_resume_mid_stage_matches_uninterrupted(tmp_path):
    run_stage(tmp_path / "full")
    # The interrupted run: only checkpoint-2 survived; resuming "latest" must finish with identical weights.
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", interrupted / "checkpoint-2")
    # A half-written later checkpoint (no completion marker) must be ignored.
    (interrupted / "checkpoint-3").mkdir()
    (interrupted / "checkpoint-3" / "config.json").write_text("{")
    run_stage(interrupted, "--resume_from_checkpoint", "latest")
    full, resumed = weights(tmp_path / "full" / "final"), weights(interrupted / "final")
    assert full.keys() == resumed.keys()
    assert all(full[k].equal(resumed[k]) for k in full)
    record = json.loads((interrupted / "stage.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-2")
    # Per-problem counts carried across the resume: the same totals as the uninterrupted run.
    read = lambda d: sorted(json.loads(line)["attempts"] for line in (d / "problems.jsonl").open())  # noqa: E731
    assert read(tmp_path / "full") == read(interrupted)
