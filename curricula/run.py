"""Run a curriculum: its stages in order, one `train/grpo.py` launch each, resumable at any moment.

    python -m curricula.run configs/curricula/smoke.yaml --output_dir runs/smoke     (or ./launch.sh ...)

The run directory's `curriculum.json` records each stage's status (`pending|running|done`), its exported
model (`checkpoint`) and metrics; it is rewritten atomically at every change. Running the same command again
skips finished stages and resumes the running one from its last complete checkpoint (`--resume_from_checkpoint
latest`). `--from-stage K` restarts from the end of stage K-1 (later stage directories are kept, renamed
aside). A curriculum file that changed against an existing run directory is refused, with the differences.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from curricula.files import atomic_write_json
from curricula.spec import CurriculumSpec, StageSpec, diff, load_curriculum

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "curriculum.json"
DEFAULT_CURRICULUM = str(ROOT / "configs/curricula/demo.yaml")


class ManifestError(RuntimeError):
    """The run directory's record is unreadable or belongs to another curriculum; nothing was deleted."""


def stage_dir_name(index: int, stage: StageSpec) -> str:
    return f"stage-{index}-{stage.name}"


def launcher(accelerate_config: str | None, num_processes: int) -> list[str]:
    """The command prefix that starts `train/grpo.py`: plain Python, or `accelerate launch` for several processes.

    Multi-node runs pass the usual variables through: NUM_MACHINES, MACHINE_RANK, MAIN_PROCESS_IP,
    MAIN_PROCESS_PORT (see slurm/train.slurm). `num_processes` is per machine; accelerate wants the total.
    """
    if accelerate_config is None and num_processes <= 1:
        return [sys.executable]
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    cmd += ["--config_file", accelerate_config or str(ROOT / "configs/accelerate/ddp.yaml")]
    cmd += ["--num_processes", str(num_processes * int(os.environ.get("NUM_MACHINES") or 1))]
    for env, flag in (("NUM_MACHINES", "--num_machines"), ("MACHINE_RANK", "--machine_rank"),
                      ("MAIN_PROCESS_IP", "--main_process_ip"), ("MAIN_PROCESS_PORT", "--main_process_port")):  # fmt: skip
        if os.environ.get(env):
            cmd += [flag, os.environ[env]]
    return cmd


def train_command(
    prefix: list[str],
    stage: StageSpec,
    model: str,
    stage_dir: Path,
    drop_solved_stats: list[str] | None = None,
) -> list[str]:
    """The command that trains one stage: its YAML and overrides, the model it starts from, resume.

    Args:
        prefix: the launcher (see `launcher`).
        stage: the stage to train.
        model: the starting model (the first stage's policy, or the previous stage's `final/`).
        stage_dir: the stage's output directory.
        drop_solved_stats: earlier stages' `problems.jsonl` files, when the curriculum drops solved problems.

    Returns:
        The argument list, ready for `run_logged`.
    """
    cmd = [*prefix, str(ROOT / "train/grpo.py"), "--config", stage.config, *stage.cli_args()]
    cmd += ["--model_name_or_path", model, "--output_dir", str(stage_dir)]
    cmd += ["--resume_from_checkpoint", "latest"]
    if drop_solved_stats:
        cmd += ["--drop_solved_stats", *drop_solved_stats]
    return cmd


def stage_command(
    spec: CurriculumSpec, index: int, run_dir: Path, prefix: list[str], manifest: dict
) -> list[str]:
    """The full command of stage `index` (1-based): its YAML, overrides, the previous export, resume."""
    stage = spec.stages[index - 1]
    model = spec.model if index == 1 else manifest["stages"][index - 2]["checkpoint"]
    stats = None
    if spec.drop_solved and index > 1:
        stats = [str(run_dir / s["dir"] / "problems.jsonl") for s in manifest["stages"][: index - 1]]
    return train_command(prefix, stage, model, run_dir / stage_dir_name(index, stage), stats)


def is_primary_node() -> bool:
    """True on the machine that keeps the run's records (MACHINE_RANK 0, or a single-machine run).

    Every machine of a multi-node run executes the same stage loop (each starts its share of the processes),
    but only the primary writes `curriculum.json` and the report; the others log to `train.node<RANK>.log`.
    """
    return (os.environ.get("MACHINE_RANK") or "0") == "0"


def _die_with_parent() -> None:
    # A stage must not outlive a killed runner: two trainers writing one stage directory would corrupt it.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_logged(cmd: list[str], log_path: Path) -> int:
    """Run `cmd`, streaming its output to the terminal and to `log_path` (appended: resumes keep history).

    The log is flushed at every chunk, so a runner killed with SIGKILL still leaves the whole output there.
    """
    if not is_primary_node():
        log_path = log_path.with_name(f"{log_path.stem}.node{os.environ['MACHINE_RANK']}{log_path.suffix}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            log.write(chunk)
            log.flush()
        return proc.wait()


class Manifest:
    """`curriculum.json`: the run's record, written atomically at every change."""

    def __init__(self, run_dir: Path, spec: CurriculumSpec):
        self.path = run_dir / MANIFEST
        self.spec = spec
        resolved = spec.resolved()
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
                old = self.data["spec"]
                [s["status"] for s in self.data["stages"]]  # noqa: B018 - shape check
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ManifestError(
                    f"{self.path} is unreadable or not a curriculum record ({type(e).__name__}: {e}). Nothing was "
                    "deleted; fix or move that file, or choose another --output_dir."
                ) from None
            changes = diff(old, resolved)
            if changes:
                raise ManifestError(
                    f"{self.path} was made by a different curriculum ({self.data.get('source')}); changed:\n  "
                    + "\n  ".join(changes)
                    + "\nUse another --output_dir, or restore the original curriculum file. Nothing was deleted."
                )
        else:
            self.data = {
                "name": spec.name,
                "source": spec.source,
                "spec": resolved,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "stages": [
                    {
                        "name": s.name,
                        "dir": stage_dir_name(i, s),
                        "status": "pending",
                        "checkpoint": None,
                        "metrics": {},
                    }
                    for i, s in enumerate(spec.stages, 1)
                ],
            }
            self.save()

    @property
    def stages(self) -> list[dict]:
        return self.data["stages"]

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        if is_primary_node():
            atomic_write_json(self.path, self.data)


def restart_from(manifest: Manifest, run_dir: Path, first: int) -> None:
    """Make stages >= `first` pending again; their old directories are renamed aside, never deleted."""
    if not 1 <= first <= len(manifest.stages):
        raise ValueError(
            f"--from-stage {first} is out of range: the curriculum has stages 1..{len(manifest.stages)}"
        )
    for i in range(first, len(manifest.stages) + 1):
        if i > 1 and i == first and manifest.stages[i - 2]["status"] != "done":
            raise ValueError(
                f"--from-stage {first}: stage {i - 1} is not done yet, so there is no end of it to restart from"
            )
        entry = manifest.stages[i - 1]
        old = run_dir / entry["dir"]
        if old.exists():
            aside = run_dir / f"{entry['dir']}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(old, aside)
            logger.info("kept the old %s as %s", entry["dir"], aside.name)
        entry.update(status="pending", checkpoint=None, metrics={})
    manifest.save()


def stage_metrics(stage_dir: Path) -> dict:
    record = json.loads((stage_dir / "stage.json").read_text())
    keys = ("steps", "reward_start", "reward_end", "wall_time_s", "advanced_early", "data")
    return {k: record.get(k) for k in keys}


def evaluate_model(eval_spec: dict, model: str, out_dir: Path, log_path: Path) -> dict[str, float]:
    """Run `train.evaluate` on `model` as the curriculum's `eval:` asks; returns pass@1 per benchmark.

    Only the primary node evaluates (one process is enough, and the others would write the same files).
    """
    if not is_primary_node():
        return {}
    cmd = [sys.executable, "-m", "train.evaluate", "--model", model, "--output", str(out_dir),
           "--benchmarks", ",".join(eval_spec["benchmarks"])]  # fmt: skip
    for key in ("samples", "limit", "max_new_tokens", "temperature"):
        if key in eval_spec:
            cmd += [f"--{key.replace('_', '-')}", str(eval_spec[key])]
    if run_logged(cmd, log_path) != 0:
        raise RuntimeError(
            f"evaluation of {model} failed; see {log_path}. Run the same command again to retry it."
        )
    summary = json.loads((out_dir / "summary.json").read_text())
    return {name: m["pass@1"] for name, m in summary["benchmarks"].items()}


def run_curriculum(spec: CurriculumSpec, run_dir: Path, *, accelerate_config: str | None = None,
                   num_processes: int = 1, from_stage: int | None = None, dry_run: bool = False) -> Manifest | None:  # fmt: skip
    """Run (or resume) every stage of `spec` in `run_dir`. Returns the manifest (None for a dry run)."""
    prefix = launcher(accelerate_config, num_processes)
    if dry_run:
        fake = {"stages": [{"checkpoint": str(run_dir / stage_dir_name(i, s) / "final"), "dir": stage_dir_name(i, s)}
                           for i, s in enumerate(spec.stages, 1)]}  # fmt: skip
        for i in range(1, len(spec.stages) + 1):
            print(
                f"# stage {i}: {spec.stages[i - 1].name}\n{shlex.join(stage_command(spec, i, run_dir, prefix, fake))}"
            )
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(run_dir, spec)
    if from_stage is not None:
        restart_from(manifest, run_dir, from_stage)
    if spec.eval and spec.eval.get("initial") and "initial_eval" not in manifest.data:
        manifest.data["initial_eval"] = evaluate_model(
            spec.eval, spec.model, run_dir / "eval-initial", run_dir / "eval.log"
        )
        manifest.save()
    for i, (stage, entry) in enumerate(zip(spec.stages, manifest.stages, strict=True), 1):
        stage_dir = run_dir / entry["dir"]
        if entry["status"] == "done" and (stage_dir / "final").is_dir():
            logger.info("stage %d (%s): done, skipped", i, stage.name)
            if spec.eval and "eval" not in entry:  # killed during its evaluation
                entry["eval"] = evaluate_model(
                    spec.eval, entry["checkpoint"], stage_dir / "eval", stage_dir / "eval.log"
                )
                manifest.save()
            continue
        resuming = entry["status"] == "running"
        entry.update(status="running", started=entry.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"))
        manifest.save()
        logger.info(
            "stage %d/%d (%s): %s", i, len(spec.stages), stage.name, "resuming" if resuming else "starting"
        )
        cmd = stage_command(spec, i, run_dir, prefix, manifest.data)
        rc = run_logged(cmd, stage_dir / "train.log")
        if rc != 0:
            raise RuntimeError(
                f"stage {i} ({stage.name}) failed with exit code {rc}; see {stage_dir / 'train.log'}. "
                "Run the same command again to resume it from its last checkpoint."
            )
        entry.update(status="done", checkpoint=str(stage_dir / "final"), metrics=stage_metrics(stage_dir),
                     finished=time.strftime("%Y-%m-%dT%H:%M:%S"))  # fmt: skip
        manifest.save()
        if spec.eval:
            entry["eval"] = evaluate_model(
                spec.eval, entry["checkpoint"], stage_dir / "eval", stage_dir / "eval.log"
            )
            manifest.save()
    return manifest


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """How each stage is launched; shared by the curriculum and sweep command lines."""
    parser.add_argument(
        "--accelerate-config",
        "--accelerate_config",
        help="accelerate config for every stage, e.g. configs/accelerate/zero2.yaml",
    )
    parser.add_argument(
        "--num-processes", "--num_processes", type=int, default=1, help="processes per machine (default 1)"
    )


def check_launch_args(args: argparse.Namespace) -> None:
    """Fail with a clear message, before anything runs, on launch options that cannot work."""
    if args.num_processes < 1:
        raise SystemExit(f"--num-processes {args.num_processes}: must be >= 1")
    if args.accelerate_config and not Path(args.accelerate_config).is_file():
        raise SystemExit(f"--accelerate-config {args.accelerate_config}: no such file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curricula.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "curriculum",
        nargs="?",
        default=DEFAULT_CURRICULUM,
        help=f"curriculum YAML (default: {DEFAULT_CURRICULUM})",
    )
    parser.add_argument(
        "--output_dir", "--output-dir", help="run directory (default: runs/<curriculum name>)"
    )
    add_launch_args(parser)
    parser.add_argument("--from-stage", "--from_stage", type=int, help="restart from the end of stage K-1")
    parser.add_argument(
        "--dry-run", "--dry_run", action="store_true", help="print the stage commands, run nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_launch_args(args)
    try:
        spec = load_curriculum(args.curriculum)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    run_dir = Path(args.output_dir or f"runs/{spec.name}").resolve()
    try:
        manifest = run_curriculum(spec, run_dir, accelerate_config=args.accelerate_config,
                                  num_processes=args.num_processes, from_stage=args.from_stage, dry_run=args.dry_run)  # fmt: skip
    except (ManifestError, ValueError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    if manifest is not None and is_primary_node():
        from curricula.report import write_report

        print(write_report(run_dir, manifest.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
