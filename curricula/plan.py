"""Plans: the curricula of a curriculum or sweep file (`stagerl.curricula.spec`) merged into one tree of stage
nodes.

Nodes: a stage's identity is the hash of its resolved config (the stage YAML's content hash and the
overrides; not its name or where the YAML lives), of its parent's identity (the starting model for a first
stage) and of `drop_solved`. Stages with the same identity are one node, trained once; a child starts from
its parent's `final/`. A curriculum is the one-branch tree: its nodes live in `stage-<k>-<name>/`, a sweep's
in `nodes/<id>-<name>/`. `eval:` does not change training, so it is not part of the identity: a node is
evaluated as the first of its curricula with an `eval:` asks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from stagerl.curricula.spec import CurriculumSpec, StageSpec, load_curriculum, load_sweep


@dataclass
class Node:
    """One distinct stage training: a node of the plan's tree."""

    id: str
    name: str
    stage: StageSpec
    parent: str | None
    model: str
    drop_solved: bool
    depth: int
    dir: str  # relative to the run directory
    curricula: list[str] = field(default_factory=list)
    eval: dict | None = None  # how its curricula evaluate: the first `eval:` among them
    last: bool = False  # the last stage of one of its curricula that evaluate

    @property
    def evaluated(self) -> bool:
        """Whether its export is evaluated: an `eval:` asks, after every stage or (`last_only`) the last."""
        return bool(self.eval) and (self.last or not self.eval.get("last_only"))


def node_id(stage: dict, parent: str | None, model: str, drop_solved: bool) -> str:
    """The identity of a stage: 12 hex digits.

    Args:
        stage: the stage as `StageSpec.resolved()` gives it (its name and YAML path are left out).
        parent: the parent node's id, None for a first stage.
        model: the curriculum's starting model (counts only for a first stage).
        drop_solved: whether the stage drops problems its ancestors solved (counts only below the root).

    Returns:
        The hash of the stage's config content, overrides and parent.

    >>> a = node_id({"name": "x", "config": "a.yaml", "config_sha256": "f0", "overrides": {}}, None, "m", False)
    >>> a == node_id({"name": "y", "config": "/abs/a.yaml", "config_sha256": "f0", "overrides": {}}, None, "m", True)
    True
    """
    payload = {
        "config_sha256": stage["config_sha256"],
        "overrides": stage["overrides"],
        "parent": parent if parent is not None else {"model": model},
        "drop_solved": bool(drop_solved and parent is not None),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class Plan:
    """What one run directory trains: its curricula, and their distinct stages as a tree (parents first).

    `kind` is `curriculum` (one curriculum file: the one-branch tree, recorded in `curriculum.json`) or
    `sweep` (recorded in `sweep.json`); `report` is a sweep's checked `report:` settings.
    """

    name: str
    source: str
    kind: str
    curricula: list[CurriculumSpec]
    nodes: dict[str, Node]
    paths: dict[str, list[str]]
    report: dict = field(default_factory=dict)

    @property
    def record_file(self) -> str:
        return f"{self.kind}.json"

    @property
    def trainings_alone(self) -> int:
        """Stage trainings if every curriculum ran on its own."""
        return sum(len(p) for p in self.paths.values())

    def children(self, node_id: str | None) -> list[Node]:
        """Children of a node (None: the roots), in order of first appearance."""
        return [n for n in self.nodes.values() if n.parent == node_id]

    def ancestors(self, node_id: str) -> list[Node]:
        """The path from the root down to `node_id`'s parent."""
        out, parent = [], self.nodes[node_id].parent
        while parent is not None:
            out.append(self.nodes[parent])
            parent = self.nodes[parent].parent
        return out[::-1]

    def savings_line(self) -> str:
        """`N stage trainings instead of M: P% saved`."""
        alone, distinct = self.trainings_alone, len(self.nodes)
        saved = 100 * (alone - distinct) / alone if alone else 0.0
        return f"{distinct} stage trainings instead of {alone}: {saved:.0f}% saved"

    def format_tree(self, status: dict[str, str] | None = None) -> str:
        """The tree as text, one line per node: name, id, [status], and the curricula through it."""
        lines = []

        def walk(node: Node, indent: str, last: bool) -> None:
            state = f" {status.get(node.id, 'pending')}" if status is not None else ""
            lines.append(
                f"{indent}{'└── ' if last else '├── '}{node.name} [{node.id}]{state}  ({', '.join(node.curricula)})"
            )
            kids = self.children(node.id)
            for i, kid in enumerate(kids):
                walk(kid, indent + ("    " if last else "│   "), i == len(kids) - 1)

        roots = self.children(None)
        for model in dict.fromkeys(n.model for n in roots):
            lines.append(model)
            mine = [n for n in roots if n.model == model]
            for i, root in enumerate(mine):
                walk(root, "", i == len(mine) - 1)
        return "\n".join(lines)


def build_plan(curricula: list[CurriculumSpec], *, name: str, source: str, kind: str) -> Plan:
    """Merge curricula into their tree: equal stages with equal parents become one node.

    Args:
        curricula: the curricula, in order.
        name, source: the plan's name and the file it came from.
        kind: `curriculum` or `sweep` (decides the node directories, see the module docstring).

    Returns:
        The plan, nodes in order of first appearance (so parents come before their children).
    """
    nodes: dict[str, Node] = {}
    paths: dict[str, list[str]] = {}
    for spec in curricula:
        parent, path = None, []
        for depth, stage in enumerate(spec.stages):
            nid = node_id(stage.resolved(), parent, spec.model, spec.drop_solved)
            if nid not in nodes:
                node_dir = (
                    f"stage-{depth + 1}-{stage.name}" if kind == "curriculum" else f"nodes/{nid}-{stage.name}"
                )
                nodes[nid] = Node(
                    nid, stage.name, stage, parent, spec.model, spec.drop_solved, depth, node_dir
                )
            nodes[nid].curricula.append(spec.name)
            nodes[nid].eval = nodes[nid].eval or spec.eval
            nodes[nid].last = nodes[nid].last or (bool(spec.eval) and depth == len(spec.stages) - 1)
            path.append(nid)
            parent = nid
        paths[spec.name] = path
    return Plan(name=name, source=source, kind=kind, curricula=curricula, nodes=nodes, paths=paths)


def load_plan(path: str | Path, *, sweep: bool = False) -> Plan:
    """A curriculum file (or, with `sweep`, a sweep file) as a plan.

    Raises:
        ValueError / FileNotFoundError: naming the file and the key at fault.
    """
    if sweep:
        loaded = load_sweep(path)
        plan = build_plan(loaded.curricula, name=loaded.name, source=str(path), kind="sweep")
        plan.report = loaded.report
        return plan
    spec = load_curriculum(path)
    return build_plan([spec], name=spec.name, source=spec.source, kind="curriculum")
