"""One prepared GPU check of the real stage path (issue #26): four parts, each with its own time budget.

    bash bench/gpu_check.sh                    # on a lent GPU machine (installs the carried wheels first)
    bash bench/gpu_check.sh --cpu --out DIR    # the same four parts here, at tiny shapes (the slow test tier)
    bash bench/gpu_check.sh --parts 2,3        # a rerun of some parts

Parts (their keys in the JSON):
1. `stage`: `configs/stages/level2.yaml` changed only in size (`gpu_stage.sized_stage_args`: a random model of
   DeepSeek-R1-Distill-Qwen-1.5B's shape with R1's chat template, `bench/random_model.py`; completions of 1024
   tokens; 2 steps of one group of 16) under ZeRO-2, one process, bf16, activation checkpointing: it trains and
   exports. Then kill-and-resume on the tiny shape (a 1.78B ZeRO-2 checkpoint is ~25 GB): the stage is SIGKILLed
   while marking its last checkpoint complete and resumed with `--resume_from_checkpoint latest`.
2. `stage_vs_plain`: `bench/gpu_stage.py` at those settings: the stage against plain TRL, tokens/s and peak GPU
   memory side by side (goal: the stage at >= 0.97x plain TRL's tokens/s).
3. `loss_memory`: `bench/loss_memory.py`: TRL's loss (reference model for beta, entropy term) and backward on 2
   sequences of 16,384 completion tokens at the 1.5B shape, as level2.yaml sets it, capped at 80 GB.
4. `evaluate`: `python -m stagerl.train.evaluate` with the transformers backend on `stagerl:tiny-random-r1`.

A part that fails or runs past its budget (its processes are killed) does not stop the others; time a part
leaves unused goes to the next. `OUT/gpu_check.json` (OUT: `--out`, else `$OUT`) is rewritten after each part:
`setup` (install, versions, unmet requirements, GPU, model builds), then per part `status` (ok, failed,
skipped), `seconds`, `figures` and `error` (the exception and the tail of its log). `OUT/gpu_check.log` holds
every command's output. Everything else goes to `--work` (models, stage directories; ~15 GB on a GPU).
Nothing here reaches a network (HF_HUB_OFFLINE=1); vLLM is not installed there, so its path stays unrun.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpu_stage import launch_command, sized_stage_args, throughput

from stagerl.data.files import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
# Distributions whose versions the JSON records; those whose requirements are checked against what is installed.
VERSIONS = [
    "torch",
    "triton",
    "transformers",
    "trl",
    "accelerate",
    "deepspeed",
    "datasets",
    "peft",
    "math-verify",
]
REQUIREMENTS_OF = [
    "stagerl",
    "transformers",
    "trl",
    "accelerate",
    "deepspeed",
    "datasets",
    "peft",
    "math-verify",
]
IMPORTS = [
    "trl",
    "deepspeed",
    "datasets",
    "math_verify",
    "peft",
    "stagerl.train.grpo",
    "stagerl.train.evaluate",
]


@dataclass(frozen=True)
class Mode:
    """The sizes and budgets of one mode of the check."""

    cpu: bool
    shape: str  # bench/random_model.py SHAPES key of parts 1-3
    accelerate_config: str
    completion_length: int  # parts 1 and 2
    steps: int
    resume_completion_length: int  # the tiny kill-and-resume stage
    memory_overrides: list[str]  # part 3, on top of level2.yaml
    eval_args: list[str]  # part 4
    budgets: dict[str, int] = field(default_factory=dict)  # seconds per part


GPU = Mode(
    cpu=False,
    shape="r1-1.5b",
    accelerate_config="configs/accelerate/zero2.yaml",
    completion_length=1024,
    steps=2,
    resume_completion_length=64,
    memory_overrides=["--cap_gb", "80"],
    eval_args=["--limit", "8", "--samples", "4", "--max-new-tokens", "256"],
    budgets={"stage": 140, "stage_vs_plain": 170, "loss_memory": 70, "evaluate": 40},
)
CPU = Mode(
    cpu=True,
    shape="tiny",
    accelerate_config="configs/accelerate/ddp.yaml",
    completion_length=32,
    steps=2,
    resume_completion_length=16,
    memory_overrides=[
        "--max_completion_length",
        "256",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--dtype",
        "float32",
    ],
    eval_args=["--limit", "2", "--samples", "2", "--max-new-tokens", "16"],
    budgets={"stage": 150, "stage_vs_plain": 90, "loss_memory": 60, "evaluate": 60},
)
SETUP_BUDGET_S = 120  # preflight and model builds


class PartFailed(Exception):
    pass


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process below it. Its process group is not enough: torchrun starts each
    worker in a session of its own, and a worker left running would hold the GPU for the next part."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:  # the launcher first, so that it starts no new worker
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


class Check:
    """Runs commands for the parts: output appended to the log, each killed (with all its processes) at the
    part's deadline; keeps the JSON up to date."""

    def __init__(self, mode: Mode, out: Path, work: Path):
        self.mode, self.out, self.work = mode, out, work
        self.log_path = out / "gpu_check.log"
        self.deadline = 0.0
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(work / "hf"),
            "STAGERL_CACHE": str(work / "cache"),
            "TORCH_EXTENSIONS_DIR": str(work / "torch_extensions"),
            "TRITON_CACHE_DIR": str(work / "triton"),
            "TQDM_DISABLE": "1",
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.result: dict = {
            "mode": "cpu" if mode.cpu else "gpu",
            "settings": asdict(mode),
            "setup": {},
            "parts": {},
        }

    def log(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(text)

    def run(self, cmd: list[str], **env: str) -> int:
        """Run `cmd` from the repo root; its exit code. Killed at the deadline (then PartFailed)."""
        self.log(f"\n$ {' '.join(cmd)}\n")
        with open(self.log_path, "a") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**self.env, **env},
            )
            try:
                return proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(proc.pid)
                proc.wait()
                raise PartFailed(f"out of time: killed {' '.join(cmd[:6])} ...") from None

    def run_ok(self, cmd: list[str], **env: str) -> None:
        rc = self.run(cmd, **env)
        if rc != 0:
            raise PartFailed(f"exit code {rc}: {' '.join(cmd)}")

    def launch(self, script: str, args: list[str], out: Path, **env: str) -> int:
        """One `accelerate launch` of `script` (one process), wrapped by bench/peak_memory.py."""
        return self.run(
            launch_command(
                script,
                args,
                accelerate_config=self.mode.accelerate_config,
                num_processes=1,
                peak_dir=out / "peak",
            ),
            **env,
        )

    def timed(self, section: dict, name: str, budget: float, body) -> float:
        """Run `body()` (returns figures) under `budget` seconds into `section[name]`; the seconds left over."""
        start = time.monotonic()
        self.deadline = start + budget
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        entry: dict = {"status": "failed", "seconds": None, "figures": {}, "error": None}
        try:
            entry["figures"] = body()
            entry["status"] = "ok"
        except Exception as e:  # a part's failure is its result; the others still run
            with open(self.log_path, errors="replace") as log:
                log.seek(offset)
                tail = log.read()[-2500:]
            entry["error"] = f"{type(e).__name__}: {e}\n--- end of its log ---\n{tail}"
        entry["seconds"] = round(time.monotonic() - start, 1)
        section[name] = entry
        self.save()
        return max(0.0, self.deadline - time.monotonic())

    def save(self) -> None:
        atomic_write_json(self.out / "gpu_check.json", self.result)


# --- setup -------------------------------------------------------------------------------------------------------


def preflight() -> dict:
    """What the check runs on (in a fresh process, so a broken import is reported rather than fatal)."""
    import importlib
    import importlib.metadata as md
    import platform

    import torch
    from packaging.requirements import Requirement

    info: dict = {
        "python": platform.python_version(),
        "versions": {},
        "imports": {},
        "unmet_requirements": [],
    }
    for name in VERSIONS:
        try:
            info["versions"][name] = md.version(name)
        except md.PackageNotFoundError:
            info["versions"][name] = None
    info["torch_cuda"] = torch.version.cuda
    pinned = {Requirement(r).name: str(Requirement(r).specifier) for r in md.requires("stagerl") or []}
    info["torch_note"] = (
        f"every figure ran under torch {torch.__version__}; the project pins torch{pinned.get('torch')} "
        "(the GPU machine's image has torch 2.11 and nothing newer can travel)"
    )
    for dist in REQUIREMENTS_OF:
        for text in md.requires(dist) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                found = md.version(req.name)
            except md.PackageNotFoundError:
                found = None
            if found is None or not req.specifier.contains(found, prereleases=True):
                info["unmet_requirements"].append(f"{dist} needs {req}, found {found}")
    for module in IMPORTS:
        try:
            importlib.import_module(module)
            info["imports"][module] = "ok"
        except Exception as e:  # reported, not fatal: the parts say what it breaks
            info["imports"][module] = f"{type(e).__name__}: {e}"
    # Triton (TRL's fused log-prob head on CUDA) compiles its launcher with the C compiler; DeepSpeed would JIT with
    # nvcc and ninja (nothing here should need it: jit_builds in the JSON says whether anything did).
    info["compilers"] = {tool: shutil.which(tool) for tool in ("cc", "gcc", "nvcc", "ninja")}
    info["cuda_available"] = torch.cuda.is_available()
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "memory_gb": props.total_memory / 1e9,
            "capability": f"{props.major}.{props.minor}",
            "bf16": torch.cuda.is_bf16_supported(),
        }
    return info


def setup(check: Check) -> dict[str, Path]:
    """Preflight and model builds into `check.result["setup"]`; returns the model directories."""
    section = check.result["setup"]
    section["install"] = os.environ.get("GPU_CHECK_INSTALL", "none (--cpu: this environment as it is)")
    preflight_json = check.work / "preflight.json"

    def run_preflight() -> dict:
        check.run_ok([sys.executable, __file__, "--preflight", str(preflight_json)])
        return json.loads(preflight_json.read_text())

    left = check.timed(section, "preflight", SETUP_BUDGET_S / 2, run_preflight)
    models = {"shape": check.work / f"model-{check.mode.shape}", "tiny": check.work / "model-tiny"}
    device = "cpu" if check.mode.cpu else "cuda"

    def build_models() -> dict:
        check.run_ok(
            [
                sys.executable,
                "bench/random_model.py",
                str(models["shape"]),
                "--shape",
                check.mode.shape,
                "--device",
                device,
            ]
        )
        if models["tiny"] != models["shape"]:
            check.run_ok([sys.executable, "bench/random_model.py", str(models["tiny"]), "--shape", "tiny"])
        config = json.loads((models["shape"] / "config.json").read_text())
        return {
            "shape": check.mode.shape,
            "vocab_size": config["vocab_size"],
            "dtype": config.get("dtype"),
            "weights_gb": round(dir_size(models["shape"]) / 1e9, 3),
        }

    if check.mode.shape == "tiny":
        models["tiny"] = models["shape"]
    check.timed(section, "models", SETUP_BUDGET_S / 2 + left, build_models)
    return models


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- the parts ---------------------------------------------------------------------------------------------------


def stage_record(stage_dir: Path) -> dict:
    path = stage_dir / "stage.json"
    if not path.is_file():
        raise PartFailed(f"{path} was not written")
    return json.loads(path.read_text())


def part_stage(check: Check, models: dict[str, Path]) -> dict:
    """A sized level-2 stage trains and exports; the tiny stage resumes after a kill."""
    from stagerl.train.checkpoints import COMPLETE_MARKER, last_complete_checkpoint
    from stagerl.train.models import missing_parts

    mode, out = check.mode, check.work / "stage"
    args = sized_stage_args(
        models["shape"], out, steps=mode.steps, completion_length=mode.completion_length, cpu=mode.cpu
    )
    start = time.monotonic()
    if check.launch("train/grpo.py", args, out) != 0:
        raise PartFailed("the sized stage did not finish")
    wall = time.monotonic() - start
    record = stage_record(out)
    problems = missing_parts(out / "final")
    if record["status"] != "done" or record["steps"] != mode.steps or problems:
        raise PartFailed(
            f"stage record {record['status']}, {record['steps']} steps; export problems: {problems}"
        )
    history = json.loads((out / "final" / "trainer_state.json").read_text())["log_history"]
    figures = {
        "wall_s": round(wall, 1),
        **throughput(out),
        "steps": record["steps"],
        "grad_norm": [e["grad_norm"] for e in history if "grad_norm" in e],
        "loss": [e["loss"] for e in history if "loss" in e],
        "completion_mean_length": [
            e["completions/mean_length"] for e in history if "completions/mean_length" in e
        ],
        "export_gb": round(dir_size(out / "final") / 1e9, 3),
    }

    resumed = check.work / "resume"
    resume_args = [
        *sized_stage_args(
            models["tiny"], resumed, steps=4, completion_length=mode.resume_completion_length, cpu=mode.cpu
        ),
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
    ]
    killed_rc = check.launch(
        "train/grpo.py", resume_args, resumed, STAGERL_FAILPOINT="checkpoint-before-marker@2"
    )
    complete = last_complete_checkpoint(resumed)
    if killed_rc == 0 or complete is None or Path(complete).name != "checkpoint-2":
        raise PartFailed(
            f"the killed stage exited {killed_rc} and left {complete} as its last complete checkpoint"
        )
    if (resumed / "checkpoint-4" / COMPLETE_MARKER).exists():
        raise PartFailed("checkpoint-4 is marked complete although the stage was killed before its marker")
    if check.launch("train/grpo.py", [*resume_args, "--resume_from_checkpoint", "latest"], resumed) != 0:
        raise PartFailed("the resumed stage did not finish")
    record = stage_record(resumed)
    if record["steps"] != 4 or record["resumed_from"] != "checkpoint-2" or missing_parts(resumed / "final"):
        raise PartFailed(f"resumed stage: {record['steps']} steps, resumed from {record['resumed_from']}")
    figures["kill_and_resume"] = {
        "killed_exit_code": killed_rc,
        "resumed_from": record["resumed_from"],
        "steps": record["steps"],
        "checkpoint_gb": round(dir_size(Path(complete)) / 1e9, 3),
    }
    return figures


def part_stage_vs_plain(check: Check, models: dict[str, Path]) -> dict:
    """bench/gpu_stage.py at the sized settings: the stage against plain TRL, one run each."""
    mode, result = check.mode, check.work / "bench.json"
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
    figures = json.loads(result.read_text())["generate"]
    figures["goal_met"] = figures["stage_over_plain"] >= 0.97
    return figures


def part_loss_memory(check: Check, models: dict[str, Path]) -> dict:
    """bench/loss_memory.py: one GRPO step on 2 x 16,384 completion tokens under the cap."""
    out = check.work / "memory"
    args = [
        "--config",
        "configs/stages/level2.yaml",
        "--model_name_or_path",
        str(models["shape"]),
        "--output_dir",
        str(out),
        "--data",
        "math-levels:2",
        "--use_vllm",
        "false",
        "--num_generations",
        "2",
        "--steps_per_generation",
        "1",
        "--gradient_accumulation_steps",
        "1",
        "--max_steps",
        "1",
        "--save_strategy",
        "no",
        "--result_json",
        str(out / "memory.json"),
        *check.mode.memory_overrides,
    ]
    if check.launch("bench/loss_memory.py", args, out) != 0:
        raise PartFailed("bench/loss_memory.py did not finish")
    return json.loads((out / "memory.json").read_text())


def part_evaluate(check: Check, models: dict[str, Path]) -> dict:
    """stagerl.train.evaluate with the transformers backend (no vLLM there) on the tiny R1 model."""
    out = check.work / "eval"
    offset = check.log_path.stat().st_size
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
        device = "cuda" if " on cuda " in log.read() else "cpu"
    summary = json.loads((out / "summary.json").read_text())
    return {
        "device": device,
        "wall_time_s": summary["wall_time_s"],
        "math500": summary["benchmarks"]["math500"],
    }


PARTS = {
    1: ("stage", part_stage),
    2: ("stage_vs_plain", part_stage_vs_plain),
    3: ("loss_memory", part_loss_memory),
    4: ("evaluate", part_evaluate),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU, no ZeRO, no bf16")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="default: $OUT")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stagerl-gpu-check"))
    parser.add_argument("--parts", default="1,2,3,4", help="comma-separated part numbers")
    parser.add_argument("--preflight", type=Path, help=argparse.SUPPRESS)  # internal: write preflight() there
    args = parser.parse_args(argv)
    if args.preflight:
        atomic_write_json(args.preflight, preflight())
        return {}
    if args.out is None:
        parser.error("give --out DIR (or set $OUT)")
    parts = [int(p) for p in args.parts.split(",")]
    if not set(parts) <= set(PARTS):
        parser.error(f"--parts {args.parts}: parts are {sorted(PARTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    mode = CPU if args.cpu else GPU
    check = Check(mode, args.out, args.work)
    check.result["pyproject_pins"] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    models = setup(check)
    carry = 0.0
    for number, (name, part) in PARTS.items():
        if number not in parts:
            check.result["parts"][name] = {"status": "skipped", "seconds": 0, "figures": {}, "error": None}
            continue
        carry = check.timed(
            check.result["parts"], name, mode.budgets[name] + carry, lambda p=part: p(check, models)
        )
    extensions = check.work / "torch_extensions"
    check.result["jit_builds"] = sorted(p.name for p in extensions.glob("*/*")) if extensions.is_dir() else []
    check.save()
    return check.result


if __name__ == "__main__":
    result = main()
    if result:
        print(json.dumps({name: part["status"] for name, part in result["parts"].items()}))
