"""A stage's training rows, built once per run: loaded, mixed, decontaminated, filtered.

The main process builds them (`stagerl.data`: sources, decontamination, problems earlier stages always or
never solved) and saves them under the stage directory (`.data/<key>/`, written beside and renamed); the other
processes wait for it (`main_process_first`) and load that copy, so a multi-process launch downloads and
decontaminates once and every rank trains on the same rows. The key hashes every setting that shapes the
rows, so a resumed stage reuses its copy (the same rows even if a hub dataset changed meanwhile) and a
changed setting builds anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from stagerl.data.files import atomic_directory, atomic_write_json
from stagerl.data.stage_dir import DATA_CACHE

logger = logging.getLogger(__name__)

DATA_FIELDS = (
    "data",
    "mix_stopping",
    "question_column",
    "answer_column",
    "prompt_template",
    "system_prompt",
    "decontaminate",
    "drop_solved",
    "drop_solved_min_attempts",
    "drop_unsolved_min_attempts",
    "max_train_samples",
    "dataset_name",
    "dataset_config",
    "dataset_train_split",
    "datasets",
)


def data_key(stage_args, seed: int) -> str:
    """A hash of everything that decides the rows (with `drop_solved`, of the earlier stages' statistics files'
    contents too)."""
    settings = {name: getattr(stage_args, name) for name in DATA_FIELDS}
    settings["seed"] = seed
    if stage_args.drop_solved:
        settings["stats"] = [
            hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in stage_args.problem_stats
        ]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def build_rows(stage_args, seed: int):
    """Load and filter the rows (one process). Returns `(dataset, info)`; info goes into `stage.json`."""
    from stagerl.data.sources import drop_zero_advantage, fingerprint, load_stage_data

    components = stage_args.components()
    dataset = load_stage_data(
        components,
        seed=seed,
        stopping=stage_args.mix_stopping,
        question_column=stage_args.question_column,
        answer_column=stage_args.answer_column,
        prompt_template=stage_args.prompt_template,
        system_prompt=stage_args.system_prompt,
    )
    dropped = {}  # rows removed before training, by reason
    if stage_args.decontaminate:
        from stagerl.data.decontaminate import filter_contaminated

        dataset, dropped["contaminated"] = filter_contaminated(dataset, stage_args.decontaminate)
    if stage_args.drop_solved:
        dataset, zero_advantage = drop_zero_advantage(
            dataset,
            stage_args.problem_stats,
            stage_args.drop_solved_min_attempts,
            stage_args.drop_unsolved_min_attempts,
        )
        dropped.update(zero_advantage)
    if stage_args.max_train_samples is not None:
        dataset = dataset.select(range(min(stage_args.max_train_samples, len(dataset))))
    specs = stage_args.data or [c.spec() for c in components]  # as written, or TRL's spelling resolved
    if len(dataset) == 0:
        raise ValueError(f"data={specs}: no training rows left")
    info = {
        "specs": specs,
        "rows": len(dataset),
        "fingerprint": fingerprint(dataset),
        "dropped": dropped,
    }
    return dataset, info


def stage_rows(stage_args, training_args):
    """The stage's rows and their info, built by the main process once and read by the others.

    Args:
        stage_args: the stage's `StageArguments`.
        training_args: its `GRPOConfig` (output directory, seed, process roles).

    Returns:
        `(dataset, info)`.
    """
    from datasets import load_from_disk

    cache = Path(training_args.output_dir) / DATA_CACHE / data_key(stage_args, training_args.seed)
    with training_args.main_process_first(local=False, desc="stage data"):
        if not (cache / "info.json").is_file():  # the main process builds; the others then find it built
            dataset, info = build_rows(stage_args, training_args.seed)
            with atomic_directory(cache) as tmp:
                dataset.save_to_disk(str(tmp))
                atomic_write_json(tmp / "info.json", info)
        info = json.loads((cache / "info.json").read_text())
        dataset = load_from_disk(str(cache))
    logger.info(
        "data: %d rows (fingerprint %s), dropped %s", info["rows"], info["fingerprint"], info["dropped"]
    )
    return dataset, info
