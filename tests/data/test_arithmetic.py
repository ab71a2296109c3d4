"""Generated arithmetic: the training rows never contain a held-out problem (in either order), the held-out
sets are fixed across processes, and both kinds of rows have the documented shape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.data.arithmetic import LEVELS, arithmetic_rows, heldout_rows, is_heldout

PROBLEM = re.compile(r"^What is (\d+) \+ (\d+)\?$")
SPACE = {1: ((1, 9), (1, 9)), 2: ((10, 99), (1, 9)), 3: ((10, 99), (10, 99))}  # the module docstring's levels


def operands(row: dict) -> tuple[int, int]:
    """(a, b) of a row's "What is a + b?", checking the answer on the way."""
    match = PROBLEM.match(row["problem"])
    assert match, row
    a, b = int(match[1]), int(match[2])
    assert row["answer"] == str(a + b)
    return a, b


def unordered(rows: list[dict]) -> set[tuple[int, int]]:
    return {tuple(sorted(operands(row))) for row in rows}


def in_space(level: int, a: int, b: int) -> bool:
    (a_low, a_high), (b_low, b_high) = SPACE[level]
    return a_low <= a <= a_high and b_low <= b <= b_high


def all_heldout_problems() -> set[tuple[int, int]]:
    return set().union(*(unordered(heldout_rows(level)) for level in LEVELS))


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
@pytest.mark.parametrize("num_rows", [1, 100, 2000])
def test_training_rows_never_contain_a_heldout_problem(seed, num_rows):
    heldout = all_heldout_problems()
    for level in LEVELS:
        rows = arithmetic_rows(level, num_rows=num_rows, seed=seed)
        assert len(rows) == num_rows
        assert all(in_space(level, *operands(row)) for row in rows)
        assert not unordered(rows) & heldout, f"level {level}, seed {seed}"


def test_level1_is_split_into_training_and_heldout_parts():
    """Level 1's 81 problems: 2000 training draws cover every training problem and no other."""
    space = {(a, b) for a in range(1, 10) for b in range(1, 10)}
    trained = {operands(row) for row in arithmetic_rows(1)}
    heldout = {operands(row) for row in heldout_rows(1)}
    assert trained | heldout == space and not trained & heldout
    assert {(b, a) for a, b in heldout} == heldout  # 3 + 5 and 5 + 3 on the same side


def test_heldout_sizes_fraction_and_order():
    sizes = {level: len(heldout_rows(level)) for level in LEVELS}
    assert sizes == {1: 19, 2: 180, 3: 200}  # all of levels 1 and 2; the first 200 of level 3's
    level3 = [(a, b) for a in range(10, 100) for b in range(10, 100)]
    assert 0.18 < sum(is_heldout(a, b) for a, b in level3) / len(level3) < 0.22
    for level in LEVELS:
        rows = heldout_rows(level)
        assert [r["id"] for r in rows] == [f"arith{level}-heldout-{i:04d}" for i in range(len(rows))]
        assert all(r["level"] == level and in_space(level, *operands(r)) for r in rows)
        assert len({r["problem"] for r in rows}) == len(rows)
    # Shuffled, not in enumeration order, so a --limit prefix spreads over the level.
    assert [operands(r) for r in heldout_rows(3)] != sorted(operands(r) for r in heldout_rows(3))


def test_heldout_sets_are_the_same_in_another_process():
    """Python salts hash() per process; the split must not depend on it."""
    code = (
        "import json; from stagerl.data.arithmetic import heldout_rows; "
        "print(json.dumps([heldout_rows(level) for level in (1, 2, 3)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [heldout_rows(level) for level in LEVELS]


def test_training_rows_are_a_function_of_level_and_seed():
    rows = arithmetic_rows(3, num_rows=50, seed=3)
    assert rows == arithmetic_rows(3, num_rows=50, seed=3)
    assert rows != arithmetic_rows(3, num_rows=50, seed=4)
    # the problem is its id
    assert all(r["id"] == "arith-" + r["problem"][8:-1].replace(" ", "") for r in rows)
    assert all(r["level"] == 3 and isinstance(r["answer"], str) for r in rows)


@pytest.mark.parametrize("make", [lambda: arithmetic_rows(4), lambda: heldout_rows(0)])
def test_unknown_level_names_the_valid_ones(make):
    with pytest.raises(ValueError, match=r"valid levels: \[1, 2, 3\]"):
        make()
