"""Train one curriculum stage with TRL's GRPOTrainer.

Launch (any accelerate config; the stage YAML never says how many devices):

    accelerate launch --config_file configs/accelerate/zero2.yaml train/grpo.py --config configs/stages/level1.yaml
    python train/grpo.py --config configs/stages/smoke.yaml --max_steps 2        # one process, no accelerate

Every field of `StageArguments` (data, prompt, rewards, early advance), TRL's `GRPOConfig` and `ModelConfig`
can be set in the YAML and overridden on the command line; unknown fields fail. Config errors (missing or
malformed data files, level out of range, batch not divisible by num_generations, unknown reward, vLLM asked
for where it cannot run) are raised before any model loads.

Choices, and why:
- The model is loaded as TRL's own GRPO script loads it: `ModelConfig`'s dtype, attention implementation,
  revision and quantization, `trust_remote_code`, and a LoRA adapter with `use_peft` (exported merged, so
  the next stage and evaluation load a plain model).
- Generation is TRL's: transformers' `generate` by default, vLLM with `use_vllm` (the real configs use it).
- The policy is rewarded by rule-based rewards from `rewards/` (math-verify in a worker pool with hard
  timeouts), so one pathological completion cannot stall a step.
- The rows are built once per run by the main process (`stagerl.train.stage_data`); the other ranks read its copy.
- `resume_from_checkpoint: latest` picks the newest *complete* checkpoint (`stagerl.train.checkpoints`). A kill at
  any instant loses at most the current step: a stage resumed from its last checkpoint (the end of
  training, or an early advance) exports it without training further, and a finished stage (`stage.json`
  beside `final/`) run again with `latest` does nothing. A resume with other rows or batch settings than its
  checkpoint's is refused; so is a launch that does not resume into a directory holding a stage, unless
  `replace_output_dir` moves that stage aside.
- The stage ends with `OUTPUT_DIR/final/` (model, tokenizer, trainer state; the next stage starts from it)
  and then `OUTPUT_DIR/stage.json`, both written under a temporary name and renamed.
"""

from __future__ import annotations

# `accelerate launch train/grpo.py`: hand over to the installed module, so it is loaded once.
if __name__ == "__main__":
    import sys

    try:
        from stagerl.train.grpo import main
    except ModuleNotFoundError as e:
        if e.name not in ("stagerl", "stagerl.train"):
            raise
        sys.exit(
            "error: stagerl is not installed in this Python; in the checkout run `pip install --no-deps -e .`"
        )
    from stagerl.rewards.cli import run_command

    run_command(main)

import json
import logging
import math
import os
import time
from pathlib import Path

from trl import GRPOConfig, ModelConfig, TrlParser

from stagerl.data.files import DIE_WITH_PARENT_ENV, atomic_write_text, die_with_parent, failpoint
from stagerl.data.stage_dir import PROBLEM_STATS, STAGE_RECORD
from stagerl.rewards.cli import main_process, setup_logging
from stagerl.train.config import StageArguments, StageParser

logger = logging.getLogger(__name__)


def make_parser() -> TrlParser:
    return StageParser((StageArguments, GRPOConfig, ModelConfig))


def parse_stage_args(argv: list[str] | None) -> tuple[StageArguments, GRPOConfig, ModelConfig]:
    """The stage's settings from `--config` and the command line. transformers refuses bf16 without a GPU
    in words that name no way out; that refusal is said again with the fields to set. Asking to start afresh
    and to resume at once is refused."""
    try:
        stage_args, training_args, model_args = make_parser().parse_args_and_config(argv)
    except ValueError as e:
        import torch

        if "bf16" not in str(e) or torch.cuda.is_available():
            raise
        raise ValueError(
            "bf16: true needs a CUDA GPU, and this machine has none (the level configs are GPU configs); on CPU "
            "set --bf16 false --use_cpu true --use_vllm false, or run configs/stages/smoke.yaml"
        ) from None
    if stage_args.replace_output_dir and training_args.resume_from_checkpoint:
        raise ValueError(
            "replace_output_dir moves the stage in output_dir aside to start afresh, resume_from_checkpoint "
            "resumes it: set one of them"
        )
    return stage_args, training_args, model_args


def check_settings(stage_args: StageArguments, training_args: GRPOConfig) -> None:
    """Checks across our fields and TRL's, before any model loads: rewards exist, checkpoints fall between
    generation blocks, prompt selection needs the dataloader in this process, and vLLM must be installed (on a
    CPU machine its CPU build, in colocate mode without sleep mode: `stagerl.train.vllm_cpu`)."""
    from stagerl.train.stage_rewards import check_rewards

    check_rewards(stage_args, training_args)
    check_generation_blocks(training_args)
    sampling = stage_args.select_prompts or stage_args.learnability_sampling or stage_args.dynamic_sampling
    if sampling and training_args.dataloader_num_workers:
        raise ValueError(
            "prompt selection, learnability sampling and dynamic sampling draw from the latest scores: set "
            "dataloader_num_workers: 0"
        )
    if stage_args.dynamic_sampling:
        from stagerl.train.trainer import check_dynamic_sampling

        check_dynamic_sampling(training_args)
    if not training_args.use_vllm:
        return
    import torch
    from trl.import_utils import is_vllm_available

    from stagerl.train import vllm_cpu

    if not is_vllm_available():
        raise ValueError(
            'use_vllm: true, but vLLM is not installed: on a GPU machine run `pip install -e ".[vllm]"`; on CPU '
            f"{vllm_cpu.INSTALL_HINT}; or set --use_vllm false to generate with transformers"
        )
    if torch.cuda.is_available():
        return
    if not vllm_cpu.cpu_build():
        raise ValueError(
            f"use_vllm: true on a machine without a CUDA GPU needs vLLM's CPU build: {vllm_cpu.INSTALL_HINT}; "
            "or set --use_vllm false"
        )
    vllm_cpu.check_colocate(training_args)


def check_generation_blocks(args: GRPOConfig, rows: int | None = None) -> None:
    """Refuse checkpoints that would fall inside a generation block.

    TRL generates once every `steps_per_generation * num_iterations` micro-batches and trains on that
    generation until the next; a stage resumed from a checkpoint inside such a block regenerates its rest
    (TRL keeps the generation in memory only), so the resumed stage would train on other completions than an
    uninterrupted one and count them twice. Checkpoints every `save_steps` must therefore end a block; the
    stage's own decisions to stop (early advance) wait for a block's end too. A `save_steps` below 1 is a
    ratio of the training steps, resolved as transformers resolves it; for an epoch budget (`max_steps: -1`)
    that needs the number of `rows`, so it is checked once they are built (None: not yet).
    """
    from stagerl.train.callbacks import block_boundary

    if args.save_strategy != "steps":
        return
    every, resolved = args.save_steps, ""
    if every < 1:
        total = args.max_steps if args.max_steps > 0 else epoch_budget_steps(args, rows)
        if total is None:
            return
        every = math.ceil(total * args.save_steps)  # as transformers' TrainerState.compute_steps
        resolved = f" (every {every} of {total} steps)"
    if block_boundary(args, every):
        return
    block = args.steps_per_generation * args.num_iterations  # micro-batches
    accumulation = args.gradient_accumulation_steps
    steps = block // math.gcd(block, accumulation)  # the fewest optimizer steps that end a block
    raise ValueError(
        f"save_steps={args.save_steps:g}{resolved} puts checkpoints inside a generation block (steps_per_generation="
        f"{args.steps_per_generation} x num_iterations={args.num_iterations} micro-batches, "
        f"gradient_accumulation_steps={accumulation}): a resumed stage would regenerate the rest of the block; "
        f"set save_steps to a multiple of {steps}"
    )


def epoch_budget_steps(args: GRPOConfig, rows: int | None) -> int | None:
    """The optimizer steps of an epoch budget (`max_steps: -1`, `num_train_epochs`), counted as transformers
    counts them from the dataloader's length (None without the rows): each process gets `steps_per_generation
    * num_iterations` micro-batches per generation block, and an epoch holds rows // prompts-per-block blocks
    (TRL's `RepeatSampler` and `stagerl.train.sampling.TrlSampler` alike)."""
    if rows is None:
        return None
    prompts = args.generation_batch_size // args.num_generations
    micro_batches = rows // prompts * args.steps_per_generation * args.num_iterations
    per_epoch = max(-(-micro_batches // args.gradient_accumulation_steps), 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def load_model_settings(model_args: ModelConfig, training_args: GRPOConfig) -> dict:
    """TRL's GRPO script's model settings: `model_init_kwargs`, `peft_config`, `quantization_config`."""
    from trl import get_peft_config, get_quantization_config

    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype or "float32",
        **(training_args.model_init_kwargs or {}),
    }
    return {
        "peft_config": get_peft_config(model_args),
        "quantization_config": get_quantization_config(model_args),
    }


def chat_template_settings(chat_template: str | None, model_path: str, training_args: GRPOConfig) -> dict:
    """The trainer's `processing_class` when the stage gives its own `chat_template` (open-r1's), else nothing
    (TRL loads the model's own). Loaded as TRL loads it, then given the template."""
    if chat_template is None:
        return {}
    from transformers import AutoProcessor

    init = training_args.model_init_kwargs or {}
    processor = AutoProcessor.from_pretrained(
        model_path,
        revision=init.get("revision"),
        truncation_side="left",
        padding_side="left",
        trust_remote_code=training_args.trust_remote_code,
    )
    processor.chat_template = chat_template
    return {"processing_class": processor}


def main(argv: list[str] | None = None) -> dict | None:
    """Run one stage. Returns the stage record on the main process (None on the others)."""
    stage_args, training_args, model_args = parse_stage_args(argv)
    setup_logging()  # INFO from the main process, errors only from the others
    primary = main_process()
    start = time.time()
    if os.environ.get(DIE_WITH_PARENT_ENV):  # launched by the runner: no process of it outlives the runner
        die_with_parent()
    from stagerl.train.checkpoints import (
        ResumeCheck,
        StageAlreadyTrained,
        StageCheckpoint,
        StopIfTrained,
        claim_output_dir,
        export_final,
        finished_record,
        resolve_resume,
        trained_to_the_end,
    )
    from stagerl.train.hub import hub_target, push_stage

    done = finished_record(training_args)
    if done is not None:
        logger.info(
            "Stage already finished (%s): nothing to do", Path(training_args.output_dir) / STAGE_RECORD
        )
        # A kill may have come between the record and the push.
        if primary and not stage_args.eval_follows:
            push_stage(Path(training_args.output_dir), token=training_args.hub_token)
        return done

    # Everything that can be wrong with the config fails here, before any model is loaded.
    from stagerl.train.callbacks import EarlyAdvance
    from stagerl.train.distributed import fail_together
    from stagerl.train.memory import check_cpu_launch
    from stagerl.train.models import EMBEDDED_DEFAULT, resolve_model
    from stagerl.train.record import stage_config, write_stage_record
    from stagerl.train.stage_data import stage_rows
    from stagerl.train.stage_rewards import build_rewards, reasoning_block
    from stagerl.train.tracking import TrackedRun, attach

    check_settings(stage_args, training_args)
    claim_output_dir(training_args, stage_args.replace_output_dir, primary)
    hub = hub_target(training_args, stage_args.run_group)
    tracked = TrackedRun.open(training_args.output_dir, stage_args, training_args, main_process=primary)
    resume = resolve_resume(training_args)
    dataset, data_info = stage_rows(stage_args, training_args)
    check_generation_blocks(training_args, rows=len(dataset))  # a save_steps ratio of an epoch budget
    model_path = resolve_model(model_args.model_name_or_path or EMBEDDED_DEFAULT)
    template = reasoning_block(model_path, stage_args, training_args, model_args)
    reward_funcs, reward_settings = build_rewards(stage_args, training_args, template["think_open"])
    reward_funcs = [fail_together(f) for f in reward_funcs]  # one rank's failure fails every rank at once

    from stagerl.train.rollouts import GenerationCounts, ProblemStats
    from stagerl.train.sampling import build_sampler, sampler_settings
    from stagerl.train.trainer import StageTrainer

    stage_dir = Path(training_args.output_dir)
    stats, counts = ProblemStats(), GenerationCounts()
    early = EarlyAdvance(
        stage_args.advance_reward_threshold,
        stage_args.advance_plateau_delta,
        stage_args.advance_window,
        stage_args.advance_min_steps,
        stage_args.stop_at_completion_tokens,
        counts,
    )
    sampler = build_sampler(stage_args, training_args, dataset)
    # checked first: the other parts' state is only meaningful for the same rows and batches
    resume_check = ResumeCheck.of(training_args, data_info, sampler_settings(stage_args, training_args))
    parts = [p for p in (resume_check, stats, early, counts, sampler) if p is not None]
    checkpoints = StageCheckpoint(parts, keep=training_args.save_total_limit)
    trained = False  # the resumed checkpoint is already the end of the stage
    if resume:
        checkpoints.load(resume)
        trained = early.reason is not None or trained_to_the_end(resume, training_args.max_steps)
        logger.info("Resuming from %s%s", resume, " (the end of the stage: exporting it)" if trained else "")
    model_settings = load_model_settings(model_args, training_args)
    model_settings.update(chat_template_settings(stage_args.chat_template, model_path, training_args))
    # before any model loads
    check_cpu_launch(model_path, training_args, training_args.trust_remote_code, model_args.use_peft)
    if training_args.use_vllm:
        from stagerl.train import vllm_cpu

        if vllm_cpu.cpu_build():
            vllm_cpu.check_head_size(
                model_path, model_args.model_name_or_path, training_args.trust_remote_code
            )
    keep = training_args.save_total_limit
    training_args.save_total_limit = None  # StageCheckpoint rotates, once the new checkpoint is complete
    trainer = StageTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        callbacks=[early, checkpoints, StopIfTrained(trained)],
        sampler=sampler,
        observers=[stats, early],
        counts=counts,
        dynamic_sampling=stage_args.dynamic_sampling,
        max_rounds=stage_args.dynamic_sampling_max_rounds,
        **model_settings,
    )
    attach(trainer, tracked, stage_config(stage_args, training_args, model_args))
    try:
        trainer.train(resume_from_checkpoint=resume)
    except StageAlreadyTrained:
        pass
    training_args.save_total_limit = keep
    failpoint("stage-before-export")
    final = export_final(trainer, stage_dir, base_model=model_path)

    record = None
    if trainer.accelerator.is_main_process:
        atomic_write_text(stage_dir / PROBLEM_STATS, stats.text())
        failpoint("stage-before-record")
        record = write_stage_record(
            stage_dir / STAGE_RECORD,
            stage_args=stage_args,
            training_args=training_args,
            model_args=model_args,
            data=data_info,
            state=trainer.state,
            wall_time_s=time.time() - start,
            resumed_from=Path(resume).name if resume else None,
            advanced_early=early.reason,
            chat_template=template,
            rewards=reward_settings,
            generation=counts.record(),
            sampler=sampler.summary() if sampler else None,
            curriculum_step_offset=tracked.step_offset,
            hub=hub,
        )
        if not stage_args.eval_follows:  # else the runner pushes after its evaluation, for the model card
            push_stage(stage_dir, token=training_args.hub_token)
        logger.info(
            "Stage done: %s", json.dumps({k: record[k] for k in ("steps", "reward_start", "reward_end")})
        )
        logger.info("Exported model: %s", final)
    # Clean shutdown: wait for every rank, then destroy the process group (avoids ZeRO-3's abort at exit).
    trainer.accelerator.wait_for_everyone()
    trainer.end()
    return record
