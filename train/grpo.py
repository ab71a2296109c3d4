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
  written after every rank finished saving it and the stage's own state, see `train/callbacks.py`), so a kill
  during a save never resumes from half a checkpoint. A kill at any instant loses at most the current step:
  a stage resumed from its last checkpoint (the end of training, or an early advance) exports it without
  training further, and a finished stage (`stage.json` beside `final/`) run again with `latest` does nothing.
- The stage ends with `OUTPUT_DIR/final/` (model, tokenizer, trainer state; the next stage starts from it)
  and then `OUTPUT_DIR/stage.json`, both written under a temporary name and renamed.
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

from curricula.data.files import DIE_WITH_PARENT_ENV, atomic_write_text, die_with_parent, failpoint  # noqa: E402
from train.config import FINAL_DIR, PROBLEM_STATS, STAGE_RECORD, StageArguments  # noqa: E402

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


def finished_record(training_args: GRPOConfig) -> dict | None:
    """The record of this stage when it already finished and `latest` asks to resume it, else None."""
    stage_dir = Path(training_args.output_dir)
    if training_args.resume_from_checkpoint != "latest" or not (stage_dir / FINAL_DIR).is_dir():
        return None
    try:
        return json.loads((stage_dir / STAGE_RECORD).read_text())
    except (OSError, ValueError):
        return None


def trained_to_the_end(checkpoint: str, max_steps: int) -> bool:
    """Whether `checkpoint` is already the end of training: it reached `max_steps` (or, for an epoch budget,
    the step count its own run computed)."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE_NAME).read_text())
    return state["global_step"] >= (max_steps if max_steps > 0 else state["max_steps"])


def export_final(trainer, stage_dir: Path) -> Path:
    """Save model + tokenizer + trainer state to STAGE/final (all ranks call this).

    Saved beside it first, then swapped in: a kill at any instant leaves the old export or the new one, or,
    between the two renames, none yet and no `stage.json` either, so the resumed stage exports again.
    """
    final, tmp, old = stage_dir / FINAL_DIR, stage_dir / f".{FINAL_DIR}.tmp", stage_dir / f".{FINAL_DIR}.old"
    if trainer.accelerator.is_main_process:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))  # every rank: under ZeRO-3 this gathers the partitioned weights
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        trainer.state.save_to_json(str(tmp / TRAINER_STATE_NAME))
        if final.exists():
            os.replace(final, old)
        failpoint("export-swap")
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return final


def main(argv: list[str] | None = None) -> dict | None:
    """Run one stage. Returns the stage record on the main process (None on the others)."""
    stage_args, training_args, model_args = make_parser().parse_args_and_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.time()
    if os.environ.get(DIE_WITH_PARENT_ENV):  # launched by the runner: no process of it outlives the runner
        die_with_parent()
    done = finished_record(training_args)
    if done is not None:
        logger.info(
            "Stage already finished (%s): nothing to do", Path(training_args.output_dir) / STAGE_RECORD
        )
        return done

    # Everything that can be wrong with the config fails here, before any model is loaded.
    from curricula.data.sources import drop_zero_advantage, fingerprint, load_stage_data
    from train.callbacks import (
        EarlyAdvance,
        ProblemStats,
        StageAlreadyTrained,
        StageCheckpoint,
        StopIfTrained,
    )
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
        from curricula.data.decontaminate import filter_contaminated

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
    stats = ProblemStats()
    reward_funcs = [stats.wrap(f) if f.__name__.startswith("accuracy") else f for f in reward_funcs]
    early = EarlyAdvance(
        stage_args.advance_reward_threshold,
        stage_args.advance_plateau_delta,
        stage_args.advance_window,
        stage_args.advance_min_steps,
    )
    checkpoints = StageCheckpoint([stats, early], keep=training_args.save_total_limit)
    trained = False  # the resumed checkpoint is already the end of the stage
    if resume:
        checkpoints.load(resume)
        trained = early.reason is not None or trained_to_the_end(resume, training_args.max_steps)
        logger.info("Resuming from %s%s", resume, " (the end of the stage: exporting it)" if trained else "")
    model_path = resolve_model(model_args.model_name_or_path or EMBEDDED_DEFAULT)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype or "float32",
        **(training_args.model_init_kwargs or {}),
    }
    keep = training_args.save_total_limit
    training_args.save_total_limit = None  # StageCheckpoint rotates, once the new checkpoint is complete
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        callbacks=[early, checkpoints, StopIfTrained(trained)],
    )
    try:
        trainer.train(resume_from_checkpoint=resume)
    except StageAlreadyTrained:
        pass
    training_args.save_total_limit = keep
    problems = stats.text(stats.merged())  # every rank: gathers the counts
    failpoint("stage-before-export")
    final = export_final(trainer, stage_dir)

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
