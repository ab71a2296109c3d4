"""Sampling K completions per prompt from a local model (evaluation, difficulty labelling).

A generator holds one model, loaded once, and samples any number of batches from it: `open_generator(model)`
gives one, `with` closes it (the model or engine released before the next one opens); `generate` is the
one-call form. Two backends:

- **transformers** (always available): prompts are rendered with the tokenizer's chat template
  (`add_generation_prompt=True`), left-padded, and sampled in batches of `batch_size` sequences (64 by default:
  on 2 CPU cores a batch of 64 costs about half as much per sequence as one of 16). Sampling is plain
  temperature + top-p (`top_k` is switched off, as vLLM does by default, so the two backends draw from the same
  distribution); top-p is transformers' own rule computed on the most likely tokens instead of a sort of the
  whole vocabulary (`Nucleus`: the same samples, a third less time on CPU). `temperature=0` is greedy decoding;
  the K samples of a greedy run are identical, so each prompt is decoded once and copied.
- **vLLM**: one `LLM` engine per generator, `SamplingParams(n=K)`. `auto` picks it when vLLM is installed and
  can run here: on a CUDA GPU, or with vLLM's CPU build for a model whose head size its CPU attention supports
  (`stagerl.train.vllm_cpu`). In a multi-process launch each process runs its own engine on its share, as TRL's
  colocate mode builds it.

Seeding: a generator is seeded once, when it opens (transformers: torch's generator; vLLM: the engine's seed,
plus the process index in a launch), and successive batches continue that stream, so each batch draws new
samples; no request carries a seed of its own (vLLM samples seeded requests one by one). A fixed seed, batch
size and backend on the same machine give the same samples; another batch size gives other samples from the
same distribution.

Every completion comes back as a `Sample`: its text and whether it was cut off (no end token before
`max_new_tokens`; vLLM: `finish_reason == "length"`), so graders can deny a cut-off completion's fallback
answer as training does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from stagerl.rewards.cli import main_process

logger = logging.getLogger(__name__)

Prompt = list[dict] | str
BACKENDS = ("auto", "transformers", "vllm")
DEFAULT_BATCH_SIZE = 64
# `--think-open` on the command line: read from the chat template, or set.
THINK_OPEN_CHOICES = {"auto": None, "true": True, "false": False}


class Sample(NamedTuple):
    """One completion: its text (special tokens removed) and whether generation cut it off at the length
    limit (it never produced an end token)."""

    text: str
    truncated: bool


def vllm_available(model_path: str | None = None) -> bool:
    """True when vLLM is installed and can run here: on a CUDA GPU, or with vLLM's CPU build (and then, given a
    model, one whose attention head size vLLM's CPU attention supports)."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    if torch.cuda.is_available():
        return True
    from stagerl.train import vllm_cpu

    if not vllm_cpu.cpu_build():
        return False
    return model_path is None or vllm_cpu.head_size(model_path) in vllm_cpu.supported_head_sizes()


def template_settings(model_path: str, think_open: bool | None = None) -> dict:
    """`stagerl.data.prompts.reasoning_block` for a model's own chat template: `think_open` (an explicit
    setting wins), `detected` and `template_hash`, which evaluation and labelling record."""
    from transformers import AutoTokenizer

    from stagerl.data.prompts import reasoning_block
    from stagerl.train.models import resolve_model

    return reasoning_block(AutoTokenizer.from_pretrained(resolve_model(model_path)), model_path, think_open)


def _as_messages(prompt: Prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(isinstance(m, dict) and "content" in m for m in prompt):
        return prompt
    raise ValueError(
        f"a prompt must be a chat message list or a string; got {type(prompt).__name__}: {prompt!r:.80}"
    )


def _check_args(samples: int, max_new_tokens: int, temperature: float, top_p: float) -> None:
    if samples < 1:
        raise ValueError(f"samples={samples}: must be >= 1")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0 (0 = greedy)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p}: must be in (0, 1]")


def open_generator(
    model_path: str, *, backend: str = "auto", seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
) -> TransformersGenerator | VllmGenerator:
    """Load a model once for sampling (module docstring); close it with `with` or `.close()`.

    Args:
        model_path: a local model directory, a hub id, or a built-in name (`stagerl:...`, resolved with
            `stagerl.train.models.resolve_model`).
        backend: "auto" (vLLM where it can run, else transformers), "transformers" or "vllm".
        seed: seeds the generator once; its batches continue the stream.
        batch_size: sequences per forward batch (transformers; vLLM schedules its own).

    Returns:
        A generator: `.sample(prompts, samples=, max_new_tokens=, temperature=, top_p=)`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: valid backends are {list(BACKENDS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    from stagerl.train.models import resolve_model

    path = resolve_model(model_path)
    if backend == "vllm" or (backend == "auto" and vllm_available(path)):
        return VllmGenerator(path, seed=seed)
    return TransformersGenerator(path, seed=seed, batch_size=batch_size)


def generate(
    model_path: str,
    prompts: Sequence[Prompt],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str = "auto",
) -> list[list[Sample]]:
    """Sample `samples` completions for every prompt, with a generator opened for this call only.

    Args:
        model_path, seed, batch_size, backend: as `open_generator` takes them.
        prompts, samples, max_new_tokens, temperature, top_p: as `sample` takes them.

    Returns:
        One list of `samples` `Sample`s (text, truncated) per prompt, in prompt order.

    >>> outs = generate("stagerl:tiny-random", ["What is 1 + 1?"], samples=2, max_new_tokens=4, temperature=1.0)
    >>> len(outs), len(outs[0]), outs[0][0].truncated
    (1, 2, True)
    """
    _check_args(samples, max_new_tokens, temperature, top_p)
    messages = [_as_messages(p) for p in prompts]
    if not messages:
        return []
    with open_generator(model_path, backend=backend, seed=seed, batch_size=batch_size) as generator:
        return generator.sample(
            messages, samples=samples, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )


class _Generator:
    """What both backends share: argument checks, `with`, and the log line of each batch."""

    backend = ""

    def __init__(self, path: str):
        self.path = path

    def sample(
        self,
        prompts: Sequence[Prompt],
        *,
        samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float = 1.0,
    ) -> list[list[Sample]]:
        """Sample `samples` completions for every prompt.

        Args:
            prompts: chat message lists (`[{"role": "user", "content": ...}]`) or plain strings; a string is
                sent as a single user message. The chat template is applied with `add_generation_prompt=True`.
            samples: completions per prompt (K).
            max_new_tokens: the most tokens generated per completion.
            temperature: sampling temperature; 0 means greedy decoding.
            top_p: nucleus sampling threshold (1.0 = off).

        Returns:
            One list of `samples` `Sample`s (text, truncated) per prompt, in prompt order.
        """
        _check_args(samples, max_new_tokens, temperature, top_p)
        messages = [_as_messages(p) for p in prompts]
        if not messages:
            return []
        logger.info(
            "generating %d x %d completions with %s (%s; max_new_tokens=%d, %s)",
            len(messages),
            samples,
            self.path,
            self.backend,
            max_new_tokens,
            "greedy" if temperature == 0 else f"temperature={temperature:g}, top_p={top_p:g}",
        )
        return self._sample(messages, samples, max_new_tokens, temperature, top_p)

    def _sample(self, messages, samples, max_new_tokens, temperature, top_p) -> list[list[Sample]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model (or engine)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Nucleus(TopPLogitsWarper):
    """Transformers' top-p filter, decided on the most likely tokens instead of the whole vocabulary.

    `TopPLogitsWarper` keeps a token while the probability of the tokens more likely than it is below
    `top_p`, found by sorting all of the vocabulary: on CPU the largest cost of a sampling step after the
    model itself (SmolLM2's 49k tokens, 64 sequences: 120 ms of a 500 ms step). The same rule is decided here
    on the `candidates` most likely tokens (a partial top-k), which hold the whole nucleus whenever their
    probability reaches `top_p`; a batch where some row's does not is filtered by the full sort (`super()`).
    The same tokens are kept, so the same samples are drawn.
    """

    def __init__(self, top_p: float, candidates: int = 256):
        super().__init__(top_p)
        self.candidates = candidates

    def __call__(self, input_ids, scores):
        probs = scores.softmax(dim=-1)
        top, index = probs.topk(min(self.candidates, probs.shape[-1]), dim=-1)
        if bool((top.sum(dim=-1) < self.top_p).any()):
            return super().__call__(input_ids, scores)
        more_likely = top.cumsum(dim=-1) - top
        remove = torch.ones_like(scores, dtype=torch.bool).scatter_(-1, index, more_likely >= self.top_p)
        return scores.masked_fill(remove, self.filter_value)


def _sampling_kwargs(temperature: float, top_p: float) -> dict:
    """`generate` keywords for greedy decoding or temperature + top-p sampling (top-k off, as in vLLM).

    Temperature and top-p go in as processors in transformers' order (temperature first) so that top-p is
    `Nucleus`; transformers' own are switched off (temperature 1, top_p 1).
    """
    if temperature == 0:
        return {"do_sample": False}
    warpers = [TemperatureLogitsWarper(temperature)] if temperature != 1 else []
    warpers += [Nucleus(top_p)] if top_p < 1 else []
    processors = LogitsProcessorList(warpers)
    return {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "logits_processor": processors}


class TransformersGenerator(_Generator):
    """One model loaded with transformers, sampled in batches of `batch_size` sequences."""

    backend = "transformers"

    def __init__(self, path: str, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        super().__init__(path)
        self.batch_size = batch_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        # The tokens that end a completion; one without any of them was cut off at max_new_tokens.
        ends = self.model.generation_config.eos_token_id
        ends = self.tokenizer.eos_token_id if ends is None else ends
        self.end_ids = torch.tensor(ends if isinstance(ends, list) else [ends], device=self.device)
        torch.manual_seed(seed)  # once: every batch continues the stream (seeds CUDA too)

    def _sample(self, messages, samples, max_new_tokens, temperature, top_p) -> list[list[Sample]]:
        from tqdm.auto import tqdm

        tokenizer = self.tokenizer
        texts = [
            tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages
        ]
        greedy = temperature == 0
        copies = 1 if greedy else samples  # greedy samples are identical: decode once, copy
        # Flat work list of (prompt index, text); each prompt repeated `copies` times, kept adjacent so a batch
        # mostly holds equal-length prompts (little padding).
        work = [(i, text) for i, text in enumerate(texts) for _ in range(copies)]
        outputs: list[list[Sample]] = [[] for _ in texts]
        with torch.inference_mode():
            batches = range(0, len(work), self.batch_size)
            for start in tqdm(batches, desc="generate", unit="batch", disable=not main_process()):
                chunk = work[start : start + self.batch_size]
                enc = tokenizer(
                    [t for _, t in chunk], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.device)
                out = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=self.end_ids.tolist(),
                    **_sampling_kwargs(temperature, top_p),
                )
                new_tokens = out[:, enc["input_ids"].shape[1] :]
                cut_off = ~torch.isin(new_tokens, self.end_ids).any(dim=-1)
                decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                for (i, _), text, cut in zip(chunk, decoded, cut_off.tolist(), strict=True):
                    outputs[i].append(Sample(text, cut))
        if greedy:
            outputs = [out * samples for out in outputs]
        return outputs

    def close(self) -> None:
        del self.model
        if self.device == "cuda":
            torch.cuda.empty_cache()


class VllmGenerator(_Generator):
    """One vLLM engine (a GPU's, or vLLM's CPU build's).

    In a multi-process launch every process builds its own engine (on its own GPU) for its share of the prompts
    (data parallelism), as TRL's colocate mode does: `external_launcher` makes vLLM join the launch's process
    group instead of starting workers of its own. The caller gives each process its own seed.
    """

    backend = "vllm"

    def __init__(self, path: str, *, seed: int = 0):
        import torch.distributed as dist
        from vllm import LLM

        super().__init__(path)
        logger.info("starting a vLLM engine for %s (seed %d)", path, seed)
        launched = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if launched:
            self.llm = LLM(
                model=path, seed=seed + dist.get_rank(), distributed_executor_backend="external_launcher"
            )
        else:
            self.llm = LLM(model=path, seed=seed)

    def _sample(self, messages, samples, max_new_tokens, temperature, top_p) -> list[list[Sample]]:
        from vllm import SamplingParams

        params = SamplingParams(n=samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens)
        results = self.llm.chat(messages, params, add_generation_prompt=True, use_tqdm=main_process())
        return [[Sample(o.text, o.finish_reason == "length") for o in r.outputs] for r in results]

    def close(self) -> None:
        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
