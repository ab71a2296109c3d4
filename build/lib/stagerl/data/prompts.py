"""The chat prompt of one problem: training, evaluation and labelling all ask in this one shape."""

from __future__ import annotations

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
