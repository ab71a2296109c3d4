"""Batched sampling of K completions per prompt from a local model (evaluation, difficulty labelling).

Two backends behind one function, `generate`:

- **transformers** (always available; the only one tested here): prompts are rendered with the tokenizer's
  chat template (`add_generation_prompt=True`), left-padded, and sampled in batches of `batch_size`
  sequences. Sampling is plain temperature + top-p (`top_k` is switched off, as vLLM does by default, so the
  two backends draw from the same distribution). `temperature=0` is greedy decoding; the K samples of a
  greedy run are identical, so each prompt is decoded once and copied.
- **vLLM**, picked automatically when `import vllm` works and a CUDA GPU is present. It is kept deliberately
  simple (one `LLM`, `SamplingParams(n=K)`) and is NOT exercised by the test suite, which runs on CPU.

Outputs are reproducible for a fixed `seed` and `batch_size` on the same machine and backend; changing the
batch size changes the random stream, so the samples differ (their distribution does not).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

Prompt = list[dict] | str
BACKENDS = ("auto", "transformers", "vllm")


def vllm_available() -> bool:
    """True when vLLM can be imported and a CUDA GPU is present."""
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _as_messages(prompt: Prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(isinstance(m, dict) and "content" in m for m in prompt):
        return prompt
    raise ValueError(
        f"a prompt must be a chat message list or a string; got {type(prompt).__name__}: {prompt!r:.80}"
    )


def _check_args(samples: int, max_new_tokens: int, temperature: float, top_p: float, batch_size: int) -> None:
    if samples < 1:
        raise ValueError(f"samples={samples}: must be >= 1")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0 (0 = greedy)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p}: must be in (0, 1]")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")


def generate(
    model_path: str,
    prompts: Sequence[Prompt],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    backend: str = "auto",
) -> list[list[str]]:
    """Sample `samples` completions for every prompt.

    Args:
        model_path: a local model directory, a hub id, or a built-in name (`stagerl:...`, resolved with
            `stagerl.train.models.resolve_model`).
        prompts: chat message lists (`[{"role": "user", "content": ...}]`) or plain strings; a string is
            sent as a single user message. The chat template is applied with `add_generation_prompt=True`.
        samples: completions per prompt (K).
        max_new_tokens: the most tokens generated per completion.
        temperature: sampling temperature; 0 means greedy decoding.
        top_p: nucleus sampling threshold (1.0 = off).
        seed: random seed (reproducible for a fixed seed, batch size and backend).
        batch_size: sequences per forward batch (transformers backend; vLLM schedules its own).
        backend: "auto" (vLLM when available, else transformers), "transformers" or "vllm".

    Returns:
        One list of `samples` completion strings (special tokens removed) per prompt, in prompt order.

    >>> outs = generate("stagerl:tiny-random", ["What is 1 + 1?"], samples=2, max_new_tokens=4, temperature=1.0)
    >>> len(outs), len(outs[0])
    (1, 2)
    """
    _check_args(samples, max_new_tokens, temperature, top_p, batch_size)
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: valid backends are {list(BACKENDS)}")
    messages = [_as_messages(p) for p in prompts]
    if not messages:
        return []
    from stagerl.train.models import resolve_model

    path = resolve_model(model_path)
    use_vllm = backend == "vllm" or (backend == "auto" and vllm_available())
    kwargs = dict(
        samples=samples, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    if use_vllm:
        return _generate_vllm(path, messages, **kwargs)
    return _generate_transformers(path, messages, batch_size=batch_size, **kwargs)


def _generate_transformers(
    path: str,
    messages: list[list[dict]],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    batch_size: int,
) -> list[list[str]]:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages]

    greedy = temperature == 0
    copies = 1 if greedy else samples  # greedy samples are identical: decode once, copy
    # Flat work list of (prompt index, text); each prompt repeated `copies` times, kept adjacent so a batch
    # mostly holds equal-length prompts (little padding).
    work = [(i, text) for i, text in enumerate(texts) for _ in range(copies)]
    sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
    outputs: list[list[str]] = [[] for _ in texts]
    torch.manual_seed(seed)
    if device == "cuda":
        torch.cuda.manual_seed_all(seed)
    logger.info(
        "generating %d x %d completions with %s on %s (max_new_tokens=%d, %s)",
        len(texts),
        samples,
        path,
        device,
        max_new_tokens,
        "greedy" if greedy else f"temperature={temperature:g}, top_p={top_p:g}",
    )
    with torch.inference_mode():
        for start in tqdm(range(0, len(work), batch_size), desc="generate", unit="batch"):
            chunk = work[start : start + batch_size]
            enc = tokenizer(
                [t for _, t in chunk], return_tensors="pt", padding=True, add_special_tokens=False
            )
            enc = enc.to(device)
            out = model.generate(
                **enc,
                do_sample=not greedy,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for (i, _), text in zip(chunk, decoded, strict=True):
                outputs[i].append(text)
    if greedy:
        outputs = [out * samples for out in outputs]
    return outputs


def _generate_vllm(
    path: str,
    messages: list[list[dict]],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
) -> list[list[str]]:
    """vLLM backend (GPU only; not covered by the CPU test suite)."""
    from vllm import LLM, SamplingParams

    logger.info("generating %d x %d completions with vLLM from %s", len(messages), samples, path)
    llm = LLM(model=path, seed=seed)
    params = SamplingParams(
        n=samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed
    )
    results = llm.chat(messages, params, add_generation_prompt=True, use_tqdm=True)
    return [[o.text for o in r.outputs] for r in results]
