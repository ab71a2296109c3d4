"""A CPU launch whose processes cannot fit in memory is refused before any model loads, saying how many would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.train.memory import RUNTIME_BYTES, check_fits, parameter_count, process_bytes
from stagerl.train.models import EMBEDDED_DEFAULT, TINY_RANDOM, resolve_model

ROOT = Path(__file__).resolve().parents[2]
GB = 10**9


def test_a_process_holds_weights_gradients_adam_and_a_reference_model():
    assert process_bytes(10**8, 4, False) == 10**8 * 16 + RUNTIME_BYTES
    assert process_bytes(10**8, 4, True) == 10**8 * 20 + RUNTIME_BYTES
    assert process_bytes(10**8, 2, False) == 10**8 * 12 + RUNTIME_BYTES
    # LoRA: the base weights alone (the adapters' gradients and moments are small; the reference is the base)
    assert process_bytes(10**8, 4, True, adapters=True) == 10**8 * 4 + RUNTIME_BYTES


def test_eight_processes_of_the_embedded_model_on_a_24_gb_machine_are_refused_with_how_many_fit():
    smollm2 = 134_515_008  # SmolLM2-135M-Instruct
    with pytest.raises(ValueError) as refused:
        check_fits(smollm2, 4, False, processes=8, available=22 * GB)
    message = str(refused.value)
    assert "8 training processes of a 135M-parameter model need about 25.8 GB" in message
    assert "22.0 GB is available: launch at most 6 (accelerate launch --num_processes 6" in message
    check_fits(smollm2, 4, False, processes=2, available=22 * GB)  # the README's CPU launch fits
    with pytest.raises(ValueError, match="not even one fits"):
        check_fits(smollm2, 4, False, processes=1, available=2 * GB)


def test_parameters_are_counted_without_loading_weights():
    from transformers import AutoModelForCausalLM

    path = resolve_model(TINY_RANDOM)
    loaded = AutoModelForCausalLM.from_pretrained(path)
    assert parameter_count(path) == sum(p.numel() for p in loaded.parameters())


@pytest.mark.slow
def test_a_stage_launch_that_cannot_fit_stops_before_the_model_loads(tmp_path):
    # Built into the cache first: on an empty cache the launch builds it (de-quantising the GGUF loads its
    # weights once, per machine), which is not the training model load this asserts against.
    resolve_model(EMBEDDED_DEFAULT)
    # 4000 processes of the embedded model on this machine (LOCAL_WORLD_SIZE is what a launcher tells each one).
    env = {**os.environ, "LOCAL_WORLD_SIZE": "4000"}
    cmd = [
        sys.executable,
        "train/grpo.py",
        "--config",
        "configs/stages/smoke.yaml",
        "--output_dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "4000 training processes of a 135M-parameter model" in line and "launch at most" in line
    assert "Loading weights" not in proc.stderr and not list(tmp_path.glob("checkpoint-*"))
