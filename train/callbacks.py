"""The stage's early end, a `TrainerCallback` fed the accuracy of every generated group: the accuracy rules of
early advance, and the completion-token budget.

It has `checkpoint_files()` / `load_checkpoint()`, through which `stagerl.train.checkpoints.StageCheckpoint`
saves it with every checkpoint and a resumed stage reads it back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import TrainerCallback

from stagerl.data.problems import Group
from stagerl.train.checkpoints import read_checkpoint_file

logger = logging.getLogger(__name__)

EARLY_ADVANCE_FILE = "early_advance.json"


def block_boundary(args, step: int) -> bool:
    """Whether optimizer step `step` ends a generation block.

    TRL generates once every `steps_per_generation * num_iterations` micro-batches and trains on those
    completions until the next generation; an optimizer step is `gradient_accumulation_steps` micro-batches.
    A checkpoint resumed inside a block would regenerate its rest, so decisions that end or save a stage wait
    for a boundary.

    >>> from types import SimpleNamespace as A
    >>> [block_boundary(A(gradient_accumulation_steps=2, steps_per_generation=4, num_iterations=1), s) for s in (1, 2)]
    [False, True]
    """
    block = args.steps_per_generation * getattr(args, "num_iterations", 1)
    return step * args.gradient_accumulation_steps % block == 0


class EarlyAdvance(TrainerCallback):
    """Ends the stage once the level looks learned: the accuracy reward's moving average over the last `window`
    optimizer steps reaches a threshold, or gained less than `plateau_delta` over the window before.

    Each optimizer step's value is the mean accuracy of the completions generated for it, on every rank (a step that reuses an earlier generation, with `num_iterations` > 1 or `steps_per_generation` >
    `gradient_accumulation_steps`, repeats that generation's mean), so the rule does not depend on
    `logging_steps` or on other reward terms. It decides only at the end of a generation block. The history
    and the decision are saved with every checkpoint, so a resumed stage decides as an uninterrupted one and
    one that had already advanced trains no further.
    """

    def __init__(
        self,
        threshold: float | None,
        plateau_delta: float | None,
        window: int,
        min_steps: int,
        token_budget: int | None = None,
        counts=None,
    ):
        self.threshold, self.plateau_delta = threshold, plateau_delta
        self.window, self.min_steps = window, min_steps
        self.token_budget, self.counts = token_budget, counts  # `stop_at_completion_tokens`, GenerationCounts
        self.history: list[float] = []  # the accuracy mean of each optimizer step so far
        self.pending = [0.0, 0]  # sum and count of the accuracy scores generated since the last step ended
        self.reason: str | None = None

    def observe(self, groups: list[Group]) -> None:
        """One generation round's groups, every rank's (the trainer sees them from the gathered rewards)."""
        graded = [a for group in groups for a in group.accuracy if a is not None]
        self.pending[0] += sum(graded)
        self.pending[1] += len(graded)

    def checkpoint_files(self) -> dict[str, str]:
        state = {"reason": self.reason, "history": self.history, "pending": self.pending}
        return {EARLY_ADVANCE_FILE: json.dumps(state)}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        state = json.loads(read_checkpoint_file(checkpoint, EARLY_ADVANCE_FILE))
        self.reason, self.history, self.pending = state["reason"], state["history"], state["pending"]

    def on_step_end(self, args, state, control, **kwargs):
        total, count = self.pending
        if count:
            self.history.append(total / count)
            self.pending = [0.0, 0]
        elif self.history:  # this step trained on the previous step's generation
            self.history.append(self.history[-1])
        if not block_boundary(args, state.global_step):
            return
        generated = self.counts.total["completion_tokens"] if self.counts is not None else 0
        if self.token_budget is not None and generated >= self.token_budget:
            self.reason = (
                f"completion-token budget: {generated} generated >= {self.token_budget} at step "
                f"{state.global_step}"
            )
        elif state.global_step < self.min_steps:
            return
        else:
            self._rules(state)
        if self.reason:
            logger.info("Early advance: %s", self.reason)
            control.should_training_stop = True
            control.should_save = True

    def _rules(self, state) -> None:
        """The accuracy rules: threshold, then plateau."""
        if len(self.history) < self.window:
            return
        avg = sum(self.history[-self.window :]) / self.window
        if self.threshold is not None and avg >= self.threshold:
            self.reason = (
                f"accuracy over the last {self.window} steps {avg:.3f} >= threshold {self.threshold} "
                f"at step {state.global_step}"
            )
        elif self.plateau_delta is not None and len(self.history) >= 2 * self.window:
            gain = avg - sum(self.history[-2 * self.window : -self.window]) / self.window
            if gain < self.plateau_delta:
                self.reason = (
                    f"plateau: accuracy over the last {self.window} steps gained {gain:.3f} < "
                    f"{self.plateau_delta}, at step {state.global_step}"
                )
