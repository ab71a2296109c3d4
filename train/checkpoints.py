"""A stage's checkpoints and its end: complete checkpoints, resuming, stopping at the end, the export.

A checkpoint is complete once `stagerl_complete` is in it. `StageCheckpoint` writes, after transformers saved
a checkpoint: the stage's own state (each part's files: per-problem statistics, the early-advance decision,
the prompt-selection history), then the marker, then removes checkpoints beyond `save_total_limit`
(transformers' own rotation is switched off: it deletes the older checkpoint before the new one is marked
complete, so a kill there left none). Resuming reads every part back and fails on a missing file, so a
resumed stage continues exactly where the checkpoint left it; a checkpoint that is already the stage's end
is exported without a step more (`StopIfTrained`).

A checkpoint also records what the stage trained on and how its batches were made (`ResumeCheck`): a resume
with other rows or batch settings is refused, since the restored positions (TRL's batch skip, the prompt
sampler's passes) would point into other batches. A launch that does not resume never trains over a used
stage directory (`claim_output_dir`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from accelerate import PartialState
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from trl import GRPOConfig

from stagerl.data.files import atomic_write_text, failpoint
from stagerl.data.stage_dir import (
    CHECKPOINT_GLOB,
    COMPLETE_MARKER,
    FINAL_DIR,
    finished,
    move_aside,
    read_record,
    stage_contents,
)

logger = logging.getLogger(__name__)

RESUME_CHECK_FILE = "resume_check.json"
# GRPOConfig's settings that shape the batches (with the number of processes); a resume keeps them.
BATCH_FIELDS = (
    "per_device_train_batch_size",
    "generation_batch_size",
    "num_generations",
    "steps_per_generation",
    "gradient_accumulation_steps",
    "num_iterations",
)


def checkpoint_step(path: str | Path) -> int:
    return int(Path(path).name.split("-")[1])


def last_complete_checkpoint(stage_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` of a stage directory that was saved completely, or None."""
    done = [p for p in Path(stage_dir).glob(CHECKPOINT_GLOB) if (p / COMPLETE_MARKER).exists()]
    return str(max(done, key=checkpoint_step)) if done else None


def read_checkpoint_file(checkpoint: str | Path, name: str) -> str:
    path = Path(checkpoint) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {checkpoint} was not saved by a stagerl stage, so it cannot be resumed exactly"
        )
    return path.read_text()


class StageCheckpoint(TrainerCallback):
    """Completes each checkpoint (see the module docstring).

    Args:
        parts: stage state savers; each has `checkpoint_files() -> {name: text}` (called on every rank: it
            may gather) and `load_checkpoint(dir)`.
        keep: how many complete checkpoints to keep (`save_total_limit`; None keeps all).
    """

    def __init__(self, parts: list, keep: int | None):
        self.parts, self.keep = parts, keep

    def load(self, checkpoint: str | Path) -> None:
        for part in self.parts:
            part.load_checkpoint(checkpoint)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        files = {name: text for part in self.parts for name, text in part.checkpoint_files().items()}
        PartialState().wait_for_everyone()  # every rank finished writing its share of the checkpoint
        if state.is_world_process_zero:
            for name, text in files.items():
                atomic_write_text(checkpoint / name, text)
            failpoint("checkpoint-before-marker")
            atomic_write_text(checkpoint / COMPLETE_MARKER, "")
            self.rotate(Path(args.output_dir), newest=checkpoint)
        PartialState().wait_for_everyone()

    def rotate(self, stage_dir: Path, newest: Path) -> None:
        """Remove older checkpoints beyond `keep`, only once `newest` is complete: unmark, then delete."""
        if self.keep is None:
            return
        step = checkpoint_step(newest)
        older = sorted(
            (p for p in stage_dir.glob(CHECKPOINT_GLOB) if checkpoint_step(p) < step), key=checkpoint_step
        )
        for old in older[: max(0, len(older) - (self.keep - 1))]:
            (old / COMPLETE_MARKER).unlink(missing_ok=True)
            failpoint("rotate-unmarked")
            shutil.rmtree(old, ignore_errors=True)


class ResumeCheck:
    """What a checkpoint must share with the stage that resumes it (a stage part of `StageCheckpoint`): the
    rows' fingerprint, the batch settings (`BATCH_FIELDS`, the number of processes) and the sampler's
    (`stagerl.train.sampling.sampler_settings`). transformers only warns when the per-device batch size
    changed, and restores its batch skip into whatever batches the new settings make.

    Args:
        settings: this launch's values, by name (JSON values).
    """

    def __init__(self, settings: dict):
        self.settings = json.loads(json.dumps(settings))  # as read back from a checkpoint

    @classmethod
    def of(cls, training_args: GRPOConfig, data_info: dict, sampler: dict) -> ResumeCheck:
        batches = {name: getattr(training_args, name) for name in BATCH_FIELDS}
        return cls(
            {
                "data_fingerprint": data_info["fingerprint"],
                "data_rows": data_info["rows"],
                **batches,
                "num_processes": training_args.world_size,
                **sampler,
            }
        )

    def checkpoint_files(self) -> dict[str, str]:
        return {RESUME_CHECK_FILE: json.dumps(self.settings, indent=1)}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        saved = json.loads(read_checkpoint_file(checkpoint, RESUME_CHECK_FILE))
        changed = [
            f"{name} was {saved.get(name)!r}, is {value!r} now"
            for name, value in self.settings.items()
            if saved.get(name) != value
        ]
        if changed:
            raise ValueError(
                f"{checkpoint} cannot be resumed exactly: {'; '.join(changed)}. Resume it with the settings and "
                "data it was saved with, or start afresh (a new output_dir, or replace_output_dir: true)"
            )


def claim_output_dir(training_args: GRPOConfig, replace: bool, main_process: bool) -> None:
    """Refuse a launch that does not resume into an output_dir holding a stage (its checkpoints, `final/`,
    `stage.json`): it would train over it, and the old stage's checkpoints, export and record would pass for
    the new one's. With `replace` the old stage is moved aside (`move_aside`) instead. Every process checks;
    the main one moves."""
    stage_dir = Path(training_args.output_dir)
    found = stage_contents(stage_dir)
    if training_args.resume_from_checkpoint or not found:
        return
    if not replace:
        checkpoints = [name for name in found if name.startswith("checkpoint-")]
        if len(checkpoints) > 1:  # a long run holds many: the first and the last name them
            found[: len(checkpoints)] = [
                f"{len(checkpoints)} checkpoints, {checkpoints[0]} to {checkpoints[-1]}"
            ]
        held = ", ".join(found)
        raise ValueError(
            f"output_dir {stage_dir} already holds a stage ({held}): resume it with --resume_from_checkpoint "
            "latest, or start afresh in a new or empty output_dir (--replace_output_dir true moves this one aside)"
        )
    if main_process:
        logger.info("kept the old stage in %s as %s", stage_dir, move_aside(stage_dir).name)
    PartialState().wait_for_everyone()


def resolve_resume(training_args: GRPOConfig) -> str | None:
    """`latest` -> newest complete checkpoint of output_dir (None when there is none yet)."""
    resume = training_args.resume_from_checkpoint
    if resume == "latest":
        return last_complete_checkpoint(training_args.output_dir)
    if resume and not Path(resume).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={resume!r}: no such checkpoint directory")
    return resume


def finished_record(training_args: GRPOConfig) -> dict | None:
    """The record of this stage when it already finished and `latest` asks to resume it, else None."""
    stage_dir = Path(training_args.output_dir)
    if training_args.resume_from_checkpoint != "latest" or not finished(stage_dir):
        return None
    try:
        return read_record(stage_dir)
    except ValueError:
        return None


def trained_to_the_end(checkpoint: str, max_steps: int) -> bool:
    """Whether `checkpoint` is already the end of training: it reached `max_steps` (or, for an epoch budget,
    the step count its own run computed)."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE_NAME).read_text())
    return state["global_step"] >= (max_steps if max_steps > 0 else state["max_steps"])


def export_final(trainer, stage_dir: Path, base_model: str) -> Path:
    """Save model + tokenizer + trainer state to STAGE/final (all ranks call this).

    A LoRA stage's export is the base model with the adapter merged in, so the next stage and evaluation
    load a plain model with `from_pretrained`. Saved beside `final/` first, then swapped in: a kill at any
    instant leaves the old export or the new one, or, between the two renames, none yet and no `stage.json`
    either, so the resumed stage exports again.
    """
    final, tmp, old = stage_dir / FINAL_DIR, stage_dir / f".{FINAL_DIR}.tmp", stage_dir / f".{FINAL_DIR}.old"
    if trainer.accelerator.is_main_process:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))  # every rank: under ZeRO-3 this gathers the partitioned weights
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        if (tmp / "adapter_config.json").is_file():
            merge_adapter(tmp, base_model, trainer.args.model_init_kwargs or {})
        trainer.state.save_to_json(str(tmp / TRAINER_STATE_NAME))
        if final.exists():
            os.replace(final, old)
        failpoint("export-swap")
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return final


def merge_adapter(model_dir: Path, base_model: str, init_kwargs: dict) -> None:
    """Replace the LoRA adapter saved in `model_dir` by the base model with the adapter merged in.

    Reloaded on the CPU in one process: it works alike after DDP and ZeRO-3, whose training copy may be
    partitioned across ranks.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model, **init_kwargs)
    merged = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    for adapter_file in model_dir.glob("adapter_*"):
        adapter_file.unlink()
    merged.save_pretrained(model_dir)


class StageAlreadyTrained(Exception):
    """Raised before the first step when the resumed checkpoint is already the end of the stage."""


class StopIfTrained(TrainerCallback):
    """Stops a resumed stage before its first step when its checkpoint is already its end.

    transformers checks for the end of training only after a step, so resuming the last checkpoint (a kill
    between the last step and the export) would train one step more. Raised from `on_train_begin`, after the
    checkpoint's weights, optimizer and state are loaded: the caller exports them as they are.
    """

    def __init__(self, trained: bool):
        self.trained = trained

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trained:
            raise StageAlreadyTrained
