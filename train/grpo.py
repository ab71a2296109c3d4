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
  beside `final/`) run again with `latest` does nothing.
- The stage ends with `OUTPUT_DIR/final/` (model, tokenizer, trainer state; the next stage starts from it)
  and then `OUTPUT_DIR/stage.json`, both written under a temporary name and renamed.
"""

from __future__ import annotations

if (
    __name__ == "__main__"
):  # `accelerate launch train/grpo.py`: hand over to the installed module, loaded once
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

import inspect
import json
import logging
import os
import time
from pathlib import Path

from trl import GRPOConfig, ModelConfig, TrlParser

from stagerl.data.files import DIE_WITH_PARENT_ENV, atomic_write_text, die_with_parent, failpoint
from stagerl.rewards.cli import setup_logging
from stagerl.train.config import PROBLEM_STATS, STAGE_RECORD, StageArguments

logger = logging.getLogger(__name__)


def make_parser() -> TrlParser:
    return TrlParser((StageArguments, GRPOConfig, ModelConfig))


def parse_stage_args(argv: list[str] | None) -> tuple[StageArguments, GRPOConfig, ModelConfig]:
    """The stage's settings from `--config` and the command line. transformers refuses bf16 without a GPU
    in words that name no way out; that refusal is said again with the fields to set."""
    try:
        return make_parser().parse_args_and_config(argv)
    except ValueError as e:
        import torch

        if "bf16" not in str(e) or torch.cuda.is_available():
            raise
        raise ValueError(
            "bf16: true needs a CUDA GPU, and this machine has none (the level configs are GPU configs); on CPU "
            "set --bf16 false --use_cpu true --use_vllm false, or run configs/stages/smoke.yaml"
        ) from None


def build_rewards(stage_args: StageArguments, training_args: GRPOConfig) -> list:
    """Reward functions named in the stage config, with their settings (fails on an unknown name); one that
    fails on any rank fails on every rank at once (`stagerl.train.distributed.fail_together`).

    A reward whose factory takes `max_completion_length` (accuracy: no fallback credit for a cut-off
    completion; overlong: the penalty ramp) gets the stage's unless its settings give one.
    """
    from stagerl.rewards.registry import REWARDS, build_reward_funcs
    from stagerl.train.distributed import fail_together

    settings = stage_args.reward_settings_dict()
    for name in stage_args.reward_funcs:
        if name in REWARDS and "max_completion_length" in inspect.signature(REWARDS[name]).parameters:
            settings.setdefault(name, {}).setdefault(
                "max_completion_length", training_args.max_completion_length
            )
    return [fail_together(f) for f in build_reward_funcs(stage_args.reward_funcs, settings)]


def check_settings(stage_args: StageArguments, training_args: GRPOConfig) -> None:
    """Checks across our fields and TRL's, before any model loads: prompt selection needs the dataloader in
    this process, and vLLM must be installed (with a GPU for colocate)."""
    if stage_args.select_prompts and training_args.dataloader_num_workers:
        raise ValueError("select_prompts draws prompts from the latest scores: set dataloader_num_workers: 0")
    if not training_args.use_vllm:
        return
    import torch
    from trl.import_utils import is_vllm_available

    if not is_vllm_available():
        raise ValueError(
            'use_vllm: true, but vLLM is not installed: on a GPU machine run `pip install -e ".[vllm]"`, '
            "or set --use_vllm false to generate with transformers"
        )
    if training_args.vllm_mode == "colocate" and not torch.cuda.is_available():
        raise ValueError("use_vllm: true (colocate) needs a CUDA GPU; on CPU set --use_vllm false")


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


def main(argv: list[str] | None = None) -> dict | None:
    """Run one stage. Returns the stage record on the main process (None on the others)."""
    stage_args, training_args, model_args = parse_stage_args(argv)
    setup_logging()  # INFO from the main process, errors only from the others
    start = time.time()
    if os.environ.get(DIE_WITH_PARENT_ENV):  # launched by the runner: no process of it outlives the runner
        die_with_parent()
    from stagerl.train.checkpoints import (
        StageAlreadyTrained,
        StageCheckpoint,
        StopIfTrained,
        export_final,
        finished_record,
        resolve_resume,
        trained_to_the_end,
    )

    done = finished_record(training_args)
    if done is not None:
        logger.info(
            "Stage already finished (%s): nothing to do", Path(training_args.output_dir) / STAGE_RECORD
        )
        return done

    # Everything that can be wrong with the config fails here, before any model is loaded.
    from stagerl.train.callbacks import EarlyAdvance, ProblemStats, observed
    from stagerl.train.memory import check_cpu_launch
    from stagerl.train.models import EMBEDDED_DEFAULT, resolve_model
    from stagerl.train.record import write_stage_record
    from stagerl.train.stage_data import stage_rows

    check_settings(stage_args, training_args)
    reward_funcs = build_rewards(stage_args, training_args)
    resume = resolve_resume(training_args)
    dataset, data_info = stage_rows(stage_args, training_args)

    from stagerl.train.selection import PromptSelector, StageTrainer, sampler_seed, selection_lag

    stage_dir = Path(training_args.output_dir)
    stats = ProblemStats()
    early = EarlyAdvance(stage_args.advance_reward_threshold, stage_args.advance_plateau_delta,
                         stage_args.advance_window, stage_args.advance_min_steps)  # fmt: skip
    selector = None
    if stage_args.select_prompts:
        lag = selection_lag(training_args.gradient_accumulation_steps, training_args.steps_per_generation,
                            training_args.num_iterations)  # fmt: skip
        selector = PromptSelector(dataset["id"], stage_args.select_explore, stage_args.select_min_keep, lag,
                                  sampler_seed(training_args), training_args.shuffle_dataset)  # fmt: skip
    parts = [p for p in (stats, early, selector) if p is not None]
    reward_funcs = [observed(f, [p for p in parts if hasattr(p, "observe")]) if f.__name__ == "accuracy" else f
                    for f in reward_funcs]  # fmt: skip
    checkpoints = StageCheckpoint(parts, keep=training_args.save_total_limit)
    trained = False  # the resumed checkpoint is already the end of the stage
    if resume:
        checkpoints.load(resume)
        trained = early.reason is not None or trained_to_the_end(resume, training_args.max_steps)
        logger.info("Resuming from %s%s", resume, " (the end of the stage: exporting it)" if trained else "")
    model_path = resolve_model(model_args.model_name_or_path or EMBEDDED_DEFAULT)
    model_settings = load_model_settings(model_args, training_args)
    check_cpu_launch(model_path, training_args, training_args.trust_remote_code)  # before any model loads
    keep = training_args.save_total_limit
    training_args.save_total_limit = None  # StageCheckpoint rotates, once the new checkpoint is complete
    trainer = StageTrainer(model=model_path, reward_funcs=reward_funcs, args=training_args, train_dataset=dataset,
                           callbacks=[early, checkpoints, StopIfTrained(trained)], selector=selector,
                           **model_settings)  # fmt: skip
    try:
        trainer.train(resume_from_checkpoint=resume)
    except StageAlreadyTrained:
        pass
    training_args.save_total_limit = keep
    problems = stats.text(stats.merged())  # every rank: gathers the counts
    failpoint("stage-before-export")
    final = export_final(trainer, stage_dir, base_model=model_path)

    record = None
    if trainer.accelerator.is_main_process:
        atomic_write_text(stage_dir / PROBLEM_STATS, problems)
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
            selection=selector.totals(trainer.num_generations) if selector else None,
        )
        logger.info(
            "Stage done: %s", json.dumps({k: record[k] for k in ("steps", "reward_start", "reward_end")})
        )
        logger.info("Exported model: %s", final)
    # Clean shutdown: wait for every rank, then destroy the process group (avoids ZeRO-3's abort at exit).
    trainer.accelerator.wait_for_everyone()
    trainer.end()
    return record
