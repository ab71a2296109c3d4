"""The stage directory's file names are spelled in one module (`stagerl.data.stage_dir`), which both the stage
and the runner import: read from every module's string constants (docstrings aside)."""

import ast
from pathlib import Path

from stagerl.data.stage_dir import COMPLETE_MARKER, HUB_RECORD, PROBLEM_STATS, STAGE_RECORD, TRACKING_FILE

ROOT = Path(__file__).resolve().parents[1]
NAMES = {STAGE_RECORD, PROBLEM_STATS, COMPLETE_MARKER, TRACKING_FILE, HUB_RECORD}
HOME = ROOT / "data" / "stage_dir.py"


def spelled(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    documented = [n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)]
    docstrings = {id(n.body[0].value) for n in documented if n.body and isinstance(n.body[0], ast.Expr)}
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in docstrings
    }


def test_each_stage_file_name_is_spelled_once():
    modules = [p for layer in ("rewards", "data", "train", "curricula") for p in (ROOT / layer).rglob("*.py")]
    elsewhere = {str(p.relative_to(ROOT)): spelled(p) for p in modules if p != HOME and spelled(p)}
    assert elsewhere == {}
    assert spelled(HOME) == NAMES
