"""The report of a run directory, the same for a curriculum and a sweep: tables, a CSV and plots.

- Every curriculum: a table of its stages (status, steps, training reward start -> end, time, and the
  evaluation after each stage, with the starting model's first when it was evaluated).
- A sweep adds, first: one row per curriculum (final reward, time had it run alone, last evaluation), the
  tree, and, when its grid has a `seed` axis, the final evaluation per curriculum as mean and spread over
  seeds (with the mean over benchmarks).
- Arms, for a sweep with a seed axis or a `report: {baseline: ARM}` (arms and the seed axis: `plan.py`): per
  arm, its seeds pooled, the rollouts and completion tokens its stages generated (`stage.json`'s
  `generation`, summed over every stage of every curriculum of the arm: a stage shared by several curricula
  counts in each), and its final pass@1 per benchmark and on their mean; with a baseline, each other arm
  minus the baseline with a paired bootstrap 95% interval (below). Also in `arms.csv` (one row per arm and
  benchmark, `mean` last) and `arms.png`.
- Plots: training reward against steps spent (`reward.png` / `rewards.png`), evaluation against steps spent,
  one line per curriculum (mean over seeds) and a panel per benchmark (`eval.png`), and for a sweep the time
  each curriculum took, shared stages hatched (`time.png`). `report.csv`: one row per (curriculum, stage).
A curriculum's markdown is `summary.md`, a sweep's `report.md`.

The difference of an arm from the baseline is read from the per-sample files of each curriculum's final
evaluation (`<node dir>/eval/<benchmark>.jsonl`: `id`, `sample`, `correct`; ungraded samples left out). A
problem's pass@1 is the mean of its samples' `correct`. The arm and the baseline are paired by seed (equal
seed-axis values) and by problem (equal `id`): the seeds at which both have a final evaluation count, the
benchmarks both have at every such seed, and per benchmark the problems both have at every such seed. With d[s, p] = arm's pass@1 - baseline's on
problem p at seed s (S seeds, P problems of a benchmark), the estimate is the mean of d over all (s, p). Each
of `BOOTSTRAP_REPLICATES` replicates draws S seeds with replacement (once, for every benchmark) and, per
benchmark, P problems with replacement (the same problems at every drawn seed), and takes the mean of d over
the drawn (seed, problem) pairs; the mean over benchmarks weights benchmarks equally, in the estimate and in
every replicate. The interval is the 2.5th and 97.5th percentiles of the replicates. The draws come from a
generator seeded with `BOOTSTRAP_SEED` afresh for every arm, so the report is deterministic and an arm's
interval does not depend on the other arms.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import statistics
from pathlib import Path

import numpy as np

from stagerl.curricula.plan import Plan
from stagerl.data.files import atomic_path, atomic_write_text
from stagerl.data.stage_dir import EVAL_DIR, finished, read_record

FILES = {"curriculum": ("summary.md", "reward.png"), "sweep": ("report.md", "rewards.png")}
COLUMNS = [
    "curriculum",
    "position",
    "stage",
    "node",
    "parent",
    "shared_by",
    "status",
    "steps",
    "reward_start",
    "reward_end",
    "wall_time_s",
    "launch_s",
    "cumulative_steps",
    "cumulative_time_s",
]
ARM_COLUMNS = (
    "arm seeds rollouts completion_tokens benchmark pass@1 baseline seeds_paired problems difference ci_low ci_high"
).split()
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 0


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
            rows.append(
                {
                    "curriculum": spec.name,
                    "position": 0,
                    "stage": "start",
                    "status": "done",
                    "cumulative_steps": 0,
                    "cumulative_time_s": 0.0,
                    **{f"eval_{b}": eval_value(v) for b, v in start.items()},
                }
            )
        steps_total, time_total = 0, 0.0
        for pos, nid in enumerate(plan.paths[spec.name], 1):
            entry = record["nodes"][nid]
            metrics = entry.get("metrics") or {}
            steps_total += metrics.get("steps") or 0
            time_total += node_seconds(entry)
            row = {
                "curriculum": spec.name,
                "position": pos,
                "stage": entry["name"],
                "node": nid,
                "parent": entry.get("parent") or "",
                "shared_by": len(plan.nodes[nid].curricula),
                "status": entry["status"],
                "steps": metrics.get("steps"),
                "reward_start": metrics.get("reward_start"),
                "reward_end": metrics.get("reward_end"),
                "wall_time_s": metrics.get("wall_time_s"),
                "launch_s": node_seconds(entry),
                "cumulative_steps": steps_total,
                "cumulative_time_s": round(time_total, 2),
            }
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
        body.append(
            [
                r["stage"],
                r["status"],
                str(r.get("steps", "-") if r["position"] else 0),
                reward,
                _fmt(r.get("wall_time_s"), ".0f") if r["position"] else "",
                *[_fmt(r.get(f"eval_{b}")) for b in benches],
            ]
        )
    head = ["stage", "status", "steps", "reward start -> end", "time (s)", *[f"{b} pass@1" for b in benches]]
    return "\n".join(_table(head, body))


def _groups(plan: Plan) -> dict[str, list[str]]:
    """Curricula grouped over the seed axis of the grid (their arms): arm name -> curriculum names."""
    groups: dict[str, list[str]] = {}
    for spec in plan.curricula:
        groups.setdefault(spec.arm or spec.name, []).append(spec.name)
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


def per_problem_pass(path: Path) -> dict[str, float]:
    """Per-problem pass@1 from an evaluation's per-sample file: the mean `correct` of each problem's graded
    samples (ungraded ones, `correct` null, left out; a problem without a graded sample too).

    Raises:
        ValueError: a line that is not a JSON object with `id` and `correct`, naming the file and line.
    """
    graded: dict[str, list[float]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            problem, correct = str(row["id"]), row["correct"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(
                f"{path}:{number}: not a per-sample evaluation line ({type(e).__name__}: {e})"
            ) from None
        if correct is not None:
            graded.setdefault(problem, []).append(float(correct))
    return {problem: sum(values) / len(values) for problem, values in graded.items()}


def final_pass(run_dir: Path, plan: Plan, record: dict, name: str) -> dict[str, dict[str, float]]:
    """A curriculum's final evaluation, per problem: benchmark -> problem id -> pass@1, for every benchmark of
    its last stage's recorded evaluation whose per-sample file is there (empty when none was recorded)."""
    entry = record["nodes"][plan.paths[name][-1]]
    eval_dir = run_dir / entry["dir"] / EVAL_DIR
    files = {b: eval_dir / f"{b}.jsonl" for b in entry.get("eval") or {}}
    return {b: per_problem_pass(path) for b, path in sorted(files.items()) if path.is_file()}


def generated(run_dir: Path, plan: Plan, record: dict, names: list[str]) -> dict[str, int | None]:
    """Rollouts and completion tokens generated by the stages of the curricula `names`, from each stage's
    `stage.json`; a stage counts once per curriculum through it. None where a stage did not record them."""
    totals: dict[str, int | None] = {"rollouts": 0, "completion_tokens": 0}
    for name in names:
        for nid in plan.paths[name]:
            stage_dir = run_dir / record["nodes"][nid]["dir"]
            counts = (read_record(stage_dir).get("generation") or {}) if finished(stage_dir) else {}
            for key, total in totals.items():
                totals[key] = None if total is None or counts.get(key) is None else total + counts[key]
    return totals


def paired_differences(arm: dict[str, dict], baseline: dict[str, dict]) -> dict[str, np.ndarray]:
    """The paired differences d[s, p] per benchmark (see the module docstring).

    Args:
        arm, baseline: seed key -> `final_pass` of the curriculum at that seed.

    Returns:
        benchmark -> d (seeds x problems: the seeds both evaluated, in sorted order; the problems both have at
        every such seed, sorted by id), for the benchmarks both have at every such seed; empty when none.
    """
    seeds = sorted(s for s in arm if s in baseline and arm[s] and baseline[s])
    if not seeds:
        return {}
    benches = sorted(set.intersection(*(set(arm[s]) & set(baseline[s]) for s in seeds)))
    diffs = {}
    for b in benches:
        problems = sorted(set.intersection(*(set(arm[s][b]) & set(baseline[s][b]) for s in seeds)))
        if problems:
            diffs[b] = np.array([[arm[s][b][p] - baseline[s][b][p] for p in problems] for s in seeds])
    return diffs


def paired_bootstrap(
    diffs: dict[str, np.ndarray], replicates: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED
) -> dict[str, tuple[float, float, float]]:
    """The estimate and 95% interval of the mean paired difference, per benchmark and on their mean, by the
    bootstrap of the module docstring.

    Args:
        diffs: benchmark -> d[s, p] (`paired_differences`: the same seeds, in the same order, for every one).
        replicates: bootstrap replicates.
        seed: the seed of the draws.

    Returns:
        benchmark (and `mean`, the benchmarks weighted equally) -> (estimate, 2.5th, 97.5th percentile).

    >>> out = paired_bootstrap({"a": np.full((2, 3), 0.25), "b": np.array([[0.0, 0.5], [0.5, 0.0]])})
    >>> [round(v, 6) for v in out["a"]], round(out["mean"][0], 6)
    ([0.25, 0.25, 0.25], 0.25)
    """
    rng = np.random.default_rng(seed)
    n_seeds = next(iter(diffs.values())).shape[0]
    drawn_seeds = rng.integers(0, n_seeds, size=(replicates, n_seeds))
    seed_counts = (drawn_seeds[:, :, None] == np.arange(n_seeds)).sum(axis=1)  # replicates x seeds
    out, per_bench = {}, []
    for bench, d in diffs.items():
        drawn_problems = rng.integers(0, d.shape[1], size=(replicates, d.shape[1]))
        over_seeds = seed_counts @ d / n_seeds  # each replicate's mean over its drawn seeds, per problem
        reps = np.take_along_axis(over_seeds, drawn_problems, axis=1).mean(axis=1)
        per_bench.append(reps)
        out[bench] = (float(d.mean()), *(float(q) for q in np.percentile(reps, [2.5, 97.5])))
    estimate = float(np.mean([d.mean() for d in diffs.values()]))
    out["mean"] = (estimate, *(float(q) for q in np.percentile(np.mean(per_bench, axis=0), [2.5, 97.5])))
    return out


def _pooled_pass(finals: list[dict], bench: str) -> float | None:
    """pass@1 on `bench` over a list of `final_pass` results: the mean over problems, then over results."""
    per_seed = [statistics.mean(final[bench].values()) for final in finals if final.get(bench)]
    return statistics.mean(per_seed) if per_seed else None


def arm_rows(run_dir: Path, plan: Plan, record: dict) -> list[dict]:
    """The arms' figures (see the module docstring): one row (`ARM_COLUMNS`) per arm and benchmark, then
    `mean`. The difference columns are absent without a baseline, for the baseline, where nothing pairs, and
    on the mean unless every benchmark pairs."""
    baseline = plan.report.get("baseline")
    specs = {c.name: c for c in plan.curricula}
    finals = {
        arm: {
            json.dumps(specs[n].seed_point, sort_keys=True): final_pass(run_dir, plan, record, n)
            for n in names
        }
        for arm, names in _groups(plan).items()
    }
    benches = sorted({b for runs in finals.values() for final in runs.values() for b in final})
    rows = []
    for arm, names in _groups(plan).items():
        passes = {b: _pooled_pass(list(finals[arm].values()), b) for b in benches}
        passes["mean"] = statistics.mean(passes.values()) if benches and None not in passes.values() else None
        diffs = paired_differences(finals[arm], finals[baseline]) if baseline and arm != baseline else {}
        interval = paired_bootstrap(diffs) if diffs else {}
        if len(diffs) < len(benches):
            interval.pop("mean", None)
        counts = generated(run_dir, plan, record, names)
        for b in [*benches, "mean"]:
            row = {
                "arm": arm,
                "seeds": len(names),
                **counts,
                "benchmark": b,
                "pass@1": passes[b],
                "baseline": baseline or "",
            }
            if b in interval:
                row["seeds_paired"] = next(iter(diffs.values())).shape[0]
                row["problems"] = diffs[b].shape[1] if b in diffs else sum(d.shape[1] for d in diffs.values())
                row["difference"], row["ci_low"], row["ci_high"] = interval[b]
            rows.append(row)
    return rows


def _interval(row: dict) -> str:
    if "difference" not in row:
        return "-"
    return f"{row['difference']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"


def arm_tables(plan: Plan, arms: list[dict]) -> list[str]:
    """The arms' markdown: their tokens and final pass@1, then each minus the baseline with its interval."""
    benches = list(dict.fromkeys(r["benchmark"] for r in arms))
    by_arm: dict[str, dict[str, dict]] = {}
    for r in arms:
        by_arm.setdefault(r["arm"], {})[r["benchmark"]] = r
    axis = next((c.seed_point for c in plan.curricula if c.seed_point), {})
    pooled = f"seeds pooled: the seed axis moves {', '.join(axis)}" if axis else "one curriculum each"
    lines = [
        "",
        f"## Arms ({pooled})",
        "",
        "Rollouts and completion tokens: generated by every stage of every curriculum of the arm (all seeds); a "
        "stage shared by several curricula counts in each. pass@1: the final evaluation, per problem over its "
        "samples, then over problems, then over seeds.",
        "",
    ]
    body = []
    for arm, r in by_arm.items():
        counts = [_fmt(r["mean"][k], "d") for k in ("seeds", "rollouts", "completion_tokens")]
        body.append([arm, *counts, *[_fmt(r[b]["pass@1"]) for b in benches]])
    lines += _table(
        ["arm", "seeds", "rollouts", "completion tokens", *[f"{b} pass@1" for b in benches]], body
    )
    baseline = plan.report.get("baseline")
    if not baseline:
        return [*lines, ""]
    lines += [
        "",
        f"Each arm minus {baseline}: the mean difference of per-problem pass@1 over the pairs (same seed, same "
        f"problem), with a paired bootstrap 95% interval ({BOOTSTRAP_REPLICATES} replicates resampling seeds and "
        f"problems, generator seed {BOOTSTRAP_SEED}); problems per benchmark in `arms.csv`.",
        "",
    ]
    body = []
    for arm, r in by_arm.items():
        if arm != baseline:
            cells = [_interval(r[b]) for b in benches]
            body.append([arm, _fmt(r["mean"].get("seeds_paired"), "d"), *cells])
    lines += _table(["arm", "seeds paired", *[f"{b} - {baseline}" for b in benches]], body)
    return [*lines, ""]


def _overview(plan: Plan, record: dict, rows: list[dict], arms: list[dict]) -> list[str]:
    nodes = record["nodes"]
    benches = _benchmarks(rows)
    trained = [r for r in rows if r["position"]]
    distinct = sum(node_seconds(nodes[n]) for n in plan.nodes)
    alone = sum(r["launch_s"] for r in trained)
    loop = sum((nodes[n].get("metrics") or {}).get("wall_time_s") or 0.0 for n in plan.nodes)
    loop_alone = sum(r["wall_time_s"] or 0.0 for r in trained)
    lines = [
        f"{len(plan.paths)} curricula; {plan.savings_line()}. Time of the stage launches: {distinct:.0f} s "
        f"for the sweep, {alone:.0f} s if each curriculum ran alone (training loops only: {loop:.0f} s vs "
        f"{loop_alone:.0f} s).",
        "",
    ]
    body = []
    for name in plan.paths:
        mine = [r for r in trained if r["curriculum"] == name]
        last = mine[-1]
        body.append(
            [
                name,
                " -> ".join(r["stage"] for r in mine),
                "done" if all(r["status"] == "done" for r in mine) else "incomplete",
                str(sum(r["steps"] or 0 for r in mine)),
                _fmt(last["reward_end"]),
                _fmt(last["cumulative_time_s"], ".0f"),
                *[_fmt(last.get(f"eval_{b}")) for b in benches],
            ]
        )
    head = [
        "curriculum",
        "stages",
        "status",
        "steps",
        "final reward",
        "time alone (s)",
        *[f"{b} (last stage)" for b in benches],
    ]
    lines += _table(head, body)
    if any("seed" in c.point for c in plan.curricula) and benches:
        lines += ["", "Final evaluation over seeds (mean ± half the range):", "", seed_table(plan, rows)]
    if arms:
        lines += arm_tables(plan, arms)
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
            stage_dir = run_dir / record["nodes"][nid]["dir"]
            history = (read_record(stage_dir).get("reward_history") or []) if finished(stage_dir) else []
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
    over seeds, their range shaded; the k-th evaluation of each seed makes one point). False when nothing was
    evaluated."""
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
                points = []
                for r in rows:
                    values = [r.get(f"eval_{b}") for b in (benches if panel == "mean" else [panel])]
                    if r["curriculum"] == name and None not in values:
                        points.append((r["cumulative_steps"], statistics.mean(values)))
                per_seed.append(sorted(points))
            # The k-th evaluation of every seed is one point: seeds whose stages end at different steps (a
            # token budget) still line up; x is their mean step.
            count = min(len(p) for p in per_seed)
            if not count:
                continue
            xs = [statistics.mean(p[k][0] for p in per_seed) for k in range(count)]
            ys = [statistics.mean(p[k][1] for p in per_seed) for k in range(count)]
            ax.plot(xs, ys, marker="o.^sv*"[i % 6], label=group)
            if len(per_seed) > 1:
                lo = [min(p[k][1] for p in per_seed) for k in range(count)]
                hi = [max(p[k][1] for p in per_seed) for k in range(count)]
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
            ax.barh(
                name,
                r["launch_s"],
                left=left,
                color=f"C{r['position'] - 1}",
                hatch="//" if r["shared_by"] > 1 else None,
                edgecolor="white",
            )
            ax.text(left + r["launch_s"] / 2, name, r["stage"], ha="center", va="center", fontsize="x-small")
            left += r["launch_s"]
    ax.barh(
        "sweep (distinct stages)", sum(node_seconds(record["nodes"][n]) for n in plan.nodes), color="grey"
    )
    ax.set_xlabel("stage time (s, launch wall clock); hatched: shared with other curricula, trained once")
    ax.invert_yaxis()
    _save_figure(fig, path)


def plot_arms(plan: Plan, arms: list[dict], path: Path) -> None:
    """Each arm minus the baseline with its 95% interval, a panel per benchmark and their mean (when there is
    a baseline), and the completion tokens each arm generated."""
    benches = list(dict.fromkeys(r["benchmark"] for r in arms))
    names = list(dict.fromkeys(r["arm"] for r in arms))
    baseline = plan.report.get("baseline")
    compared = [n for n in names if n != baseline] if baseline else []
    plt = _pyplot()
    panels = [*benches, "tokens"] if compared else ["tokens"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 0.5 * len(names) + 2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "tokens":
            tokens = {r["arm"]: r["completion_tokens"] for r in arms}
            ax.barh(range(len(names)), [tokens[n] or 0 for n in names], color="grey")
            ax.set_xlabel("completion tokens generated (all seeds)")
            ax.set_title("cost")
        else:
            rows = {r["arm"]: r for r in arms if r["benchmark"] == panel and "difference" in r}
            shown = [n for n in compared if n in rows]
            estimates = [rows[n]["difference"] for n in shown]
            below = [rows[n]["difference"] - rows[n]["ci_low"] for n in shown]
            above = [rows[n]["ci_high"] - rows[n]["difference"] for n in shown]
            ax.errorbar(estimates, [names.index(n) for n in shown], xerr=[below, above], fmt="o", capsize=4)
            ax.axvline(0.0, color="grey", linestyle=":")
            ax.set_xlabel(f"pass@1 minus {baseline} (95% interval)")
            ax.set_title(panel if panel != "mean" else "mean over benchmarks")
        labels = [f"{n} (baseline)" if n == baseline else n for n in names]
        ax.set_yticks(range(len(names)), labels)  # every arm on its own row in every panel, in sweep order
        ax.set_ylim(len(names) - 0.5, -0.5)
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
    writer = csv.DictWriter(
        out,
        fieldnames=COLUMNS + [f"eval_{b}" for b in _benchmarks(rows)],
        restval="",
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    writer.writerows(r for r in rows if r["position"])
    atomic_write_text(run_dir / "report.csv", out.getvalue())
    plot_rewards(run_dir, plan, record, run_dir / reward_png)
    plots = [reward_png] + (["eval.png"] if plot_eval(plan, rows, run_dir / "eval.png") else [])
    lines = [f"# {plan.name}", ""]
    if plan.kind == "sweep":
        plot_time(plan, record, rows, run_dir / "time.png")
        plots.append("time.png")
        has_arms = plan.report.get("baseline") or any(c.seed_point for c in plan.curricula)
        arms = arm_rows(run_dir, plan, record) if has_arms else []
        if arms:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=ARM_COLUMNS, restval="", lineterminator="\n")
            writer.writeheader()
            writer.writerows(arms)
            atomic_write_text(run_dir / "arms.csv", out.getvalue())
            plot_arms(plan, arms, run_dir / "arms.png")
            plots.append("arms.png")
        lines += _overview(plan, record, rows, arms)
    lines += [f"![{p}]({p})" for p in plots]
    for name in plan.paths:
        heading = [f"## {name}", ""] if plan.kind == "sweep" else []
        lines += ["", *heading, stage_table([r for r in rows if r["curriculum"] == name])]
    text = "\n".join(lines) + "\n"
    atomic_write_text(run_dir / markdown, text)
    return text
