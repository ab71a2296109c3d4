"""The level configs' memory claim: one GRPO step of TRL on 2 sequences of 16,384 completion tokens, under a cap.

    accelerate launch --config_file configs/accelerate/zero2.yaml --num_processes 1 bench/loss_memory.py \\
        --config configs/stages/level2.yaml --model_name_or_path MODEL --data math-levels:2 --use_vllm false \\
        --num_generations 2 --steps_per_generation 1 --gradient_accumulation_steps 1 --max_steps 1 \\
        --save_strategy no --output_dir OUT --cap_gb 80 --result_json OUT/memory.json

The level configs say that 2 sequences per micro-batch keep a 16k-token step (its 2 x 16k x 152k logits) within an
80 GB card. This runs TRL's GRPOTrainer for one optimizer step with the config's settings as given (beta: the
reference model's forward and the KL term; entropy_coef: the entropy term; bf16; activation checkpointing;
`per_device_train_batch_size` sequences per micro-batch), on completions of exactly `max_completion_length`
random tokens with no end token: generation is replaced through TRL's `rollout_func`, since at scale vLLM
generates and sleeps (frees its memory) while training runs. With `--cap_gb`, the process may allocate at most
that much GPU memory (`torch.cuda.set_per_process_memory_fraction`), so an H200 answers for an 80 GB card.

One process under ZeRO-2 holds the whole optimizer state and gradients (fp32 master weights, Adam moments); the
configs' 8 processes hold an eighth of them each and the same weights and activations, so each needs less than
this one process. Written to
`--result_json` (main process): the peak memory allocated, the memory held when the step began (weights,
reference model, optimizer state), whether the step ran out of memory under the cap, and the loss terms TRL
logged. On a CPU the same step runs without a cap (memory figures are null): a check of the harness.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser

from stagerl.data.files import atomic_write_json
from stagerl.data.sources import load_stage_data
from stagerl.train.config import StageArguments

GB = 10**9


@dataclass
class MemoryArguments:
    cap_gb: float | None = field(
        default=None, metadata={"help": "GPU memory this process may allocate, in GB (10^9 bytes)."}
    )
    result_json: str = field(default="memory.json", metadata={"help": "Where to write the figures."})


def alternating_reward(completions, **kwargs) -> list[float]:
    """1, 0, 1, 0, ...: non-zero advantages within every group, whatever the (random) text."""
    return [float(i % 2 == 0) for i in range(len(completions))]


def random_rollout(length: int):
    """TRL `rollout_func` whose completions are `length` random non-special tokens: no end token, so every
    sequence is exactly as long as the config allows."""
    generator = torch.Generator().manual_seed(0)

    def rollout(prompts: list, trainer) -> dict:
        tokenizer = trainer.processing_class
        texts = [
            tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts
        ]
        prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        ordinary = torch.tensor(sorted(set(range(len(tokenizer))) - set(tokenizer.all_special_ids)))
        picks = torch.randint(len(ordinary), (len(prompts), length), generator=generator)
        return {"prompt_ids": prompt_ids, "completion_ids": ordinary[picks].tolist(), "logprobs": None}

    return rollout


class HeldAtFirstStep(TrainerCallback):
    """Records the GPU memory allocated when the first optimizer step begins (weights, optimizer state)."""

    held: int | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.held is None and torch.cuda.is_available():
            self.held = torch.cuda.memory_allocated()


def main() -> None:
    stage, args, model_args, memory = TrlParser(
        (StageArguments, GRPOConfig, ModelConfig, MemoryArguments)
    ).parse_args_and_config()
    cuda = torch.cuda.is_available() and not args.use_cpu
    cap = None
    if cuda:
        device = int(os.environ.get("LOCAL_RANK", "0"))
        total = torch.cuda.get_device_properties(device).total_memory
        if memory.cap_gb is not None:
            cap = min(memory.cap_gb * GB, total)
            torch.cuda.set_per_process_memory_fraction(cap / total, device)
    dataset = load_stage_data(stage.data, seed=args.seed, prompt_template=stage.prompt_template)
    args.model_init_kwargs = {"dtype": model_args.dtype or "float32"}
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL's experimental hook
    held = HeldAtFirstStep()
    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=[alternating_reward],
        args=args,
        train_dataset=dataset,
        rollout_func=random_rollout(args.max_completion_length),
        callbacks=[held],
    )
    start, oom = time.perf_counter(), None
    try:
        trainer.train()
    except torch.OutOfMemoryError as e:
        oom = str(e).splitlines()[0]
    seconds = time.perf_counter() - start
    if not trainer.accelerator.is_main_process:
        return
    logged = next((e for e in trainer.state.log_history if "loss" in e), {})
    result = {
        "sequences": args.per_device_train_batch_size,
        "completion_tokens": args.max_completion_length,
        "beta": args.beta,
        "entropy_coef": args.entropy_coef,
        "bf16": args.bf16,
        "activation_checkpointing": bool(args.activation_checkpointing),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "cap_gb": cap / GB if cap else None,
        "peak_allocated_gb": torch.cuda.max_memory_allocated() / GB if cuda else None,
        "peak_reserved_gb": torch.cuda.max_memory_reserved() / GB if cuda else None,
        "held_at_step_start_gb": held.held / GB if held.held is not None else None,
        "out_of_memory": oom,
        "fits": (oom is None) if cuda else None,
        "step_seconds": round(seconds, 2),
        "logged": {k: logged[k] for k in ("loss", "kl", "entropy", "grad_norm") if k in logged},
    }
    atomic_write_json(memory.result_json, result)


if __name__ == "__main__":
    main()
