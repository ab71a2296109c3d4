"""The chat prompt of one problem: training, evaluation and labelling all ask in this one shape; and what a
model's chat template does to it (whether its generation prompt opens a reasoning block)."""

from __future__ import annotations

import hashlib
import logging
import re
from importlib.resources import files

logger = logging.getLogger(__name__)

R1_INSTRUCTION = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."


def chat_prompt(
    problem: str, prompt_template: str = R1_INSTRUCTION, system_prompt: str | None = None
) -> list[dict]:
    """The chat messages that ask `problem`.

    Args:
        problem: the problem text.
        prompt_template: the user message; `{problem}` is replaced by the problem text.
        system_prompt: an optional system message.

    Returns:
        `[{"role": "user", "content": ...}]`, preceded by the system message when given.

    >>> chat_prompt("1+1?", "{problem} Box it.")
    [{'role': 'user', 'content': '1+1? Box it.'}]
    """
    prompt = [{"role": "user", "content": prompt_template.replace("{problem}", problem)}]
    if system_prompt:
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return prompt


R1_DISTILL_TEMPLATE = files("stagerl.data").joinpath("templates/deepseek_r1_distill_qwen.jinja").read_text()
"""DeepSeek-R1-Distill-Qwen's chat template: its generation prompt ends with `<｜Assistant｜><think>\\n`."""

_PROBE = "stagerl-template-probe"
_OPEN_TAG_AT_END = re.compile(r"<([A-Za-z][\w-]*)>\s*$")


def open_reasoning_tag(tokenizer, chat_template_kwargs: dict | None = None) -> str | None:
    """The tag a chat template leaves open at the very end of its generation prompt, else None.

    DeepSeek-R1-Distill's prompt ends with `<｜Assistant｜><think>\\n`, so its completions start inside a
    reasoning block: they close it with `</think>` and never open it. Read from the model's own template,
    rendered with `add_generation_prompt=True` (and the trainer's `chat_template_kwargs`), never from a model
    name. ChatML ends with `<|im_start|>assistant\\n` (no tag open); Qwen3 with thinking off ends with a
    closed, empty `<think>\\n\\n</think>\\n\\n` block (none open); with thinking on it leaves the opening to
    the model (none open).

    Args:
        tokenizer: anything with `apply_chat_template` (a transformers tokenizer).
        chat_template_kwargs: extra template variables, e.g. `{"enable_thinking": False}`.

    Returns:
        The open tag's name (`"think"`), or None.
    """
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": _PROBE}],
        tokenize=False,
        add_generation_prompt=True,
        **(chat_template_kwargs or {}),
    )
    match = _OPEN_TAG_AT_END.search(rendered.rsplit(_PROBE, 1)[-1])
    return match.group(1) if match else None


def template_hash(tokenizer) -> str | None:
    """A short hash of the tokenizer's chat template (what `stage.json` records), None without one."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    return hashlib.sha256(template.encode()).hexdigest()[:16]


def reasoning_block(tokenizer, name: str, think_open: bool | None = None, chat_template_kwargs=None) -> dict:
    """Whether completions of this chat template start inside a reasoning block: what every grader of them
    (a stage's rewards, evaluation, labelling) must know, decided in this one place.

    Args:
        tokenizer: the tokenizer whose chat template asks (with the stage's own template already set on it).
        name: the model's name, for messages.
        think_open: an explicit setting, which wins over the template (logged when they disagree).
        chat_template_kwargs: extra template variables, as the trainer renders the template.

    Returns:
        `{"think_open": bool, "detected": bool, "template_hash": str | None}`: graders give no answer before
        `</think>` when `think_open`; `detected` is what the template says; the hash names the template.

    Raises:
        ValueError: the template leaves a tag other than `<think>` open and `think_open` is not set (the
            graders close only `</think>`).
    """
    tag = open_reasoning_tag(tokenizer, chat_template_kwargs)
    if tag not in (None, "think") and think_open is None:
        raise ValueError(
            f"the chat template of {name} leaves <{tag}> open in the prompt; the graders only know "
            "<think>...</think>: set think_open false to grade the whole completion"
        )
    detected = tag == "think"
    if think_open is not None and think_open != detected:
        logger.warning(
            "think_open: %s set, though the chat template of %s says %s", think_open, name, detected
        )
    think_open = detected if think_open is None else think_open
    logger.info("chat template of %s: reasoning block opened in the prompt: %s", name, think_open)
    return {"think_open": think_open, "detected": detected, "template_hash": template_hash(tokenizer)}
