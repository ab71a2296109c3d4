"""Train one curriculum stage with TRL's GRPOTrainer.

Launch (any accelerate config; the stage YAML never says how many devices):

    accelerate launch --config_file configs/accelerate/ddp.yaml train/grpo.py --config configs/stages/level1.yaml
    python train/grpo.py --config configs/stages/smoke.yaml --max_steps 2        # one process, no accelerate

Every field of `StageArguments` (data, prompt, rewards, early advance), TRL's `GRPOConfig` and `ModelConfig`
can be set in the YAML and overridden on the command line; unknown fields fail. Config errors (missing files,
level out of range, batch not divisible by num_generations, unknown reward) are raised before any model loads.

Choices, and why:
- The policy is rewarded by rule-based rewards from `rewards/` (math-verify in a worker pool with hard
  timeouts), so one pathological completion cannot stall a step.
- `resume_from_checkpoint: latest` picks the newest *complete* checkpoint of `output_dir` (a marker file is
  written after every rank finished saving), so a kill during a save never resumes from half a checkpoint.
- The stage ends with `OUTPUT_DIR/final/` (model, tokenizer, trainer state; the next stage starts from it)
  and `OUTPUT_DIR/stage.json`; both are written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`accelerate launch train/grpo.py`): make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers.trainer import TRAINER_STATE_NAME  # noqa: E402
from trl import GRPOConfig, ModelConfig, TrlParser  # noqa: E402

from train.config import FINAL_DIR, STAGE_RECORD, StageArguments  # noqa: E402

logger = logging.getLogger("train.grpo")


def make_parser() -> TrlParser:
    return TrlParser((StageArguments, GRPOConfig, ModelConfig))


def build_rewards(stage_args: StageArguments, training_args: GRPOConfig) -> list:
    """Reward functions named in the stage config, with their settings (fails on an unknown name)."""
    from rewards.registry import build_reward_funcs

    settings = stage_args.reward_settings_dict()
    if "overlong" in stage_args.reward_funcs:
        settings.setdefault("overlong", {}).setdefault(
            "max_completion_length", training_args.max_completion_length
        )
    return build_reward_funcs(stage_args.reward_funcs, settings)


def resolve_resume(training_args: GRPOConfig) -> str | None:
    """`latest` -> newest complete checkpoint of output_dir (None when there is none yet)."""
    from train.callbacks import last_complete_checkpoint

    resume = training_args.resume_from_checkpoint
    if resume == "latest":
        return last_complete_checkpoint(training_args.output_dir)
    if resume and not Path(resume).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={resume!r}: no such checkpoint directory")
    return resume


def export_final(trainer, stage_dir: Path) -> Path:
    """Save model + tokenizer + trainer state to STAGE/final, atomically (all ranks call this)."""
    final, tmp = stage_dir / FINAL_DIR, stage_dir / f".{FINAL_DIR}.tmp"
    if trainer.accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))  # every rank: under ZeRO-3 this gathers the partitioned weights
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        trainer.state.save_to_json(str(tmp / TRAINER_STATE_NAME))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    trainer.accelerator.wait_for_everyone()
    return final


def main(argv: list[str] | None = None) -> dict | None:
    """Run one stage. Returns the stage record on the main process (None on the others)."""
    stage_args, training_args, model_args = make_parser().parse_args_and_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.time()

    # Everything that can be wrong with the config fails here, before any model is loaded.
    from curricula.data import drop_zero_advantage, fingerprint, load_stage_data
    from train.callbacks import CompleteCheckpointCallback, EarlyAdvance, ProblemStats
    from train.models import EMBEDDED_DEFAULT, resolve_model
    from train.record import write_stage_record

    reward_funcs = build_rewards(stage_args, training_args)
    resume = resolve_resume(training_args)
    dataset = load_stage_data(
        stage_args.data,
        seed=training_args.seed,
        question_column=stage_args.question_column,
        answer_column=stage_args.answer_column,
        prompt_template=stage_args.prompt_template,
        system_prompt=stage_args.system_prompt,
    )
    dropped = {}  # rows removed before training, by reason (recorded in stage.json)
    if stage_args.decontaminate:
        from curricula.decontaminate import filter_contaminated

        dataset, dropped["contaminated"] = filter_contaminated(dataset, stage_args.decontaminate)
    if stage_args.drop_solved_stats:
        dataset, zero_advantage = drop_zero_advantage(
            dataset, stage_args.drop_solved_stats, stage_args.drop_solved_min_attempts
        )
        dropped.update(zero_advantage)
    if stage_args.max_train_samples is not None:
        dataset = dataset.select(range(min(stage_args.max_train_samples, len(dataset))))
    if len(dataset) == 0:
        raise ValueError(f"data={stage_args.data}: no training rows left")
    data_info = {
        "specs": stage_args.data,
        "rows": len(dataset),
        "fingerprint": fingerprint(dataset),
        "dropped": dropped,
    }

    from trl import GRPOTrainer

    stage_dir = Path(training_args.output_dir)
    stats = ProblemStats(stage_dir)
    reward_funcs = [stats.wrap(f) if f.__name__.startswith("accuracy") else f for f in reward_funcs]
    early = EarlyAdvance(
        stage_args.advance_reward_threshold,
        stage_args.advance_plateau_delta,
        stage_args.advance_window,
        stage_args.advance_min_steps,
    )
    model_path = resolve_model(model_args.model_name_or_path or EMBEDDED_DEFAULT)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype or "float32",
        **(training_args.model_init_kwargs or {}),
    }
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        callbacks=[CompleteCheckpointCallback(), stats, early],
    )
    if resume:
        stats.load(resume)
        logger.info("Resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    final = export_final(trainer, stage_dir)

    record = None
    if trainer.accelerator.is_main_process:
        record = write_stage_record(
            stage_dir / STAGE_RECORD,
            stage_args=stage_args,
            training_args=training_args,
            model_args=model_args,
            data=data_info,
            state=trainer.state,
            wall_time_s=time.time() - start,
            resumed_from=resume,
            advanced_early=early.reason,
        )
        logger.info(
            "Stage done: %s", json.dumps({k: record[k] for k in ("steps", "reward_start", "reward_end")})
        )
        logger.info("Exported model: %s", final)
    # Clean shutdown: wait for every rank, then destroy the process group (avoids ZeRO-3's abort at exit).
    trainer.accelerator.wait_for_everyone()
    trainer.end()
    return record


if __name__ == "__main__":
    main()
