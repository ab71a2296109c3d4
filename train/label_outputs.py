"""Outputs of difficulty labelling: the level parquets (AM-Math-Difficulty-RL layout), the pass-rate table,
the histogram and the summary counts. Every file is written under a temporary name and renamed."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from stagerl.data.files import atomic_path, atomic_write_text
from stagerl.data.levels import ROLES
from stagerl.data.sources import AM_LEVEL_FILE, AM_LEVELS


def write_levels(out_dir: Path, rows: list[dict], extra: list[str]) -> None:
    """Write `math_difficulty_level_{1,2,3}.parquet` (columns question, answer, id, level, then `extra`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["question", "answer", "id", "level", *extra]
    for level in AM_LEVELS:
        chosen = [{c: r.get(c) for c in columns} for r in rows if r["level"] == level]
        fields = [
            pa.field("question", pa.string()),
            pa.field("answer", pa.string()),
            pa.field("id", pa.string()),
        ]
        fields += [pa.field("level", pa.int64())] + [pa.field(c, pa.float64()) for c in extra]
        table = pa.Table.from_pylist(chosen, schema=pa.schema(fields))
        with atomic_path(out_dir / AM_LEVEL_FILE.format(level=level)) as tmp:
            pq.write_table(table, tmp)


def write_table(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write rows as CSV atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def plot_histogram(path: Path, rows: list[dict], samples: int = 10) -> None:
    """Pass-rate histogram per role (left; one bin per possible k/K) and level counts (right), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    edges = [(k - 0.5) / samples for k in range(samples + 2)]  # bins centred on 0, 1/K, ..., 1
    for role in ROLES:
        values = [r[f"pass_{role}"] for r in rows if r.get(f"pass_{role}") is not None]
        if values:
            left.hist(
                values,
                bins=edges,
                histtype="step",
                linewidth=2,
                label=f"{role} (n={len(values)})",
            )
    left.set(xlabel="pass rate", ylabel="problems", title="pass rates")
    left.legend()
    counts = Counter(r["level"] for r in rows)
    names = ["discarded", "level 1", "level 2", "level 3"]
    right.bar(
        names, [counts.get(i, 0) for i in range(4)], color=["grey", "tab:green", "tab:orange", "tab:red"]
    )
    right.set(title="levels", ylabel="problems")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def summarize(rows: list[dict]) -> dict:
    """Counts by level and by reason, and a level x input-level table when the input had levels."""
    summary = {
        "problems": len(rows),
        "levels": {str(k): v for k, v in sorted(Counter(r["level"] for r in rows).items())},
        "reasons": dict(sorted(Counter(r["reason"] for r in rows).items())),
    }
    if rows and all("input_level" in r for r in rows):
        cross = Counter((r["input_level"], r["level"]) for r in rows)
        summary["by_input_level"] = {
            str(il): {str(lv): cross[(il, lv)] for lv in (1, 2, 3, 0)}
            for il in sorted({r["input_level"] for r in rows})
        }
    return summary
