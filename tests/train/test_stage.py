"""End-to-end stages on the tiny random model (slow tier: each stage is a real `train/grpo.py` process)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.helpers.rewards import PROMPT_LOG_ENV

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

TINY_STAGE = """
    --config configs/stages/smoke.yaml --model_name_or_path stagerl:tiny-random
    --reward_funcs accuracy tests.helpers.rewards.length_reward --max_steps 4 --save_steps 2
""".split()


def run_stage(output_dir, *extra, failpoint=None, expect_rc=0, env=None):
    cmd = [sys.executable, "train/grpo.py", *TINY_STAGE, "--output_dir", str(output_dir), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if failpoint:
        env["STAGERL_FAILPOINT"] = failpoint
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == expect_rc, proc.stderr[-3000:]
    return proc


def weights(model_dir):
    return load_file(str(Path(model_dir) / "model.safetensors"))


def test_smoke_stage_end_to_end(tmp_path):
    from stagerl.train.models import TINY_RANDOM, resolve_model

    run_stage(tmp_path / "stage")
    stage = tmp_path / "stage"
    final = stage / "final"
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "trainer_state.json",
    ):
        assert (final / name).is_file(), name
    for step in (2, 4):
        ckpt = stage / f"checkpoint-{step}"
        for name in (
            "model.safetensors",
            "optimizer.pt",
            "scheduler.pt",
            "rng_state.pth",
            "trainer_state.json",
            "stagerl_complete",
            "problems.jsonl",
        ):
            assert (ckpt / name).is_file(), f"{ckpt.name}/{name}"
    record = json.loads((stage / "stage.json").read_text())
    assert record["status"] == "done" and record["steps"] == 4
    assert record["data"]["specs"] == ["arithmetic:1"] and len(record["data"]["fingerprint"]) == 16
    assert len(record["reward_history"]) == 4 and record["reward_start"] is not None
    assert record["config"]["grpo"]["max_steps"] == 4 and record["version"]["trl"] == "1.16.0"
    problems = [json.loads(line) for line in (stage / "problems.jsonl").open()]
    assert sum(p["attempts"] for p in problems) == 4 * 4  # 4 steps x 4 completions, all graded
    # The policy was trained: parameters moved away from the initial model.
    before, after = weights(resolve_model(TINY_RANDOM)), weights(final)
    assert any(not before[k].equal(after[k]) for k in before)
    # The export loads as a plain model for the next stage.
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(final).num_parameters() > 0


def test_resume_mid_stage_matches_uninterrupted(tmp_path):
    run_stage(tmp_path / "full")
    # The interrupted run: only checkpoint-2 survived; resuming "latest" must finish with identical weights.
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", interrupted / "checkpoint-2")
    # A half-written later checkpoint (no completion marker) must be ignored.
    (interrupted / "checkpoint-3").mkdir()
    (interrupted / "checkpoint-3" / "config.json").write_text("{")
    run_stage(interrupted, "--resume_from_checkpoint", "latest")
    full, resumed = weights(tmp_path / "full" / "final"), weights(interrupted / "final")
    assert full.keys() == resumed.keys()
    assert all(full[k].equal(resumed[k]) for k in full)
    record = json.loads((interrupted / "stage.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-2")
    # Per-problem counts carried across the resume: the same totals as the uninterrupted run.
    read = lambda d: sorted(json.loads(line)["attempts"] for line in (d / "problems.jsonl").open())  # noqa: E731
    assert read(tmp_path / "full") == read(interrupted)


@pytest.mark.parametrize(
    ("blocks", "attempts"),
    [
        # each generation (4 completions) trained on twice: blocks of 2 optimizer steps
        (["--num_iterations", "2"], 2 * 4),
        # one generation of 2 prompts x 4 (8 completions) split over 2 optimizer steps of 2 x 2 micro-batches
        (
            """
                --steps_per_generation 4 --gradient_accumulation_steps 2 --per_device_train_batch_size 2
            """.split(),
            2 * 8,
        ),
    ],
    ids=["num_iterations-2", "spg-4-over-accumulation-2"],
)
def test_a_stage_with_generation_blocks_resumes_exactly(tmp_path, blocks, attempts):
    """A generation serves two optimizer steps; checkpoints every 2 steps end a block (others are refused
    before any model loads), so a stage resumed from checkpoint-2 trains on what an uninterrupted one did."""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_stage(full, *blocks)
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-2", resumed / "checkpoint-2")  # as a kill right after it leaves it
    run_stage(resumed, *blocks, "--resume_from_checkpoint", "latest")
    assert_same_stage(full, resumed)
    problems = [json.loads(line) for line in (full / "problems.jsonl").open()]
    assert sum(p["attempts"] for p in problems) == attempts  # every completion generated is graded once


# 4 rows, one prompt a step (4 completions): an epoch is 4 steps, the stage two and a half epochs; a test reward
# logs the prompts of every step.
EPOCHS = """
    --reward_funcs accuracy tests.helpers.rewards.logged_length_reward --max_train_samples 4 --max_steps 10
    --save_steps 1
""".split()


@pytest.mark.parametrize(
    "sampler", [[], ["--select_prompts", "true"]], ids=["trls-repeat-sampler", "prompt-sampler"]
)
def test_a_stage_killed_in_a_later_epoch_resumes_exactly(tmp_path, sampler):
    """Killed while checkpoint-8 is saved, the stage resumes from checkpoint-7: in epoch 1, one step before its
    end, its last batch already drawn (the dataloader prefetches). Resumed, it must walk the rest of epoch 1
    and epoch 2 as the uninterrupted run does: the same prompts, weights and per-problem statistics."""
    full, stage = tmp_path / "full", tmp_path / "stage"
    log = {name: {PROMPT_LOG_ENV: str(tmp_path / f"{name}.jsonl")} for name in ("full", "killed", "resumed")}
    run_stage(full, *EPOCHS, *sampler, env=log["full"])
    run_stage(
        stage, *EPOCHS, *sampler, failpoint="checkpoint-before-marker@8", expect_rc=-9, env=log["killed"]
    )
    assert Path(last_complete(stage)).name == "checkpoint-7"
    run_stage(stage, *EPOCHS, *sampler, "--resume_from_checkpoint", "latest", env=log["resumed"])
    prompts = {name: (tmp_path / f"{name}.jsonl").read_text().splitlines() for name in log}
    assert len(prompts["full"]) == 10 and len(set(prompts["full"][:4])) == 4  # an epoch: every row once
    assert prompts["resumed"] == prompts["full"][7:]
    assert_same_stage(full, stage)


# Dynamic sampling with prompt selection: a reward that is constant for half the problems (zero-variance groups
# to drop and to learn to skip), generation blocks of 2 x 2 micro-batches.
DYNAMIC = """
    --reward_funcs accuracy tests.helpers.rewards.half_constant_reward --dynamic_sampling true
    --select_prompts true --max_train_samples 16 --max_steps 6 --steps_per_generation 2
    --gradient_accumulation_steps 2 --per_device_train_batch_size 4
""".split()


def assert_same_dynamic_stage(a: Path, b: Path) -> None:
    assert_same_stage(a, b)
    ra, rb = (json.loads((d / "stage.json").read_text()) for d in (a, b))
    assert ra["generation"] == rb["generation"] and ra["sampler"] == rb["sampler"]


def rounds_per_step(stage: Path) -> list[int]:
    history = json.loads((stage / "final" / "trainer_state.json").read_text())["log_history"]
    return [int(e["generation/rounds"]) for e in history if "generation/rounds" in e]


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory):
    out = tmp_path_factory.mktemp("dynamic") / "stage"
    run_stage(out, *DYNAMIC)
    record = json.loads((out / "stage.json").read_text())["generation"]
    # the run exercises what it must: groups dropped, refill rounds, every trained group with variance
    assert record["zero_variance_dropped"]["total"] > 0 and record["rounds"] > 6
    assert record["groups_trained"] == 6 * 2  # 6 steps x 2 groups, each with variance
    return out


def test_dynamic_sampling_resumes_exactly_from_a_checkpoint(tmp_path, dynamic):
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(dynamic / "checkpoint-2", resumed / "checkpoint-2")  # as a kill right after it leaves it
    run_stage(resumed, *DYNAMIC, "--resume_from_checkpoint", "latest")
    assert_same_dynamic_stage(dynamic, resumed)


def test_dynamic_sampling_resumes_exactly_after_a_kill_between_refill_rounds(tmp_path, dynamic):
    rounds = rounds_per_step(dynamic)
    step = next(s for s in range(3, len(rounds) + 1) if rounds[s - 1] > 1)  # a later step with a refill
    passage = sum(r - 1 for r in rounds[: step - 1]) + 1  # its first refill, past checkpoint-2
    stage = tmp_path / "stage"
    run_stage(stage, *DYNAMIC, failpoint=f"dynamic-sampling-refill@{passage}", expect_rc=-9)
    assert not (stage / "final").exists() and last_complete(stage) is not None
    run_stage(stage, *DYNAMIC, "--resume_from_checkpoint", "latest")
    assert_same_dynamic_stage(dynamic, stage)


def test_learnability_sampling_resumes_exactly_after_a_kill(tmp_path):
    """Priors from the pass rates GSM8K problems were labelled with (`difficulty`), a kill while the second
    checkpoint is written, a resume from the first: the same draws, weights and counts."""
    signals = ROOT.parent / "shared/data/difficulty_signals/gsm8k_test_difficulty_1319.jsonl"
    learn = [
        "--data",
        str(signals),
        "--max_train_samples",
        "32",
        "--learnability_sampling",
        "true",
        "--max_steps",
        "6",
        "--steps_per_generation",
        "2",
        "--gradient_accumulation_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
    ]
    run_stage(tmp_path / "full", *learn)
    stage = tmp_path / "stage"
    run_stage(stage, *learn, failpoint="checkpoint-before-marker@2", expect_rc=-9)  # checkpoint-4 incomplete
    run_stage(stage, *learn, "--resume_from_checkpoint", "latest")
    assert_same_dynamic_stage(tmp_path / "full", stage)
    sampler = json.loads((stage / "stage.json").read_text())["sampler"]
    assert sampler["learnability_sampling"] and sampler["batches"] >= 3
    state = json.loads((stage / "checkpoint-6" / "sampler.json").read_text())
    assert (
        state["drawn_learnability"]
        == json.loads((tmp_path / "full" / "checkpoint-6" / "sampler.json").read_text())["drawn_learnability"]
    )
    # The same stage at a budget of completion tokens ends at its first block's end (one step: spg = GA), and says why.
    run_stage(tmp_path / "budget", *learn, "--stop_at_completion_tokens", "1")
    record = json.loads((tmp_path / "budget" / "stage.json").read_text())
    assert record["steps"] == 1 and record["advanced_early"].startswith("completion-token budget")


# --- crash windows: each test stops the stage exactly inside one (a failpoint SIGKILLs it there), resumes it
# as the runner does (`--resume_from_checkpoint latest`), and compares with an uninterrupted run.


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "stage"
    run_stage(out)
    return out


def assert_same_stage(a: Path, b: Path) -> None:
    wa, wb = weights(a / "final"), weights(b / "final")
    assert wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)
    ra, rb = (json.loads((d / "stage.json").read_text()) for d in (a, b))
    assert ra["steps"] == rb["steps"] and ra["reward_history"] == rb["reward_history"]
    assert (a / "problems.jsonl").read_text() == (b / "problems.jsonl").read_text()


@pytest.mark.parametrize(
    "failpoint,extra",
    [
        ("checkpoint-before-marker@2", []),  # checkpoint-4 holds the stage's state but is not complete
        ("rotate-unmarked", ["--save_total_limit", "1"]),  # checkpoint-2 unmarked, not yet deleted
        ("stage-before-export", []),  # trained to the end, nothing exported
        ("export-swap", []),  # the export saved beside final/, not yet renamed
        ("stage-before-record", []),  # exported, no stage.json
    ],
)
def test_killed_inside_a_crash_window_then_resumed_matches_uninterrupted(
    tmp_path, uninterrupted, failpoint, extra
):
    stage = tmp_path / "stage"
    run_stage(stage, *extra, failpoint=failpoint, expect_rc=-9)
    assert not (stage / "stage.json").exists()
    assert last_complete(stage) is not None  # a kill at any instant leaves a complete checkpoint
    resumed = run_stage(stage, *extra, "--resume_from_checkpoint", "latest")
    assert_same_stage(uninterrupted, stage)
    if failpoint != "checkpoint-before-marker@2":  # the others resume the last checkpoint: no step more
        assert "the end of the stage: exporting it" in resumed.stderr
        assert json.loads((stage / "stage.json").read_text())["resumed_from"] == "checkpoint-4"


def last_complete(stage: Path):
    from stagerl.train.checkpoints import last_complete_checkpoint

    return last_complete_checkpoint(stage)


def test_finished_stage_run_again_with_latest_trains_nothing(tmp_path, uninterrupted):
    stage = tmp_path / "stage"
    shutil.copytree(uninterrupted, stage)
    before = (stage / "stage.json").read_text()
    proc = run_stage(stage, "--resume_from_checkpoint", "latest")
    assert "Stage already finished" in proc.stderr
    assert (stage / "stage.json").read_text() == before
    assert_same_stage(uninterrupted, stage)


def test_finished_stage_run_again_without_latest_is_refused_or_moved_aside(tmp_path, uninterrupted):
    """Rerun as it was first run, the finished stage is refused in one line and left as it was; with
    `replace_output_dir` it is moved aside and the stage trains afresh, to the same end."""
    stage = tmp_path / "stage"
    shutil.copytree(uninterrupted, stage)
    before = (stage / "stage.json").read_text()
    errors = [line for line in run_stage(stage, expect_rc=2).stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: output_dir {stage} already holds a stage (2 checkpoints, checkpoint-2 to checkpoint-4, final/, "
        "stage.json): resume it with --resume_from_checkpoint latest, or start afresh in a new or empty "
        "output_dir (--replace_output_dir true moves this one aside)"
    ]
    assert (stage / "stage.json").read_text() == before
    run_stage(stage, "--replace_output_dir", "true")
    (aside,) = tmp_path.glob("stage.replaced-*")
    assert (aside / "stage.json").read_text() == before and (aside / "final" / "model.safetensors").is_file()
    assert json.loads((stage / "stage.json").read_text())["resumed_from"] is None
    assert_same_stage(uninterrupted, stage)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["--per_device_train_batch_size", "8"], "per_device_train_batch_size was 4, is 8 now"),
        (["--max_train_samples", "50"], "data_fingerprint was "),
        (["--select_prompts", "true"], "sampler was 'trl', is 'greso' now"),
    ],
    ids=["batch-size", "data", "sampler"],
)
def test_a_resume_with_other_rows_or_batches_is_refused(tmp_path, uninterrupted, changed, named):
    """The checkpoint's row positions (TRL's batch skip, the sampler's passes) would point into other batches."""
    stage = tmp_path / "stage"
    stage.mkdir()
    shutil.copytree(uninterrupted / "checkpoint-2", stage / "checkpoint-2")
    proc = run_stage(stage, *changed, "--resume_from_checkpoint", "latest", expect_rc=2)
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {stage / 'checkpoint-2'} cannot be resumed exactly: ") and named in error
    assert not (stage / "final").exists() and not (stage / "checkpoint-3").exists()


def test_early_advance_survives_a_kill_before_the_export(tmp_path):
    """The stage advances early at step 2 (any length reward beats the threshold); killed before its export,
    the resumed stage must not train a third step."""
    early = ["--advance_reward_threshold", "0.0", "--advance_window", "1", "--advance_min_steps", "2"]
    run_stage(tmp_path / "straight", *early)
    straight = json.loads((tmp_path / "straight" / "stage.json").read_text())
    assert straight["steps"] == 2 and straight["advanced_early"].endswith("at step 2")
    run_stage(tmp_path / "killed", *early, failpoint="stage-before-export", expect_rc=-9)
    run_stage(tmp_path / "killed", *early, "--resume_from_checkpoint", "latest")
    resumed = json.loads((tmp_path / "killed" / "stage.json").read_text())
    assert resumed["steps"] == 2 and resumed["advanced_early"] == straight["advanced_early"]
    assert_same_stage(tmp_path / "straight", tmp_path / "killed")
