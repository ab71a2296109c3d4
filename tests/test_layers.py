"""The layers import downwards only: rewards <- data <- train <- the runner (curricula).

Read from every module's imports (also those inside functions), so a new upward import fails here. Each
subpackage of `stagerl` is one layer; the runner drives `train` through commands, never by importing it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["rewards", "data", "train", "curricula"]  # bottom to top; each folder is `stagerl.<folder>`
# What each layer may import of ours: the layers below it and itself; the runner skips `train` (commands only).
ALLOWED = {layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)}
ALLOWED["curricula"] -= {"train"}


def imported_layers(source: str) -> set[str]:
    """The layers of ours that a module's source imports (`stagerl.<layer>...`)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    parts = (name.split(".") for name in names)
    return {p[1] for p in parts if p[0] == "stagerl" and len(p) > 1 and p[1] in LAYERS}


def violations(root: Path) -> list[str]:
    """Every module under `root`'s layer folders that imports a layer it may not, as 'path: layers'."""
    found = []
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            upward = imported_layers(path.read_text()) - ALLOWED[layer]
            if upward:
                found.append(f"{path.relative_to(root)}: imports {sorted(upward)}")
    return found


def test_imports_point_down():
    assert violations(ROOT) == []


def test_every_layer_is_checked():
    # The test reads the folders that the wheel maps into `stagerl`: none is missed, none is invented.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert all(f'"stagerl.{layer}" = "{layer}"' in pyproject for layer in LAYERS)
    assert all(any((ROOT / layer).rglob("*.py")) for layer in LAYERS)


@pytest.mark.parametrize(
    ("layer", "statement"),
    [
        ("rewards", "from stagerl.data.files import atomic_write_text"),
        ("data", "import stagerl.train.config"),
        ("train", "from stagerl.curricula import plan"),
        ("curricula", "from stagerl.train.config import STAGE_RECORD"),
    ],
)
def test_a_planted_upward_import_fails(tmp_path, layer, statement):
    for name in LAYERS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "ok.py").write_text("import json\nfrom stagerl.rewards import grade\n")
    (tmp_path / layer / "planted.py").write_text(f"def f():\n    {statement}\n")
    assert violations(tmp_path) == [f"{layer}/planted.py: imports ['{statement.split()[1].split('.')[1]}']"]
