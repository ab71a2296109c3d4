"""Difficulty labelling: level-1/2/3 datasets from any problem set, from reference-model pass rates.

    python -m stagerl.train.label --input problems.jsonl \\
        --models SMALL,MEDIUM,LARGE --samples 8 --output runs/labelled
    # then, as curriculum data: data: ["runs/labelled:1"] ... ["runs/labelled:3"]

Static mode (default): each problem gets K samples from the small model; the medium model only sees the
problems small fails, the large model only those both fail (the rules are in `stagerl.data.levels`).
Samples are graded with `stagerl.rewards.grade` as training grades them: a completion cut off at
`--max-new-tokens` earns nothing from a fallback answer, and when a model's chat template opens a reasoning
block (R1-Distill's `<think>`) no answer counts before `</think>` (`--think-open auto`: read from each
model's template; `true`/`false` override; recorded per model in `summary.json`). An ungradable gold
answer counts as no sample. Each model is loaded once for all its batches (`stagerl.train.generation`: vLLM
where it can run, else transformers; `--backend` chooses) and released before the next model's is opened; it
is seeded once with `--seed`, so each batch draws new samples from one stream. Results are
appended per batch of problems to `DIR/results.jsonl` (`{"id", "model", "successes", "samples"}`, fsynced);
a rerun with the same `--output` skips every `(id, model)` already there, so a killed run continues. A
model given for two roles is sampled once and its pass rate reused. `--pass-rates FILE` pre-loads known
pass rates (formats: `stagerl.data.levels.parse_record`; a record without `model`, such as the shared
`difficulty` signals, counts as the SMALL model) and only what is still needed is generated;
`--no-generate` never generates (problems whose level needs an unknown rate are discarded as `missing_*`).

Adaptive mode (`--mode adaptive --input DIR --pass-rates STAGE/problems.jsonl ...`): relabels a labelled
directory from training's per-problem statistics (solved every time: one level down, level 1 dropped;
never solved: one level up; partial or too few attempts: unchanged), for use between stages.

Outputs in DIR: `math_difficulty_level_{1,2,3}.parquet` (the AM-Math-Difficulty-RL layout: question, answer,
id, level, pass rates; loaded by `stagerl.data.sources` as `DIR:LEVEL`), `pass_rates.csv` (every problem, its
level, 0 = discarded, and why), `histogram.png`, `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from stagerl.data.files import atomic_write_json
from stagerl.data.layouts import find_layout
from stagerl.data.levels import (
    ROLES,
    LevelRules,
    adaptive_level,
    assign_level,
    needed_role,
    rate,
    read_records,
)
from stagerl.data.prompts import R1_INSTRUCTION, chat_prompt
from stagerl.data.sources import AM_LEVEL_FILE, AM_LEVELS
from stagerl.rewards.cli import run_command, setup_logging
from stagerl.train.generation import BACKENDS, DEFAULT_BATCH_SIZE, THINK_OPEN_CHOICES
from stagerl.train.grading import grade_samples
from stagerl.train.label_outputs import plot_histogram, summarize, write_levels, write_table

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stagerl.train.label", description=__doc__.split("\n")[0])
    p.add_argument(
        "--input", required=True, help="problems: .jsonl, .parquet, hub id; adaptive: a labelled DIR"
    )
    p.add_argument("--output", required=True, help="output directory (also holds the resumable results)")
    p.add_argument("--mode", choices=("static", "adaptive"), default="static")
    p.add_argument(
        "--models", help="SMALL,MEDIUM,LARGE (paths, hub ids or stagerl: names); one name = all three"
    )
    p.add_argument("--samples", type=int, default=8, help="K samples per problem and model")
    p.add_argument(
        "--pass-rates", nargs="+", default=[], help="known pass rates (static) / training stats (adaptive)"
    )
    p.add_argument("--no-generate", action="store_true", help="use only known pass rates")
    p.add_argument("--fail-at", type=float, default=0.0, help="pass rate <= this is a failure")
    p.add_argument("--solve-at", type=float, default=1.0, help="pass rate >= this is solved every time")
    p.add_argument("--retain-fraction", type=float, default=0.5, help="share of large-solved kept at level 3")
    p.add_argument(
        "--both-partial-level", type=int, choices=(1, 2), default=1, help="small and medium partial"
    )
    p.add_argument("--min-attempts", type=int, default=1, help="adaptive: attempts needed to move a problem")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling, --limit and the level-3 retention")
    p.add_argument("--limit", type=int, help="label a seeded random sample of this many problems")
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=8, help="problems per generate call and per flush")
    p.add_argument(
        "--gen-batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="sequences per forward pass"
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto (default): vLLM where it can run (a GPU, or vLLM's CPU build), else transformers; each "
        "model is loaded once",
    )
    p.add_argument("--grade-timeout", type=float, help="seconds per graded answer (default: the pool's)")
    p.add_argument("--question-column")
    p.add_argument("--answer-column")
    p.add_argument("--prompt-template", default=R1_INSTRUCTION, help="user message; {problem} is replaced")
    p.add_argument(
        "--think-open",
        choices=THINK_OPEN_CHOICES,
        default="auto",
        help="whether prompts open a reasoning block (default auto: read from each model's chat template)",
    )
    return p


# ---------------------------------------------------------------- input


def load_problems(
    source: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    question_column: str | None = None,
    answer_column: str | None = None,
) -> list[dict]:
    """Load problems as rows `{"id", "question", "answer"[, "input_level"]}`.

    Args:
        source: a .jsonl/.json/.parquet file or a hub dataset id (train split).
        limit: keep a seeded random sample of this many (original order kept).
        seed: seed of that sample.
        question_column: the problem's column or nested field (`a.b`); found as training data's is when None
            (`stagerl.data.layouts.find_layout`: flat columns, chat turns, nested fields).
        answer_column: the answer's; found when None (a reference solution gives its last `\\boxed{}`).

    Returns:
        The rows; ids come from an `id` column, else `<file stem>-<row index>`.
    """
    from datasets import load_dataset

    if source.endswith((".jsonl", ".json", ".parquet")):
        kind = "parquet" if source.endswith(".parquet") else "json"
        ds = load_dataset(kind, data_files=source, split="train")
    else:
        ds = load_dataset(source, split="train")
    layout = find_layout(ds, source, question_column, answer_column)
    indices = list(range(len(ds)))
    if limit is not None and limit < len(ds):
        indices = sorted(random.Random(seed).sample(indices, limit))
    tag = re.sub(r"[^A-Za-z0-9]+", "-", Path(source).stem).strip("-")
    rows = []
    for i in indices:
        raw = ds[i]
        question, answer = layout.values(raw, f"{source} row {i}")
        row = {"id": str(raw["id"]) if "id" in raw else f"{tag}-{i}", "question": question, "answer": answer}
        if "level" in raw:
            row["input_level"] = raw["level"]
        rows.append(row)
    dupes = [pid for pid, n in Counter(r["id"] for r in rows).items() if n > 1]
    if dupes:
        raise ValueError(f"{source}: duplicate problem ids, e.g. {dupes[:3]}")
    return rows


# ---------------------------------------------------------------- resumable results


class ResultLog:
    """The append-only results file: one `{"id", "model", "successes", "samples"}` line per problem and model.

    Opening it drops a torn last line (a kill mid-write), so appends start on a clean line.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                logger.warning("%s: dropping a torn last line (%d bytes)", self.path, len(data) - end)
                with open(self.path, "r+b") as f:
                    f.truncate(end)

    def load(self) -> dict[tuple[str, str], list[float]]:
        """Everything recorded so far, `{(id, model): [successes, samples]}`."""
        return read_records(self.path) if self.path.exists() else {}

    def append(self, records: list[dict]) -> None:
        """Append records and make them durable (flush + fsync) before returning."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())


def resolve_rates(
    pid: str, models: dict[str, str], known: dict, rules: LevelRules
) -> tuple[dict, str | None]:
    """Walk the rules for one problem with the pass rates known so far.

    Returns:
        `(rates by role, the role whose unknown rate is needed next or None when decided)`.
    """
    rates: dict[str, float | None] = {}
    while (role := needed_role(rates, rules)) is not None:
        key = (pid, models[role])
        if key not in known:
            return rates, role
        rates[role] = rate(*known[key])
    return rates, None


def sample_and_grade(
    problems: list[dict],
    model: str,
    generator,
    log: ResultLog,
    known: dict,
    args: argparse.Namespace,
    think_open: bool,
) -> None:
    """Generate K samples per problem with one model's generator, grade them as evaluation does (with its
    template's `think_open`), record them batch by batch."""
    step = max(args.batch_size, 1)
    for start in tqdm(range(0, len(problems), step), desc=f"label {model}", unit="batch"):
        batch = problems[start : start + step]
        prompts = [chat_prompt(str(p["question"]), args.prompt_template) for p in batch]
        outs = generator.sample(
            prompts,
            samples=args.samples,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
        )
        records = []
        grades = grade_samples([p["answer"] for p in batch], outs, think_open, timeout=args.grade_timeout)
        for p, problem_grades in zip(batch, grades, strict=True):
            graded = [s for s in problem_grades if s is not None]
            rec = {
                "id": p["id"],
                "model": model,
                "successes": sum(s >= 1.0 for s in graded),
                "samples": len(graded),
            }
            records.append(rec)
            known[(p["id"], model)] = [rec["successes"], rec["samples"]]
        log.append(records)


def label_static(
    problems: list[dict],
    models: dict[str, str],
    rules: LevelRules,
    args: argparse.Namespace,
    *,
    open_generator: Callable | None = None,
) -> tuple[list[dict], dict[str, dict]]:
    """Collect the pass rates the rules need (generating what is unknown) and assign levels.

    Args:
        problems: rows from `load_problems`.
        models: model name by role.
        rules: the level rules.
        args: the parsed command line (output, samples, generation settings, pass_rates, no_generate).
        open_generator: `stagerl.train.generation.open_generator` unless given (tests pass a fake). One
            generator per model, released before the next model's opens.

    Returns:
        The problems, each with `level`, `reason` and `pass_<role>` (None where not needed or ungradable),
        and the template settings (`think_open`, `template_hash`) of each model sampled.
    """
    from stagerl.train.generation import template_settings

    log = ResultLog(Path(args.output) / RESULTS_FILE)
    known: dict[tuple[str, str], list[float]] = {}
    for path in args.pass_rates:
        for key, (s, n) in read_records(path, default_model=models["small"]).items():
            entry = known.setdefault(key, [0.0, 0.0])
            entry[0], entry[1] = entry[0] + s, entry[1] + n
    logged = log.load()
    known.update(logged)
    templates: dict[str, dict] = {}
    logger.info(
        "known pass rates: %d from --pass-rates, %d from %s", len(known) - len(logged), len(logged), log.path
    )
    while not args.no_generate:
        todo: dict[str, list[dict]] = {}
        for p in problems:
            _, role = resolve_rates(p["id"], models, known, rules)
            if role is not None:
                todo.setdefault(models[role], []).append(p)
        if not todo:
            break
        if open_generator is None:
            from stagerl.train.generation import open_generator
        for model, todo_problems in todo.items():
            logger.info("%s: %d problems to sample (K=%d)", model, len(todo_problems), args.samples)
            if model not in templates:
                templates[model] = template_settings(model, THINK_OPEN_CHOICES[args.think_open])
            think_open = templates[model]["think_open"]
            with open_generator(
                model, backend=args.backend, seed=args.seed, batch_size=args.gen_batch_size
            ) as generator:
                sample_and_grade(todo_problems, model, generator, log, known, args, think_open)
    labelled = []
    for p in problems:
        rates, _ = resolve_rates(p["id"], models, known, rules)
        level, reason = assign_level(p["id"], rates, rules)
        labelled.append({**p, "level": level, "reason": reason, **{f"pass_{r}": rates.get(r) for r in ROLES}})
    return labelled, templates


# ---------------------------------------------------------------- adaptive


def read_level_dir(source: str) -> list[dict]:
    """Rows of a labelled directory (`math_difficulty_level_*.parquet`) or a file with a `level` column."""
    import pyarrow.parquet as pq

    path = Path(source)
    if path.is_dir():
        rows = []
        for level in AM_LEVELS:
            f = path / AM_LEVEL_FILE.format(level=level)
            if f.exists():
                rows += [{**r, "level": level} for r in pq.read_table(f).to_pylist()]
        return rows
    rows = load_problems(source)
    if any("input_level" not in r for r in rows):
        raise ValueError(f"--input {source}: adaptive mode needs a labelled directory or a 'level' column")
    return [{**r, "level": int(r.pop("input_level"))} for r in rows]


def label_adaptive(
    rows: list[dict], stats_paths: list[str], rules: LevelRules, min_attempts: int
) -> list[dict]:
    """Relabel labelled rows from training statistics (`problems.jsonl`, summed over files).

    Returns:
        The rows with `level` updated (0 = dropped), `previous_level`, `attempts`, `successes`, `reason`.
    """
    stats: dict[str, list[float]] = {}
    for path in stats_paths:
        for (pid, _), (s, n) in read_records(path, default_model="policy").items():
            entry = stats.setdefault(pid, [0.0, 0.0])
            entry[0], entry[1] = entry[0] + s, entry[1] + n
    out = []
    for r in rows:
        successes, attempts = stats.get(str(r["id"]), [0, 0])
        level = adaptive_level(r["level"], int(attempts), int(successes), rules, min_attempts=min_attempts)
        moved = "same" if level == r["level"] else ("down" if level < r["level"] else "up")
        reason = "mastered" if level == 0 else moved
        out.append(
            {
                **r,
                "previous_level": r["level"],
                "level": level,
                "attempts": attempts,
                "successes": successes,
                "reason": reason,
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the labelling; returns the summary written to `DIR/summary.json`."""
    args = build_parser().parse_args(argv)
    setup_logging()
    rules = LevelRules(args.fail_at, args.solve_at, args.retain_fraction, args.seed, args.both_partial_level)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if args.mode == "adaptive":
        if not args.pass_rates:
            raise ValueError("--mode adaptive needs --pass-rates STAGE/problems.jsonl (training statistics)")
        rows = label_adaptive(read_level_dir(args.input), args.pass_rates, rules, args.min_attempts)
        extra = [c for c in ("pass_small", "pass_medium", "pass_large") if rows and c in rows[0]]
        templates = {}
        columns = ["id", "previous_level", "level", "reason", "attempts", "successes"]
    else:
        if not args.models:
            raise ValueError("--models SMALL,MEDIUM,LARGE is required in static mode")
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        if len(names) == 1:
            names *= 3
        if len(names) != 3:
            raise ValueError(
                f"--models={args.models!r}: give SMALL,MEDIUM,LARGE (or one model for all three)"
            )
        if args.samples < 1:
            raise ValueError(f"--samples={args.samples} must be >= 1")
        if len(set(names)) < 3:
            logger.warning("models %s repeat: a repeated model's pass rate is reused across its roles", names)
        models = dict(zip(ROLES, names, strict=True))
        problems = load_problems(
            args.input,
            limit=args.limit,
            seed=args.seed,
            question_column=args.question_column,
            answer_column=args.answer_column,
        )
        rows, templates = label_static(problems, models, rules, args)
        extra = [f"pass_{r}" for r in ROLES]
        columns = ["id", "level", "reason", *extra] + (
            ["input_level"] if rows and "input_level" in rows[0] else []
        )
    write_levels(out_dir, rows, extra)
    write_table(out_dir / "pass_rates.csv", rows, columns)
    plot_histogram(out_dir / "histogram.png", rows, samples=min(args.samples, 20))
    summary = {
        **summarize(rows),
        "mode": args.mode,
        "args": vars(args),
        "templates": templates,
        "seconds": round(time.time() - started, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    logger.info("levels %s; reasons %s -> %s", summary["levels"], summary["reasons"], out_dir)
    return summary


if __name__ == "__main__":
    run_command(main)
