"""What each generation block produced, seen once from TRL's gathered rewards: its groups, the counts of what
was generated and trained on, and the per-problem statistics a stage keeps across checkpoints.

`groups_of` turns one round's rewards (every rank's, as TRL gathers them to compute advantages) into
`stagerl.data.problems.Group`s: a group's total reward is TRL's weighted sum of the reward functions (NaN where
every function returned None), and it has zero variance when its standard deviation is zero or undefined, as
TRL's `frac_reward_zero_std` counts it. Every rank computes the same groups, so every rank decides alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from trl.trainer.utils import nanstd

from stagerl.data.problems import Group, ProblemTable
from stagerl.data.stage_dir import PROBLEM_STATS
from stagerl.train.checkpoints import read_checkpoint_file

COUNTS_FILE = "generation.json"
# The logged mean total reward of every completion a block generated, every round's (TRL's `reward` is the mean
# over the rows it scored: with dynamic sampling, the kept groups only).
GENERATED_REWARD = "generation/reward"
COUNT_KEYS = (
    "prompts",
    "rollouts",
    "completion_tokens",
    "rounds",
    "groups_trained",
    "zero_variance_dropped",
    "zero_variance_dropped_all_right",
    "zero_variance_dropped_all_wrong",
    "prompts_skipped",
)


@dataclass
class Round:
    """One generation round, every rank's: problem ids and total rewards per completion, tokens generated."""

    ids: list[str]
    totals: torch.Tensor  # (completions,) TRL's weighted sum of the reward functions
    accuracy: list[float | None]  # the accuracy reward per completion (None where absent or ungradable)
    completion_tokens: int


def totals_of(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """TRL's total reward per completion: the weighted sum of the reward functions, NaN where all are NaN."""
    totals = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    totals[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
    return totals


def groups_of(round_: Round, num_generations: int) -> list[Group]:
    """The round's GRPO groups, in order (completions of one prompt are consecutive)."""
    grouped = round_.totals.view(-1, num_generations)
    std = nanstd(grouped, dim=1)
    zero = torch.isnan(std) | torch.isclose(std, torch.zeros_like(std))
    return [
        Group(
            id=round_.ids[g * num_generations],
            accuracy=tuple(round_.accuracy[g * num_generations : (g + 1) * num_generations]),
            zero_variance=bool(zero[g]),
        )
        for g in range(grouped.shape[0])
    ]


class GenerationCounts:
    """What the stage generated and trained on, per generation block and in total (`stage.json`'s
    `generation`), saved with every checkpoint.

    prompts / rollouts / completion_tokens: what was generated (every round); rounds: generation rounds;
    groups_trained: groups whose completions the loss used with a non-zero advantage possible (all of them
    without dynamic sampling; with it, the kept groups); zero_variance_dropped: groups dynamic sampling dropped
    (all right, all wrong, or equal for another reason); prompts_skipped: candidates selection skipped before
    generation.
    """

    def __init__(self):
        self.total = dict.fromkeys(COUNT_KEYS, 0)

    def add(self, block: dict[str, int]) -> None:
        for key in COUNT_KEYS:
            self.total[key] += block.get(key, 0)

    def checkpoint_files(self) -> dict[str, str]:
        return {COUNTS_FILE: json.dumps(self.total)}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        self.total = json.loads(read_checkpoint_file(checkpoint, COUNTS_FILE))

    def record(self) -> dict:
        """The totals as `stage.json` records them."""
        total = dict(self.total)
        split = {side: total.pop(f"zero_variance_dropped_all_{side}") for side in ("right", "wrong")}
        total["zero_variance_dropped"] = {
            "total": total["zero_variance_dropped"],
            **{f"all_{k}": v for k, v in split.items()},
        }
        return total


class ProblemStats:
    """The stage's per-problem statistics (`problems.jsonl`), from every generated group, saved with every
    checkpoint. Every rank holds all of them (they come from gathered rewards)."""

    def __init__(self):
        self.table = ProblemTable()

    def observe(self, groups: list[Group]) -> None:
        self.table.observe(groups)

    def text(self) -> str:
        return self.table.text()

    def checkpoint_files(self) -> dict[str, str]:
        return {PROBLEM_STATS: self.table.text()}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        path = Path(checkpoint) / PROBLEM_STATS
        self.table = ProblemTable.parse(read_checkpoint_file(checkpoint, PROBLEM_STATS), str(path))
