"""A stage's directory: the contract between a stage (`train/grpo.py`, which writes it) and those that read it
(the runner, its report, the hub push, the next stage). Every file name and the record's keys are spelled here.

    STAGE/
      checkpoint-N/     transformers' checkpoint plus the stage's own state (what it trained on and how its
                        batches were made, per-problem statistics, the sampler, early advance, generation
                        counts); complete once `COMPLETE_MARKER` is in it (written last); a resumed stage
                        starts from the newest complete one
      final/            the exported model and tokenizer (`from_pretrained` loads it; the next stage starts here)
      stage.json        the stage's record (`RECORD_KEYS`), written last: the stage is finished once final/ and
                        it exist (`finished`)
      problems.jsonl    per-problem statistics (`stagerl.data.problems`), written just before stage.json
      eval/             the runner's evaluation of final/: one `<benchmark>.jsonl` per benchmark (a line per
                        sample), then `summary.json`
      tracking.json     the tracker run's identity, so a resumed stage appends to its run
      hub.json          where and when final/ was pushed, so it is pushed once
      .data/            the stage's rows, built once per run by the main process

Every file is written under a temporary name and renamed (`stagerl.data.files`), so a kill leaves the old file
or the new one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

CHECKPOINT_GLOB = "checkpoint-*"
COMPLETE_MARKER = "stagerl_complete"
FINAL_DIR = "final"
STAGE_RECORD = "stage.json"
PROBLEM_STATS = "problems.jsonl"
EVAL_DIR = "eval"
EVAL_SUMMARY = "summary.json"
TRACKING_FILE = "tracking.json"
HUB_RECORD = "hub.json"
DATA_CACHE = ".data"

RECORD_KEYS = (
    "status",  # "done"
    "steps",  # optimizer steps trained, and the cap
    "max_steps",
    "curriculum_step",  # the curriculum-wide step the stage ended at (the earlier stages' steps plus its own)
    "reward_start",  # mean train reward over the first and last fifth of the logged steps, and the history
    "reward_end",
    "reward_window",
    "reward_history",
    "advanced_early",  # why the stage ended before its cap (early advance, a token budget), or None
    "think_open",  # whether the chat template opened a reasoning block in the prompt
    "chat_template",  # {"think_open", "detected", "template_hash"}
    "rewards",  # each reward's resolved settings
    "generation",  # what was generated and trained on (`stagerl.train.rollouts.GenerationCounts`)
    "sampler",  # the prompt sampler's summary, or None for TRL's own
    "data",  # the rows: specs, count, fingerprint, rows dropped by reason
    "wall_time_s",
    "resumed_from",  # the checkpoint the last launch resumed, or None
    "version",  # this project's commit and the libraries' versions
    "config",  # the resolved stage, GRPO and model settings, credentials redacted
    "hub",  # where final/ is pushed, or None
)


def finished(stage_dir: str | Path) -> bool:
    """Whether a stage directory holds a finished stage (its export and its record, written last)."""
    return (Path(stage_dir) / FINAL_DIR).is_dir() and (Path(stage_dir) / STAGE_RECORD).is_file()


def stage_contents(stage_dir: str | Path) -> list[str]:
    """What of a stage `stage_dir` holds: its checkpoints (complete or not, by step), `final/` and
    `stage.json`, by name; empty when it holds none (a new, empty or missing directory)."""
    path = Path(stage_dir)
    checkpoints = sorted((p.name for p in path.glob(CHECKPOINT_GLOB)), key=lambda n: (len(n), n))
    return checkpoints + [
        name for name in (f"{FINAL_DIR}/", STAGE_RECORD) if (path / name.rstrip("/")).exists()
    ]


def move_aside(stage_dir: str | Path) -> Path:
    """Rename a stage directory to `<name>.replaced-<time>` beside it, so that a stage can start afresh in its
    place; nothing is deleted. Returns where it went."""
    path = Path(stage_dir)
    aside = path.with_name(f"{path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside


def read_record(stage_dir: str | Path) -> dict:
    """A finished stage's record (ValueError naming the file when it cannot be read). Records of earlier
    versions may lack keys: readers take what they need with `.get`."""
    path = Path(stage_dir) / STAGE_RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable stage record ({e})") from None


def curriculum_step(record: dict) -> int:
    """The curriculum-wide step a stage's record ended at (a record of an earlier version: its own steps)."""
    return int(record.get("curriculum_step", record["steps"]))
