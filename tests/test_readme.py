"""Every command of the README's Use table runs as written (with `--help`, or `--dry-run` where it names a
shipped curriculum), so a renamed module or a moved script cannot leave the README behind."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def use_table_commands() -> list[str]:
    """The first code span of each row of the README's `## Use` table that holds a command."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [re.search(r"`([^`]+)`", row.split("|")[2]).group(1) for row in rows]


def runnable(command: str) -> list[str]:
    """The command as this test runs it: our interpreter for `.venv/bin/python` and `accelerate`, then
    `--dry-run` for a shipped curriculum, `--help` for anything else (placeholders such as CURRICULUM.yaml stop
    at `--help`, before they are read)."""
    argv = shlex.split(command)
    if argv[:2] == ["accelerate", "launch"]:
        argv = [sys.executable, "-m", "accelerate.commands.launch", *argv[2:]]
    elif argv[0] == ".venv/bin/python":
        argv[0] = sys.executable
    if argv[0] != "./launch.sh":
        return [*argv, "--help"]
    if (ROOT / argv[1]).is_file():
        return [*argv, "--dry-run"]
    return [*argv[:2], "--help", *argv[2:]]  # before `--from-stage K`, whose value would fail first


def test_the_use_table_is_read():
    commands = use_table_commands()
    assert len(commands) >= 8 and any(c.startswith("accelerate launch") for c in commands)


@pytest.mark.slow
@pytest.mark.parametrize("command", use_table_commands())
def test_readme_command_runs(command, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "STAGERL_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(runnable(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr


def test_an_uninstalled_checkout_says_how_to_install(tmp_path):
    # The GPU machines have the checkout but not the package: one line, no traceback.
    bare = subprocess.run(
        [sys._base_executable, "-I", str(ROOT / "train/grpo.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bare.returncode == 1
    assert bare.stderr.strip().splitlines() == [
        "error: stagerl is not installed in this Python; in the checkout run `pip install --no-deps -e .`"
    ]


@pytest.mark.slow
def test_the_wheel_holds_only_stagerl(tmp_path):
    # Built from a copy of the tracked files: setuptools leaves a build/ folder in the tree it builds.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    source = tmp_path / "src"
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("stagerl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"stagerl", f"{wheel.name.split('-py3')[0]}.dist-info"}
    assert {n.split("/")[1] for n in names if n.startswith("stagerl/")} == {
        "rewards",
        "data",
        "train",
        "curricula",
    }
    assert "stagerl/data/benchmarks/math500.jsonl" in names and "stagerl/train/grpo.py" in names
