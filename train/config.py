"""Stage configuration: our fields, beside TRL's `GRPOConfig` and `ModelConfig`.

One stage YAML fills all three dataclasses through `TrlParser`; any field can be overridden on the command
line (`--max_steps 2`), and unknown fields are an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from stagerl.data.prompts import R1_INSTRUCTION
from stagerl.data.sources import DataComponent

STAGE_RECORD = "stage.json"
PROBLEM_STATS = "problems.jsonl"
FINAL_DIR = "final"


@dataclass
class StageArguments:
    """What a stage trains on and how it is rewarded (model and optimiser settings live in TRL's dataclasses)."""

    # --- data ---
    data: list[str] = field(
        default_factory=lambda: ["arithmetic:1"],
        metadata={
            "help": "Data components SOURCE[:LEVEL][@WEIGHT], e.g. a-m-team/AM-Math-Difficulty-RL:2, "
            "math-levels:1, arithmetic:1, rows.jsonl; several are mixed by weight."
        },
    )
    question_column: str | None = field(
        default=None, metadata={"help": "Problem column (auto-detected if unset)."}
    )
    answer_column: str | None = field(
        default=None, metadata={"help": "Gold answer column (auto-detected if unset)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows (after mixing)."}
    )
    prompt_template: str = field(
        default=R1_INSTRUCTION,
        metadata={"help": "User message; `{problem}` is replaced by the problem text."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system message."})
    decontaminate: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Benchmarks (names such as math500, aime24, or jsonl paths) whose problems must not be "
            "trained on: rows sharing a word 13-gram with them are removed, and the count logged."
        },
    )
    drop_solved_stats: list[str] = field(
        default_factory=list,
        metadata={
            "help": "problems.jsonl files of earlier stages: problems they show as always or never solved "
            "(zero GRPO advantage) are dropped from this stage's data."
        },
    )
    drop_solved_min_attempts: int = field(
        default=4,
        metadata={"help": "Attempts a problem needs in drop_solved_stats before it can be dropped."},
    )
    # --- rewards ---
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy"],
        metadata={
            "help": "Reward names from stagerl.rewards.registry (or dotted import paths); weights are GRPOConfig's "
            "reward_weights."
        },
    )
    reward_settings: str | None = field(
        default=None,
        metadata={
            "help": 'JSON object of per-reward keyword settings, e.g. {"boxed_format": {"think": true}}. '
            "overlong gets max_completion_length from the GRPO config unless set."
        },
    )
    # --- online prompt selection ---
    select_prompts: bool = field(
        default=False,
        metadata={
            "help": "Skip, before generation, problems whose latest groups in this stage all scored alike in "
            "accuracy (zero GRPO advantage), with a probability that grows with the streak but never reaches 1 "
            "(GRESO); batches stay full. See train/selection.py."
        },
    )
    select_explore: float = field(
        default=0.5,
        metadata={"help": "Keep probability per zero-variance group in a row: explore ** streak."},
    )
    select_min_keep: float = field(
        default=0.05,
        metadata={"help": "The keep probability never falls below this, so every problem returns."},
    )
    # --- advancing ---
    advance_reward_threshold: float | None = field(
        default=None,
        metadata={"help": "End the stage early once the moving-average train reward reaches this."},
    )
    advance_plateau_delta: float | None = field(
        default=None,
        metadata={
            "help": "End the stage early when the moving-average reward gained less than this over the "
            "last advance_window logged steps."
        },
    )
    advance_window: int = field(default=10, metadata={"help": "Logged steps in the moving average."})
    advance_min_steps: int = field(default=0, metadata={"help": "No early advance before this many steps."})

    def __post_init__(self):
        if isinstance(self.data, str):
            self.data = [self.data]
        if not self.data:
            raise ValueError("data is empty: give at least one SOURCE[:LEVEL][@WEIGHT]")
        for spec in self.data:
            DataComponent.parse(spec).check()
        for path in self.drop_solved_stats:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"drop_solved_stats: file {path} does not exist")
        if not self.reward_funcs:
            raise ValueError("reward_funcs is empty: name at least one reward")
        if self.select_prompts and "accuracy" not in self.reward_funcs:
            raise ValueError(f"select_prompts needs the accuracy reward in reward_funcs={self.reward_funcs}")
        if not 0 < self.select_explore <= 1 or not 0 < self.select_min_keep <= 1:
            raise ValueError(
                f"select_explore={self.select_explore} and select_min_keep={self.select_min_keep} must be in (0, 1]"
            )
        if self.advance_window < 1:
            raise ValueError(f"advance_window={self.advance_window} must be >= 1")
        self.reward_settings_dict()  # validate early

    def reward_settings_dict(self) -> dict[str, dict]:
        """`reward_settings` parsed (YAML may give a mapping directly, the command line gives JSON)."""
        if not self.reward_settings:
            return {}
        settings = self.reward_settings
        if isinstance(settings, str):
            try:
                settings = json.loads(settings)
            except json.JSONDecodeError as e:
                raise ValueError(f"reward_settings={self.reward_settings!r} is not valid JSON: {e}") from None
        if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
            raise ValueError(
                f"reward_settings={self.reward_settings!r} must map reward names to settings objects"
            )
        unknown = set(settings) - set(self.reward_funcs)
        if unknown:
            raise ValueError(
                f"reward_settings names {sorted(unknown)}, which are not in reward_funcs={self.reward_funcs}"
            )
        return settings


def stage_field_names() -> list[str]:
    """Every field a stage YAML may set: ours, TRL's `GRPOConfig` and `ModelConfig`."""
    from trl import GRPOConfig, ModelConfig

    return sorted(
        {f.name for dc in (StageArguments, GRPOConfig, ModelConfig) for f in dataclasses.fields(dc)}
    )


if (
    __name__ == "__main__"
):  # `python -m stagerl.train.config --fields`: what the runner checks curricula against
    import sys

    if sys.argv[1:] != ["--fields"]:
        sys.exit("usage: python -m stagerl.train.config --fields")
    print(json.dumps(stage_field_names()))
