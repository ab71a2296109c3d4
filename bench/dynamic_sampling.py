"""What dynamic sampling generates, and what it scores, per group it trains on: alone and with GRESO's selection,
side by side; and the rows its log-prob forwards cost against the ideal, with transformers and with vLLM.

    .venv/bin/python bench/dynamic_sampling.py              # the stand-in pool, all arms (about 5 minutes)
    .venv-vllm/bin/python bench/dynamic_sampling.py         # the same, plus the forwards arm generating with vLLM
    .venv/bin/python bench/dynamic_sampling.py --embedded   # and a short run on the embedded model

The pool is GSM8K test problems whose pass@8 a model measured (`../shared/data/difficulty_signals/`, the
`difficulty` column, `int((1 - pass@8) * 10)`, read back to k/8 exactly). The stand-in reward, named `accuracy`,
scores each completion right with its problem's pass rate (a hash of the problem, the step and the completion:
deterministic), so a group of 8 has zero variance with probability p^8 + (1-p)^8 — most of this pool's
problems are always or never solved. Both arms run the real stage (`stagerl.train.grpo`, tiny random model,
8-token completions) for the same optimizer steps, so they train on the same number of groups (each step's
share, every group with variance, which the bench checks on every merged batch). Both print, from their
`stage.json` (`generation`): rollouts and completion tokens generated per group trained, and selection's
saving against dynamic sampling alone, beside the ideal saving: that of a selector skipping, after their first
group, exactly the problems that can only give zero-variance groups (pass rate 0 or 1), over the same steps.

The forwards arms (dynamic sampling, `beta` 0.001 as the shipped configs set it) count the rows that go through
TRL's log-prob forwards outside the loss (`_get_per_token_logps_and_entropies` with no gradient: the old
policy's, and the reference model's), per trained group, and time the stage. The ideal scores only the trained
groups: `num_generations` rows per group for the reference, and as many again for the old policy where TRL
needs it (with vLLM, whose importance-sampling correction needs it; with transformers only when
gradient_accumulation_steps is not a multiple of steps_per_generation x num_iterations, not here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ROOT.parent / "shared" / "data" / "difficulty_signals" / "gsm8k_test_difficulty_1319.jsonl"
PASS_AT_8 = {0: 8, 1: 7, 2: 6, 3: 5, 5: 4, 6: 3, 7: 2, 8: 1, 10: 0}  # difficulty -> successes of 8
GENERATIONS = 8
POOL_ENV = "STAGERL_BENCH_POOL"  # the pool file the stand-in reward reads its pass rates from


def accuracy(completions, id, trainer_state=None, **kwargs) -> list[float]:  # noqa: A002
    """The stand-in for the accuracy reward: right with the problem's measured pass rate (`$POOL_ENV`'s)."""
    step = trainer_state.global_step if trainer_state is not None else 0
    rates = {r["id"]: r["pass_rate"] for r in map(json.loads, Path(os.environ[POOL_ENV]).open())}
    out = []
    for i, (completion, pid) in enumerate(zip(completions, id, strict=True)):
        p = rates[pid]
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        digest = hashlib.sha256(f"{pid}:{step}:{i}:{text}".encode()).digest()
        out.append(1.0 if int.from_bytes(digest[:8], "big") / 2**64 < p else 0.0)
    return out


def write_pool(path: Path, size: int, seed: int) -> list[float]:
    """`size` problems drawn from the signals file, with their pass rates; returns the pass rates."""
    rows = [json.loads(line) for line in SIGNALS.open()]
    rows = random.Random(seed).sample(rows, size)
    pool = [
        {
            "id": r["id"],
            "problem": r["problem"],
            "answer": r["answer"],
            "pass_rate": PASS_AT_8[r["difficulty"]] / 8,
        }
        for r in rows
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in pool))
    return [r["pass_rate"] for r in pool]


def vllm_cpu_build() -> bool:
    try:
        from stagerl.train.vllm_cpu import cpu_build
    except ImportError:  # a checkout from before vLLM ran on CPU
        return False
    return cpu_build()


def zero_variance(p: float) -> float:
    return p**GENERATIONS + (1 - p) ** GENERATIONS


def ideal_saving(rates: list[float], groups_trained: int, plain_rollouts: int) -> float:
    """The saving of a selector that skips, after its first group, every problem that can only give zero
    variance, and nothing else: its expected rollouts over the same groups trained, against the measured
    dynamic-sampling rollouts."""
    mixed = [p for p in rates if 0 < p < 1]
    first_pass = len(rates) * GENERATIONS  # every problem is generated once before anything is known
    trained_first = sum(1 - zero_variance(p) for p in rates)
    rest = max(0.0, groups_trained - trained_first)
    per_group = GENERATIONS / (sum(1 - zero_variance(p) for p in mixed) / len(mixed))
    return 1 - (first_pass + rest * per_group) / plain_rollouts


def run_arm(name: str, work: Path, pool: Path, *extra: str, model: str = "stagerl:tiny-random") -> dict:
    """One stage in this process. Checks that every batch trains only on groups with variance (a kept group's
    advantages are not all zero), and counts the rows through TRL's log-prob forwards outside the loss."""
    import torch
    from trl import GRPOTrainer

    from stagerl.data.stage_dir import read_record
    from stagerl.train import grpo
    from stagerl.train.trainer import StageTrainer

    trained_advantages, rows = [], {"policy": 0, "reference": 0}
    score, forward = (
        StageTrainer._generate_and_score_completions,
        GRPOTrainer._get_per_token_logps_and_entropies,
    )

    def checked(self, inputs):
        output = score(self, inputs)
        if self.model.training:
            kept = (output["completion_mask"].sum(dim=1) > 0).view(-1, GENERATIONS).all(dim=1)
            groups = output["advantages"].view(-1, GENERATIONS)[kept]
            trained_advantages.extend(float(g.abs().max()) for g in groups)
        return output

    def counted(self, model, input_ids, *args, **kwargs):
        if not torch.is_grad_enabled():
            rows["reference" if model is self.ref_model else "policy"] += input_ids.shape[0]
        return forward(self, model, input_ids, *args, **kwargs)

    StageTrainer._generate_and_score_completions = checked
    GRPOTrainer._get_per_token_logps_and_entropies = counted
    start = time.perf_counter()
    try:
        grpo.main(
            [
                "--config",
                str(ROOT / "configs/stages/smoke.yaml"),
                "--model_name_or_path",
                model,
                "--data",
                str(pool),
                "--reward_funcs",
                "bench.dynamic_sampling.accuracy",
                "--num_generations",
                str(GENERATIONS),
                "--per_device_train_batch_size",
                str(4 * GENERATIONS),
                "--max_completion_length",
                "8",
                "--save_strategy",
                "no",
                "--logging_steps",
                "1",
                "--dynamic_sampling",
                "true",
                "--dynamic_sampling_max_rounds",
                "16",
                "--output_dir",
                str(work / name),
                *extra,
            ]
        )
    finally:
        StageTrainer._generate_and_score_completions = score
        GRPOTrainer._get_per_token_logps_and_entropies = forward
    record = read_record(work / name)["generation"]
    record["trained_group_advantage_min"] = min(trained_advantages)
    record["forward_rows"] = rows
    record["wall_s"] = time.perf_counter() - start
    return record


def print_forwards(arms: dict[str, dict]) -> dict[str, bool]:
    """The forwards arms' table, against the ideal (module docstring); returns its checks."""
    print(
        f"{'forwards arm (beta 0.001)':<34} {'groups':>7} {'rounds':>7} {'rollouts':>9} {'policy rows':>12} "
        f"{'ref rows':>9} {'rows/group':>11} {'ideal':>6} {'ratio':>6} {'wall s':>7}"
    )
    checks = {}
    for name, (r, old_logps) in arms.items():
        groups, rows = r["groups_trained"], r["forward_rows"]
        per_group = (rows["policy"] + rows["reference"]) / groups
        ideal = GENERATIONS * (2 if old_logps else 1)
        print(
            f"{name:<34} {groups:>7} {r['rounds']:>7} {r['rollouts']:>9} {rows['policy']:>12} "
            f"{rows['reference']:>9} {per_group:>11.2f} {ideal:>6} {per_group / ideal:>6.2f} {r['wall_s']:>7.1f}"
        )
        checks[f"{name}: forward rows per trained group within 10% of the ideal"] = per_group <= 1.1 * ideal
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=48, help="problems in the pool")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per arm (4 groups each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--target",
        type=float,
        default=0.25,
        help="GRESO's target zero-variance share (default 0.25, the reference's)",
    )
    parser.add_argument("--forward-steps", type=int, default=30, help="optimizer steps per forwards arm")
    parser.add_argument("--embedded", action="store_true", help="also a short run on the embedded model")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the stand-in reward is `bench.dynamic_sampling.accuracy`
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rates = write_pool(work / "pool.jsonl", args.pool, args.seed)
        os.environ[POOL_ENV] = str(work / "pool.jsonl")
        common = ["--max_steps", str(args.steps), "--seed", str(args.seed)]
        arms = {
            "dynamic sampling": run_arm("dynamic", work, work / "pool.jsonl", *common),
            "dynamic sampling + selection": run_arm(
                "selection", work, work / "pool.jsonl", *common, "--select_prompts", "true"
            ),
        }
        short = ["--max_steps", str(args.forward_steps), "--seed", str(args.seed), "--beta", "0.001"]
        forwards = {"transformers": (run_arm("beta", work, work / "pool.jsonl", *short), False)}
        if vllm_cpu_build():
            vllm = ["--use_vllm", "true", "--vllm_mode", "colocate"]
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            record = run_arm(
                "vllm", work, work / "pool.jsonl", *short, *vllm, model="stagerl:tiny-random-hd32"
            )
            forwards["vLLM (CPU build, colocate)"] = (record, True)
    deterministic = sum(p in (0.0, 1.0) for p in rates)
    print(
        f"pool: {args.pool} GSM8K problems, {deterministic} with pass rate 0 or 1; {GENERATIONS} completions a group"
    )
    print(
        f"{'arm':<30} {'groups':>7} {'rollouts':>9} {'tokens':>8} {'rounds':>7} {'dropped':>8} {'skipped':>8} "
        f"{'rollouts/group':>15} {'tokens/group':>13}"
    )
    for name, r in arms.items():
        groups = r["groups_trained"]
        print(
            f"{name:<30} {groups:>7} {r['rollouts']:>9} {r['completion_tokens']:>8} {r['rounds']:>7} "
            f"{r['zero_variance_dropped']['total']:>8} {r['prompts_skipped']:>8} {r['rollouts'] / groups:>15.2f} "
            f"{r['completion_tokens'] / groups:>13.2f}"
        )
    plain, selected = arms.values()
    saving = 1 - (selected["rollouts"] / selected["groups_trained"]) / (
        plain["rollouts"] / plain["groups_trained"]
    )
    token_saving = 1 - (selected["completion_tokens"] / selected["groups_trained"]) / (
        plain["completion_tokens"] / plain["groups_trained"]
    )
    ideal = ideal_saving(rates, plain["groups_trained"], plain["rollouts"])
    print(
        f"selection's saving in rollouts per trained group: {saving:.1%} (tokens: {token_saving:.1%}); ideal {ideal:.1%}"
    )
    checks = {
        "every trained group had reward variance (an advantage != 0)": all(
            r["trained_group_advantage_min"] > 0 for r in arms.values()
        ),
        "dynamic sampling dropped zero-variance groups": plain["zero_variance_dropped"]["total"] > 0,
        "dynamic sampling took more than one round a step": plain["rounds"] > args.steps,
        "both arms trained the same groups": plain["groups_trained"] == selected["groups_trained"],
        "selection saves at least 30% of rollouts per trained group": saving >= 0.30,
        "selection's saving within 10 points of the ideal": abs(saving - ideal) <= 0.10,
    }
    checks.update(print_forwards(forwards))
    for check, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {check}")
    if args.embedded:
        embedded()
    return 0 if all(checks.values()) else 1


def embedded() -> None:
    """A short run on the embedded model (SmolLM2-135M-Instruct, de-quantised from a Q4_1 GGUF): the accuracy
    reward on generated level-2 additions, both arms, 4 steps each."""
    from stagerl.data.stage_dir import read_record
    from stagerl.train import grpo

    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("dynamic", []), ("selection", ["--select_prompts", "true"])):
            out = Path(tmp) / name
            grpo.main(
                [
                    "--config",
                    str(ROOT / "configs/stages/demo.yaml"),
                    "--data",
                    "arithmetic:2",
                    "--max_steps",
                    "4",
                    "--save_strategy",
                    "no",
                    "--dynamic_sampling",
                    "true",
                    "--output_dir",
                    str(out),
                    *extra,
                ]
            )
            r = read_record(out)["generation"]
            print(f"embedded model, {name}: {json.dumps(r)}")


if __name__ == "__main__":
    sys.exit(main())
