"""The four parts of the GPU check (`bench/gpu_check.py` runs them, each under its own time budget).

Each part is `part(check, models, figures)`: it runs commands through `check` (killed at the part's deadline),
fills `figures` as it goes (what it measured before a failure stays in the JSON) and raises on a failure.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from gpu_stage import launch_command, sized_stage_args, throughput

from stagerl.data.stage_dir import FINAL_DIR, STAGE_RECORD

LEVEL2 = "configs/stages/level2.yaml"


def fresh(path: Path) -> Path:
    """`path`, emptied of what an earlier run of the check left there."""
    shutil.rmtree(path, ignore_errors=True)
    return path


def dir_gb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e9, 3)


def launch(check, script: str, args: list[str], out: Path, **env: str) -> int:
    """One `accelerate launch` of `script` on one process, wrapped by bench/peak_memory.py; its exit code."""
    cmd = launch_command(
        script, args, accelerate_config=check.mode.accelerate_config, num_processes=1, peak_dir=out / "peak"
    )
    return check.run(cmd, **env)


def stage_record(stage_dir: Path) -> dict:
    path = stage_dir / STAGE_RECORD
    if not path.is_file():
        raise RuntimeError(f"{path} was not written")
    return json.loads(path.read_text())


def stage(check, models: dict[str, Path], figures: dict) -> None:
    """1. A sized level-2 stage trains and exports; then a tiny stage killed while marking its last checkpoint
    resumes from the one before (`--resume_from_checkpoint latest`) and finishes."""
    from stagerl.train.checkpoints import COMPLETE_MARKER, last_complete_checkpoint
    from stagerl.train.models import missing_parts

    mode, out = check.mode, fresh(check.work / "stage")
    args = sized_stage_args(
        models["shape"], out, steps=mode.steps, completion_length=mode.completion_length, cpu=mode.cpu
    )
    start = time.monotonic()
    if launch(check, "train/grpo.py", args, out) != 0:
        raise RuntimeError("the sized stage did not finish")
    figures["wall_s"] = round(time.monotonic() - start, 1)
    record, problems = stage_record(out), missing_parts(out / FINAL_DIR)
    if record["status"] != "done" or record["steps"] != mode.steps or problems:
        raise RuntimeError(f"stage.json: {record['status']}, {record['steps']} steps; export: {problems}")
    history = json.loads((out / FINAL_DIR / "trainer_state.json").read_text())["log_history"]
    figures.update(throughput(out), steps=record["steps"], export_gb=dir_gb(out / FINAL_DIR))
    for key in ("loss", "grad_norm", "kl", "entropy", "completions/mean_length"):
        figures[key] = [e[key] for e in history if key in e]

    resumed = fresh(check.work / "resume")
    args = [
        *sized_stage_args(
            models["tiny"], resumed, steps=4, completion_length=mode.resume_completion_length, cpu=mode.cpu
        ),
        *"--save_strategy steps --save_steps 2".split(),
    ]
    killed = launch(check, "train/grpo.py", args, resumed, STAGERL_FAILPOINT="checkpoint-before-marker@2")
    complete = last_complete_checkpoint(resumed)
    figures["kill_and_resume"] = {
        "killed_exit_code": killed,
        "last_complete": complete and Path(complete).name,
    }
    if killed == 0 or complete is None or Path(complete).name != "checkpoint-2":
        raise RuntimeError(f"the killed stage exited {killed}; its last complete checkpoint: {complete}")
    if (resumed / "checkpoint-4" / COMPLETE_MARKER).exists():
        raise RuntimeError("checkpoint-4 is marked complete although the stage was killed before its marker")
    if launch(check, "train/grpo.py", [*args, "--resume_from_checkpoint", "latest"], resumed) != 0:
        raise RuntimeError("the resumed stage did not finish")
    record = stage_record(resumed)
    figures["kill_and_resume"].update(
        resumed_from=record["resumed_from"], steps=record["steps"], checkpoint_gb=dir_gb(Path(complete))
    )
    if record["steps"] != 4 or record["resumed_from"] != "checkpoint-2" or missing_parts(resumed / FINAL_DIR):
        raise RuntimeError(f"resumed stage: {record['steps']} steps, resumed from {record['resumed_from']}")


def stage_vs_plain(check, models: dict[str, Path], figures: dict) -> None:
    """2. bench/gpu_stage.py at the sized settings: the stage against plain TRL, one run each."""
    mode, result = check.mode, check.work / "bench.json"
    fresh(check.work / "bench")
    check.run_ok(
        [
            sys.executable,
            "bench/gpu_stage.py",
            "--model",
            str(models["shape"]),
            "--accelerate-config",
            mode.accelerate_config,
            "--steps",
            str(mode.steps),
            "--completion-length",
            str(mode.completion_length),
            "--repeats",
            "1",
            "--work",
            str(check.work / "bench"),
            "--json",
            str(result),
            *(["--cpu"] if mode.cpu else []),
        ]
    )
    figures.update(json.loads(result.read_text())["generate"])
    figures["goal_met"] = figures["stage_over_plain"] >= 0.97


def loss_memory(check, models: dict[str, Path], figures: dict) -> None:
    """3. bench/loss_memory.py: one GRPO step on 2 sequences of level2.yaml's 16,384 completion tokens, capped."""
    out = fresh(check.work / "memory")
    args = [
        "--config",
        LEVEL2,
        "--model_name_or_path",
        str(models["shape"]),
        "--output_dir",
        str(out),
        "--result_json",
        str(out / "memory.json"),
        *check.mode.memory_overrides,
        *(
            "--data math-levels:2 --use_vllm false --num_generations 2 --steps_per_generation 1 "
            "--gradient_accumulation_steps 1 --max_steps 1 --save_strategy no"
        ).split(),
    ]
    if launch(check, "bench/loss_memory.py", args, out) != 0:
        raise RuntimeError("bench/loss_memory.py did not finish")
    figures.update(json.loads((out / "memory.json").read_text()))


def evaluate(check, models: dict[str, Path], figures: dict) -> None:
    """4. stagerl.train.evaluate with the transformers backend (vLLM is not there) on the tiny R1 model."""
    out, offset = fresh(check.work / "eval"), check.log_path.stat().st_size
    check.run_ok(
        [
            sys.executable,
            "-m",
            "stagerl.train.evaluate",
            "--model",
            "stagerl:tiny-random-r1",
            "--benchmarks",
            "math500",
            "--output",
            str(out),
            *check.mode.eval_args,
        ]
    )
    with open(check.log_path, errors="replace") as log:
        log.seek(offset)
        figures["device"] = "cuda" if " on cuda " in log.read() else "cpu"  # its "generating ... on DEVICE"
    summary = json.loads((out / "summary.json").read_text())
    figures.update(wall_time_s=summary["wall_time_s"], math500=summary["benchmarks"]["math500"])


PARTS = {
    1: ("stage", stage),
    2: ("stage_vs_plain", stage_vs_plain),
    3: ("loss_memory", loss_memory),
    4: ("evaluate", evaluate),
}
