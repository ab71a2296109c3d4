"""Trainer callbacks of a stage: complete checkpoints, per-problem statistics, early advance.

All of them extend TRL/transformers through the public `TrainerCallback` surface.

A checkpoint is complete once `stagerl_complete` is in it. `StageCheckpoint` writes, after transformers saved
a checkpoint: the stage's own state (each part's files: per-problem statistics, the early-advance decision),
then the marker, then removes checkpoints beyond `save_total_limit` (transformers' own rotation is switched
off: it deletes the older checkpoint before the new one is marked complete, so a kill there left none).
Resuming reads every part back and fails on a missing file, so a resumed stage continues exactly where the
checkpoint left it.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from curricula.data.files import atomic_write_text, failpoint
from train.config import PROBLEM_STATS

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "stagerl_complete"
EARLY_ADVANCE_FILE = "early_advance.json"


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _gather(obj) -> list:
    if dist.is_available() and dist.is_initialized():
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def checkpoint_step(path: str | Path) -> int:
    return int(Path(path).name.split("-")[1])


def last_complete_checkpoint(stage_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` of a stage directory that was saved completely, or None."""
    done = [p for p in Path(stage_dir).glob("checkpoint-*") if (p / COMPLETE_MARKER).exists()]
    return str(max(done, key=checkpoint_step)) if done else None


def _read_part(checkpoint: str | Path, name: str) -> str:
    path = Path(checkpoint) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {checkpoint} was not saved by a stagerl stage, so it cannot be resumed exactly"
        )
    return path.read_text()


class StageCheckpoint(TrainerCallback):
    """Completes each checkpoint (see the module docstring).

    Args:
        parts: stage state savers; each has `checkpoint_files() -> {name: text}` (called on every rank: it
            may gather) and `load_checkpoint(dir)`.
        keep: how many complete checkpoints to keep (`save_total_limit`; None keeps all).
    """

    def __init__(self, parts: list, keep: int | None):
        self.parts, self.keep = parts, keep

    def load(self, checkpoint: str | Path) -> None:
        for part in self.parts:
            part.load_checkpoint(checkpoint)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        files = {name: text for part in self.parts for name, text in part.checkpoint_files().items()}
        _barrier()  # every rank finished writing its share of the checkpoint
        if state.is_world_process_zero:
            for name, text in files.items():
                atomic_write_text(checkpoint / name, text)
            failpoint("checkpoint-before-marker")
            atomic_write_text(checkpoint / COMPLETE_MARKER, "")
            self.rotate(Path(args.output_dir), newest=checkpoint)
        _barrier()

    def rotate(self, stage_dir: Path, newest: Path) -> None:
        """Remove older checkpoints beyond `keep`, only once `newest` is complete: unmark, then delete."""
        older = sorted((p for p in stage_dir.glob("checkpoint-*") if p != newest), key=checkpoint_step)
        if self.keep is None:
            return
        for old in older[: max(0, len(older) - (self.keep - 1))]:
            (old / COMPLETE_MARKER).unlink(missing_ok=True)
            failpoint("rotate-unmarked")
            shutil.rmtree(old, ignore_errors=True)


class ProblemStats:
    """Attempts and successes per problem id, from the accuracy reward, saved with every checkpoint.

    `wrap(reward_fn)` returns the reward function unchanged in behaviour but recording its scores; a score
    of 1.0 counts as a success. Counts are per rank and merged on save, so under DDP each rank only sees its
    own completions, yet the file holds them all.
    """

    def __init__(self):
        self.counts: dict[str, list[int]] = {}

    def wrap(self, reward_fn):
        @functools.wraps(reward_fn)
        def recorded(completions, id, **kwargs):  # noqa: A002 - `id` is the dataset column TRL passes
            scores = reward_fn(completions, id=id, **kwargs)
            for pid, score in zip(id, scores, strict=True):
                if score is not None:
                    entry = self.counts.setdefault(pid, [0, 0])
                    entry[0] += 1
                    entry[1] += int(score >= 1.0)
            return scores

        return recorded

    def merged(self) -> dict[str, list[int]]:
        total: dict[str, list[int]] = {}
        for part in _gather(self.counts):
            for pid, (attempts, successes) in part.items():
                entry = total.setdefault(pid, [0, 0])
                entry[0] += attempts
                entry[1] += successes
        return total

    @staticmethod
    def text(counts: dict[str, list[int]]) -> str:
        rows = (
            json.dumps({"id": pid, "attempts": a, "successes": s}) for pid, (a, s) in sorted(counts.items())
        )
        return "".join(row + "\n" for row in rows)

    def checkpoint_files(self) -> dict[str, str]:
        return {PROBLEM_STATS: self.text(self.merged())}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        """Resume counts (only rank 0 keeps them, so the merge counts them once)."""
        rows = [json.loads(line) for line in _read_part(checkpoint, PROBLEM_STATS).splitlines() if line]
        if not dist.is_initialized() or dist.get_rank() == 0:
            self.counts = {r["id"]: [r["attempts"], r["successes"]] for r in rows}


class EarlyAdvance(TrainerCallback):
    """Ends the stage once the level looks learned: moving-average reward over a threshold, or a plateau.

    The decision uses the logged (already all-rank-averaged) train reward, so every rank decides alike. It
    is saved with the checkpoint it forces, so a resumed stage that had already advanced trains no further.
    """

    def __init__(self, threshold: float | None, plateau_delta: float | None, window: int, min_steps: int):
        self.threshold, self.plateau_delta, self.window, self.min_steps = (
            threshold,
            plateau_delta,
            window,
            min_steps,
        )
        self.reason: str | None = None

    def checkpoint_files(self) -> dict[str, str]:
        return {EARLY_ADVANCE_FILE: json.dumps({"reason": self.reason})}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        self.reason = json.loads(_read_part(checkpoint, EARLY_ADVANCE_FILE))["reason"]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "reward" not in logs or state.global_step < self.min_steps:
            return
        rewards = [e["reward"] for e in state.log_history if "reward" in e]
        if len(rewards) < self.window:
            return
        avg = sum(rewards[-self.window :]) / self.window
        if self.threshold is not None and avg >= self.threshold:
            self.reason = (
                f"moving-average reward {avg:.3f} >= threshold {self.threshold} at step {state.global_step}"
            )
        elif self.plateau_delta is not None and len(rewards) >= 2 * self.window:
            gain = avg - sum(rewards[-2 * self.window : -self.window]) / self.window
            if gain < self.plateau_delta:
                self.reason = (
                    f"plateau: moving-average reward gained {gain:.3f} < {self.plateau_delta} over "
                    f"{self.window} logged steps, at step {state.global_step}"
                )
        if self.reason:
            logger.info("Early advance: %s", self.reason)
            control.should_training_stop = True
            control.should_save = True


class StageAlreadyTrained(Exception):
    """Raised before the first step when the resumed checkpoint is already the end of the stage."""


class StopIfTrained(TrainerCallback):
    """Stops a resumed stage before its first step when its checkpoint is already its end.

    transformers checks for the end of training only after a step, so resuming the last checkpoint (a kill
    between the last step and the export) would train one step more. Raised from `on_train_begin`, after the
    checkpoint's weights, optimizer and state are loaded: the caller exports them as they are.
    """

    def __init__(self, trained: bool):
        self.trained = trained

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trained:
            raise StageAlreadyTrained
