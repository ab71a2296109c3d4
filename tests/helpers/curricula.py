"""What the curriculum and sweep tests share: the shipped smoke files, a small curriculum, a YAML writer."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SMOKE_SWEEP = ROOT / "configs/sweeps/smoke.yaml"
SMOKE_BASE = str(ROOT / "configs/curricula/smoke.yaml")
BASE = {
    "name": "t",
    "model": "stagerl:tiny-random",
    "defaults": {"config": str(ROOT / "configs/stages/smoke.yaml")},
    "stages": [
        {"name": "a", "data": ["arithmetic:1"], "max_steps": 2},
        {
            "name": "b",
            "data": ["arithmetic:2@0.5", "math-levels:1@0.5"],
            "max_steps": 3,
            "advance": {"reward_threshold": 0.5, "window": 2},
        },
    ],
}


def write(tmp_path: Path, spec: dict, name: str = "c.yaml") -> Path:
    """`spec` as a YAML file in `tmp_path`."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
