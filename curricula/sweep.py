"""Run a sweep: many curricula as one prefix tree, every distinct stage trained once, resumable at any moment.

    python -m curricula.sweep configs/sweeps/smoke.yaml --output_dir runs/sweep-smoke   (or ./launch.sh --sweep ...)
    python -m curricula.sweep configs/sweeps/smoke.yaml --dry-run          # the tree and the trainings saved
    python -m curricula.sweep configs/sweeps/smoke.yaml --emit slurm       # a Slurm submit script, run nothing

The sweep file (see `curricula.sweep_spec`) expands into curricula; stages with the same resolved config and
the same parent are one node, trained once in `SWEEP/nodes/<id>-<name>/` (one `train/grpo.py` launch, as in
`curricula.run`); a child starts from its parent's `final/`. `SWEEP/sweep.json` records every node's status
(`pending|running|done|failed`), launches, export and metrics, rewritten atomically at every change. Running
the command again skips finished nodes, resumes a running one from its last complete checkpoint and retries
failed ones. A failed node stops only its own subtree. With an `eval:` in the curricula, every node's export
is evaluated once after training (`curricula.run.evaluate_model`; pass@1 per benchmark in its record). Editing the sweep file is allowed: nodes whose
identity is unchanged are reused, new ones are trained. A node finished outside the runner (by `--emit`
commands on a cluster) is recorded from its `stage.json`. At the end, `SWEEP/report.md` (+ CSV, PNG plots)
compares the curricula.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import logging
import sys
import time
from pathlib import Path

from curricula.files import atomic_write_json
from curricula.run import (
    ManifestError,
    add_launch_args,
    check_launch_args,
    evaluate_model,
    launcher,
    run_logged,
    stage_metrics,
    train_command,
)
from curricula.sweep_spec import Node, SweepSpec, SweepTree, build_tree, format_tree, load_sweep, savings_line

logger = logging.getLogger(__name__)

SWEEP_MANIFEST = "sweep.json"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class SweepManifest:
    """`sweep.json`: every node ever trained in this directory, and the current sweep's curricula."""

    def __init__(self, sweep_dir: Path, spec: SweepSpec, tree: SweepTree):
        self.path = sweep_dir / SWEEP_MANIFEST
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
                [n["status"] for n in self.data["nodes"].values()]  # noqa: B018 - shape check
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise ManifestError(
                    f"{self.path} is unreadable or not a sweep record ({type(e).__name__}: {e}). Nothing was "
                    "deleted; fix or move that file, or choose another --output_dir."
                ) from None
        else:
            self.data = {"name": spec.name, "created": _now(), "nodes": {}}
        self.data.update(name=spec.name, source=spec.source)
        self.data["curricula"] = {
            c.name: {"nodes": tree.paths[c.name], "spec": c.resolved()} for c in spec.curricula
        }
        for node in tree.nodes.values():
            record = self.data["nodes"].setdefault(node.id, {
                "name": node.name, "dir": node.dir, "parent": node.parent, "status": "pending",
                "checkpoint": None, "metrics": {}, "launches": 0, "launch_s": 0.0,
            })  # fmt: skip
            record["curricula"] = node.curricula
        self.save()

    @property
    def nodes(self) -> dict[str, dict]:
        return self.data["nodes"]

    def save(self) -> None:
        self.data["updated"] = _now()
        atomic_write_json(self.path, self.data)


def node_command(tree: SweepTree, node: Node, sweep_dir: Path, prefix: list[str]) -> list[str]:
    """The `train/grpo.py` command of one node: it starts from its parent's export (or the curriculum's model).

    Args:
        tree: the sweep's tree.
        node: the node to train.
        sweep_dir: the sweep directory (absolute).
        prefix: the launcher (see `curricula.run.launcher`).

    Returns:
        The argument list; the stage YAML path is made absolute, so the command runs from anywhere.
    """
    ancestors = tree.ancestors(node.id)
    model = str(sweep_dir / ancestors[-1].dir / "final") if ancestors else node.model
    stats = [str(sweep_dir / a.dir / "problems.jsonl") for a in ancestors] if node.drop_solved else None
    stage = dataclasses.replace(node.stage, config=str(Path(node.stage.config).resolve()))
    return train_command(prefix, stage, model, sweep_dir / node.dir, stats)


def finished_on_disk(node_dir: Path) -> bool:
    """Whether a stage directory holds a finished stage (`stage.json` is written last, after `final/`)."""
    return (node_dir / "final").is_dir() and (node_dir / "stage.json").is_file()


def _lock(sweep_dir: Path):
    handle = open(sweep_dir / ".sweep.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ManifestError(
            f"another sweep is running in {sweep_dir}; wait for it or stop it first"
        ) from None
    return handle


def run_sweep(spec: SweepSpec, sweep_dir: Path, *, accelerate_config: str | None = None,
              num_processes: int = 1) -> tuple[SweepManifest, SweepTree, list[str]]:  # fmt: skip
    """Train (or resume) every node of the sweep's tree in `sweep_dir`, parents first.

    Args:
        spec: the expanded sweep.
        sweep_dir: the sweep directory (created if missing).
        accelerate_config, num_processes: as for `curricula.run`.

    Returns:
        The manifest, the tree, and the ids of nodes that failed (their subtrees were not run).
    """
    tree = build_tree(spec.curricula)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(sweep_dir)
    try:
        manifest = SweepManifest(sweep_dir, spec, tree)
        for name, raw in spec.raw.items():
            atomic_write_json(sweep_dir / "curricula" / f"{name}.json", raw)
        prefix = launcher(accelerate_config, num_processes)
        failed: list[str] = []
        for i, node in enumerate(tree.nodes.values(), 1):
            _run_node(manifest, tree, node, sweep_dir, prefix, f"node {i}/{len(tree.nodes)}", failed)
        return manifest, tree, failed
    finally:
        lock.close()


def _run_node(manifest: SweepManifest, tree: SweepTree, node: Node, sweep_dir: Path, prefix: list[str],
              label: str, failed: list[str]) -> None:  # fmt: skip
    record = manifest.nodes[node.id]
    node_dir = sweep_dir / record["dir"]
    what = f"{label} {node.name} [{node.id}]"
    if record["status"] == "done" and (node_dir / "final").is_dir():
        logger.info("%s: done, skipped", what)
    elif node.parent is not None and manifest.nodes[node.parent]["status"] != "done":
        logger.warning("%s: not run, its parent [%s] did not finish", what, node.parent)
        failed.append(node.id)
        return
    elif not _train_node(manifest, tree, node, sweep_dir, prefix, what):
        failed.append(node.id)
        return
    if node.eval and "eval" not in record:
        try:
            record["eval"] = evaluate_model(
                node.eval, record["checkpoint"], node_dir / "eval", node_dir / "eval.log"
            )
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            logger.error("%s: evaluation failed (%s); run the same command again to retry it", what, e)
            failed.append(node.id)
            return
        manifest.save()


def _train_node(manifest: SweepManifest, tree: SweepTree, node: Node, sweep_dir: Path, prefix: list[str],
                what: str) -> bool:  # fmt: skip
    """Train one node (or record it, when it finished outside this runner); False when training failed."""
    record = manifest.nodes[node.id]
    node_dir = sweep_dir / record["dir"]
    if finished_on_disk(node_dir):
        logger.info("%s: finished outside this runner, recorded", what)
    else:
        resuming = record["status"] in ("running", "failed")
        record.update(
            status="running", started=record.get("started") or _now(), launches=record["launches"] + 1
        )
        manifest.save()
        logger.info("%s (%s): %s", what, ", ".join(node.curricula), "resuming" if resuming else "starting")
        start = time.time()
        rc = run_logged(node_command(tree, node, sweep_dir, prefix), node_dir / "train.log")
        record["launch_s"] = round(record["launch_s"] + time.time() - start, 2)
        if rc != 0:
            record["status"] = "failed"
            manifest.save()
            logger.error("%s failed with exit code %d; see %s", what, rc, node_dir / "train.log")
            return False
    record.update(status="done", checkpoint=str(node_dir / "final"), metrics=stage_metrics(node_dir),
                  finished=_now())  # fmt: skip
    manifest.save()
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curricula.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("sweep", help="sweep YAML, e.g. configs/sweeps/smoke.yaml")
    parser.add_argument("--output_dir", "--output-dir", help="sweep directory (default: runs/sweep-<name>)")
    add_launch_args(parser)
    parser.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="print the tree and the trainings saved, run nothing",
    )
    parser.add_argument(
        "--emit",
        choices=["commands", "slurm"],
        help="print the stage commands (one a line, parents first) or a Slurm submit script; run nothing",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors exit with a message)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_launch_args(args)
    try:
        spec = load_sweep(args.sweep)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    sweep_dir = Path(args.output_dir or f"runs/sweep-{spec.name}").resolve()
    if args.dry_run or args.emit:
        tree = build_tree(spec.curricula)
        if args.emit:
            from curricula.sweep_emit import emit

            print(
                emit(args.emit, spec, tree, sweep_dir, launcher(args.accelerate_config, args.num_processes))
            )
        else:
            print(dry_run_text(spec, tree, sweep_dir))
        return 0
    try:
        manifest, tree, failed = run_sweep(
            spec, sweep_dir, accelerate_config=args.accelerate_config, num_processes=args.num_processes
        )
    except ManifestError as e:
        raise SystemExit(f"error: {e}") from None
    from curricula.sweep_report import write_sweep_report

    print(write_sweep_report(sweep_dir, manifest.data, tree))
    if failed:
        names = ", ".join(f"{tree.nodes[n].name} [{n}]" for n in failed)
        raise SystemExit(
            f"error: {len(failed)} node(s) did not finish (training or evaluation): {names}. Run the same command to retry."
        )
    return 0


def dry_run_text(spec: SweepSpec, tree: SweepTree, sweep_dir: Path) -> str:
    """The dry-run output: the tree (with statuses when the sweep directory has a record) and the savings."""
    status = None
    manifest = sweep_dir / SWEEP_MANIFEST
    if manifest.is_file():
        try:
            status = {k: v["status"] for k, v in json.loads(manifest.read_text())["nodes"].items()}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            status = None
    head = f"sweep {spec.name} ({spec.source}): {len(spec.curricula)} curricula, {len(tree.nodes)} distinct stages"
    return f"{head}\n{format_tree(tree, status)}\n{savings_line(tree)}"


if __name__ == "__main__":
    sys.exit(main())
