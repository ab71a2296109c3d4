"""The evaluation benchmarks (sources and licenses in README.md here).

A benchmark is named by its short name or given as a path to a jsonl file with `problem` and `answer`
fields (and optionally `id`), named after the file's stem. The short names:

- `math500`, `aime24`, `aime25`, `amc23`: competition math, shipped as jsonl files; the default set.
- `arith1`, `arith2`, `arith3`: the held-out problems of the generated arithmetic levels, disjoint from
  what `arithmetic:LEVEL` trains on (`stagerl.data.arithmetic.heldout_rows`). Not in the default set:
  they measure the arithmetic curriculum, so they are asked for by name.

>>> len(load_benchmark("aime24")), sorted(load_benchmark("aime24")[0])[:3]
(30, ['answer', 'answer_original', 'id'])
>>> load_benchmark("arith2", limit=1)[0]["id"]
'arith2-heldout-0000'
"""

from __future__ import annotations

import json
from pathlib import Path

from stagerl.data.arithmetic import LEVELS, heldout_rows

HERE = Path(__file__).parent
FILES = {
    "math500": "math500.jsonl",
    "aime24": "aime2024.jsonl",
    "aime25": "aime2025.jsonl",
    "amc23": "amc2023.jsonl",
}
ARITHMETIC = {f"arith{level}": level for level in LEVELS}
BENCHMARKS = (*FILES, *ARITHMETIC)
DEFAULT_BENCHMARKS = tuple(FILES)


def benchmark_name(spec: str) -> str:
    """The short name of a benchmark spec: itself for a shipped one, the file stem for a jsonl path.

    >>> benchmark_name("arith1"), benchmark_name("data/my_eval.jsonl")
    ('arith1', 'my_eval')
    """
    return spec if spec in BENCHMARKS else Path(spec).stem


def load_benchmark(spec: str, limit: int | None = None) -> list[dict]:
    """Read a benchmark's rows.

    Args:
        spec: a shipped benchmark name or a path to a `.jsonl` file.
        limit: keep only the first `limit` problems (file or generated order; None = all).

    Returns:
        Rows with at least `id`, `problem` and `answer` (string); missing ids become `NAME-INDEX`.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or a row without problem/answer.
    """
    if spec not in BENCHMARKS and not (spec.endswith(".jsonl") and Path(spec).is_file()):
        raise ValueError(
            f"benchmark {spec!r} is neither a shipped benchmark nor an existing .jsonl file; "
            f"valid names: {list(BENCHMARKS)}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: must be >= 1")
    if spec in ARITHMETIC:
        return heldout_rows(ARITHMETIC[spec])[:limit]
    path = HERE / FILES[spec] if spec in FILES else Path(spec)
    return _read_jsonl(path, benchmark_name(spec), limit)


def _read_jsonl(path: Path, name: str, limit: int | None) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            if not line.strip():
                continue
            row = json.loads(line)
            if "problem" not in row or "answer" not in row:
                raise ValueError(f"{path}:{index + 1}: a row needs 'problem' and 'answer'; got {sorted(row)}")
            row["answer"] = str(row["answer"])
            row.setdefault("id", f"{name}-{index}")
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    return rows
