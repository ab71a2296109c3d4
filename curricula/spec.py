"""Curriculum and sweep files: their schema, checked before anything runs, and their expansion into curricula.

A curriculum is an ordered list of stages, each a stage YAML plus overrides:

```yaml
name: demo
model: stagerl:smollm2-135m-instruct     # the first stage's policy; stage k+1 starts from stage k's export
defaults: {config: configs/stages/smoke.yaml, max_completion_length: 64}   # applied to every stage
drop_solved: false                      # drop problems earlier stages always/never solved (zero advantage)
eval: {benchmarks: [math500], limit: 20, samples: 1, max_new_tokens: 256, initial: true}  # after every stage (`last_only: true`: after the last)
stages:
  - name: level1
    data: [arithmetic:1]                # one level, or a weighted mix: [arithmetic:1@0.7, math-levels:1@0.3]
    max_steps: 30                       # the budget (or num_train_epochs): a cap when `advance` is set
    advance: {reward_threshold: 0.6, window: 5}   # or {plateau_delta: 0.01, window: 20}
```

Every other key of a stage is a field of the stage YAML (`StageArguments`, `GRPOConfig`, `ModelConfig`) and
overrides it. A sweep is a base curriculum plus variations, each one curriculum:

```yaml
name: smoke
base: configs/curricula/smoke.yaml
variations:
  - name: 1-2-3                              # the base as it is
  - name: 2-3
    stages: [level2, level3]                 # drop / reorder the base's stages by name
  - name: 1-mix                              # a mapping adds a stage (base defaults apply) or edits a base one
    stages: [level1, {name: mix23, data: ["arithmetic:2@0.5", "arithmetic:3@0.5"]}]
  - name: 1-2-3-lr3x
    set: {level3.learning_rate: 3.0e-5}      # STAGE.FIELD sets one stage; a bare FIELD sets every stage
grid:                                        # crossed with every variation: one curriculum per combination
  seed: [0, 1]                               # any `set` key, or `stages`, `model`, `drop_solved`, `eval`
report: {baseline: 1-2-3}                    # the report gives every arm minus this one (`report.py`)
```

A variation may also replace `model`, `drop_solved` or `eval`. A grid axis named `KEY1+KEY2+...` moves several
keys together, one list of values per point: `seed+data_seed: [[0, 0], [1, 1]]` gives two curricula, not four.

Seeds and arms: the axis that moves `seed` (alone or with other keys) is the seed axis. An arm is a
variation at one point of the other axes (its name: the variation's, then `KEY=VALUE` for each other axis);
its curricula, one per seed, are pooled by the report, which pairs arms by seed (the seed axis's values).
`report: {baseline: ARM}` names the arm the report subtracts from every other. Unknown keys, a missing stage
YAML, duplicate names or a baseline that is no arm fail before anything runs, naming the file, the curriculum
and the key.

The curricula are merged into one tree of stage nodes by `stagerl.curricula.plan`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "stagerl:smollm2-135m-instruct"
CURRICULUM_KEYS = {"name", "model", "defaults", "drop_solved", "eval", "stages"}
ADVANCE_KEYS = {"reward_threshold", "plateau_delta", "window", "min_steps"}
EVAL_KEYS = {
    "benchmarks",
    "samples",
    "limit",
    "max_new_tokens",
    "temperature",
    "top_p",
    "prompt_template",
    "system_prompt",
    "initial",
    "last_only",
}
# Set on every stage's command line by the runner, never by a curriculum.
RUNNER_FIELDS = (
    "output_dir",
    "model_name_or_path",
    "resume_from_checkpoint",
    "replace_output_dir",
    "run_name",
    "run_group",
    "previous_stage",
    "eval_follows",
    "problem_stats",
    "drop_solved",  # the curriculum's `drop_solved` decides it
)
SWEEP_KEYS = {"name", "base", "variations", "grid", "report"}
REPORT_KEYS = {"baseline"}
SEED_KEY = "seed"  # the grid axis that moves it is the seed axis: the report pools and pairs over it
VARIATION_KEYS = {"name", "stages", "set", "model", "drop_solved", "eval"}
CURRICULUM_AXES = ("stages", "model", "drop_solved", "eval")  # grid axes that are not stage fields


# ---------------------------------------------------------------- curricula


@dataclass
class StageSpec:
    """One stage of a curriculum, defaults merged in.

    `config` is the stage YAML as the curriculum names it (what records keep, so a run directory does not
    depend on where it is run from); `config_file` is where it was found.
    """

    name: str
    config: str
    config_file: Path
    overrides: dict = field(default_factory=dict)

    def cli_args(self) -> list[str]:
        """The overrides as `train/grpo.py` command-line arguments."""
        args = []
        for key, value in self.overrides.items():
            args.append(f"--{key}")
            args += [_cli_value(v) for v in value] if isinstance(value, list) else [_cli_value(value)]
        return args

    def asks(self) -> dict:
        """How this stage asks its problems: its `prompt_template` and `system_prompt` (its overrides, else its
        YAML's), those it sets; evaluation asks the same way unless `eval:` says otherwise."""
        config = yaml.safe_load(self.config_file.read_text()) or {}
        values = {
            key: self.overrides.get(key, config.get(key)) for key in ("prompt_template", "system_prompt")
        }
        return {key: value for key, value in values.items() if value is not None}

    def resolved(self) -> dict:
        """What decides this stage's training: its YAML (by content) and the overrides."""
        sha = hashlib.sha256(self.config_file.read_bytes()).hexdigest()[:16]
        return {"name": self.name, "config": self.config, "config_sha256": sha, "overrides": self.overrides}


def _cli_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


@dataclass
class CurriculumSpec:
    """An ordered list of stages plus run-wide settings.

    Within a sweep: `point` holds its grid values (key -> value), `seed_point` those of the seed axis (empty
    without one) and `arm` the variation at the other axes' values (see the module docstring).
    """

    name: str
    model: str
    stages: list[StageSpec]
    drop_solved: bool = False
    eval: dict | None = None
    source: str = ""
    point: dict = field(default_factory=dict)
    seed_point: dict = field(default_factory=dict)
    arm: str = ""

    def resolved(self) -> dict:
        """Everything that decides what the run trains and evaluates (compared on a re-run)."""
        return {
            "name": self.name,
            "model": self.model,
            "stages": [s.resolved() for s in self.stages],
            "drop_solved": self.drop_solved,
            "eval": self.eval,
        }


def find_config(path: str) -> Path | None:
    """A YAML path as written (relative to the working directory), else inside the project (so the shipped
    configs are found from anywhere)."""
    for candidate in (Path(path), ROOT / path):
        if candidate.is_file():
            return candidate.resolve()
    return None


def stage_fields() -> set[str]:
    """Every field a stage YAML may set, asked of the trainer (`python -m stagerl.train.config --fields`).

    The answer is cached per trainer version (TRL, transformers and `train/config.py`): starting Python and
    TRL to ask costs ~3 s, which every `launch.sh` call would pay otherwise.
    """
    from importlib.metadata import version

    from stagerl.data.files import atomic_write_json, cache_root

    key = hashlib.sha256((ROOT / "train" / "config.py").read_bytes()).hexdigest()[:12]
    cache = cache_root() / f"fields-trl-{version('trl')}-transformers-{version('transformers')}-{key}.json"
    try:
        return set(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    out = subprocess.run(
        [sys.executable, "-m", "stagerl.train.config", "--fields"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = json.loads(out)
    atomic_write_json(cache, fields)
    return set(fields)


def _only(mapping: dict, valid: set, where: str, what: str = "keys") -> None:
    """Fail on keys of `mapping` outside `valid`; `where` names the file and the part."""
    bad = set(mapping) - valid
    if bad:
        raise ValueError(f"{where}: unknown {what} {sorted(bad)}; valid: {sorted(valid)}")


def curriculum_from_mapping(raw, where: str) -> CurriculumSpec:
    """Check a curriculum mapping (as read from YAML) and resolve its stages.

    Args:
        raw: the mapping.
        where: how errors name it (the file, or the sweep file and curriculum).

    Returns:
        The spec, every stage's overrides checked against the stage fields.

    Raises:
        ValueError / FileNotFoundError: naming `where`, the stage and the key at fault.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a YAML mapping with a `stages` list")
    _only(raw, CURRICULUM_KEYS, where)
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ValueError(f"{where}: `stages` must be a non-empty list")
    defaults = dict(raw.get("defaults") or {})
    valid = stage_fields()
    stages, names = [], set()
    for i, entry in enumerate(stages_raw, 1):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError(f"{where}: stage {i} must be a mapping with a `name`")
        entry = {**defaults, **entry}
        name = str(entry.pop("name"))
        if name in names:
            raise ValueError(f"{where}: stage name {name!r} is used twice")
        names.add(name)
        config = entry.pop("config", None)
        if config is None:
            raise ValueError(
                f"{where}: stage {name!r} has no `config` (a stage YAML), and `defaults` gives none"
            )
        config_file = find_config(str(config))
        if config_file is None:
            raise FileNotFoundError(f"{where}: stage {name!r}: config {config} does not exist")
        advance = entry.pop("advance", None) or {}
        _only(advance, ADVANCE_KEYS, f"{where}: stage {name!r}", "advance keys")
        entry.update({f"advance_{k}": v for k, v in advance.items()})
        bad = set(entry) - valid
        if bad:
            raise ValueError(f"{where}: stage {name!r}: unknown stage fields {sorted(bad)}")
        empty = sorted(k for k, v in entry.items() if v == [])
        if empty:  # a list field takes one or more values on the stage's command line
            raise ValueError(
                f"{where}: stage {name!r}: {empty} = [] cannot override the stage YAML's list; set it in a "
                "stage YAML of its own"
            )
        for key in RUNNER_FIELDS:
            if key in entry:
                raise ValueError(
                    f"{where}: stage {name!r}: `{key}` is set by the curriculum runner, not per stage"
                )
        stages.append(StageSpec(name, str(config), config_file, entry))
    if raw.get("eval") is not None:
        if not isinstance(raw["eval"], dict) or "benchmarks" not in raw["eval"]:
            raise ValueError(f"{where}: `eval` must be a mapping with `benchmarks`")
        _only(raw["eval"], EVAL_KEYS, where, "eval keys")
    return CurriculumSpec(
        name=str(raw.get("name") or "curriculum"),
        model=str(raw.get("model") or DEFAULT_MODEL),
        stages=stages,
        drop_solved=bool(raw.get("drop_solved", False)),
        eval=raw.get("eval"),
    )


def _read_yaml(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None


def load_curriculum(path: str | Path) -> CurriculumSpec:
    """Read and check a curriculum YAML (see the module docstring).

    Raises:
        ValueError / FileNotFoundError: naming the file, stage and key at fault.
    """
    path = Path(path)
    raw = _read_yaml(path, "curriculum")
    spec = curriculum_from_mapping(raw, str(path))
    if not (isinstance(raw, dict) and raw.get("name")):
        spec.name = path.stem
    spec.source = str(path)
    return spec


# ---------------------------------------------------------------- sweeps


def _short(value) -> str:
    if isinstance(value, list):
        return "+".join(v if isinstance(v, str) else str(v.get("name")) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_short(v)}" for k, v in value.items()) or "none"
    return str(value)


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


def _grid_axes(grid, where: str) -> list[tuple[list[str], list[tuple]]]:
    """The grid's axes: each the keys it moves (one, or several joined by `+`) and its points (one value per
    key, in that order)."""
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ValueError(f"{where}: `grid` must map each axis to a non-empty list of values")
    axes, moved = [], set()
    for axis, values in grid.items():
        keys = str(axis).split("+")
        if len(keys) == 1:
            axes.append((keys, [(v,) for v in values]))
        else:
            for value in values:
                if not isinstance(value, list) or len(value) != len(keys):
                    raise ValueError(
                        f"{where}: grid axis {axis!r}: {value!r} must be a list of {len(keys)} values ({', '.join(keys)})"
                    )
            axes.append((keys, [tuple(v) for v in values]))
        twice = moved & set(keys)
        if twice:
            raise ValueError(f"{where}: grid axis {axis!r}: {sorted(twice)} is already moved by another axis")
        moved |= set(keys)
    return axes


def _variations(raw: dict, where: str) -> list[dict]:
    """The variations crossed with the grid, each with `variation` (its name), `point` (its grid values),
    `seed_point` (the seed axis's values) and `arm` (see the module docstring)."""
    variations = raw.get("variations") or [{"name": raw["name"]}]
    if not isinstance(variations, list):
        raise ValueError(f"{where}: `variations` must be a list of mappings")
    out = []
    for i, var in enumerate(variations, 1):
        if not isinstance(var, dict):
            raise ValueError(f"{where}: variation {i} must be a mapping")
        _only(var, VARIATION_KEYS, f"{where}: variation {i}")
        name = str(var.get("name", f"v{i}"))
        out.append({**var, "name": name, "point": {}, "seed_point": {}, "arm": name})
    axes = _grid_axes(raw.get("grid") or {}, where)
    crossed = []
    for var in out if axes else []:
        for values in itertools.product(*(points for _, points in axes)):
            new = copy.deepcopy(var)
            new["set"] = dict(new.get("set") or {})
            moves = [
                dict(zip(keys, value, strict=True)) for (keys, _), value in zip(axes, values, strict=True)
            ]
            new["point"] = {k: v for move in moves for k, v in move.items()}
            new["seed_point"] = next((move for move in moves if SEED_KEY in move), {})
            for key, value in new["point"].items():
                if key in CURRICULUM_AXES:
                    new[key] = value
                else:
                    new["set"][key] = value
            labels = [(k, f"{k}={_short(v)}") for k, v in new["point"].items()]
            new["name"] = "-".join([var["name"], *(label for _, label in labels)])
            new["arm"] = "-".join(
                [var["name"], *(label for k, label in labels if k not in new["seed_point"])]
            )
            crossed.append(new)
    return crossed or out


def _check_report(report, arms: list[str], where: str) -> dict:
    """The sweep's `report:` settings, checked: `baseline` must name an arm."""
    if report is None:
        return {}
    if not isinstance(report, dict):
        raise ValueError(f"{where}: `report` must be a mapping, e.g. {{baseline: ARM}}")
    _only(report, REPORT_KEYS, f"{where}: report")
    baseline = report.get("baseline")
    if baseline is not None and str(baseline) not in arms:
        raise ValueError(
            f"{where}: report: baseline {baseline!r} is not an arm of the sweep; arms: {sorted(set(arms))}"
        )
    return {**report, "baseline": None if baseline is None else str(baseline)}


@dataclass
class SweepSpec:
    """A sweep file, expanded: its name, its curricula in file order, its `report:` settings."""

    name: str
    curricula: list[CurriculumSpec]
    report: dict


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep YAML (see the module docstring) and expand it into checked curricula, in file order.

    Raises:
        ValueError / FileNotFoundError: naming the sweep file, the curriculum and the key at fault.
    """
    path = Path(path)
    raw = _read_yaml(path, "sweep")
    where = str(path)
    if not isinstance(raw, dict) or "base" not in raw:
        raise ValueError(f"{where}: must be a YAML mapping with a `base` curriculum")
    _only(raw, SWEEP_KEYS, where)
    base_path = find_config(str(raw["base"]))
    if base_path is None:
        raise FileNotFoundError(f"{where}: base curriculum {raw['base']} does not exist")
    base = yaml.safe_load(base_path.read_text())
    if not isinstance(base, dict) or not isinstance(base.get("stages"), list):
        raise ValueError(f"{where}: base {raw['base']} is not a curriculum (no `stages` list)")
    raw.setdefault("name", path.stem)
    curricula: dict[str, CurriculumSpec] = {}
    variations = _variations(raw, where)
    report = _check_report(raw.get("report"), [var["arm"] for var in variations], where)
    for var in variations:
        name = var["name"]
        if name in curricula:
            raise ValueError(f"{where}: curriculum name {name!r} is used twice")
        cur_where = f"{where}: curriculum {name!r}"
        spec = curriculum_from_mapping(_apply(base, var, cur_where), cur_where)
        spec.source, spec.point = f"{path}#{name}", var["point"]
        spec.seed_point, spec.arm = var["seed_point"], var["arm"]
        curricula[name] = spec
    return SweepSpec(name=str(raw["name"]), curricula=list(curricula.values()), report=report)


def diff(old, new, prefix: str = "") -> list[str]:
    """Human-readable differences between two resolved specs.

    >>> diff({"stages": [{"max_steps": 2}]}, {"stages": [{"max_steps": 4}]})
    ['stages[0].max_steps: 2 -> 4']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += diff(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{prefix}.{key}" if prefix else str(key)
            )
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            line
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for line in diff(a, b, f"{prefix}[{i}]")
        ]
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}" if prefix else f"{old!r} -> {new!r}"]
