"""A curriculum under `report_to: [tensorboard]`: one run per stage, a curriculum-wide step that increases across
stages and across a kill and resume, and the runner's evaluations in the stages' runs (slow tier)."""

import os
import subprocess

import pytest
import yaml

from tests.helpers.curricula import ROOT, write

pytestmark = pytest.mark.slow


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard run as `[(step, value)]`, as TensorBoard shows it (purged events dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_curriculum_one_run_per_stage_with_its_step_and_evaluation(tmp_path):
    spec = yaml.safe_load((ROOT / "configs/curricula/smoke.yaml").read_text())
    spec["stages"] = spec["stages"][:2]
    rewards = ["accuracy", "tests.helpers.rewards.length_reward"]
    spec["defaults"].update(max_steps=3, save_steps=1, report_to=["tensorboard"], reward_funcs=rewards)
    spec["eval"] = {"benchmarks": ["arith1"], "limit": 2, "samples": 1, "max_new_tokens": 8}
    curriculum, run = write(tmp_path, spec, "tracked.yaml"), tmp_path / "run"
    launch = [str(ROOT / "launch.sh"), str(curriculum), "--output_dir", str(run)]
    # Killed inside stage 1, after it logged step 2 but before checkpoint-2 was complete: the resumed stage
    # trains step 2 again from checkpoint-1.
    env = {**os.environ, "STAGERL_FAILPOINT": "checkpoint-before-marker@2"}
    killed = subprocess.run(launch, cwd=ROOT, capture_output=True, text=True, env=env)
    assert killed.returncode != 0 and not (run / "stage-1-level1" / "stage.json").exists()
    rerun = subprocess.run(launch, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    runs = sorted({p.parent for p in run.glob("*/tensorboard/events.out.tfevents.*")})
    assert [p.parent.name for p in runs] == ["stage-1-level1", "stage-2-level2"]  # one run per stage
    stage1, stage2 = scalars(runs[0]), scalars(runs[1])
    for logged, first in ((stage1, 1), (stage2, 4)):
        steps = [step for step, _ in logged["train/curriculum_step"]]
        assert steps == list(range(first, first + 3))  # once each, in order, across the kill
        assert [value for _, value in logged["train/curriculum_step"]] == steps
        assert [step for step, _ in logged["train/reward"]] == steps
        (evaluation,) = logged["eval/arith1/pass@1"]
        assert evaluation[0] == steps[-1] and 0 <= evaluation[1] <= 1
    text = (run / "stage-2-level2" / "tracking.json").read_text()
    assert '"name": "smoke/level2"' in text and '"group": "smoke"' in text and '"step_offset": 3' in text
