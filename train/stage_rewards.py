"""A stage's reward functions: the registry's, with the stage's settings and what the model's chat template
implies.

DeepSeek-R1-Distill's chat template ends the generation prompt with `<｜Assistant｜><think>\\n`: every completion
starts inside a reasoning block that only `</think>` closes. A reward blind to that would take a `\\boxed{}`
from a thought that never finished (a cut-off completion boxing a guess early scores 1.0), paying the policy
to guess. So the stage reads its model's own chat template (rendered with `add_generation_prompt=True`, no
model-name rules; `stagerl.data.prompts.open_reasoning_tag`) and gives `think_open` to every reward factory
that takes it, as it gives the stage's `max_completion_length` to those that take that; a reward's own
`reward_settings` win, and the stage field `think_open` overrides the detection.
"""

from __future__ import annotations

import inspect
import logging

logger = logging.getLogger(__name__)


def check_rewards(stage_args, training_args) -> None:
    """Fail before any loading on a reward that does not exist (ValueError listing the valid names), and on
    rules that read the accuracy reward without one: prompt selection tells all-right from all-wrong groups by
    it, learnability sampling updates its pass-rate posteriors from it, early advance averages it. It is the
    reward whose function is named `accuracy` (the registry's, or a stand-in of the user's so named)."""
    funcs, _ = build_rewards(stage_args, training_args, think_open=False)  # cheap: pools start on first use
    if "accuracy" in (f.__name__ for f in funcs):
        return
    readers = [
        f
        for f in (
            "select_prompts",
            "learnability_sampling",
            "advance_reward_threshold",
            "advance_plateau_delta",
        )
        if getattr(stage_args, f) not in (None, False)
    ]
    if readers:
        raise ValueError(
            f"{', '.join(readers)} read the accuracy reward, which reward_funcs={stage_args.reward_funcs} lacks"
        )


def reasoning_block(model_path: str, stage_args, training_args, model_args) -> dict:
    """`stagerl.data.prompts.reasoning_block` for a stage: its model's tokenizer, with the stage's own
    `chat_template` (open-r1's) when set, rendered with the trainer's `chat_template_kwargs`; the stage's
    `think_open` overrides the detection. Returns what `stage.json` records under `chat_template`.

    Args:
        model_path: the model's directory or hub id (its tokenizer is read, not the model).
        stage_args: `StageArguments`.
        training_args: `GRPOConfig` (`trust_remote_code` is the GRPO config's, as TRL reads it).
        model_args: `ModelConfig` (revision).
    """
    from transformers import AutoTokenizer

    from stagerl.data.prompts import reasoning_block as read_reasoning_block

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code
    )
    if stage_args.chat_template is not None:
        tokenizer.chat_template = stage_args.chat_template
    return read_reasoning_block(
        tokenizer, model_path, stage_args.think_open, training_args.chat_template_kwargs
    )


def reward_settings(stage_args, training_args, think_open: bool) -> dict[str, dict]:
    """Each factory reward's keyword settings: `reward_settings`, then the stage's defaults for the settings a
    factory takes (`max_completion_length`: no fallback credit for a cut-off completion, the overlong ramp;
    `think_open`: no answer before the reasoning block closes)."""
    from stagerl.rewards.registry import is_factory, lookup

    settings = stage_args.reward_settings_dict()
    defaults = {"max_completion_length": training_args.max_completion_length, "think_open": think_open}
    for name in stage_args.reward_funcs:
        factory = lookup(name)
        if not is_factory(factory):
            continue
        taken = inspect.signature(factory).parameters
        for key, value in defaults.items():
            if key in taken:
                settings.setdefault(name, {}).setdefault(key, value)
    return settings


def build_rewards(stage_args, training_args, think_open: bool) -> tuple[list, dict[str, dict]]:
    """The stage's reward functions (TRL's signature) and the settings they were built with."""
    from stagerl.rewards.registry import build_reward_funcs

    settings = reward_settings(stage_args, training_args, think_open)
    return build_reward_funcs(stage_args.reward_funcs, settings), settings
