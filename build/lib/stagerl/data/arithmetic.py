"""Generated arithmetic levels: a curriculum a 135M model can actually learn on two CPU cores.

Level 1: one-digit + one-digit. Level 2: two-digit + one-digit. Level 3: two-digit + two-digit.
Rows are a pure function of (level, seed), so a resumed or repeated run sees the same problems.

Each level's problems are split in two, training and held out, by a hash of the unordered pair {a, b}:
a pair is held out when its sha256 falls in the lowest `HELDOUT_PERCENT` (20) of 100 buckets.
- A split of the problem space, not a second seed: level 1 has only 81 problems and 2000 training draws
  cover them all, so only problems the generator can never draw are unseen.
- Unordered: `3 + 5` and `5 + 3` fall on the same side; a model that learned one has effectively seen
  the other.
- sha256, not `hash()`: Python salts string hashes per process, and the split must hold in every run.
- The rule looks at the pair alone, so checking a training draw needs no enumeration of the level.
- Changing the rule changes both the training rows and the benchmarks, so scores before and after the
  change are not comparable: keep it fixed.

`arithmetic_rows` (training) draws only training pairs. A training row's id is its problem (`arith-3+5`):
the same problem drawn twice is one problem to the per-problem statistics and the prompt selection. `heldout_rows` (the
`arith1`..`arith3` benchmarks, ids `arith1-heldout-0000`) lists held-out problems in a fixed shuffled
order, at most `HELDOUT_SIZE` (200): all 19 of level 1, all 180 of level 2, 200 of level 3's 1669.
"""

from __future__ import annotations

import hashlib
import random

LEVELS = (1, 2, 3)
_OPERANDS = {1: ((1, 9), (1, 9)), 2: ((10, 99), (1, 9)), 3: ((10, 99), (10, 99))}
HELDOUT_PERCENT = 20
HELDOUT_SIZE = 200


def is_heldout(a: int, b: int) -> bool:
    """Whether the problem `a + b` is held out from training (the same answer as for `b + a`).

    Args:
        a, b: the operands.

    Returns:
        True when the unordered pair's hash bucket is below `HELDOUT_PERCENT`.

    >>> is_heldout(3, 5) == is_heldout(5, 3)
    True
    """
    low, high = sorted((a, b))
    digest = hashlib.sha256(f"{low}+{high}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELDOUT_PERCENT


def arithmetic_rows(level: int, num_rows: int = 2000, seed: int = 0) -> list[dict]:
    """Generate `num_rows` training addition problems of one level (never a held-out one).

    Args:
        level: 1, 2 or 3 (see the module docstring).
        num_rows: how many problems.
        seed: the generator's seed.

    Returns:
        Rows `{"id", "problem", "answer", "level"}`; `answer` is a string.

    >>> arithmetic_rows(1, num_rows=1)[0]["id"]
    'arith-4+5'
    """
    (a_low, a_high), (b_low, b_high) = _operand_ranges(level)
    rng = random.Random(f"{seed}-{level}")
    rows = []
    while len(rows) < num_rows:
        a, b = rng.randint(a_low, a_high), rng.randint(b_low, b_high)
        # Redrawing held-out pairs keeps the draws uniform over the training part.
        if not is_heldout(a, b):
            rows.append(_row(f"arith-{a}+{b}", level, a, b))
    return rows


def heldout_rows(level: int) -> list[dict]:
    """The held-out problems of one level, in a fixed order (the `arithLEVEL` benchmark).

    Args:
        level: 1, 2 or 3.

    Returns:
        At most `HELDOUT_SIZE` rows `{"id", "problem", "answer", "level"}`, the same on every call.

    >>> [row["id"] for row in heldout_rows(1)][:2]
    ['arith1-heldout-0000', 'arith1-heldout-0001']
    """
    (a_low, a_high), (b_low, b_high) = _operand_ranges(level)
    pairs = [(a, b) for a in range(a_low, a_high + 1) for b in range(b_low, b_high + 1) if is_heldout(a, b)]
    # Shuffled so that a prefix (`--limit`) spreads over the level rather than starting 10 + 10, 10 + 11, ...
    random.Random(f"heldout-{level}").shuffle(pairs)
    return [
        _row(f"arith{level}-heldout-{i:04d}", level, a, b) for i, (a, b) in enumerate(pairs[:HELDOUT_SIZE])
    ]


def _operand_ranges(level: int) -> tuple[tuple[int, int], tuple[int, int]]:
    if level not in _OPERANDS:
        raise ValueError(f"arithmetic level={level} is out of range; valid levels: {list(LEVELS)}")
    return _OPERANDS[level]


def _row(row_id: str, level: int, a: int, b: int) -> dict:
    return {"id": row_id, "problem": f"What is {a} + {b}?", "answer": str(a + b), "level": level}
