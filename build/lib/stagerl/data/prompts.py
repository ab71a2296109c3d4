"""The chat prompt of one problem: training, evaluation and labelling all ask in this one shape; and what a
model's chat template does to it (whether its generation prompt opens a reasoning block)."""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files

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
