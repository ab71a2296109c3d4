"""Curriculum specs: an ordered list of stages, each a stage YAML plus overrides, read into typed dataclasses.

```yaml
name: demo
model: stagerl:smollm2-135m-instruct     # the first stage's policy; stage k+1 starts from stage k's export
defaults: {config: configs/stages/smoke.yaml, max_completion_length: 64}   # applied to every stage
drop_solved: false                      # drop problems earlier stages always/never solved (zero advantage)
eval: {benchmarks: [math500], limit: 20, samples: 1, max_new_tokens: 256}  # optional, after every stage
stages:
  - name: level1
    data: [arithmetic:1]                # one level, or a weighted mix: [arithmetic:1@0.7, math-levels:1@0.3]
    max_steps: 30                       # the budget (or num_train_epochs): a cap when `advance` is set
    advance: {reward_threshold: 0.6, window: 5}   # or {plateau_delta: 0.01, window: 20}
```

Every other key of a stage is a field of the stage YAML (`StageArguments`, `GRPOConfig`, `ModelConfig`)
and overrides it. Unknown keys, a missing stage YAML or duplicate names fail before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ADVANCE_KEYS = {"reward_threshold", "plateau_delta", "window", "min_steps"}
CURRICULUM_KEYS = {"name", "model", "defaults", "drop_solved", "eval", "stages"}
EVAL_KEYS = {"benchmarks", "samples", "limit", "max_new_tokens", "temperature", "initial"}


@dataclass
class StageSpec:
    """One stage of a curriculum, fully resolved (defaults merged in)."""

    name: str
    config: str
    overrides: dict = field(default_factory=dict)

    def cli_args(self) -> list[str]:
        """The overrides as `train/grpo.py` command-line arguments."""
        args = []
        for key, value in self.overrides.items():
            args.append(f"--{key}")
            if isinstance(value, list):
                args += [_cli_value(v) for v in value]
            else:
                args.append(_cli_value(value))
        return args


def _cli_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


@dataclass
class CurriculumSpec:
    """An ordered list of stages plus run-wide settings."""

    name: str
    model: str
    stages: list[StageSpec]
    drop_solved: bool = False
    eval: dict | None = None
    source: str = ""

    def resolved(self) -> dict:
        """Everything that decides what the run trains, including the stage YAMLs' contents (for change checks)."""
        out = dataclasses.asdict(self)
        out.pop("source")
        for stage in out["stages"]:
            stage["config_sha256"] = hashlib.sha256(Path(stage["config"]).read_bytes()).hexdigest()[:16]
        return out


def _find_config(path: str) -> str | None:
    """A stage YAML path as written (relative to the working directory), else inside the project (so the
    shipped curricula run from anywhere)."""
    if Path(path).is_file():
        return str(path)
    shipped = Path(__file__).resolve().parent.parent / path
    return str(shipped) if shipped.is_file() else None


def _stage_fields() -> set[str]:
    """Every field a stage YAML may set: ours, plus TRL's GRPOConfig and ModelConfig.

    TRL's field names are cached per (trl, transformers) version: importing TRL to read them costs ~3 s, paid
    by every `launch.sh` call otherwise.
    """
    from importlib.metadata import version

    from curricula.files import atomic_write_json
    from train.config import StageArguments
    from train.models import cache_root

    cache = cache_root() / f"trl-{version('trl')}-transformers-{version('transformers')}-fields.json"
    try:
        trl_fields = set(json.loads(cache.read_text()))
    except (OSError, ValueError):
        from trl import GRPOConfig, ModelConfig

        trl_fields = {f.name for dc in (GRPOConfig, ModelConfig) for f in dataclasses.fields(dc)}
        atomic_write_json(cache, sorted(trl_fields))
    return trl_fields | {f.name for f in dataclasses.fields(StageArguments)}


def load_curriculum(path: str | Path) -> CurriculumSpec:
    """Read and check a curriculum YAML.

    Args:
        path: the curriculum file.

    Returns:
        The spec, with every stage's overrides resolved and checked against the stage fields.

    Raises:
        ValueError / FileNotFoundError: naming the file, stage and key at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"curriculum file {path} does not exist")
    raw = yaml.safe_load(path.read_text())
    where = str(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a YAML mapping with a `stages` list")
    unknown = set(raw) - CURRICULUM_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; valid: {sorted(CURRICULUM_KEYS)}")
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ValueError(f"{where}: `stages` must be a non-empty list")
    defaults = dict(raw.get("defaults") or {})
    valid = _stage_fields()
    stages, names = [], set()
    for i, entry in enumerate(stages_raw, 1):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError(f"{where}: stage {i} must be a mapping with a `name`")
        entry = {**defaults, **entry}
        name = str(entry.pop("name"))
        if name in names:
            raise ValueError(f"{where}: stage name {name!r} is used twice")
        names.add(name)
        config = entry_config = entry.pop("config", None)
        if config is None:
            raise ValueError(
                f"{where}: stage {name!r} has no `config` (a stage YAML), and `defaults` gives none"
            )
        config = _find_config(config)
        if config is None:
            raise FileNotFoundError(f"{where}: stage {name!r}: config {entry_config} does not exist")
        advance = entry.pop("advance", None) or {}
        bad = set(advance) - ADVANCE_KEYS
        if bad:
            raise ValueError(
                f"{where}: stage {name!r}: unknown advance keys {sorted(bad)}; valid: {sorted(ADVANCE_KEYS)}"
            )
        entry.update({f"advance_{k}": v for k, v in advance.items()})
        bad = set(entry) - valid
        if bad:
            raise ValueError(f"{where}: stage {name!r}: unknown stage fields {sorted(bad)}")
        for key in ("output_dir", "model_name_or_path", "resume_from_checkpoint"):
            if key in entry:
                raise ValueError(
                    f"{where}: stage {name!r}: `{key}` is set by the curriculum runner, not per stage"
                )
        stages.append(StageSpec(name=name, config=str(config), overrides=entry))
    eval_spec = raw.get("eval")
    if eval_spec is not None:
        if not isinstance(eval_spec, dict) or "benchmarks" not in eval_spec:
            raise ValueError(f"{where}: `eval` must be a mapping with `benchmarks`")
        bad = set(eval_spec) - EVAL_KEYS
        if bad:
            raise ValueError(f"{where}: unknown eval keys {sorted(bad)}; valid: {sorted(EVAL_KEYS)}")
    return CurriculumSpec(
        name=str(raw.get("name") or path.stem),
        model=str(raw.get("model") or "stagerl:smollm2-135m-instruct"),
        stages=stages,
        drop_solved=bool(raw.get("drop_solved", False)),
        eval=eval_spec,
        source=str(path),
    )


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
