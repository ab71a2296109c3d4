"""Generated arithmetic levels: a curriculum a 135M model can actually learn on two CPU cores.

Level 1: one-digit + one-digit. Level 2: two-digit + one-digit. Level 3: two-digit + two-digit.
Rows are a pure function of (level, seed), so a resumed or repeated run sees the same problems.
"""

from __future__ import annotations

import random

LEVELS = (1, 2, 3)
_DIGITS = {1: ((1, 9), (1, 9)), 2: ((10, 99), (1, 9)), 3: ((10, 99), (10, 99))}


def arithmetic_rows(level: int, num_rows: int = 2000, seed: int = 0) -> list[dict]:
    """Generate `num_rows` addition problems of one level.

    Args:
        level: 1, 2 or 3 (see the module docstring).
        num_rows: how many problems.
        seed: the generator's seed.

    Returns:
        Rows `{"id", "problem", "answer", "level"}`.

    >>> arithmetic_rows(1, num_rows=1)[0]["id"]
    'arith-L1-00000'
    """
    if level not in _DIGITS:
        raise ValueError(f"arithmetic level={level} is out of range; valid levels: {list(LEVELS)}")
    rng = random.Random(f"{seed}-{level}")
    (alo, ahi), (blo, bhi) = _DIGITS[level]
    rows = []
    for i in range(num_rows):
        a, b = rng.randint(alo, ahi), rng.randint(blo, bhi)
        rows.append(
            {
                "id": f"arith-L{level}-{i:05d}",
                "problem": f"What is {a} + {b}?",
                "answer": str(a + b),
                "level": level,
            }
        )
    return rows
