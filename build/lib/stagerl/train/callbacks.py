"""Trainer-side state of a stage: per-problem statistics (from the accuracy reward) and the early-advance rule.

Each has `checkpoint_files()` / `load_checkpoint()`, through which `stagerl.train.checkpoints.StageCheckpoint` saves
it with every checkpoint and a resumed stage reads it back. They extend TRL through its public surface: a
reward-function wrapper and a `TrainerCallback`.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from transformers import TrainerCallback

from stagerl.train.checkpoints import read_checkpoint_file
from stagerl.train.config import PROBLEM_STATS
from stagerl.train.distributed import gather, rank

logger = logging.getLogger(__name__)

EARLY_ADVANCE_FILE = "early_advance.json"


def observed(reward_fn, observers: list):
    """`reward_fn` unchanged in behaviour, each call's scores also shown to every observer's `observe(ids,
    scores, log_metric)` (TRL passes the dataset's `id` column and `log_metric` to reward functions)."""

    @functools.wraps(reward_fn)
    def recorded(completions, id, **kwargs):  # noqa: A002 - `id` is the dataset column TRL passes
        scores = reward_fn(completions, id=id, **kwargs)
        for observer in observers:
            observer.observe(id, scores, kwargs.get("log_metric"))
        return scores

    return recorded


class ProblemStats:
    """Attempts and successes per problem id, from the accuracy reward, saved with every checkpoint.

    A score of 1.0 counts as a success. Counts are per rank and merged on save, so under DDP each rank only
    sees its own completions, yet the file holds them all.
    """

    def __init__(self):
        self.counts: dict[str, list[int]] = {}

    def observe(self, ids: list[str], scores: list[float | None], log_metric=None) -> None:
        for pid, score in zip(ids, scores, strict=True):
            if score is not None:
                entry = self.counts.setdefault(pid, [0, 0])
                entry[0] += 1
                entry[1] += int(score >= 1.0)

    def merged(self) -> dict[str, list[int]]:
        total: dict[str, list[int]] = {}
        for part in gather(self.counts):
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
        rows = [
            json.loads(line) for line in read_checkpoint_file(checkpoint, PROBLEM_STATS).splitlines() if line
        ]
        if rank() == 0:
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
        self.reason = json.loads(read_checkpoint_file(checkpoint, EARLY_ADVANCE_FILE))["reason"]

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
