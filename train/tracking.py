"""Experiment tracking (`report_to`: tensorboard, wandb, trackio) for stages, curricula and sweeps.

Each stage is one tracker run, named by `run_name` (the runner passes `<curriculum>/<stage>`, or for a sweep
node shared by several curricula its path in the tree) and grouped by `run_group` (the curriculum or the
sweep). The logging itself is transformers' (its reporting callbacks, which TRL feeds); this module gives
them what a curriculum needs:

- a curriculum-wide step, `curriculum_step` (logged as `train/curriculum_step`): the steps of the earlier
  stages (read from `previous_stage`'s `stage.json`) plus this stage's own. It increases across stages, and
  TensorBoard uses it as its step; a stage resumed after a kill purges the events it had logged past its
  checkpoint (TensorBoard's `purge_step`), so the steps it trains again are not logged twice;
- one run per stage across resumes: the run's identity is kept in `STAGE/tracking.json` (the wandb run id,
  resumed with `resume="allow"`; TensorBoard's directory is `STAGE/tensorboard/`; trackio resumes by name);
- the resolved stage config (our fields and `ModelConfig`'s, secrets redacted; transformers logs
  `GRPOConfig`'s itself, its `*_token` fields masked);
- the evaluation the runner runs after the stage, in another process: `log_evaluation` appends its results to
  the same run (`python -m stagerl.train.publish`).

Only the main process logs (transformers' callbacks check it; `tracking.json` is written by rank 0).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from stagerl.data.files import atomic_write_json
from stagerl.data.stage_dir import (
    FINAL_DIR,
    STAGE_RECORD,
    TRACKING_FILE,
    curriculum_step,
    finished,
    read_record,
)
from stagerl.train.record import redact

logger = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
CURRICULUM_STEP = "curriculum_step"
TRACKERS = ("tensorboard", "wandb", "trackio")


def curriculum_step_offset(previous_stage: str | None) -> int:
    """The curriculum-wide step this stage continues from: the last one `previous_stage` reached (0 without one).

    Raises:
        ValueError: the previous stage has not finished (no `stage.json`).
    """
    if previous_stage is None:
        return 0
    if not finished(previous_stage):
        raise ValueError(
            f"previous_stage={previous_stage} has not finished (no {FINAL_DIR}/ and {STAGE_RECORD})"
        )
    return curriculum_step(read_record(previous_stage))


@dataclass
class TrackedRun:
    """One stage's tracker run, as `STAGE/tracking.json` keeps it (so a resumed stage appends to it).

    Attributes:
        run_id: the wandb run id (made once, kept across resumes).
        name: the run's name (`run_name`).
        group: the run's group (`run_group`), None for a stage on its own.
        step_offset: the curriculum-wide step this stage continues from.
        report_to: the trackers this stage reports to (among `TRACKERS`).
        project: the wandb / trackio project.
        evaluation_logged: whether the runner's evaluation has been logged to the run.
    """

    run_id: str
    name: str
    group: str | None
    step_offset: int
    report_to: list[str]
    project: str
    evaluation_logged: bool = False

    @classmethod
    def open(cls, stage_dir: Path, stage_args, training_args, *, main_process: bool) -> TrackedRun:
        """The stage's run: the one `tracking.json` names (a resumed stage), else a new one, saved by rank 0."""
        path = Path(stage_dir) / TRACKING_FILE
        kept = json.loads(path.read_text()) if path.is_file() else {}
        run = cls(
            run_id=kept.get("run_id") or uuid.uuid4().hex[:12],
            name=training_args.run_name or Path(training_args.output_dir).name,
            group=stage_args.run_group,
            step_offset=curriculum_step_offset(stage_args.previous_stage),
            report_to=[t for t in training_args.report_to if t in TRACKERS],
            project=os.environ.get("WANDB_PROJECT") or training_args.project,
            evaluation_logged=kept.get("evaluation_logged", False),
        )
        if main_process and run.report_to:
            run.save(path)
        return run

    def save(self, path: Path) -> None:
        atomic_write_json(path, asdict(self))

    def wandb_environment(self) -> dict[str, str]:
        """What wandb reads when transformers' callback starts the run: this run's id, resumed, and group."""
        env = {"WANDB_RUN_ID": self.run_id, "WANDB_RESUME": "allow", "WANDB_PROJECT": self.project}
        return {**env, "WANDB_RUN_GROUP": self.group} if self.group else env


class CurriculumStep(TrainerCallback):
    """Adds `curriculum_step` to every log, and the resolved stage config to the trackers' run config.

    Placed first among the trainer's callbacks (`attach`), so every tracker's callback sees the step.
    """

    def __init__(self, offset: int, config: dict):
        self.offset, self.config = offset, config
        self.last_step = -1

    def on_log(self, args, state, control, logs=None, **kwargs):
        # Once per step: the summary logged at the end of training repeats the last step.
        if logs is not None and state.global_step > self.last_step:
            logs[CURRICULUM_STEP] = self.offset + state.global_step
            self.last_step = state.global_step

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if "wandb" in args.report_to:
            import wandb

            if wandb.run is not None:
                wandb.config.update(self.config, allow_val_change=True)
        if "trackio" in args.report_to:
            import trackio

            trackio.config.update(self.config, allow_val_change=True)


class StageTensorBoard(TensorBoardCallback):
    """transformers' TensorBoard logging, into the stage's own `tensorboard/` directory at curriculum-wide steps.

    A resumed stage writes to the same directory with `purge_step` just past its checkpoint: readers drop
    what the killed process had logged beyond it, so the steps trained again appear once.
    """

    def __init__(self, log_dir: Path, offset: int, config: dict):
        super().__init__()
        self.logging_dir, self.offset, self.config = str(log_dir), offset, config

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.tb_writer is None:
            self.tb_writer = shifted_writer(self.logging_dir, self.offset, resumed_at=state.global_step)
            self.tb_writer.add_text("stage_config", json.dumps(self.config, indent=2, default=str))
        super().on_train_begin(args, state, control, **kwargs)


def shifted_writer(log_dir: str, offset: int, resumed_at: int = 0):
    """A TensorBoard `SummaryWriter` whose steps are `offset` + the stage's own.

    Args:
        log_dir: the run's directory.
        offset: the curriculum-wide step the stage continues from.
        resumed_at: the stage step a resumed run starts after: events past it are purged.
    """
    from torch.utils.tensorboard import SummaryWriter

    class ShiftedWriter(SummaryWriter):
        def add_scalar(self, tag, value, global_step=None, *args, **kwargs):
            step = None if global_step is None else offset + global_step
            return super().add_scalar(tag, value, step, *args, **kwargs)

        def add_text(self, tag, text, global_step=None, *args, **kwargs):
            step = None if global_step is None else offset + global_step
            return super().add_text(tag, text, step, *args, **kwargs)

    return ShiftedWriter(log_dir=log_dir, purge_step=offset + resumed_at + 1 if resumed_at else None)


def attach(trainer, run: TrackedRun, config: dict) -> None:
    """Give `trainer` the curriculum's tracking (see the module docstring).

    Args:
        trainer: the stage's trainer, its reporting callbacks made from `report_to`.
        run: the stage's tracked run (`TrackedRun.open`).
        config: the resolved stage config to log (redacted here).
    """
    config = redact(config)
    if "wandb" in run.report_to:
        os.environ.update(run.wandb_environment())
    callbacks = trainer.callback_handler.callbacks
    callbacks.insert(0, CurriculumStep(run.step_offset, config))
    if "tensorboard" in run.report_to:
        trainer.remove_callback(TensorBoardCallback)
        log_dir = Path(trainer.args.output_dir) / TENSORBOARD_DIR
        callbacks.insert(1, StageTensorBoard(log_dir, run.step_offset, config))


def log_evaluation(stage_dir: Path, results: dict[str, float]) -> bool:
    """Append an evaluation of the stage's export to the stage's run, at the stage's last curriculum step.

    Args:
        stage_dir: the finished stage (`tracking.json` and `stage.json` in it).
        results: pass@1 per benchmark, logged as `eval/<benchmark>/pass@1`.

    Returns:
        Whether anything was logged (False: the stage tracks nothing, or its evaluation is already logged).
    """
    path = Path(stage_dir) / TRACKING_FILE
    if not path.is_file():
        return False
    run = TrackedRun(**json.loads(path.read_text()))
    if run.evaluation_logged or not run.report_to:
        return False
    step = curriculum_step(read_record(stage_dir))
    metrics = {f"eval/{name}/pass@1": value for name, value in results.items()}
    if "tensorboard" in run.report_to:
        writer = shifted_writer(str(Path(stage_dir) / TENSORBOARD_DIR), 0)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)
        writer.close()
    if "wandb" in run.report_to:
        import wandb

        wandb.init(id=run.run_id, resume="allow", project=run.project, name=run.name, group=run.group)
        wandb.log({**metrics, f"train/{CURRICULUM_STEP}": step})
        wandb.finish()
    if "trackio" in run.report_to:
        import trackio

        trackio.init(project=run.project, name=run.name, resume="allow")
        trackio.log({**metrics, f"train/{CURRICULUM_STEP}": step})
        trackio.finish()
    run.evaluation_logged = True
    run.save(path)
    return True
