"""A randomly initialised model of DeepSeek-R1-Distill-Qwen-1.5B's shape, with R1's chat template, built offline.

    python bench/random_model.py OUT_DIR [--shape r1-1.5b|tiny] [--device cuda]

The GPU machines reach no hub, so the GPU benchmarks build their model here: a Qwen2 model with the dimensions of
R1-Distill-Qwen-1.5B's `config.json` (untied embeddings, 1.78B parameters), random weights (seed 0), saved in
bfloat16 on a GPU (float32 on a CPU), and the tokenizer of `stagerl:tiny-random-r1` (R1's special tokens and chat
template `stagerl.data.prompts.R1_DISTILL_TEMPLATE`, whose generation prompt opens `<think>`).

That tokenizer has 500 tokens, the model 151,936 outputs. A random model samples nearly uniformly over its
outputs, and ids past the tokenizer's last one decode to nothing (the tokenizer drops them), so completions would
read as empty text and rewards would grade nothing. The tokenizer is therefore padded to the model's vocabulary:
the byte-level BPE gets one filler entry per missing id, each a distinct 3-character string of printable ASCII
(or a leading space), which no merge produces. Encoding is unchanged (text never tokenizes into a filler); every id
the model can sample decodes to text, so completions read as random printable text of their real token length, as
a random model with the real R1 tokenizer would give. The model's special token ids (bos, eos, pad) are the
tokenizer's, not R1's 151643: only the shape is R1's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

# deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B's config.json (Qwen2ForCausalLM), its shape fields as published.
R1_DISTILL_QWEN_1_5B = {
    "model_type": "qwen2",
    "hidden_act": "silu",
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 131072,
    "max_window_layers": 21,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000,
    "sliding_window": 4096,
    "use_sliding_window": False,
    "tie_word_embeddings": False,
    "vocab_size": 151936,
}
SHAPES = {
    "r1-1.5b": R1_DISTILL_QWEN_1_5B,
    # The same architecture at a size a CPU trains in seconds (kill-and-resume, the --cpu check).
    "tiny": {
        **R1_DISTILL_QWEN_1_5B,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_window_layers": 2,
        "vocab_size": 1024,
    },
}

# Byte-level BPE spells a space as "Ġ" and printable ASCII as itself: fillers decode to plain text.
FILLER_ALPHABET = "Ġ" + "".join(chr(c) for c in range(0x21, 0x7F))


def pad_tokenizer_file(path: Path, vocab_size: int) -> int:
    """Give the byte-level BPE in `path` (a `tokenizer.json`) filler entries up to `vocab_size` ids, so every id
    decodes to text (module docstring). The file is rewritten in place, atomically.

    The BPE's own ids stay as they are and the fillers follow them; the added tokens that are not in the BPE's
    vocabulary (R1's `<think>` and `</think>`) move to the last ids, where `tokenizers` places added tokens when
    it loads the file (after the BPE's vocabulary, whatever ids the file gave them).

    Args:
        path: a `tokenizer.json` whose model is a byte-level BPE with contiguous ids from 0.
        vocab_size: the model's vocabulary (number of output ids).

    Returns:
        The number of filler entries added.
    """
    state = json.loads(path.read_text())
    vocab = state["model"]["vocab"]
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{path}: the BPE's ids are not contiguous from 0")
    extra = [t for t in state["added_tokens"] if t["content"] not in vocab]
    n_fillers = vocab_size - len(vocab) - len(extra)
    if n_fillers < 0:
        raise ValueError(f"{path}: {len(vocab) + len(extra)} tokens do not fit in vocab_size={vocab_size}")
    taken = set(vocab) | {t["content"] for t in extra}
    fillers = (s for s in map("".join, itertools.product(FILLER_ALPHABET, repeat=3)) if s not in taken)
    first = len(vocab)
    vocab.update((filler, first + i) for i, filler in zip(range(n_fillers), fillers, strict=False))
    for i, token in enumerate(extra):
        token["id"] = len(vocab) + i
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False))
    os.replace(tmp, path)
    return n_fillers


def build_model(out: Path, shape: str = "r1-1.5b", device: str = "cpu") -> Path:
    """Save a random model of `shape` with the padded R1 tokenizer into `out`, written beside and renamed.

    Args:
        out: the model directory to write.
        shape: a key of `SHAPES`.
        device: where the weights are initialised ("cuda": bfloat16, seconds for 1.78B; "cpu": float32).

    Returns:
        `out`, loadable with `from_pretrained`; `len(tokenizer) == config.vocab_size`.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from stagerl.data.files import atomic_directory
    from stagerl.train.models import TINY_RANDOM_R1, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TINY_RANDOM_R1))
    config = Qwen2Config.from_dict(
        {
            **SHAPES[shape],
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with atomic_directory(out) as tmp:
        model.to(dtype).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        pad_tokenizer_file(tmp / "tokenizer.json", config.vocab_size)
        padded = AutoTokenizer.from_pretrained(tmp)
        if len(padded) != config.vocab_size:
            raise RuntimeError(
                f"padded tokenizer has {len(padded)} tokens, the model {config.vocab_size} outputs"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="model directory to write (replaced if it exists)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="r1-1.5b")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bfloat16 weights)")
    args = parser.parse_args()
    build_model(args.out, args.shape, args.device)
    print(args.out)


if __name__ == "__main__":
    main()
