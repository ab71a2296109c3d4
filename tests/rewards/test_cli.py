"""Every command's frame (`stagerl.rewards.cli`): a user mistake is one line and exit status 2 (the traceback
with STAGERL_DEBUG=1), other ranks say nothing, and each warning is shown once per run, across processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.rewards.cli import OncePerRun, run_command

ROOT = Path(__file__).resolve().parents[2]


def mistake():
    raise FileNotFoundError("data file nowhere.jsonl does not exist; give an existing file in `data`")


def test_a_user_mistake_is_one_line_and_exit_status_2(capsys, monkeypatch):
    monkeypatch.delenv("STAGERL_DEBUG", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit) as stop:
        run_command(mistake)
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: data file nowhere.jsonl does not exist; give an existing file in `data`"
    ]


def test_other_ranks_exit_quietly_and_the_debug_switch_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(SystemExit) as stop:
        run_command(mistake)
    assert stop.value.code == 2 and capsys.readouterr().err == ""
    monkeypatch.setenv("STAGERL_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        run_command(mistake)


def test_a_bug_keeps_its_traceback_and_a_result_is_the_exit_status():
    with pytest.raises(ZeroDivisionError):
        run_command(lambda: 1 / 0)
    with pytest.raises(SystemExit) as stop:
        run_command(lambda: 3)
    assert stop.value.code == 3


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_each_warning_once_per_run_across_processes(tmp_path):
    shared = tmp_path / ".warned"
    stage1, stage2 = OncePerRun(str(shared)), OncePerRun(str(shared))  # two processes of one run
    warning = record("transformers.generation", logging.WARNING, "`torch_dtype` is deprecated")
    assert stage1.filter(warning) and not stage1.filter(warning)
    assert not stage2.filter(warning)  # stage 2 does not repeat what stage 1 showed
    other = record("transformers.generation", logging.WARNING, "something else")
    assert stage2.filter(other)
    info = record("stagerl.train", logging.INFO, "step 1")
    assert stage1.filter(info) and stage1.filter(info)  # only warnings are deduplicated
    alone = OncePerRun()  # no run file: once per process
    assert alone.filter(warning) and not alone.filter(warning)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["train/grpo.py", "--config", "configs/stages/level1.yaml"], "bf16: true needs a CUDA GPU"),
        (
            ["train/grpo.py", "--config", "configs/stages/smoke.yaml", "--data", "nowhere.jsonl"],
            "nowhere.jsonl",
        ),
        (
            ["train/grpo.py", "--config", "configs/stages/smoke.yaml", "--num_generations", "3"],
            "num_generations",
        ),
        (
            ["-m", "stagerl.train.evaluate", "--model", "stagerl:tiny-random", "--benchmarks", "gsm9k"],
            "gsm9k",
        ),
        (["-m", "stagerl.train.label", "--input", "p.jsonl", "--output", "out"], "--models"),
        (["-m", "stagerl.curricula.run", "nowhere.yaml", "--dry-run"], "nowhere.yaml"),
        (["-m", "stagerl.rewards.score", "nowhere.jsonl"], "nowhere.jsonl"),
    ],
)
def test_every_command_reports_a_mistake_in_one_line(command, says):
    env = {k: v for k, v in os.environ.items() if k != "STAGERL_DEBUG"}
    proc = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and says in errors[0], proc.stderr[-3000:]
