"""Whether a chat template opens a reasoning block in the prompt, read from the template itself."""

import pytest
from transformers import AutoTokenizer

from stagerl.data.prompts import R1_DISTILL_TEMPLATE, open_reasoning_tag, template_hash
from stagerl.train.models import CHATML_TEMPLATE, TINY_RANDOM, resolve_model

# Qwen3's generation prompt, as its template writes it: the model opens `<think>` itself; with thinking off the
# template closes an empty block.
QWEN3_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
# A thinking-only template (as Qwen3's 2507 Thinking releases): the prompt ends inside `<think>`.
OPENS_THINK = QWEN3_TEMPLATE.replace(
    "{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model(TINY_RANDOM))


@pytest.mark.parametrize(
    ("template", "kwargs", "tag"),
    [
        (R1_DISTILL_TEMPLATE, {}, "think"),
        (CHATML_TEMPLATE, {}, None),
        (QWEN3_TEMPLATE, {}, None),
        (QWEN3_TEMPLATE, {"enable_thinking": True}, None),
        (QWEN3_TEMPLATE, {"enable_thinking": False}, None),
        (OPENS_THINK, {}, "think"),
    ],
    ids=["r1-distill", "chatml", "qwen3-default", "qwen3-thinking-on", "qwen3-thinking-off", "opens-think"],
)
def test_open_reasoning_tag(tokenizer, template, kwargs, tag):
    tokenizer.chat_template = template
    assert open_reasoning_tag(tokenizer, kwargs) == tag


def test_r1_prompt_ends_inside_think(tokenizer):
    tokenizer.chat_template = R1_DISTILL_TEMPLATE
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<｜Assistant｜><think>\n")


def test_template_hash_tells_templates_apart(tokenizer):
    tokenizer.chat_template = R1_DISTILL_TEMPLATE
    r1 = template_hash(tokenizer)
    tokenizer.chat_template = CHATML_TEMPLATE
    assert len(r1) == 16 and r1 != template_hash(tokenizer)
    tokenizer.chat_template = None
    assert template_hash(tokenizer) is None
