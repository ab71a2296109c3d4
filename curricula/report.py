"""End-of-run report of a curriculum: a summary table (terminal and `summary.md`) and `reward.png`."""

from __future__ import annotations

import json
from pathlib import Path

from curricula.files import atomic_path, atomic_write_text


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:  # a kill mid-write leaves the old plot, not half a PNG
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def summary_table(manifest: dict) -> str:
    """Markdown table: stage, status, steps, reward start -> end, time, and eval accuracy when recorded."""
    benchmarks = sorted({b for s in manifest["stages"] for b in (s.get("eval") or {})})
    head = [
        "stage",
        "status",
        "steps",
        "reward start -> end",
        "time (s)",
        *[f"{b} pass@1" for b in benchmarks],
    ]
    rows = []
    for s in manifest["stages"]:
        m = s.get("metrics") or {}
        reward = f"{_fmt(m.get('reward_start'))} -> {_fmt(m.get('reward_end'))}"
        if m.get("advanced_early"):
            reward += " (advanced early)"
        evals = [_fmt((s.get("eval") or {}).get(b)) for b in benchmarks]
        rows.append(
            [
                s["name"],
                s["status"],
                str(m.get("steps", "-")),
                reward,
                _fmt(m.get("wall_time_s"), ".0f"),
                *evals,
            ]
        )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plot_rewards(run_dir: Path, manifest: dict, path: Path) -> None:
    """Training reward across all stages on one step axis, with stage boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    offset = 0
    for s in manifest["stages"]:
        record_path = run_dir / s["dir"] / "stage.json"
        if not record_path.exists():
            continue
        history = json.loads(record_path.read_text()).get("reward_history") or []
        if history:
            ax.plot(
                [offset + step for step, _ in history], [r for _, r in history], marker=".", label=s["name"]
            )
            offset += history[-1][0]
        ax.axvline(offset, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("optimizer step (across stages)")
    ax.set_ylabel("mean training reward")
    ax.set_title(f"{manifest.get('name', 'curriculum')}: training reward per stage")
    ax.legend()
    _save_figure(fig, path)


def plot_eval(manifest: dict, path: Path) -> bool:
    """pass@1 per benchmark after each stage (and before the first, when recorded). False if nothing to plot."""
    points = [("start", manifest["initial_eval"])] if manifest.get("initial_eval") else []
    points += [(s["name"], s["eval"]) for s in manifest["stages"] if s.get("eval")]
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for bench in sorted({b for _, e in points for b in e}):
        xs = [i for i, (_, e) in enumerate(points) if bench in e]
        ax.plot(xs, [points[i][1][bench] for i in xs], marker="o", label=bench)
    ax.set_xticks(range(len(points)), [name for name, _ in points])
    ax.set_ylabel("pass@1")
    ax.set_title(f"{manifest.get('name', 'curriculum')}: accuracy after each stage")
    ax.legend()
    _save_figure(fig, path)
    return True


def write_report(run_dir: str | Path, manifest: dict) -> str:
    """Write `summary.md`, `reward.png` and (when evaluated) `eval.png`; return the table for the terminal."""
    run_dir = Path(run_dir)
    table = summary_table(manifest)
    plot_rewards(run_dir, manifest, run_dir / "reward.png")
    figures = "![reward](reward.png)\n"
    if plot_eval(manifest, run_dir / "eval.png"):
        figures += "\n![accuracy per stage](eval.png)\n"
    atomic_write_text(
        run_dir / "summary.md", f"# {manifest.get('name', 'curriculum')}\n\n{table}\n\n{figures}"
    )
    return table
