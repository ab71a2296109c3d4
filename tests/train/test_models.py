"""Built-in models: built once per machine by one clean process, checked complete before they are published,
and rebuilt (not loaded) when a cache entry is broken.

The slow test launches the smoke stage on 2 processes against an empty cache, the case that once published a
directory holding only tokenizer files (rank 1 built it, and `save_pretrained` writes nothing there).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stagerl.data.files import cache_root
from stagerl.train import models
from stagerl.train.models import TINY_RANDOM, missing_parts, resolve_model

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTED = {
    "RANK": "3",
    "LOCAL_RANK": "3",
    "WORLD_SIZE": "8",
    "LOCAL_WORLD_SIZE": "8",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29555",
    "ACCELERATE_MIXED_PRECISION": "no",
}


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """An empty `$STAGERL_CACHE`; returns where the tiny model's entry goes."""
    monkeypatch.setenv("STAGERL_CACHE", str(tmp_path / "cache"))
    return cache_root() / "models" / "tiny-random"


def tokenizer_only(path: Path) -> Path:
    """The broken entry of the bug report: tokenizer files, no config, no weights."""
    path.mkdir(parents=True)
    (path / "tokenizer_config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    return path


def assert_loads(path: str) -> None:
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama" and len(tokenizer) == model.config.vocab_size


def test_missing_parts_names_what_is_wrong(tmp_path):
    broken = tokenizer_only(tmp_path / "broken")
    assert missing_parts(broken) == [
        "no readable config.json",
        "no weights (model.safetensors or pytorch_model.bin)",
    ]
    assert missing_parts(tmp_path / "absent") == ["no directory"]

    sharded = tokenizer_only(tmp_path / "sharded")
    (sharded / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))
    (sharded / shards["a"]).write_bytes(b"weights")
    (sharded / shards["b"]).write_bytes(b"")
    assert missing_parts(sharded) == [
        "config.json has no model_type",
        "model-00002-of-00002.safetensors is missing or empty",
    ]


def test_broken_entry_is_rebuilt_not_loaded(empty_cache, caplog):
    tokenizer_only(empty_cache)
    tokenizer_only(empty_cache.with_name(".tiny-random.k1ll3d.tmp"))  # a killed build's temp dir
    with caplog.at_level(logging.WARNING, logger="stagerl.train.models"):
        path = resolve_model(TINY_RANDOM)
    assert path == str(empty_cache) and missing_parts(empty_cache) == []
    assert f"{empty_cache} is incomplete (no readable config.json; no weights" in caplog.text
    assert_loads(path)
    leftovers = [p.name for p in empty_cache.parent.iterdir() if p.name not in (".lock", "tiny-random")]
    assert leftovers == []  # neither the killed build's temp dir nor this build's


def test_build_runs_outside_the_distributed_launch(empty_cache, monkeypatch):
    # Be rank 3 of 8 with an initialised process group, as a rank of `accelerate launch` is when it resolves
    # the model: built in this process, `save_pretrained` would write no config and no weights.
    for name, value in DISTRIBUTED.items():
        monkeypatch.setenv(name, value)
    envs = []
    real_run = subprocess.run

    def recording_run(command, **kwargs):
        envs.append(kwargs["env"])
        return real_run(command, **kwargs)

    with monkeypatch.context() as rank3:
        rank3.setattr(torch.distributed, "is_initialized", lambda: True)
        rank3.setattr(torch.distributed, "get_rank", lambda group=None: 3)
        rank3.setattr(models.subprocess, "run", recording_run)
        path = resolve_model(TINY_RANDOM)
    assert missing_parts(Path(path)) == []
    assert len(envs) == 1 and not set(DISTRIBUTED) & set(envs[0])
    assert envs[0]["STAGERL_CACHE"] == os.environ["STAGERL_CACHE"]  # the rest of the environment is kept
    assert_loads(path)


def test_incomplete_build_is_not_published(empty_cache, monkeypatch):
    monkeypatch.setattr(
        models, "_build_in_subprocess", lambda name, out: (out / "tokenizer.json").write_text("{}")
    )
    with pytest.raises(RuntimeError, match="left an incomplete directory: no readable config.json"):
        resolve_model(TINY_RANDOM)
    assert not empty_cache.exists() and list(empty_cache.parent.glob(".tiny-random*")) == []


def test_concurrent_processes_build_once(empty_cache):
    resolve = f"from stagerl.train.models import resolve_model; print(resolve_model({TINY_RANDOM!r}))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", f"import logging; logging.basicConfig(level=logging.INFO); {resolve}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(empty_cache)}
    assert sum(err.count(f"Preparing {TINY_RANDOM}") for _, err in outputs) == 1
    assert missing_parts(empty_cache) == []


@pytest.mark.slow
def test_two_process_launch_on_an_empty_cache(tmp_path):
    from tests.train.test_distributed import ACCELERATE, free_port

    cache, out = tmp_path / "cache", tmp_path / "stage"
    command = [
        str(ACCELERATE),
        "launch",
        "--config_file",
        "configs/accelerate/ddp.yaml",
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "train/grpo.py",
        "--config",
        "configs/stages/smoke.yaml",
        "--model_name_or_path",
        TINY_RANDOM,
        "--max_steps",
        "1",
        "--output_dir",
        str(out),
    ]
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "STAGERL_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert missing_parts(cache / "models" / "tiny-random") == []
    assert (out / "final" / "model.safetensors").is_file()
