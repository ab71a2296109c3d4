"""Run a plan, a curriculum or a sweep of curricula: one `train/grpo.py` launch per distinct stage, resumable
after a kill at any instant.

    python -m stagerl.curricula.run configs/curricula/smoke.yaml --output_dir runs/smoke            (./launch.sh ...)
    python -m stagerl.curricula.run --sweep configs/sweeps/smoke.yaml --output_dir runs/sweep-smoke  (./launch.sh --sweep ...)
    ... --dry-run (the tree and the commands) | --emit commands|slurm | --from-stage K

One loop for both (a curriculum is the one-branch tree, `stagerl.curricula.plan`): lock the run directory; evaluate
the starting models when `eval: {initial: true}` asks; then for every node, parents first: skip it when its
directory holds a finished stage (`stage.json` beside `final/`, written last by the stage itself; a stage
finished while the runner was down, or by `--emit` commands on a cluster, is adopted the same way), else
launch it (`--resume_from_checkpoint latest` resumes its last complete checkpoint), then evaluate its export
when an `eval:` asks. A failed node stops only its own subtree; the run exits non-zero at the end, and the
same command retries.

The record (`RUN/curriculum.json` for a curriculum, `RUN/sweep.json` for a sweep) holds every node's status
(`pending|running|done|failed`), launches, export (`checkpoint`) and metrics, with paths relative to RUN, so
a run directory can be moved; it is rewritten atomically at every change. A curriculum's record lists its
stages in order (`stages[*].checkpoint` is stage k's `final/`); a curriculum edited against a run directory
is refused with the differences (its stage directories are named by position), while a sweep may be edited
(its node directories are named by identity: unchanged nodes are reused).

Multi-node: every machine runs this loop and starts its share of each stage's and each evaluation's processes
(an evaluation splits its problems across them); only MACHINE_RANK 0 takes the lock and writes the record, the
evaluation results and the report; the other machines wait (at most `EVAL_RECORD_TIMEOUT_S`) for each
evaluation to be recorded before they launch the next stage.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from stagerl.curricula.commands import (
    emit_commands,
    emit_slurm,
    evaluation_command,
    launcher,
    node_command,
)
from stagerl.curricula.plan import Node, Plan, load_plan
from stagerl.curricula.spec import ROOT, diff
from stagerl.data.files import (
    DIE_WITH_PARENT_ENV,
    atomic_write_json,
    atomic_write_text,
    die_with_parent,
    failpoint,
)
from stagerl.data.stage_dir import EVAL_DIR, EVAL_SUMMARY, FINAL_DIR, finished, move_aside, read_record
from stagerl.rewards.cli import WARNED_ENV, run_command, setup_logging

logger = logging.getLogger(__name__)

DEFAULT_CURRICULUM = str(ROOT / "configs/curricula/demo.yaml")
EVAL_WAIT_S = 10.0
SHARED_SENTINEL = ".primary"  # written by the primary machine, found by the others: the directory is shared
SENTINEL_WAIT_S = 300.0  # how long a secondary machine looks for it (the machines' runners start together)
WARNED_FILE = ".warned"  # the warnings this run's processes have shown (`stagerl.rewards.cli`)
# How long a secondary machine, its share of an evaluation done, waits for the primary to record it: the
# primary's first process still grades every completion and writes the results after the others are done.
EVAL_RECORD_TIMEOUT_S = 1800.0


class RecordError(RuntimeError):
    """The run directory's record is unreadable or belongs to another plan; nothing was deleted."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def read_run_record(path: Path, kind: str) -> dict:
    """A record file as a sweep-shaped dict (a curriculum's one-branch view converted back).

    Raises:
        RecordError: the file is unreadable or not a record of that kind.
    """
    try:
        data = json.loads(path.read_text())
        if kind == "curriculum":
            stages, spec = data.pop("stages"), data.pop("spec")
            data["nodes"] = {s["id"]: s for s in stages}
            data["curricula"] = {spec["name"]: {"nodes": [s["id"] for s in stages], "spec": spec}}
            initial = data.pop("initial_eval", None)
            data["starts"] = {spec["model"]: {"eval": initial}} if initial is not None else {}
        [n["status"] for n in data["nodes"].values()]  # noqa: B018 - shape check
        data.setdefault("starts", {})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise RecordError(
            f"{path} is unreadable or not a {kind} record ({type(e).__name__}: {e}). Nothing was deleted; fix "
            "or move that file, or choose another --output_dir."
        ) from None
    return data


class Record:
    """The run directory's record: every node's status, export, metrics and evaluation, plus the starting
    models' evaluations. A curriculum's file is its one-branch view (`stages` in order, `initial_eval`)."""

    def __init__(self, run_dir: Path, plan: Plan, *, writer: bool = True):
        self.path, self.plan, self.writer = run_dir / plan.record_file, plan, writer
        specs = {c.name: c.resolved() for c in plan.curricula}
        if self.path.exists():
            self.data = self.read()
            if plan.kind == "curriculum":
                (old,) = [c["spec"] for c in self.data["curricula"].values()]
                changes = diff(old, specs[plan.name])
                if changes:
                    raise RecordError(
                        f"{self.path} records another curriculum; changed: {'; '.join(changes)}. Nothing was "
                        "deleted; use another --output_dir (stage directories are named by position)."
                    )
        else:
            self.data = {"name": plan.name, "kind": plan.kind, "created": _now(), "starts": {}, "nodes": {}}
        self.data.update(name=plan.name, source=plan.source)
        self.data["curricula"] = {c: {"nodes": plan.paths[c], "spec": specs[c]} for c in specs}
        for node in plan.nodes.values():
            entry = self.nodes.setdefault(
                node.id,
                {
                    "id": node.id,
                    "name": node.name,
                    "dir": node.dir,
                    "parent": node.parent,
                    "status": "pending",
                    "checkpoint": None,
                    "metrics": {},
                    "launches": 0,
                    "launch_s": 0.0,
                },
            )
            entry["curricula"] = node.curricula
        self.save()

    @property
    def nodes(self) -> dict[str, dict]:
        return self.data["nodes"]

    def read(self) -> dict:
        return read_run_record(self.path, self.plan.kind)

    def view(self) -> dict:
        """What is written: the sweep-shaped record, or a curriculum's one-branch view of it."""
        if self.plan.kind == "sweep":
            return self.data
        view = {k: v for k, v in self.data.items() if k not in ("nodes", "curricula", "starts")}
        ((cur),) = self.data["curricula"].values()
        initial = self.data["starts"].get(cur["spec"]["model"], {}).get("eval")
        if initial is not None:
            view["initial_eval"] = initial
        return {**view, "spec": cur["spec"], "stages": [self.nodes[i] for i in cur["nodes"]]}

    def save(self) -> None:
        self.data["updated"] = _now()
        if self.writer:
            atomic_write_json(self.path, self.view())


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold the run directory's lock: two runners on one directory would train the same stage twice."""
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordError(f"another runner is using {run_dir}; wait for it or stop it first") from None
        yield


def run_logged(cmd: list[str], log_path: Path) -> int:
    """Run `cmd`, streaming its output to the terminal and to `log_path` (appended: resumes keep history).

    The log is flushed at every chunk, so a runner killed with SIGKILL still leaves the whole output there.
    The command dies with the runner, and so do the processes it starts (`$STAGERL_DIE_WITH_PARENT`, read by
    `train/grpo.py`: a distributed launch's workers are not children of the runner).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1", DIE_WITH_PARENT_ENV: "1"},
        )
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            log.write(chunk)
            log.flush()
        return proc.wait()


def stage_metrics(stage_dir: Path) -> dict:
    record = read_record(stage_dir)
    keys = ("steps", "reward_start", "reward_end", "wall_time_s", "advanced_early", "data", "generation")
    return {k: record.get(k) for k in keys if k in record}


def evaluate_model(eval_spec: dict, model: str, out_dir: Path, log_path: Path, prefix: list[str]) -> None:
    """Run this machine's share of `stagerl.train.evaluate` on `model` as `eval:` asks, with the stages'
    launcher (`stagerl.curricula.commands.evaluation_command`).

    Raises:
        RuntimeError: the evaluation failed (its log is named).
    """
    if run_logged(evaluation_command(eval_spec, model, out_dir, prefix), log_path) != 0:
        raise RuntimeError(f"evaluation of {model} failed; see {log_path}")


def evaluation_results(out_dir: Path) -> dict[str, float]:
    """pass@1 per benchmark from the summary an evaluation wrote into `out_dir`."""
    summary = json.loads((out_dir / EVAL_SUMMARY).read_text())
    return {name: m["pass@1"] for name, m in summary["benchmarks"].items()}


class Runner:
    """One pass of the loop over a plan in a run directory (see the module docstring)."""

    def __init__(self, plan: Plan, run_dir: Path, prefix: list[str], *, machine_rank: int = 0):
        self.plan, self.run_dir, self.prefix = plan, run_dir, prefix
        self.machine_rank, self.primary = machine_rank, machine_rank == 0
        self.record = Record(run_dir, plan, writer=self.primary)
        self.failed: list[str] = []

    def log_name(self, kind: str) -> str:
        """This machine's log file of a launch: `train.log`, `eval.log` on the primary; `train.node1.log` ..."""
        return f"{kind}.log" if self.primary else f"{kind}.node{self.machine_rank}.log"

    def run(self) -> list[str]:
        """Evaluate the starting models, then train and evaluate every node; returns the failed node ids."""
        for model in dict.fromkeys(
            n.model for n in self.plan.children(None) if (n.eval or {}).get("initial")
        ):
            first = next(
                n for n in self.plan.children(None) if n.model == model and (n.eval or {}).get("initial")
            )
            out = self.run_dir / f"eval-initial-{re.sub(r'[^A-Za-z0-9._-]+', '-', model)}"
            if not self.evaluate(
                lambda data, m=model: data["starts"].setdefault(m, {}),
                first,
                model,
                out,
                self.run_dir / self.log_name("eval"),
                f"start model {model}",
            ):
                self.failed.append(f"evaluation of {model}")
        for i, node in enumerate(self.plan.nodes.values(), 1):
            if self.plan.kind == "curriculum":
                label = f"stage {i}/{len(self.plan.nodes)} ({node.name})"
            else:
                label = f"node {i}/{len(self.plan.nodes)} {node.name} [{node.id}]"
            self.step(node, label)
        return self.failed

    def step(self, node: Node, label: str) -> None:
        entry, node_dir = self.record.nodes[node.id], self.run_dir / node.dir
        if node.parent is not None and not finished(self.run_dir / self.plan.nodes[node.parent].dir):
            logger.warning("%s: not run, its parent [%s] did not finish", label, node.parent)
            self.failed.append(node.id)
            return
        if finished(node_dir):
            logger.info(
                "%s: %s", label, "done, skipped" if entry["status"] == "done" else "finished, recorded"
            )
        elif not self.train(node, entry, label):
            self.failed.append(node.id)
            return
        if entry["status"] != "done":
            entry.update(
                status="done",
                checkpoint=f"{node.dir}/{FINAL_DIR}",
                metrics=stage_metrics(node_dir),
                finished=_now(),
            )
            self.record.save()
        if node.evaluated and not self.evaluate(
            lambda data: data["nodes"][node.id],
            node,
            str(node_dir / FINAL_DIR),
            node_dir / EVAL_DIR,
            node_dir / self.log_name("eval"),
            label,
        ):
            self.failed.append(node.id)
        elif node.evaluated and self.primary and not self.publish(node_dir, entry["eval"], label):
            self.failed.append(f"publication of {node.id}")

    def publish(self, node_dir: Path, evaluation: dict[str, float], label: str) -> bool:
        """After the evaluation of a node's export: its results into the node's tracker run and its push to the
        Hub (`python -m stagerl.train.publish`, which does each once; the stage left them to it).

        Returns:
            Whether it succeeded.
        """
        cmd = [
            sys.executable,
            "-m",
            "stagerl.train.publish",
            str(node_dir),
            "--evaluation",
            json.dumps(evaluation),
        ]
        log = node_dir / "publish.log"
        if run_logged(cmd, log) != 0:
            logger.error(
                "%s: publishing the evaluation or the export failed; see %s (retried by a rerun)", label, log
            )
            return False
        return True

    def train(self, node: Node, entry: dict, label: str) -> bool:
        """Launch the node's stage (resuming its last complete checkpoint); False when it failed."""
        resuming = entry["status"] in ("running", "failed")
        entry.update(status="running", started=entry.get("started") or _now(), launches=entry["launches"] + 1)
        self.record.save()
        through = f" ({', '.join(node.curricula)})" if self.plan.kind == "sweep" else ""
        logger.info("%s%s: %s", label, through, "resuming" if resuming else "starting")
        start = time.time()
        log = self.run_dir / node.dir / self.log_name("train")
        rc = run_logged(node_command(self.plan, node, self.run_dir, self.prefix), log)
        entry["launch_s"] = round(entry["launch_s"] + time.time() - start, 2)
        failpoint("runner-after-stage")
        if rc != 0:
            entry["status"] = "failed"
            self.record.save()
            logger.error(
                "%s failed with exit code %d; see %s. Run the same command again to resume it from its last "
                "checkpoint.",
                label,
                rc,
                log,
            )
        return rc == 0

    def evaluate(self, lookup, node: Node, model: str, out_dir: Path, log_path: Path, label: str) -> bool:
        """Evaluate `model` as `node.eval` asks, once, into the record entry `lookup(record data)`. Every
        machine starts its share of the evaluation's processes (the stages' launcher); the primary records
        the result, and the others wait for that record. Problems are asked as `node`'s stage trains on them,
        unless `eval:` sets `prompt_template` or `system_prompt`.

        Returns:
            Whether the evaluation is recorded.
        """
        entry = lookup(self.record.data if self.primary else self.record.read())
        if "eval" in entry:
            return True
        if self.primary and entry.pop("eval_failed", None) is not None:
            self.record.save()  # an earlier failure must not be read by the others as this attempt's
        eval_spec = {**node.stage.asks(), **node.eval}
        try:
            evaluate_model(eval_spec, model, out_dir, log_path, self.prefix)
            if self.primary:
                entry["eval"] = evaluation_results(out_dir)
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            if self.primary:
                entry["eval_failed"] = str(e)
            logger.error("%s: evaluation failed (%s); run the same command again to retry it", label, e)
        if not self.primary:
            return self.wait_for_eval(lookup, label, model)
        self.record.save()
        return "eval" in entry

    def wait_for_eval(self, lookup, label: str, model: str) -> bool:
        """On a secondary machine, once its share is done: wait until the primary recorded the evaluation of
        `model` (or its failure), at most `EVAL_RECORD_TIMEOUT_S`.

        Returns:
            Whether the evaluation is recorded; False (with an error naming what was awaited) on a timeout.
        """
        started = time.time()
        while True:
            entry = lookup(self.record.read()) if self.record.path.exists() else {}
            if "eval" in entry or "eval_failed" in entry:
                return "eval" in entry
            waited = time.time() - started
            if waited >= EVAL_RECORD_TIMEOUT_S:
                logger.error(
                    "%s: gave up after %.0f s waiting for the primary machine (MACHINE_RANK 0) to record the "
                    "evaluation of %s in %s; is that machine still running?",
                    label,
                    waited,
                    model,
                    self.record.path,
                )
                return False
            logger.info(
                "%s: waiting for the primary machine to record the evaluation (%.0f s)", label, waited
            )
            time.sleep(EVAL_WAIT_S)


def launch_id() -> str:
    """What every machine of one multi-node run knows alike (its job and rendezvous), as one line."""
    keys = ("SLURM_JOB_ID", "NUM_MACHINES", "MAIN_PROCESS_IP", "MAIN_PROCESS_PORT")
    return " ".join(f"{key}={os.environ.get(key, '')}" for key in keys)


def check_shared(run_dir: Path, primary: bool) -> None:
    """The primary machine marks the run directory as this run's (`SHARED_SENTINEL`); another machine must find
    that mark within `SENTINEL_WAIT_S`, else the directory is not the one the primary writes (a local disk).

    Raises:
        RecordError: on a secondary machine that does not see the primary's mark.
    """
    path = run_dir / SHARED_SENTINEL
    if primary:
        atomic_write_text(path, launch_id())
        return
    deadline = time.time() + SENTINEL_WAIT_S
    while not (path.is_file() and path.read_text() == launch_id()):
        if time.time() > deadline:
            raise RecordError(
                f"{run_dir} is not shared with the primary machine (MACHINE_RANK 0): its mark {path.name} for this "
                f"run ({launch_id()}) did not appear in {SENTINEL_WAIT_S:.0f} s. Put the run directory on a "
                "filesystem every machine mounts at the same path, and start every machine's runner together."
            )
        time.sleep(1.0)


def restart_from(plan: Plan, run_dir: Path, record: Record, first: int) -> None:
    """Make every node at stage position >= `first` pending again; its old directory is renamed aside."""
    depth = max(n.depth for n in plan.nodes.values()) + 1
    if not 1 <= first <= depth:
        raise ValueError(f"--from-stage {first} is out of range: the curricula have stages 1..{depth}")
    for node in plan.nodes.values():
        if node.depth == first - 1 and node.parent and not finished(run_dir / plan.nodes[node.parent].dir):
            raise ValueError(
                f"--from-stage {first}: stage {first - 1} ({plan.nodes[node.parent].name}) is not done yet, so "
                "there is no end of it to restart from"
            )
    for node in plan.nodes.values():
        if node.depth < first - 1:
            continue
        old = run_dir / node.dir
        if old.exists():
            aside = move_aside(old)
            logger.info("kept the old %s as %s", node.dir, aside.name)
        entry = record.nodes[node.id]
        for key in ("eval", "eval_failed", "started", "finished"):
            entry.pop(key, None)
        entry.update(status="pending", checkpoint=None, metrics={})
    record.save()


def run_plan(
    plan: Plan, run_dir: Path, prefix: list[str], *, from_stage: int | None = None, machine_rank: int = 0
) -> tuple[Record, list[str]]:
    """Run (or resume) every node of `plan` in `run_dir`.

    Args:
        plan: the curriculum or sweep.
        run_dir: the run directory (created if missing).
        prefix: the stage launcher (`stagerl.curricula.commands.launcher`).
        from_stage: first retrain every stage from this position on (see `restart_from`).
        machine_rank: this machine's rank in a multi-node run (0 keeps the records).

    Returns:
        The record and the nodes (or evaluations) that did not finish.

    Raises:
        RecordError: on a machine other than the primary, when the run directory is not shared with it
            (`check_shared`); or when the record belongs to another plan.
    """
    primary = machine_rank == 0
    if from_stage is not None and not primary:
        raise ValueError("--from-stage moves stage directories: run it on one machine first, then launch all")
    run_dir.mkdir(parents=True, exist_ok=True)
    with locked(run_dir) if primary else contextlib.nullcontext():
        if not primary:
            check_shared(run_dir, primary)
        runner = Runner(plan, run_dir, prefix, machine_rank=machine_rank)
        if primary:  # marked once the record exists, so that the others find it there
            check_shared(run_dir, primary)
        if from_stage is not None:
            restart_from(plan, run_dir, runner.record, from_stage)
        return runner.record, runner.run()


def dry_run_text(plan: Plan, run_dir: Path, prefix: list[str]) -> str:
    """The tree (with statuses when the run directory has a record), the savings and the commands."""
    status = None
    with contextlib.suppress(RecordError, OSError):
        status = {
            k: v["status"] for k, v in read_run_record(run_dir / plan.record_file, plan.kind)["nodes"].items()
        }
    head = f"{plan.kind} {plan.name} ({plan.source}): {len(plan.curricula)} curricula, {len(plan.nodes)} distinct stages"
    lines = [head, *plan.format_tree(status).splitlines(), plan.savings_line()]
    return "\n".join(f"# {line}" for line in lines) + "\n" + emit_commands(plan, run_dir, prefix)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stagerl.curricula.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "plan", nargs="?", default=DEFAULT_CURRICULUM, help="curriculum YAML (default: the demo)"
    )
    parser.add_argument("--sweep", action="store_true", help="the file is a sweep of curricula")
    parser.add_argument("--output_dir", "--output-dir", help="run directory (default: runs/<name>)")
    parser.add_argument(
        "--accelerate-config",
        "--accelerate_config",
        help="accelerate config for every stage, e.g. zero2.yaml",
    )
    parser.add_argument(
        "--num-processes", "--num_processes", type=int, default=1, help="processes per machine (default 1)"
    )
    parser.add_argument(
        "--from-stage", "--from_stage", type=int, help="retrain every stage from position K on"
    )
    parser.add_argument("--dry-run", "--dry_run", action="store_true", help="print the tree and commands")
    parser.add_argument(
        "--emit",
        choices=["commands", "slurm"],
        help="print the stage commands or a Slurm script; run nothing",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors exit with a message)."""
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.num_processes < 1:
        raise SystemExit(f"error: --num-processes {args.num_processes}: must be >= 1")
    if args.accelerate_config and not Path(args.accelerate_config).is_file():
        raise SystemExit(f"error: --accelerate-config {args.accelerate_config}: no such file")
    try:
        plan = load_plan(args.plan, sweep=args.sweep)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    default_dir = f"runs/sweep-{plan.name}" if plan.kind == "sweep" else f"runs/{plan.name}"
    run_dir = Path(args.output_dir or default_dir).resolve()
    prefix = launcher(args.accelerate_config, args.num_processes)
    if args.emit == "slurm":
        print(emit_slurm(plan, run_dir, prefix), end="")
        return 0
    if args.emit or args.dry_run:
        print(emit_commands(plan, run_dir, prefix) if args.emit else dry_run_text(plan, run_dir, prefix))
        return 0
    machine_rank = int(os.environ.get("MACHINE_RANK") or 0)
    if machine_rank == 0:  # the stages and evaluations of this run show each warning once, among them all
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / WARNED_FILE).write_text("")
        os.environ[WARNED_ENV] = str(run_dir / WARNED_FILE)
    try:
        record, failed = run_plan(
            plan, run_dir, prefix, from_stage=args.from_stage, machine_rank=machine_rank
        )
    except (RecordError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    if record.writer:
        from stagerl.curricula.report import write_report

        print(write_report(run_dir, plan, record.data))
    if failed:
        raise SystemExit(
            f"error: {len(failed)} stage(s) or evaluation(s) did not finish: {', '.join(failed)}. "
            "Run the same command again to retry."
        )
    return 0


if __name__ == "__main__":
    run_command(main)
