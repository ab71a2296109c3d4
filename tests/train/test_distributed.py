"""Stages on 2 CPU processes (gloo) under DeepSpeed ZeRO-2 and ZeRO-3, through the shipped accelerate configs.

Each ZeRO stage runs the smoke stage (tiny random model, a length reward so that weights move, and the
accuracy reward so that per-problem counts are kept) three times:
uninterrupted for 4 steps; killed with SIGKILL once checkpoint-2 is complete (a test reward stalls step 3, see
`tests/helpers/stall.py`); resumed with `--resume_from_checkpoint latest`. The resumed export must equal the
uninterrupted one tensor for tensor, every launch must exit 0 without an abort at exit, and the ZeRO-3 export
must load with `from_pretrained` in one process with full weights.

Slow tier: `pytest -m slow tests/train/test_distributed.py` (about 2-3 minutes on 2 cores; the first DeepSpeed
run JIT-compiles a communication op into ~/.cache/torch_extensions, ~40 s once).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.rewards import FAIL_RANK_ENV
from tests.helpers.stall import STALL_AT_ENV, STALL_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")
STAGE = """
    --config configs/stages/smoke.yaml --model_name_or_path stagerl:tiny-random
    --reward_funcs accuracy tests.helpers.stall.stalling_length_reward --max_steps 4 --save_steps 2
""".split()
LAUNCH_TIMEOUT_S = 300
ABORT_SIGNS = ("terminate called", "Traceback (most recent call last)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(accelerate_config: str, output_dir: Path, *extra: str) -> list[str]:
    """`accelerate launch` of one smoke stage on 2 local processes; the config is used as shipped."""
    return [
        str(ACCELERATE),
        "launch",
        "--config_file",
        f"configs/accelerate/{accelerate_config}.yaml",
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "train/grpo.py",
        *STAGE,
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def run_stage(accelerate_config: str, output_dir: Path, *extra: str) -> str:
    """Run a stage to the end; assert a clean exit (code 0, no abort) and return its output."""
    proc = subprocess.run(
        launch_command(accelerate_config, output_dir, *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{log[-5000:]}"
    for sign in ABORT_SIGNS:
        assert sign not in log, f"{sign!r} in the output:\n{log[-5000:]}"
    assert (output_dir / "final" / "model.safetensors").is_file()
    return log


def run_and_kill(accelerate_config: str, output_dir: Path, tmp: Path, *extra: str, stall_at: int = 3) -> None:
    """Start a stage, SIGKILL launcher and workers once checkpoint-2 is complete (the reward's `stall_at`-th
    call, step 3's when it is called once a step, is stalled)."""
    stall_dir, log_path = tmp / "stalled-pids", tmp / "killed.log"
    env = {**os.environ, STALL_AT_ENV: str(stall_at), STALL_DIR_ENV: str(stall_dir)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            launch_command(accelerate_config, output_dir, *extra),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    marker = output_dir / "checkpoint-2" / "stagerl_complete"
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    try:
        while not (marker.exists() and len(list(stall_dir.glob("*"))) == 2):
            assert proc.poll() is None, f"run ended before the kill:\n{log_path.read_text()[-5000:]}"
            assert time.monotonic() < deadline, f"no stall in time:\n{log_path.read_text()[-5000:]}"
            time.sleep(0.2)
        workers = [int(p.name) for p in stall_dir.iterdir()]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in workers:  # torchrun puts each worker in its own session: kill them one by one
        os.kill(pid, signal.SIGKILL)
    for pid in workers:
        while Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid):
            time.sleep(0.05)
    assert not (output_dir / "checkpoint-4").exists() and not (output_dir / "final").exists()


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def load_weights(stage_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(stage_dir / "final" / "model.safetensors")


@pytest.fixture(scope="module", params=["zero2", "zero3"])
def zero_runs(request, tmp_path_factory):
    """(config name, uninterrupted stage dir, killed-then-resumed stage dir)."""
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    straight, resumed = tmp / "straight", tmp / "resumed"
    run_stage(name, straight)
    run_and_kill(name, resumed, tmp)
    log = run_stage(name, resumed, "--resume_from_checkpoint", "latest")
    assert "Resuming from" in log and "checkpoint-2" in log
    return name, straight, resumed


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(zero_runs):
    name, straight, resumed = zero_runs
    a, b = load_weights(straight), load_weights(resumed)
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{name}: resumed weights differ from the uninterrupted run in {differing}"
    # Per-problem counts: every completion of both ranks counted once, the resumed ones included.
    problems = [(d / "problems.jsonl").read_text() for d in (straight, resumed)]
    assert problems[0] == problems[1]
    attempts = sum(json.loads(line)["attempts"] for line in problems[0].splitlines())
    assert attempts == 4 * 2 * 4  # steps x ranks x 4

    from stagerl.train.models import resolve_model

    initial = load_file(Path(resolve_model("stagerl:tiny-random")) / "model.safetensors")
    assert any(not torch.equal(initial[k], a[k]) for k in initial.keys() & a.keys()), "weights did not change"
    # A ZeRO checkpoint keeps the (sharded) optimizer state, one file per rank: that is what resumes exactly.
    optim = list((resumed / "checkpoint-2").glob("global_step2/*optim_states.pt"))
    assert len(optim) == 2, optim


@pytest.mark.slow
@pytest.mark.parametrize("zero_runs", ["zero3"], indirect=True)  # the export that gathers partitioned weights
def test_zero3_export_loads_in_one_process_with_full_weights(zero_runs):
    _, straight, _ = zero_runs
    from transformers import AutoConfig, AutoModelForCausalLM

    final = straight / "final"
    model = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    expected = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(final))
    saved = load_weights(straight)
    for key, param in model.state_dict().items():
        assert param.shape == expected.state_dict()[key].shape, key  # not a partitioned (empty) shard
        assert param.numel() > 0 and torch.isfinite(param).all(), key
        if key in saved:
            assert torch.equal(param, saved[key]), key
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in expected.parameters())


@pytest.mark.slow
def test_smoke_curriculum_under_zero3_exports_a_loadable_model(tmp_path):
    """The smoke curriculum through ./launch.sh on 2 processes under ZeRO-3: stage 2 starts from stage 1's
    export, and the last export loads in one process with full weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    run_dir = tmp_path / "run"
    cmd = ["./launch.sh", "configs/curricula/smoke.yaml", "--output_dir", str(run_dir)]
    cmd += ["--accelerate-config", "configs/accelerate/zero3.yaml", "--num-processes", "2"]
    env = {**os.environ, "MAIN_PROCESS_PORT": str(free_port())}
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3 * LAUNCH_TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{log[-5000:]}"
    for sign in ABORT_SIGNS:
        assert sign not in log, f"{sign!r} in the output:\n{log[-5000:]}"

    stages = json.loads((run_dir / "curriculum.json").read_text())["stages"]
    assert len(stages) >= 2 and all(s["status"] == "done" for s in stages), stages
    second = (run_dir / stages[1]["dir"] / "train.log").read_text()
    assert f"--model_name_or_path {run_dir / stages[0]['checkpoint']}" in second  # the stage boundary
    final = run_dir / stages[-1]["checkpoint"]
    model = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    expected = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(final))
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in expected.state_dict().items()
    }
    saved = load_file(final / "model.safetensors")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_slurm_dry_run_prints_one_launcher_per_node():
    env = {
        **os.environ,
        "DRY_RUN": "1",
        "SLURM_JOB_NODELIST": "gpu-a,gpu-b",
        "GPUS_PER_NODE": "4",
        "ACCELERATE_CONFIG": "configs/accelerate/zero3.yaml",
        "MAIN_PROCESS_PORT": "29555",
    }
    env.pop("SLURM_SUBMIT_DIR", None)
    args = ["configs/curricula/smoke.yaml", "--output_dir", "runs/two nodes"]
    out = subprocess.run(
        ["bash", "slurm/train.slurm", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    assert len(lines) == 2
    for rank, (host, line) in enumerate(zip(["gpu-a", "gpu-b"], lines, strict=True)):
        prefix, command = line.split("] ", 1)
        assert prefix == f"[{host}"
        words = shlex.split(command)
        settings = dict(w.split("=", 1) for w in words[:4])
        assert settings == {
            "NUM_MACHINES": "2",
            "MACHINE_RANK": str(rank),
            "MAIN_PROCESS_IP": "gpu-a",
            "MAIN_PROCESS_PORT": "29555",
        }
        assert words[4:] == [
            "./launch.sh",
            *args,
            "--accelerate-config",
            "configs/accelerate/zero3.yaml",
            "--num-processes",
            "4",
        ]


def test_slurm_script_refuses_a_missing_accelerate_config():
    env = {**os.environ, "DRY_RUN": "1", "SLURM_JOB_NODELIST": "n1", "ACCELERATE_CONFIG": "nope.yaml"}
    proc = subprocess.run(
        ["bash", "slurm/train.slurm", "configs/curricula/smoke.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "ACCELERATE_CONFIG=nope.yaml" in proc.stderr


@pytest.mark.slow
def test_no_worker_outlives_a_killed_runner(tmp_path):
    """The runner alone is SIGKILLed while a 2-process stage stalls at step 3: its launcher and both workers
    (each in a session of its own under torchrun) must die with it."""
    import yaml

    spec = yaml.safe_load((ROOT / "configs/curricula/smoke.yaml").read_text())
    spec["defaults"].update(reward_funcs=["tests.helpers.stall.stalling_length_reward"], max_steps=4)
    curriculum = tmp_path / "stall.yaml"
    curriculum.write_text(yaml.safe_dump(spec))
    stall_dir = tmp_path / "stalled-pids"
    env = {
        **os.environ,
        STALL_AT_ENV: "3",
        STALL_DIR_ENV: str(stall_dir),
        "MAIN_PROCESS_PORT": str(free_port()),
    }
    cmd = [
        "./launch.sh",
        str(curriculum),
        "--output_dir",
        str(tmp_path / "run"),
        "--accelerate-config",
        "configs/accelerate/ddp.yaml",
        "--num-processes",
        "2",
    ]
    runner = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while len(list(stall_dir.glob("*"))) < 2:
        assert runner.poll() is None and time.monotonic() < deadline, "the stage never stalled"
        time.sleep(0.2)
    workers = [int(p.name) for p in stall_dir.iterdir()]
    runner.kill()  # the runner only, not its process group
    runner.wait()
    deadline = time.monotonic() + 15
    while any(_proc_state(pid) != "Z" for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_proc_state(pid) == "Z" for pid in workers), "a worker outlived the runner"


@pytest.mark.slow
def test_a_stage_resumed_mid_epoch_in_a_later_epoch_on_two_processes_walks_that_epoch(tmp_path):
    """4 rows, one prompt a process and step: an epoch is 2 steps. checkpoint-3 (in epoch 1, one step in) is
    resumed in a directory of its own; the stage must end as the uninterrupted one. On several processes
    transformers' `set_epoch` does not reach TRL's sampler in the epoch it resumes in (accelerate's batch
    skipping hides it), so `StageTrainer` says the epoch itself."""
    epochs = ["--max_train_samples", "4", "--max_steps", "6", "--save_steps", "1"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_stage("ddp", straight, *epochs)
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-3", resumed / "checkpoint-3")
    run_stage("ddp", resumed, *epochs, "--resume_from_checkpoint", "latest")
    a, b = load_weights(straight), load_weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (straight / "problems.jsonl").read_text() == (resumed / "problems.jsonl").read_text()


DYNAMIC = """
    --reward_funcs accuracy tests.helpers.stall.stalling_half_constant_reward --dynamic_sampling true
    --select_prompts true --max_train_samples 16 --max_steps 6 --steps_per_generation 2
    --gradient_accumulation_steps 2 --per_device_train_batch_size 4
""".split()


def assert_same_dynamic_stage(a: Path, b: Path) -> None:
    wa, wb = load_weights(a), load_weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "problems.jsonl").read_text() == (b / "problems.jsonl").read_text()
    ra, rb = (json.loads((d / "stage.json").read_text()) for d in (a, b))
    assert ra["generation"] == rb["generation"] and ra["sampler"] == rb["sampler"]


@pytest.mark.slow
def test_dynamic_sampling_and_selection_on_two_processes_resume_exactly(tmp_path):
    """Both ranks decide from the same gathered groups (a checkpoint fails if their draws differ); killed once
    checkpoint-2 is complete, and killed between two refill rounds (both ranks stop at the same point), the
    resumed stage trains, counts and samples as the uninterrupted one."""
    straight = tmp_path / "straight"
    run_stage("ddp", straight, *DYNAMIC)
    generation = json.loads((straight / "stage.json").read_text())["generation"]
    assert generation["zero_variance_dropped"]["total"] > 0 and generation["rounds"] > 6
    assert generation["groups_trained"] == 6 * 2 * 2  # 6 steps x 2 ranks x 2 groups, each with variance

    history = json.loads((straight / "final" / "trainer_state.json").read_text())["log_history"]
    rounds = [int(e["generation/rounds"]) for e in history if "generation/rounds" in e]  # reward calls a step
    at_checkpoint = tmp_path / "at-checkpoint"
    stall_at = rounds[0] + rounds[1] + 1  # step 3's first
    run_and_kill("ddp", at_checkpoint, tmp_path, *DYNAMIC, stall_at=stall_at)
    run_stage("ddp", at_checkpoint, *DYNAMIC, "--resume_from_checkpoint", "latest")
    assert_same_dynamic_stage(straight, at_checkpoint)

    # a step past checkpoint-2 that refills
    step = next(s for s in range(3, len(rounds) + 1) if rounds[s - 1] > 1)
    between = tmp_path / "between-rounds"
    env = {
        **os.environ,
        "STAGERL_FAILPOINT": f"dynamic-sampling-refill@{sum(r - 1 for r in rounds[: step - 1]) + 1}",
    }
    killed = subprocess.run(
        launch_command("ddp", between, *DYNAMIC),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert killed.returncode != 0 and not (between / "final").exists()
    assert (between / "checkpoint-2" / "stagerl_complete").exists()
    run_stage("ddp", between, *DYNAMIC, "--resume_from_checkpoint", "latest")
    assert_same_dynamic_stage(straight, between)


@pytest.mark.slow
def test_a_grading_failure_on_one_machine_fails_every_machine_at_once(tmp_path):
    """Two machines (two launchers on this one, one process each): the reward fails on rank 1 only, at step 2.
    Rank 0, on the other machine, must not sit in TRL's next gather until the collective times out: both
    launches end (long before the collective would time out), and rank 0 says which rank failed and why."""
    port = str(free_port())
    env = {**os.environ, FAIL_RANK_ENV: "1"}
    stage = [*STAGE[:4], "--reward_funcs", "tests.helpers.rewards.failing_length_reward", *STAGE[7:]]
    launches = [
        [str(ACCELERATE), "launch", "--config_file", "configs/accelerate/ddp.yaml", "--num_machines", "2"]
        + ["--machine_rank", str(rank), "--num_processes", "2", "--main_process_ip", "127.0.0.1"]
        + ["--main_process_port", port, "train/grpo.py", *stage, "--output_dir", str(tmp_path / "stage")]
        for rank in (0, 1)
    ]
    machines = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in launches
    ]
    try:
        outputs = [proc.communicate(timeout=LAUNCH_TIMEOUT_S)[0] for proc in machines]
    finally:
        for proc in machines:
            proc.kill()
    assert all(proc.returncode != 0 for proc in machines)
    assert "failing_length_reward failed on rank 1: RuntimeError: the grading pool died" in outputs[0], (
        outputs[0][-3000:]
    )
