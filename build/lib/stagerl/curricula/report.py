"""The report of a run directory, the same for a curriculum and a sweep: tables, a CSV and plots.

- Every curriculum: a table of its stages (status, steps, training reward start -> end, time, and the
  evaluation after each stage, with the starting model's first when it was evaluated).
- A sweep adds, first: one row per curriculum (final reward, time had it run alone, last evaluation), the
  tree, and, when its grid has a `seed` axis, the final evaluation per curriculum as mean and spread over
  seeds (with the mean over benchmarks).
- Plots: training reward against steps spent (`reward.png` / `rewards.png`), evaluation against steps spent,
  one line per curriculum (mean over seeds) and a panel per benchmark (`eval.png`), and for a sweep the time
  each curriculum took, shared stages hatched (`time.png`). `report.csv`: one row per (curriculum, stage).
A curriculum's markdown is `summary.md`, a sweep's `report.md`.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import statistics
from pathlib import Path

from stagerl.curricula.plan import Plan
from stagerl.data.files import atomic_path, atomic_write_text

FILES = {"curriculum": ("summary.md", "reward.png"), "sweep": ("report.md", "rewards.png")}
COLUMNS = ["curriculum", "position", "stage", "node", "parent", "shared_by", "status", "steps",
           "reward_start", "reward_end", "wall_time_s", "launch_s", "cumulative_steps", "cumulative_time_s"]  # fmt: skip


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None or x == "" else format(x, spec)


def eval_value(value):
    """An evaluation figure: a number, or a metrics dict's `pass@1` (else its first number).

    >>> eval_value({"pass@1": 0.5}), eval_value(0.25), eval_value(None)
    (0.5, 0.25, None)
    """
    if isinstance(value, numbers.Number):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("pass@1"), numbers.Number):
            return value["pass@1"]
        return next((v for v in value.values() if isinstance(v, numbers.Number)), None)
    return None


def node_seconds(entry: dict) -> float:
    """Time a node took: its launches' wall clock (start-up, training, export), else its training loop's.

    >>> node_seconds({"launch_s": 0.0, "metrics": {"wall_time_s": 2.5}})
    2.5
    """
    return entry.get("launch_s") or (entry.get("metrics") or {}).get("wall_time_s") or 0.0


def curriculum_rows(plan: Plan, record: dict) -> list[dict]:
    """One row per (curriculum, stage), in plan order, with `eval_<benchmark>` for every evaluation.

    A row of position 0 (stage `start`) carries the starting model's evaluation, when recorded.
    """
    rows = []
    for spec in plan.curricula:
        start = (record.get("starts") or {}).get(spec.model, {}).get("eval")
        if start:
            rows.append({"curriculum": spec.name, "position": 0, "stage": "start", "status": "done",
                         "cumulative_steps": 0, "cumulative_time_s": 0.0,
                         **{f"eval_{b}": eval_value(v) for b, v in start.items()}})  # fmt: skip
        steps_total, time_total = 0, 0.0
        for pos, nid in enumerate(plan.paths[spec.name], 1):
            entry = record["nodes"][nid]
            metrics = entry.get("metrics") or {}
            steps_total += metrics.get("steps") or 0
            time_total += node_seconds(entry)
            row = {"curriculum": spec.name, "position": pos, "stage": entry["name"], "node": nid,
                   "parent": entry.get("parent") or "", "shared_by": len(plan.nodes[nid].curricula),
                   "status": entry["status"], "steps": metrics.get("steps"),
                   "reward_start": metrics.get("reward_start"), "reward_end": metrics.get("reward_end"),
                   "wall_time_s": metrics.get("wall_time_s"), "launch_s": node_seconds(entry),
                   "cumulative_steps": steps_total, "cumulative_time_s": round(time_total, 2)}  # fmt: skip
            row.update({f"eval_{b}": eval_value(v) for b, v in (entry.get("eval") or {}).items()})
            rows.append(row)
    return rows


def _benchmarks(rows: list[dict]) -> list[str]:
    return sorted({k[5:] for r in rows for k in r if k.startswith("eval_")})


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in body),
    ]


def stage_table(rows: list[dict]) -> str:
    """Markdown table of one curriculum's stages (and its start)."""
    benches = _benchmarks(rows)
    body = []
    for r in rows:
        reward = "" if r["position"] == 0 else f"{_fmt(r.get('reward_start'))} -> {_fmt(r.get('reward_end'))}"
        body.append([r["stage"], r["status"], str(r.get("steps", "-") if r["position"] else 0), reward,
                     _fmt(r.get("wall_time_s"), ".0f") if r["position"] else "",
                     *[_fmt(r.get(f"eval_{b}")) for b in benches]])  # fmt: skip
    head = ["stage", "status", "steps", "reward start -> end", "time (s)", *[f"{b} pass@1" for b in benches]]
    return "\n".join(_table(head, body))


def _groups(plan: Plan) -> dict[str, list[str]]:
    """Curricula grouped over the `seed` axis of the grid: group name -> curriculum names."""
    groups: dict[str, list[str]] = {}
    for spec in plan.curricula:
        rest = [f"{a}={v}" for a, v in spec.point.items() if a != "seed"]
        groups.setdefault("-".join([spec.variation or spec.name, *rest]), []).append(spec.name)
    return groups


def seed_table(plan: Plan, rows: list[dict]) -> str:
    """Final evaluation per curriculum over seeds: mean ± half the range (min..max), and the benchmark mean."""
    benches = _benchmarks(rows)
    body = []
    for group, names in _groups(plan).items():
        finals = [next(r for r in reversed(rows) if r["curriculum"] == n) for n in names]
        cells = []
        for key in [*benches, "mean"]:
            values = [
                statistics.mean(f[f"eval_{b}"] for b in benches) if key == "mean" else f.get(f"eval_{key}")
                for f in finals
                if all(f.get(f"eval_{b}") is not None for b in benches)
            ]
            values = [v for v in values if v is not None]
            cells.append(
                f"{statistics.mean(values):.3f} ± {(max(values) - min(values)) / 2:.3f}" if values else "-"
            )
        body.append([group, str(len(finals)), *cells])
    head = ["curriculum", "seeds", *[f"{b} (final)" for b in benches], "mean (final)"]
    return "\n".join(_table(head, body))


def _overview(plan: Plan, record: dict, rows: list[dict]) -> list[str]:
    nodes = record["nodes"]
    benches = _benchmarks(rows)
    trained = [r for r in rows if r["position"]]
    distinct = sum(node_seconds(nodes[n]) for n in plan.nodes)
    alone = sum(r["launch_s"] for r in trained)
    loop = sum((nodes[n].get("metrics") or {}).get("wall_time_s") or 0.0 for n in plan.nodes)
    loop_alone = sum(r["wall_time_s"] or 0.0 for r in trained)
    lines = [f"{len(plan.paths)} curricula; {plan.savings_line()}. Time of the stage launches: {distinct:.0f} s "
             f"for the sweep, {alone:.0f} s if each curriculum ran alone (training loops only: {loop:.0f} s vs "
             f"{loop_alone:.0f} s).", ""]  # fmt: skip
    body = []
    for name in plan.paths:
        mine = [r for r in trained if r["curriculum"] == name]
        last = mine[-1]
        body.append([name, " -> ".join(r["stage"] for r in mine),
                     "done" if all(r["status"] == "done" for r in mine) else "incomplete",
                     str(sum(r["steps"] or 0 for r in mine)), _fmt(last["reward_end"]),
                     _fmt(last["cumulative_time_s"], ".0f"), *[_fmt(last.get(f"eval_{b}")) for b in benches]])  # fmt: skip
    head = ["curriculum", "stages", "status", "steps", "final reward", "time alone (s)",
            *[f"{b} (last stage)" for b in benches]]  # fmt: skip
    lines += _table(head, body)
    if any("seed" in c.point for c in plan.curricula) and benches:
        lines += ["", "Final evaluation over seeds (mean ± half the range):", "", seed_table(plan, rows)]
    status = {k: v["status"] for k, v in nodes.items()}
    return [*lines, "", "## Tree", "", "```text", plan.format_tree(status), "```", ""]


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:  # a kill mid-write leaves the old plot, not half a PNG
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rewards(run_dir: Path, plan: Plan, record: dict, path: Path) -> None:
    """Training reward against steps spent: one line per curriculum, or, for a single curriculum, one per stage
    (so a reader sees which level each part of the curve trained on)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (name, node_ids) in enumerate(plan.paths.items()):
        xs, ys, offset = [], [], 0
        for nid in node_ids:
            stage_json = run_dir / record["nodes"][nid]["dir"] / "stage.json"
            history = json.loads(stage_json.read_text()).get("reward_history") if stage_json.is_file() else []
            xs += [offset + step for step, _ in history]
            ys += [reward for _, reward in history]
            offset = xs[-1] if xs else offset
            if len(plan.paths) == 1:  # one line per stage
                ax.plot(xs, ys, marker="o", label=record["nodes"][nid]["name"])
                xs, ys = [], []
        if xs:
            ax.plot(
                xs, ys, marker="o.^sv*"[i % 6], linestyle=["-", "--", ":", "-."][i % 4], label=name, alpha=0.8
            )
    ax.set_xlabel("optimizer step (across the curriculum's stages)")
    ax.set_ylabel("mean training reward")
    ax.set_title(f"{plan.name}: training reward")
    ax.legend(fontsize="small")
    _save_figure(fig, path)


def plot_eval(plan: Plan, rows: list[dict], path: Path) -> bool:
    """Evaluation against steps spent: a panel per benchmark (and their mean), a line per curriculum (the mean
    over seeds, their range shaded). False when nothing was evaluated."""
    benches = _benchmarks(rows)
    if not benches:
        return False
    panels = [*benches, "mean"] if len(benches) > 1 else benches
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for i, (group, names) in enumerate(_groups(plan).items()):
            per_seed = []
            for name in names:
                points = {}
                for r in rows:
                    values = [r.get(f"eval_{b}") for b in (benches if panel == "mean" else [panel])]
                    if r["curriculum"] == name and None not in values:
                        points[r["cumulative_steps"]] = statistics.mean(values)
                per_seed.append(points)
            xs = sorted(set.intersection(*(set(p) for p in per_seed)))
            if not xs:
                continue
            ys = [statistics.mean(p[x] for p in per_seed) for x in xs]
            ax.plot(xs, ys, marker="o.^sv*"[i % 6], label=group)
            if len(per_seed) > 1:
                lo = [min(p[x] for p in per_seed) for x in xs]
                hi = [max(p[x] for p in per_seed) for x in xs]
                ax.fill_between(xs, lo, hi, alpha=0.15)
        ax.set_xlabel("optimizer steps spent")
        ax.set_ylabel("pass@1")
        ax.set_title(panel if panel != "mean" else "mean over benchmarks")
        ax.legend(fontsize="small")
    _save_figure(fig, path)
    return True


def plot_time(plan: Plan, record: dict, rows: list[dict], path: Path) -> None:
    """The time each curriculum's stages took; stages shared with other curricula (trained once) hatched."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(plan.paths) + 2))
    for name in plan.paths:
        left = 0.0
        for r in (r for r in rows if r["curriculum"] == name and r["position"]):
            ax.barh(name, r["launch_s"], left=left, color=f"C{r['position'] - 1}",
                    hatch="//" if r["shared_by"] > 1 else None, edgecolor="white")  # fmt: skip
            ax.text(left + r["launch_s"] / 2, name, r["stage"], ha="center", va="center", fontsize="x-small")
            left += r["launch_s"]
    ax.barh(
        "sweep (distinct stages)", sum(node_seconds(record["nodes"][n]) for n in plan.nodes), color="grey"
    )
    ax.set_xlabel("stage time (s, launch wall clock); hatched: shared with other curricula, trained once")
    ax.invert_yaxis()
    _save_figure(fig, path)


def write_report(run_dir: str | Path, plan: Plan, record: dict) -> str:
    """Write the report files into the run directory (see the module docstring).

    Args:
        run_dir: the run directory.
        plan: its plan.
        record: the record's data (`stagerl.curricula.run.Record.data`).

    Returns:
        The markdown, for the terminal.
    """
    run_dir = Path(run_dir)
    markdown, reward_png = FILES[plan.kind]
    rows = curriculum_rows(plan, record)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS + [f"eval_{b}" for b in _benchmarks(rows)], restval="",
                            extrasaction="ignore", lineterminator="\n")  # fmt: skip
    writer.writeheader()
    writer.writerows(r for r in rows if r["position"])
    atomic_write_text(run_dir / "report.csv", out.getvalue())
    plot_rewards(run_dir, plan, record, run_dir / reward_png)
    plots = [reward_png] + (["eval.png"] if plot_eval(plan, rows, run_dir / "eval.png") else [])
    lines = [f"# {plan.name}", ""]
    if plan.kind == "sweep":
        plot_time(plan, record, rows, run_dir / "time.png")
        plots.append("time.png")
        lines += _overview(plan, record, rows)
    lines += [f"![{p}]({p})" for p in plots]
    for name in plan.paths:
        heading = [f"## {name}", ""] if plan.kind == "sweep" else []
        lines += ["", *heading, stage_table([r for r in rows if r["curriculum"] == name])]
    text = "\n".join(lines) + "\n"
    atomic_write_text(run_dir / markdown, text)
    return text
