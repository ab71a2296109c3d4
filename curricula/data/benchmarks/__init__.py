"""The evaluation benchmarks shipped with the project (sources and licenses in README.md here).

A benchmark is named by its short name (`math500`, `aime24`, `aime25`, `amc23`) or given as a path to a
jsonl file with `problem` and `answer` fields (and optionally `id`), named after the file's stem.

>>> len(load_benchmark("aime24")), sorted(load_benchmark("aime24")[0])[:3]
(30, ['answer', 'answer_original', 'id'])
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = {
    "math500": "math500.jsonl",
    "aime24": "aime2024.jsonl",
    "aime25": "aime2025.jsonl",
    "amc23": "amc2023.jsonl",
}
DEFAULT_BENCHMARKS = tuple(BENCHMARKS)


def benchmark_name(spec: str) -> str:
    """The short name of a benchmark spec: itself for a shipped one, the file stem for a jsonl path."""
    return spec if spec in BENCHMARKS else Path(spec).stem


def load_benchmark(spec: str, limit: int | None = None) -> list[dict]:
    """Read a benchmark's rows.

    Args:
        spec: a shipped benchmark name or a path to a `.jsonl` file.
        limit: keep only the first `limit` problems (file order; None = all).

    Returns:
        Rows with at least `id`, `problem` and `answer` (string); missing ids become `NAME-INDEX`.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or a row without problem/answer.
    """
    if spec in BENCHMARKS:
        path = HERE / BENCHMARKS[spec]
    elif spec.endswith(".jsonl") and Path(spec).is_file():
        path = Path(spec)
    else:
        raise ValueError(
            f"benchmark {spec!r} is neither a shipped benchmark nor an existing .jsonl file; "
            f"valid names: {sorted(BENCHMARKS)}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: must be >= 1")
    name = benchmark_name(spec)
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
