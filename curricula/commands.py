"""How a plan's nodes become commands: the launcher, one `train/grpo.py` command per node, and the emitters.

    ./launch.sh CURRICULUM.yaml --emit commands          # one command a line, parents first
    ./launch.sh --sweep SWEEP.yaml --emit slurm > s.sh   # a Slurm submit script, each job after its parent's

Commands come parents first, so running the lines in order (or in parallel once a node's parent is done)
trains the whole tree. The Slurm script submits one job per node with `sbatch --parsable`, each child with
`--dependency=afterok:<parent job>`; nodes already finished on disk are left out (their children start at
once). Afterwards, the same `./launch.sh` command adopts the finished nodes and writes the report without
training anything.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from stagerl.curricula.plan import Node, Plan
from stagerl.curricula.spec import ROOT
from stagerl.data.stage_dir import FINAL_DIR, PROBLEM_STATS, finished

SBATCH_DEFAULT = "--nodes=1 --ntasks-per-node=1 --gres=gpu:8 --exclusive"


def launcher(accelerate_config: str | None, num_processes: int) -> list[str]:
    """The command prefix that starts `train/grpo.py` and the evaluations: plain Python for one process on one
    machine, else `accelerate launch`.

    Multi-node runs pass the usual variables through: NUM_MACHINES, MACHINE_RANK, MAIN_PROCESS_IP,
    MAIN_PROCESS_PORT (see slurm/train.slurm). `num_processes` is per machine; accelerate wants the total.
    """
    machines = int(os.environ.get("NUM_MACHINES") or 1)
    if accelerate_config is None and num_processes <= 1 and machines <= 1:
        return [sys.executable]
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    cmd += ["--config_file", accelerate_config or str(ROOT / "configs/accelerate/ddp.yaml")]
    cmd += ["--num_processes", str(num_processes * machines)]
    for env, flag in (
        ("NUM_MACHINES", "--num_machines"),
        ("MACHINE_RANK", "--machine_rank"),
        ("MAIN_PROCESS_IP", "--main_process_ip"),
        ("MAIN_PROCESS_PORT", "--main_process_port"),
    ):
        if os.environ.get(env):
            cmd += [flag, os.environ[env]]
    return cmd


def node_command(plan: Plan, node: Node, run_dir: Path, prefix: list[str]) -> list[str]:
    """The command that trains one node: its stage YAML and overrides, the model it starts from, resume.

    Args:
        plan: the plan the node belongs to.
        node: the node to train.
        run_dir: the run directory (absolute).
        prefix: the launcher (see `launcher`).

    Returns:
        The argument list; paths are absolute, so the command runs from anywhere.
    """
    ancestors = plan.ancestors(node.id)
    model = str(run_dir / ancestors[-1].dir / FINAL_DIR) if ancestors else node.model
    cmd = [
        *prefix,
        str(ROOT / "train/grpo.py"),
        "--config",
        str(node.stage.config_file),
        *node.stage.cli_args(),
    ]
    cmd += ["--model_name_or_path", model, "--output_dir", str(run_dir / node.dir)]
    # The runner always resumes; a stage YAML's replace_output_dir is for launching that stage alone (the
    # runner's --from-stage is what moves stages aside).
    cmd += ["--resume_from_checkpoint", "latest", "--replace_output_dir", "false"]
    if ancestors:  # what earlier stages learned of each problem (prompt selection, drop_solved)
        cmd += ["--problem_stats", *(str(run_dir / a.dir / PROBLEM_STATS) for a in ancestors)]
    # Tracking and publishing: the run's name and group, the stage whose curriculum-wide step it continues
    # (read when it starts, so emitted commands need not know it), and whether an evaluation follows.
    cmd += ["--run_name", run_name(plan, node), "--run_group", plan.name]
    if ancestors:
        cmd += ["--previous_stage", str(run_dir / ancestors[-1].dir)]
    if node.evaluated:
        cmd += ["--eval_follows", "true"]
    if node.drop_solved and ancestors:
        cmd += ["--drop_solved", "true"]
    return cmd


def run_name(plan: Plan, node: Node) -> str:
    """The node's tracker run name: `<curriculum>/<stage>`; a sweep node shared by several curricula is named
    by its path in the tree, `<sweep>/<stage>/.../<stage>`.

    >>> from stagerl.curricula.plan import build_plan
    >>> from stagerl.curricula.spec import CurriculumSpec, StageSpec
    >>> stages = [StageSpec("level1", "s.yaml", ROOT / "configs/stages/smoke.yaml")]
    >>> plan = build_plan([CurriculumSpec("demo", "m", stages)], name="demo", source="", kind="curriculum")
    >>> run_name(plan, next(iter(plan.nodes.values())))
    'demo/level1'
    """
    if len(node.curricula) == 1:
        return f"{node.curricula[0]}/{node.name}"
    return "/".join([plan.name, *(a.name for a in plan.ancestors(node.id)), node.name])


def evaluation_command(eval_spec: dict, model: str, out_dir: Path, prefix: list[str]) -> list[str]:
    """The command that evaluates `model` as an `eval:` asks, with the stages' launcher: every process of a
    stage (on every machine) generates its share; the first writes `out_dir/summary.json`.

    Args:
        eval_spec: the `eval:` mapping (benchmarks, samples, limit, max_new_tokens, temperature, top_p,
            prompt_template, system_prompt).
        model: the model to evaluate (a directory or a built-in name).
        out_dir: where the results go.
        prefix: the launcher (see `launcher`): `python -m` or `accelerate launch -m` the evaluation module.

    Returns:
        The argument list.
    """
    cmd = [*prefix, "-m", "stagerl.train.evaluate", "--model", model, "--output", str(out_dir)]
    cmd += ["--benchmarks", ",".join(eval_spec["benchmarks"])]
    for key in "samples limit max_new_tokens temperature top_p prompt_template system_prompt".split():
        if eval_spec.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(eval_spec[key])]
    return cmd


def _todo(plan: Plan, run_dir: Path) -> list[Node]:
    return [n for n in plan.nodes.values() if not finished(run_dir / n.dir)]


def emit_commands(plan: Plan, run_dir: Path, prefix: list[str]) -> str:
    """One shell command per unfinished node, parents before children."""
    return "\n".join(shlex.join(node_command(plan, n, run_dir, prefix)) for n in _todo(plan, run_dir))


def emit_slurm(plan: Plan, run_dir: Path, prefix: list[str]) -> str:
    """A bash script that submits every unfinished node as a Slurm job chained on its parent's job.

    Resources come from `SBATCH_ARGS` (default: one node, 8 GPUs, exclusive).
    """
    todo = _todo(plan, run_dir)
    var = {n.id: f"job_{n.id}" for n in todo}
    lines = [
        "#!/bin/bash",
        f"# {plan.kind} {plan.name} ({plan.source}): {len(todo)} stage jobs, each after its parent (afterok).",
        f"# {plan.savings_line()}",
        "# Submit from a login node:  bash THIS_SCRIPT   (resources: SBATCH_ARGS, default below)",
        "set -euo pipefail",
        f"cd {shlex.quote(os.getcwd())}",
        f'SBATCH_ARGS=${{SBATCH_ARGS:-"{SBATCH_DEFAULT}"}}',
        f"mkdir -p {' '.join(shlex.quote(str(run_dir / n.dir)) for n in todo)}" if todo else "",
    ]
    for node in todo:
        dep = f" --dependency=afterok:${var[node.parent]}" if node.parent in var else ""
        cmd = shlex.join(node_command(plan, node, run_dir, prefix))
        log = shlex.quote(str(run_dir / node.dir / "slurm-%j.out"))
        lines.append(f"# {node.name} [{node.id}]: {', '.join(node.curricula)}")
        lines.append(
            f"{var[node.id]}=$(sbatch --parsable $SBATCH_ARGS{dep} --job-name={shlex.quote(f'{plan.name}-{node.name}')}"
            f" --output={log} --wrap={shlex.quote(cmd)})"
        )
        lines.append(f"{var[node.id]}=${{{var[node.id]}%%;*}}")  # --parsable may print "id;cluster"
    lines.append(f'echo "submitted {len(todo)} jobs"')
    return "\n".join(line for line in lines if line) + "\n"
