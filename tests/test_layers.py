"""The layers import downwards only: rewards <- data (curricula/data) <- train <- the runner (curricula/*.py).

Read from every module's imports (also those inside functions), so a new upward import fails here.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = {p.stem for p in (ROOT / "curricula").glob("*.py") if p.stem != "__init__"}
# What each layer may import of ours, by top-level name (for curricula: data vs runner modules).
ALLOWED = {
    "rewards": {"rewards"},
    "data": {"rewards", "curricula.data"},
    "train": {"rewards", "curricula.data", "train"},
    "runner": {"rewards", "curricula.data", "curricula.runner"},
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "curricula":
        return "data" if rel[1] == "data" else "runner"
    return rel[0]


def imported(path: Path) -> set[str]:
    """Our modules a file imports, as 'rewards', 'train', 'curricula.data' or 'curricula.runner'."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    ours = set()
    for name in names:
        parts = name.split(".")
        if parts[0] in ("rewards", "train"):
            ours.add(parts[0])
        elif parts[0] == "curricula" and len(parts) > 1:
            ours.add("curricula.data" if parts[1] == "data" else "curricula.runner")
    return ours


MODULES = sorted(p for pkg in ("rewards", "curricula", "train") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    layer = layer_of(path)
    assert imported(path) <= ALLOWED[layer], f"{layer} module imports {imported(path) - ALLOWED[layer]}"


def test_the_runner_drives_train_through_commands():
    # The runner starts `train/grpo.py`, `train.evaluate` and `train.config` as processes, never imports them.
    assert all("train" not in imported(p) for p in MODULES if layer_of(p) == "runner")
    assert RUNNER == {"plan", "run", "commands", "report"}
