"""Sweep specs: a base curriculum plus variations, expanded into curricula and merged into a prefix tree.

```yaml
name: smoke
base: configs/curricula/smoke.yaml           # the curriculum every variation starts from
variations:                                  # one curriculum each (default: the base alone)
  - name: 1-2-3                              # the base as it is
  - name: 2-3
    stages: [level2, level3]                 # drop / reorder the base's stages by name
  - name: 1-mix                              # a mapping adds a stage (base defaults apply) or edits a base one
    stages: [level1, {name: mix23, data: ["arithmetic:2@0.5", "arithmetic:3@0.5"]}]
  - name: 1-2-3-lr3x
    set: {level3.learning_rate: 3.0e-5}      # STAGE.FIELD sets one stage; a bare FIELD sets every stage
grid:                                        # crossed with every variation: one curriculum per combination
  level3.max_steps: [2, 4]                   # any `set` key, or `stages`, `model`, `drop_solved`, `eval`
  advance: [{}, {reward_threshold: 0.5, window: 2}]
```

A variation may also replace `model`, `drop_solved` or `eval`. Every expanded curriculum is checked by
`load_curriculum` (so unknown fields fail before anything runs, naming the sweep file and the curriculum).

Nodes: a stage's identity is the hash of its resolved config (the stage YAML's content hash and the
overrides; not its name or the YAML's path), of its parent's identity (the starting model for a first stage)
and of `drop_solved`. Stages with the same identity in several curricula are one node of the prefix tree,
trained once; a child starts from its parent's `final/`. The `eval:` settings do not change training, so they
are not part of the identity: a node is evaluated as the first of its curricula with an `eval:` asks.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curricula.spec import CurriculumSpec, StageSpec, load_curriculum

SWEEP_KEYS = {"name", "base", "variations", "grid"}
VARIATION_KEYS = {"name", "stages", "set", "model", "drop_solved", "eval"}
CURRICULUM_LEVEL = ("stages", "model", "drop_solved", "eval")  # grid axes that are not stage fields
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Node:
    """One distinct stage training of a sweep: a node of the prefix tree."""

    id: str
    name: str
    stage: StageSpec
    parent: str | None
    model: str
    drop_solved: bool
    depth: int
    curricula: list[str] = field(default_factory=list)
    eval: dict | None = None  # what to evaluate after training: the first `eval:` among its curricula

    @property
    def dir(self) -> str:
        """The node's directory, relative to the sweep directory."""
        return f"nodes/{self.id}-{self.name}"


@dataclass
class SweepTree:
    """The distinct stages of a sweep (parents before children) and each curriculum's path through them."""

    nodes: dict[str, Node]
    paths: dict[str, list[str]]

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


@dataclass
class SweepSpec:
    """A sweep file, expanded: its curricula (in file order) and their raw curriculum mappings."""

    name: str
    source: str
    curricula: list[CurriculumSpec]
    raw: dict[str, dict]


def _find(path: str) -> Path | None:
    for candidate in (Path(path), ROOT / path):
        if candidate.is_file():
            return candidate
    return None


def _short(value) -> str:
    if isinstance(value, list):
        return "+".join(v if isinstance(v, str) else str(v.get("name")) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_short(v)}" for k, v in value.items()) or "none"
    return str(value)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+,-]", "_", name)


def _apply(base: dict, variation: dict, where: str) -> dict:
    """The raw curriculum mapping of one variation of `base`."""
    raw = copy.deepcopy(base)
    raw["name"] = variation["name"]
    for key in ("model", "drop_solved", "eval"):
        if key in variation:
            raw[key] = copy.deepcopy(variation[key])
    by_name = {s.get("name"): s for s in raw["stages"] if isinstance(s, dict)}
    if "stages" in variation:
        refs = variation["stages"]
        if not isinstance(refs, list) or not refs:
            raise ValueError(f"{where}: `stages` must be a non-empty list of stage names or mappings")
        stages = []
        for ref in refs:
            if isinstance(ref, str) and ref in by_name:
                stages.append(copy.deepcopy(by_name[ref]))
            elif isinstance(ref, dict) and "name" in ref:
                stages.append({**copy.deepcopy(by_name.get(ref["name"], {})), **copy.deepcopy(ref)})
            else:
                raise ValueError(
                    f"{where}: stage {ref!r} is neither a base stage ({sorted(by_name)}) nor a mapping with a `name`"
                )
        raw["stages"] = stages
    for key, value in (variation.get("set") or {}).items():
        if value is None:
            raise ValueError(f"{where}: set {key}: null is not a value (use {{}} for `advance`)")
        stage_name, _, name = key.rpartition(".")
        targets = [s for s in raw["stages"] if not stage_name or s.get("name") == stage_name]
        if not targets:
            names = [s.get("name") for s in raw["stages"]]
            raise ValueError(
                f"{where}: set {key}: the curriculum has no stage {stage_name!r} (stages: {names})"
            )
        for stage in targets:
            stage[name] = copy.deepcopy(value)
    return raw


def _variations(raw: dict, where: str) -> list[dict]:
    variations = raw.get("variations") or [{"name": raw["name"]}]
    if not isinstance(variations, list):
        raise ValueError(f"{where}: `variations` must be a list of mappings")
    out = []
    for i, var in enumerate(variations, 1):
        if not isinstance(var, dict):
            raise ValueError(f"{where}: variation {i} must be a mapping")
        bad = set(var) - VARIATION_KEYS
        if bad:
            raise ValueError(
                f"{where}: variation {i}: unknown keys {sorted(bad)}; valid: {sorted(VARIATION_KEYS)}"
            )
        out.append({"name": str(var.get("name", f"v{i}")), **{k: v for k, v in var.items() if k != "name"}})
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ValueError(f"{where}: `grid` must map each axis to a non-empty list of values")
    if not grid:
        return out
    crossed = []
    for var in out:
        for point in itertools.product(*grid.values()):
            new = copy.deepcopy(var)
            new["set"] = dict(new.get("set") or {})
            suffix = []
            for axis, value in zip(grid, point, strict=True):
                if axis in CURRICULUM_LEVEL:
                    new[axis] = value
                else:
                    new["set"][axis] = value
                suffix.append(f"{axis}={_short(value)}")
            new["name"] = "-".join([var["name"], *suffix])
            crossed.append(new)
    return crossed


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep YAML and expand it into checked curricula.

    Args:
        path: the sweep file.

    Returns:
        The expanded sweep, one `CurriculumSpec` per variation x grid point, in file order.

    Raises:
        ValueError / FileNotFoundError: naming the sweep file, the curriculum and the key at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist")
    raw = yaml.safe_load(path.read_text())
    where = str(path)
    if not isinstance(raw, dict) or "base" not in raw:
        raise ValueError(f"{where}: must be a YAML mapping with a `base` curriculum")
    bad = set(raw) - SWEEP_KEYS
    if bad:
        raise ValueError(f"{where}: unknown keys {sorted(bad)}; valid: {sorted(SWEEP_KEYS)}")
    base_path = _find(str(raw["base"]))
    if base_path is None:
        raise FileNotFoundError(f"{where}: base curriculum {raw['base']} does not exist")
    base = yaml.safe_load(base_path.read_text())
    if not isinstance(base, dict) or not isinstance(base.get("stages"), list):
        raise ValueError(f"{where}: base {base_path} is not a curriculum (no `stages` list)")
    raw.setdefault("name", path.stem)
    curricula, raws = [], {}
    with tempfile.TemporaryDirectory(prefix="stagerl-sweep-") as tmp:
        for var in _variations(raw, where):
            name = var["name"]
            if name in raws:
                raise ValueError(f"{where}: curriculum name {name!r} is used twice")
            cur_where = f"{where}: curriculum {name!r}"
            raws[name] = _apply(base, var, cur_where)
            cur_path = Path(tmp) / f"{_safe_name(name)}.yaml"
            cur_path.write_text(yaml.safe_dump(raws[name], sort_keys=False))
            try:
                spec = load_curriculum(cur_path)
            except (ValueError, FileNotFoundError) as e:
                raise type(e)(f"{cur_where}: {str(e).replace(str(cur_path) + ': ', '')}") from None
            spec.source = f"{path}#{name}"
            curricula.append(spec)
    return SweepSpec(name=str(raw["name"]), source=str(path), curricula=curricula, raw=raws)


def node_id(stage: dict, parent: str | None, model: str, drop_solved: bool) -> str:
    """The identity of a stage in a sweep: 12 hex digits.

    Args:
        stage: the stage as in `CurriculumSpec.resolved()["stages"][i]` (name and YAML path are left out).
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


def build_tree(curricula: list[CurriculumSpec]) -> SweepTree:
    """Merge curricula into their prefix tree: equal stages with equal parents become one node.

    Args:
        curricula: the expanded curricula.

    Returns:
        The tree, nodes in order of first appearance (so parents come before their children).
    """
    nodes: dict[str, Node] = {}
    paths: dict[str, list[str]] = {}
    for spec in curricula:
        parent, path = None, []
        for depth, (stage, resolved) in enumerate(zip(spec.stages, spec.resolved()["stages"], strict=True)):
            nid = node_id(resolved, parent, spec.model, spec.drop_solved)
            if nid not in nodes:
                nodes[nid] = Node(nid, stage.name, stage, parent, spec.model, spec.drop_solved, depth)
            nodes[nid].curricula.append(spec.name)
            nodes[nid].eval = nodes[nid].eval or spec.eval
            path.append(nid)
            parent = nid
        paths[spec.name] = path
    return SweepTree(nodes=nodes, paths=paths)


def savings_line(tree: SweepTree) -> str:
    """`N stage trainings instead of M: P% saved`."""
    alone, distinct = tree.trainings_alone, len(tree.nodes)
    saved = 100 * (alone - distinct) / alone if alone else 0.0
    return f"{distinct} stage trainings instead of {alone}: {saved:.0f}% saved"


def format_tree(tree: SweepTree, status: dict[str, str] | None = None) -> str:
    """The prefix tree as text, one line per node: name, id, [status], and the curricula through it.

    Args:
        tree: the sweep's tree.
        status: node id -> status, shown when given.

    Returns:
        Lines grouped under each starting model.
    """
    lines = []

    def walk(node: Node, indent: str, last: bool) -> None:
        state = f" {status.get(node.id, 'pending')}" if status is not None else ""
        branch = "└── " if last else "├── "
        lines.append(f"{indent}{branch}{node.name} [{node.id}]{state}  ({', '.join(node.curricula)})")
        kids = tree.children(node.id)
        for i, kid in enumerate(kids):
            walk(kid, indent + ("    " if last else "│   "), i == len(kids) - 1)

    roots = tree.children(None)
    for model in dict.fromkeys(n.model for n in roots):
        lines.append(model)
        mine = [n for n in roots if n.model == model]
        for i, root in enumerate(mine):
            walk(root, "", i == len(mine) - 1)
    return "\n".join(lines)
