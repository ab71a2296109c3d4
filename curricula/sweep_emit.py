"""A sweep's stage commands for a cluster: one command a line, or a Slurm submit script with dependencies.

    python -m curricula.sweep configs/sweeps/smoke.yaml --output_dir /shared/runs/sweep --emit commands
    python -m curricula.sweep configs/sweeps/smoke.yaml --output_dir /shared/runs/sweep --emit slurm > submit.sh

Commands come parents first, so running the lines in order (or in parallel once a node's parent is done)
trains the whole tree. The Slurm script submits one job per node with `sbatch --parsable`, each child with
`--dependency=afterok:<parent job>`; nodes already finished on disk are left out (their children start at
once). Afterwards, `python -m curricula.sweep SWEEP.yaml --output_dir DIR` records the finished nodes and
writes the report without training anything.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from curricula.sweep import finished_on_disk, node_command
from curricula.sweep_spec import SweepSpec, SweepTree, savings_line

SBATCH_DEFAULT = "--nodes=1 --ntasks-per-node=1 --gres=gpu:8 --exclusive"


def _todo(tree: SweepTree, sweep_dir: Path) -> list:
    return [n for n in tree.nodes.values() if not finished_on_disk(sweep_dir / n.dir)]


def emit_commands(tree: SweepTree, sweep_dir: Path, prefix: list[str]) -> str:
    """One shell command per unfinished node, parents before children.

    Args:
        tree: the sweep's tree.
        sweep_dir: the sweep directory (absolute; node directories go under it).
        prefix: the launcher (see `curricula.run.launcher`).

    Returns:
        The lines, joined.
    """
    return "\n".join(shlex.join(node_command(tree, n, sweep_dir, prefix)) for n in _todo(tree, sweep_dir))


def emit_slurm(spec: SweepSpec, tree: SweepTree, sweep_dir: Path, prefix: list[str]) -> str:
    """A bash script that submits every unfinished node as a Slurm job chained on its parent's job.

    Args:
        spec: the expanded sweep (for the header).
        tree: the sweep's tree.
        sweep_dir: the sweep directory (absolute).
        prefix: the launcher (see `curricula.run.launcher`).

    Returns:
        The script text. Resources come from `SBATCH_ARGS` (default: one node, 8 GPUs, exclusive).
    """
    todo = _todo(tree, sweep_dir)
    var = {n.id: f"job_{n.id}" for n in todo}
    lines = [
        "#!/bin/bash",
        f"# Sweep {spec.name} ({spec.source}): {len(todo)} stage jobs, each after its parent (afterok).",
        f"# {savings_line(tree)}",
        "# Submit from a login node:  bash THIS_SCRIPT   (resources: SBATCH_ARGS, default below)",
        "set -euo pipefail",
        f"cd {shlex.quote(os.getcwd())}",
        f'SBATCH_ARGS=${{SBATCH_ARGS:-"{SBATCH_DEFAULT}"}}',
        f"mkdir -p {' '.join(shlex.quote(str(sweep_dir / n.dir)) for n in todo)}" if todo else "",
    ]
    for node in todo:
        dep = f" --dependency=afterok:${var[node.parent]}" if node.parent in var else ""
        cmd = shlex.join(node_command(tree, node, sweep_dir, prefix))
        log = shlex.quote(str(sweep_dir / node.dir / "slurm-%j.out"))
        lines.append(f"# {node.name} [{node.id}]: {', '.join(node.curricula)}")
        lines.append(
            f"{var[node.id]}=$(sbatch --parsable $SBATCH_ARGS{dep} --job-name={shlex.quote(f'{spec.name}-{node.name}')}"
            f" --output={log} --wrap={shlex.quote(cmd)})"
        )
        lines.append(f"{var[node.id]}=${{{var[node.id]}%%;*}}")  # --parsable may print "id;cluster"
    lines.append(f'echo "submitted {len(todo)} jobs"')
    return "\n".join(line for line in lines if line) + "\n"


def emit(kind: str, spec: SweepSpec, tree: SweepTree, sweep_dir: Path, prefix: list[str]) -> str:
    """`emit_commands` or `emit_slurm`, by `kind` (`commands` | `slurm`)."""
    if kind == "commands":
        return emit_commands(tree, sweep_dir, prefix)
    if kind == "slurm":
        return emit_slurm(spec, tree, sweep_dir, prefix)
    raise ValueError(f"--emit {kind}: valid values are commands, slurm")
