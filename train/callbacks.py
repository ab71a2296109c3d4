"""Trainer callbacks of a stage: complete-checkpoint markers, per-problem statistics, early advance.

All of them extend TRL/transformers through the public `TrainerCallback` surface.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from curricula.files import atomic_write_text
from train.config import PROBLEM_STATS

logger = logging.getLogger(__name__)

# Written into checkpoint-N/ once every rank has finished saving it: transformers writes checkpoints in
# place, so a kill during a save leaves a directory that looks like a checkpoint but is not one.
COMPLETE_MARKER = "stagerl_complete"


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _gather(obj) -> list:
    if dist.is_available() and dist.is_initialized():
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def last_complete_checkpoint(stage_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` of a stage directory that was saved completely, or None."""
    done = [p for p in Path(stage_dir).glob("checkpoint-*") if (p / COMPLETE_MARKER).exists()]
    return str(max(done, key=lambda p: int(p.name.split("-")[1]))) if done else None


class CompleteCheckpointCallback(TrainerCallback):
    """Marks each checkpoint complete after all ranks saved it (see COMPLETE_MARKER)."""

    def on_save(self, args, state, control, **kwargs):
        _barrier()
        if state.is_world_process_zero:
            atomic_write_text(Path(args.output_dir) / f"checkpoint-{state.global_step}" / COMPLETE_MARKER, "")
        _barrier()


class ProblemStats(TrainerCallback):
    """Attempts and successes per problem id, from the accuracy reward, saved with every checkpoint.

    `wrap(reward_fn)` returns the reward function unchanged in behaviour but recording its scores; a score
    of 1.0 counts as a success. Counts are per rank and merged on save, so under DDP each rank only sees its
    own completions, yet the file holds them all.
    """

    def __init__(self, stage_dir: str | Path):
        self.stage_dir = Path(stage_dir)
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

    def write(self, path: Path, counts: dict[str, list[int]]) -> None:
        lines = [
            json.dumps({"id": pid, "attempts": a, "successes": s}) for pid, (a, s) in sorted(counts.items())
        ]
        atomic_write_text(path, "".join(line + "\n" for line in lines))

    def load(self, checkpoint: str | Path) -> None:
        """Resume counts from a checkpoint (only rank 0 keeps them, so the merge counts them once)."""
        path = Path(checkpoint) / PROBLEM_STATS
        if path.exists() and (not dist.is_initialized() or dist.get_rank() == 0):
            self.counts = {r["id"]: [r["attempts"], r["successes"]] for r in map(json.loads, path.open())}

    def on_save(self, args, state, control, **kwargs):
        counts = self.merged()
        if state.is_world_process_zero:
            self.write(Path(args.output_dir) / f"checkpoint-{state.global_step}" / PROBLEM_STATS, counts)

    def on_train_end(self, args, state, control, **kwargs):
        counts = self.merged()
        if state.is_world_process_zero:
            self.write(self.stage_dir / PROBLEM_STATS, counts)


class EarlyAdvance(TrainerCallback):
    """Ends the stage once the level looks learned: moving-average reward over a threshold, or a plateau.

    The decision uses the logged (already all-rank-averaged) train reward, so every rank decides alike, and
    it is recomputed from `state.log_history` on resume. The step it stopped at and why go to `stage.json`.
    """

    def __init__(self, threshold: float | None, plateau_delta: float | None, window: int, min_steps: int):
        self.threshold, self.plateau_delta, self.window, self.min_steps = (
            threshold,
            plateau_delta,
            window,
            min_steps,
        )
        self.reason: str | None = None

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
