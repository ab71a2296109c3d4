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
leaves unused goes to the next. `OUT/gpu_check.json` (OUT: `--out`, else `$OUT`) is rewritten after every
command: `setup` (install, versions, unmet requirements, compilers, GPU, model builds), then per part `status`
(running, ok, failed, skipped), `seconds`, `figures` (what it measured, also before a failure) and `error` (the
exception and the tail of its log), and `notes`. `OUT/gpu_check.log` holds every command's output. Everything
else goes to `--work` (models, stage directories; ~15 GB on a GPU). Nothing here reaches a network
(HF_HUB_OFFLINE=1).
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

from gpu_parts import PARTS, dir_gb

from stagerl.data.files import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
# Distributions whose versions the JSON records; those whose requirements are checked against what is installed.
VERSIONS = "torch triton transformers trl accelerate deepspeed datasets peft math-verify".split()
REQUIREMENTS_OF = "stagerl transformers trl accelerate deepspeed datasets peft math-verify".split()
IMPORTS = "trl deepspeed datasets math_verify peft stagerl.train.grpo stagerl.train.evaluate".split()


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
    eval_args="--limit 8 --samples 4 --max-new-tokens 256".split(),
    budgets={"stage": 150, "stage_vs_plain": 170, "loss_memory": 60, "evaluate": 30},
)
CPU = Mode(
    cpu=True,
    shape="tiny",
    accelerate_config="configs/accelerate/ddp.yaml",
    completion_length=32,
    steps=2,
    resume_completion_length=16,
    memory_overrides="--max_completion_length 256 --use_cpu true --bf16 false --dtype float32".split(),
    eval_args="--limit 2 --samples 2 --max-new-tokens 16".split(),
    budgets={"stage": 150, "stage_vs_plain": 90, "loss_memory": 60, "evaluate": 60},
)
SETUP_BUDGET_S = 90  # preflight and model builds
NOTES = [
    "torch: see setup.preflight.figures.torch_note; every figure ran under the machine's torch",
    "vLLM is not installed on the GPU machine (its wheel alone is over the carry limit, and it needs torch 2.13): "
    "generation is transformers' generate everywhere here, the configs' vLLM colocate path stays unrun",
    "data: the shipped MATH sample's level 2 (math-levels:2) instead of the hub's AM-Math level 2 (no network)",
    "model: random weights of DeepSeek-R1-Distill-Qwen-1.5B's shape, R1's chat template, the tiny R1 tokenizer "
    "padded to the 151,936 ids (bench/random_model.py); completions are random text, rewards near 0",
]


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
        """Run `cmd` from the repo root; its exit code. Killed at the deadline (then TimeoutError)."""
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
                raise TimeoutError(f"out of time: killed {' '.join(cmd[:6])} ...") from None
            finally:
                self.save()  # the figures a part gathered so far survive a kill of the whole check

    def run_ok(self, cmd: list[str], **env: str) -> None:
        rc = self.run(cmd, **env)
        if rc != 0:
            raise RuntimeError(f"exit code {rc}: {' '.join(cmd)}")

    def timed(self, section: dict, name: str, budget: float, body) -> float:
        """Run `body(figures)` under `budget` seconds into `section[name]`; returns the seconds left over."""
        start = time.monotonic()
        self.deadline = start + budget
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        entry: dict = {"status": "running", "seconds": None, "figures": {}, "error": None}
        section[name] = entry
        self.save()
        try:
            body(entry["figures"])
            entry["status"] = "ok"
        except Exception as e:  # a part's failure is its result; the others still run
            tail = (
                self.log_path.read_bytes()[offset:][-2500:].decode(errors="replace")
                if self.log_path.exists()
                else ""
            )
            entry.update(status="failed", error=f"{type(e).__name__}: {e}\n--- end of its log ---\n{tail}")
        entry["seconds"] = round(time.monotonic() - start, 1)
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

    def run_preflight(figures: dict) -> None:
        check.run_ok([sys.executable, __file__, "--preflight", str(preflight_json)])
        figures.update(json.loads(preflight_json.read_text()))

    left = check.timed(section, "preflight", SETUP_BUDGET_S / 2, run_preflight)
    models = {"shape": check.work / f"model-{check.mode.shape}", "tiny": check.work / "model-tiny"}
    if check.mode.shape == "tiny":
        models["tiny"] = models["shape"]
    device = "cpu" if check.mode.cpu else "cuda"

    def build_models(figures: dict) -> None:
        # Seeded, so a directory a rerun finds (written whole, then renamed) is the same model: kept.
        build = [sys.executable, "bench/random_model.py"]
        if not models["shape"].is_dir():
            check.run_ok([*build, str(models["shape"]), "--shape", check.mode.shape, "--device", device])
        if not models["tiny"].is_dir():
            check.run_ok([*build, str(models["tiny"]), "--shape", "tiny"])
        config = json.loads((models["shape"] / "config.json").read_text())
        figures.update(
            shape=check.mode.shape,
            vocab_size=config["vocab_size"],
            dtype=config.get("dtype"),
            weights_gb=dir_gb(models["shape"]),
        )

    check.timed(section, "models", SETUP_BUDGET_S / 2 + left, build_models)
    return models


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU, no ZeRO, no bf16")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="default: $OUT")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stagerl-gpu-check"))
    parser.add_argument("--parts", default="1,2,3,4", help="comma-separated part numbers")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every part's time budget")
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
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    check.result.update(notes=NOTES, pyproject_pins=pyproject["project"]["dependencies"])
    models = setup(check)
    carry = 0.0
    for number, (name, part) in PARTS.items():
        if number not in parts:
            check.result["parts"][name] = {"status": "skipped", "seconds": 0, "figures": {}, "error": None}
            continue
        budget = mode.budgets[name] * args.budget_scale + carry
        carry = check.timed(
            check.result["parts"], name, budget, lambda figures, p=part: p(check, models, figures)
        )
    extensions = check.work / "torch_extensions"
    check.result["jit_builds"] = sorted(p.name for p in extensions.glob("*/*")) if extensions.is_dir() else []
    check.save()
    return check.result


if __name__ == "__main__":
    result = main()
    if result:
        print(json.dumps({name: part["status"] for name, part in result["parts"].items()}))
