"""A sweep's report: the curricula side by side (`report.md`, `report.csv`) and plots (`rewards.png`,
`time.png`, `eval.png` when stages recorded an evaluation)."""

from __future__ import annotations

import csv
import io
import json
import numbers
from pathlib import Path

from curricula.files import atomic_write_text
from curricula.report import summary_table
from curricula.sweep_spec import SweepTree, format_tree, savings_line

COLUMNS = ["curriculum", "position", "stage", "node", "parent", "shared_by", "status", "steps",
           "reward_start", "reward_end", "wall_time_s", "launch_s", "cumulative_time_s"]  # fmt: skip


def node_seconds(record: dict) -> float:
    """Time a node took: its launches' wall clock (start-up, training, export), else its training loop's.

    >>> node_seconds({"launch_s": 0.0, "metrics": {"wall_time_s": 2.5}})
    2.5
    """
    return record.get("launch_s") or (record.get("metrics") or {}).get("wall_time_s") or 0.0


def _eval_value(value):
    """A stage's evaluation figure: a number, or a metrics dict's `pass@1` (else its first number)."""
    if isinstance(value, numbers.Number):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("pass@1"), numbers.Number):
            return value["pass@1"]
        return next((v for v in value.values() if isinstance(v, numbers.Number)), None)
    return None


def curriculum_rows(manifest: dict, tree: SweepTree) -> list[dict]:
    """One row per (curriculum, stage), in sweep order.

    Args:
        manifest: the sweep record (`sweep.json`).
        tree: the sweep's tree.

    Returns:
        Rows with the `COLUMNS` keys plus `eval_<benchmark>` for every benchmark any stage recorded.
    """
    rows = []
    for name, path in tree.paths.items():
        total = 0.0
        for pos, nid in enumerate(path, 1):
            record = manifest["nodes"][nid]
            metrics = record.get("metrics") or {}
            total += node_seconds(record)
            row = {"curriculum": name, "position": pos, "stage": record["name"], "node": nid,
                   "parent": record.get("parent") or "", "shared_by": len(tree.nodes[nid].curricula),
                   "status": record["status"], "steps": metrics.get("steps"),
                   "reward_start": metrics.get("reward_start"), "reward_end": metrics.get("reward_end"),
                   "wall_time_s": metrics.get("wall_time_s"), "launch_s": node_seconds(record),
                   "cumulative_time_s": round(total, 2)}  # fmt: skip
            for bench, value in (record.get("eval") or {}).items():
                row[f"eval_{bench}"] = _eval_value(value)
            rows.append(row)
    return rows


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None or x == "" else format(x, spec)


def _csv(rows: list[dict]) -> str:
    evals = sorted({k for r in rows for k in r if k.startswith("eval_")})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS + evals, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _markdown(manifest: dict, tree: SweepTree, rows: list[dict], plots: list[str]) -> str:
    evals = sorted({k for r in rows for k in r if k.startswith("eval_")})
    distinct = sum(node_seconds(manifest["nodes"][n]) for n in tree.nodes)
    alone = sum(r["launch_s"] for r in rows)
    loop = sum((manifest["nodes"][n].get("metrics") or {}).get("wall_time_s") or 0.0 for n in tree.nodes)
    loop_alone = sum(r["wall_time_s"] or 0.0 for r in rows)
    head = ["curriculum", "stages", "status", "steps", "final reward", "time alone (s)",
            *[f"{e[5:]} (last stage)" for e in evals]]  # fmt: skip
    lines = [f"# Sweep {manifest.get('name', '')}", "",
             f"{len(tree.paths)} curricula; {savings_line(tree)}. Time of the stage launches: {distinct:.0f} s "
             f"for the sweep, {alone:.0f} s if each curriculum ran alone (training loops only: {loop:.0f} s vs "
             f"{loop_alone:.0f} s).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for name in tree.paths:
        mine = [r for r in rows if r["curriculum"] == name]
        done = all(r["status"] == "done" for r in mine)
        steps = sum(r["steps"] or 0 for r in mine)
        last = mine[-1]
        cells = [name, " -> ".join(r["stage"] for r in mine), "done" if done else "incomplete", str(steps),
                 _fmt(last["reward_end"]), _fmt(last["cumulative_time_s"], ".0f"),
                 *[_fmt(last.get(e)) for e in evals]]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Tree", "", "```text", format_tree(tree, {k: v["status"] for k, v in manifest["nodes"].items()}),
              "```", ""]  # fmt: skip
    lines += [f"![{p}]({p})" for p in plots]
    for name, path in tree.paths.items():
        stages = [manifest["nodes"][n] for n in path]
        stages = [
            {**s, "eval": {b: _eval_value(v) for b, v in (s.get("eval") or {}).items()}} for s in stages
        ]
        lines += ["", f"## {name}", "", summary_table({"stages": stages})]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def plot_sweep(sweep_dir: Path, manifest: dict, tree: SweepTree, rows: list[dict]) -> list[str]:
    """Write the plots; return their file names (relative to the sweep directory).

    Args:
        sweep_dir: the sweep directory.
        manifest: the sweep record.
        tree: the sweep's tree.
        rows: `curriculum_rows(manifest, tree)`.

    Returns:
        `rewards.png` and `time.png`, plus `eval.png` when any stage recorded an evaluation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (name, path) in enumerate(tree.paths.items()):
        xs, ys, offset = [], [], 0
        for nid in path:
            record_path = sweep_dir / manifest["nodes"][nid]["dir"] / "stage.json"
            history = (
                json.loads(record_path.read_text()).get("reward_history") if record_path.is_file() else None
            )
            for step, reward in history or []:
                xs.append(offset + step)
                ys.append(reward)
            offset = xs[-1] if xs else offset
        ax.plot(
            xs, ys, marker="o.^sv*"[i % 6], linestyle=["-", "--", ":", "-."][i % 4], label=name, alpha=0.8
        )
    ax.set_xlabel("optimizer step (across the curriculum's stages)")
    ax.set_ylabel("mean training reward")
    ax.set_title(f"{manifest.get('name', 'sweep')}: training reward per curriculum")
    ax.legend(fontsize="small")
    _save(fig, sweep_dir / "rewards.png")

    fig, ax = plt.subplots(figsize=(9, 0.6 * len(tree.paths) + 2))
    names = list(tree.paths)
    for name in names:
        left = 0.0
        for r in (r for r in rows if r["curriculum"] == name):
            width = r["launch_s"]
            shared = r["shared_by"] > 1
            ax.barh(name, width, left=left, color=f"C{r['position'] - 1}", hatch="//" if shared else None,
                    edgecolor="white")  # fmt: skip
            ax.text(left + width / 2, name, r["stage"], ha="center", va="center", fontsize="x-small")
            left += width
    distinct = sum(node_seconds(manifest["nodes"][n]) for n in tree.nodes)
    ax.barh("sweep (distinct stages)", distinct, color="grey")
    ax.set_xlabel("stage time (s, launch wall clock); hatched: shared with other curricula, trained once")
    ax.invert_yaxis()
    _save(fig, sweep_dir / "time.png")
    plots = ["rewards.png", "time.png"]

    evals = sorted({k for r in rows for k in r if k.startswith("eval_")})
    if evals:
        fig, axes = plt.subplots(1, len(evals), figsize=(5 * len(evals), 4), squeeze=False)
        for ax, key in zip(axes[0], evals, strict=True):
            for name in names:
                pts = [
                    (r["position"], r[key])
                    for r in rows
                    if r["curriculum"] == name and r.get(key) is not None
                ]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=name)
            ax.set_xlabel("stage")
            ax.set_title(key[5:])
            ax.legend(fontsize="small")
        _save(fig, sweep_dir / "eval.png")
        plots.append("eval.png")
    return plots


def write_sweep_report(sweep_dir: str | Path, manifest: dict, tree: SweepTree) -> str:
    """Write `report.md`, `report.csv` and the plots into the sweep directory.

    Args:
        sweep_dir: the sweep directory.
        manifest: the sweep record (`sweep.json` content).
        tree: the sweep's tree (the current sweep file's curricula).

    Returns:
        The markdown report (for the terminal).
    """
    sweep_dir = Path(sweep_dir)
    rows = curriculum_rows(manifest, tree)
    atomic_write_text(sweep_dir / "report.csv", _csv(rows))
    plots = plot_sweep(sweep_dir, manifest, tree, rows)
    text = _markdown(manifest, tree, rows, plots)
    atomic_write_text(sweep_dir / "report.md", text)
    return text
