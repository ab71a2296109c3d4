"""The paper's staged run as the shipped files define it, in miniature on CPU (slow tier; with vLLM, the vLLM
tier; the check of what the miniature changes, the fast tier).

`configs/curricula/am_math_paper.yaml` and the stage YAMLs it names run unchanged but for what a CPU test must
change: the model (a tiny random model with DeepSeek-R1-Distill's chat template, whose prompt opens `<think>`),
the data (local rows in AM-Math candidate layouts), lengths, steps, batch sizes (steps_per_generation and
gradient_accumulation_steps scaled down but kept above 1 and equal, as shipped), num_generations, the
device switches and the evaluation's size. The test asserts its changes stay within that list. Run twice:
generating with transformers (`use_vllm: false`), and as shipped, with TRL's colocated vLLM engine on vLLM's
CPU build (which has no sleep mode: `vllm_enable_sleep_mode: false`), on the tiny R1 model whose head size
vLLM's CPU attention accepts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs/curricula/am_math_paper.yaml"

# What a CPU miniature may change, and nothing else: (stage fields, curriculum keys, eval keys).
MAY_CHANGE_STAGE = {
    "data",
    "max_completion_length",
    "max_steps",
    "save_steps",
    "per_device_train_batch_size",
    "steps_per_generation",
    "gradient_accumulation_steps",
    "num_generations",
    "use_vllm",
    "vllm_enable_sleep_mode",
    "bf16",
    "use_cpu",
    "decontaminate",
    "advance",
}
MAY_CHANGE_EVAL = {"samples", "max_new_tokens", "limit"}
MAY_CHANGE_ADVANCE = {"window", "min_steps"}  # step counts


def write_levels(directory: Path) -> None:
    """Level 2 as chat turns with a reference solution, level 3 in verl's layout (`reward_model.ground_truth`):
    two of the candidate layouts of the unpublished AM-Math schema, one parquet per level as on the hub."""
    directory.mkdir()
    problems = [(f"What is {a} + {a + 1}?", str(2 * a + 1)) for a in range(8)]
    chat = [
        {
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": f"So \\boxed{{{a}}}."},
            ]
        }
        for q, a in problems
    ]
    verl = [
        {"prompt": [{"role": "user", "content": q.replace("+", "plus")}], "reward_model": {"ground_truth": a}}
        for q, a in problems
    ]
    pq.write_table(pa.Table.from_pylist(chat), directory / "math_difficulty_level_2.parquet")
    pq.write_table(pa.Table.from_pylist(verl), directory / "math_difficulty_level_3.parquet")


def miniature(data_dir: Path, vllm: bool = False) -> tuple[dict, list[dict]]:
    """The paper curriculum with the CPU changes (generating with vLLM's CPU build, or with transformers);
    returns it and the changes made to each stage."""
    spec = yaml.safe_load(PAPER.read_text())
    changes = []
    for level, stage in zip((2, 3), spec["stages"], strict=True):
        change = {
            "data": [f"{data_dir}:{level}"],
            "max_completion_length": 16,
            "max_steps": 4,
            "save_steps": 2,
            "per_device_train_batch_size": 2,
            "steps_per_generation": 2,
            "gradient_accumulation_steps": 2,
            "num_generations": 2,
            **({"vllm_enable_sleep_mode": False} if vllm else {"use_vllm": False}),
            "bf16": False,
            "use_cpu": True,
        }
        if "advance" in stage:
            change["advance"] = {**stage["advance"], "window": 2, "min_steps": 2}
        stage.update(change)
        changes.append(change)
    spec["model"] = "stagerl:tiny-random-r1-hd32" if vllm else "stagerl:tiny-random-r1"
    spec["eval"].update(samples=2, max_new_tokens=16, limit=2)
    return spec, changes


@pytest.mark.parametrize("vllm", [False, True], ids=["transformers", "vllm"])
def test_the_miniature_changes_only_what_a_cpu_must(tmp_path, vllm):
    spec, changes = miniature(tmp_path / "levels", vllm)
    paper = yaml.safe_load(PAPER.read_text())
    assert all(change.keys() <= MAY_CHANGE_STAGE for change in changes)
    for shipped, mini in zip(paper["stages"], spec["stages"], strict=True):
        kept = {k: v for k, v in shipped.items() if k not in MAY_CHANGE_STAGE}
        assert {k: mini[k] for k in kept} == kept
        if "advance" in shipped:
            changed = {k for k in shipped["advance"] if shipped["advance"][k] != mini["advance"][k]}
            assert changed <= MAY_CHANGE_ADVANCE
    assert {k for k in paper["eval"] if paper["eval"][k] != spec["eval"].get(k)} <= MAY_CHANGE_EVAL
    assert spec["eval"].keys() - paper["eval"].keys() <= MAY_CHANGE_EVAL
    assert {k for k in paper if k not in ("stages", "eval") and paper[k] != spec[k]} == {"model"}
    # Kept as shipped: spg and GA equal (one block per optimizer step), both above 1.
    assert all(c["steps_per_generation"] == c["gradient_accumulation_steps"] > 1 for c in changes)


@pytest.mark.slow
def test_the_paper_curriculum_in_miniature(tmp_path):
    run_miniature(tmp_path, vllm=False)


@pytest.mark.vllm
def test_the_paper_curriculum_in_miniature_with_vllm(tmp_path):
    run_miniature(tmp_path, vllm=True)


def run_miniature(tmp_path: Path, vllm: bool) -> None:
    spec, _ = miniature(tmp_path / "levels", vllm)
    write_levels(tmp_path / "levels")
    curriculum = tmp_path / "paper.yaml"
    curriculum.write_text(yaml.safe_dump(spec, sort_keys=False))
    run = tmp_path / "run"
    proc = subprocess.run(
        ["./launch.sh", str(curriculum), "--output_dir", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    stages = json.loads((run / "curriculum.json").read_text())["stages"]
    assert [s["status"] for s in stages] == ["done", "done"]
    for level, stage in zip((2, 3), stages, strict=True):
        record = json.loads((run / stage["dir"] / "stage.json").read_text())
        assert record["think_open"] is True  # R1's template opens <think> in the prompt
        assert (
            record["chat_template"]["detected"] is True
            and len(record["chat_template"]["template_hash"]) == 16
        )
        assert record["rewards"] == {"accuracy": {"max_completion_length": 16, "think_open": True}}
        grpo = record["config"]["grpo"]
        # The paper's settings survive (arXiv 2504.00829 §4.1, §4.3): lr, KL, entropy only in the first stage,
        # truncated completions masked only in the level-3 stage.
        assert (grpo["learning_rate"], grpo["beta"]) == (1e-6, 0.001)
        assert grpo["entropy_coef"] == (0.001 if level == 2 else 0.0)
        assert grpo["mask_truncated_completions"] is (level == 3)
        assert record["data"]["specs"] == [f"{tmp_path / 'levels'}:{level}"] and record["steps"] >= 2
        problems = [json.loads(line) for line in (run / stage["dir"] / "problems.jsonl").open()]
        # every completion generated for a step is graded once: steps x 2 prompts x 2 completions
        assert sum(p["attempts"] for p in problems) == record["steps"] * 4
        summary = json.loads((run / stage["dir"] / "eval" / "summary.json").read_text())
        assert set(summary["benchmarks"]) == {"math500", "aime24", "aime25", "amc23"}
        assert summary["settings"]["samples"] == 2 and summary["settings"]["temperature"] == 0.6
        assert grpo["use_vllm"] is vllm and summary["settings"]["backend"] == (
            "vllm" if vllm else "transformers"
        )

    # The same first stage on a ChatML model records that its prompt opens nothing.
    level2 = yaml.safe_load((ROOT / spec["stages"][0]["config"]).read_text())
    level2.update({k: v for k, v in spec["stages"][0].items() if k in MAY_CHANGE_STAGE - {"advance"}})
    (tmp_path / "level2.yaml").write_text(yaml.safe_dump(level2))
    chatml = tmp_path / "chatml"
    proc = subprocess.run(
        [
            sys.executable,
            "train/grpo.py",
            "--config",
            str(tmp_path / "level2.yaml"),
            "--max_steps",
            "2",
            "--model_name_or_path",
            "stagerl:tiny-random-hd32" if vllm else "stagerl:tiny-random",
            "--output_dir",
            str(chatml),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((chatml / "stage.json").read_text())["think_open"] is False
