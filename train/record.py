"""The stage record (`stage.json`): what ran, on what data, with what result — written once, atomically."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from stagerl.data.files import atomic_write_json
from stagerl.data.stage_dir import RECORD_KEYS
from stagerl.train.rollouts import GENERATED_REWARD


def code_version() -> dict:
    """Versions of this project (git commit when available) and of the libraries that shape training."""
    root = Path(__file__).resolve().parent.parent
    try:
        git = (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.TimeoutExpired):
        git = None
    libs = ("stagerl", "trl", "transformers", "accelerate", "deepspeed", "torch", "datasets", "math-verify")
    return {"git": git, **{lib: _installed(lib) for lib in libs}}


def _installed(lib: str) -> str | None:
    """A library's version, or None when it is not installed (`train/grpo.py` runs as a plain script too)."""
    try:
        return version(lib)
    except PackageNotFoundError:
        return None


def reward_summary(log_history: list[dict], frac: float = 0.2) -> dict:
    """Mean train reward over the first and last `frac` of logged steps (at least one step each): the mean total
    reward of every completion generated (`generation/reward`, every round of dynamic sampling's), else TRL's
    `reward` (the rows it scored; the same rows without dynamic sampling).

    >>> reward_summary([{"step": 1, "reward": 0.0}, {"step": 2, "reward": 1.0}], frac=0.5)["reward_end"]
    1.0
    """
    history = [
        [e["step"], e.get(GENERATED_REWARD, e.get("reward"))]
        for e in log_history
        if GENERATED_REWARD in e or "reward" in e
    ]
    if not history:
        return {"reward_start": None, "reward_end": None, "reward_window": 0, "reward_history": []}
    k = max(1, int(len(history) * frac))
    return {
        "reward_start": sum(r for _, r in history[:k]) / k,
        "reward_end": sum(r for _, r in history[-k:]) / k,
        "reward_window": k,
        "reward_history": history,
    }


# Setting names whose values are credentials: never written to a record, a tracker or a model card.
_SECRET_NAME = re.compile(r"(^|_)(token|api_key|key|secret|password|credentials?)$", re.IGNORECASE)
REDACTED = "<redacted>"


def redact(config):
    """`config` with every credential replaced by `<redacted>`: the values of settings named like one
    (`hub_token`, `token`, `api_key`, ...; transformers masks `*_token` fields the same way) and strings that
    are Hugging Face tokens (`hf_...`), at any depth.

    >>> redact({"hub_token": "hf_abc", "model_init_kwargs": {"token": "x", "revision": "main"}, "lr": 1e-6})
    {'hub_token': '<redacted>', 'model_init_kwargs': {'token': '<redacted>', 'revision': 'main'}, 'lr': 1e-06}
    """
    if isinstance(config, dict):
        return {
            k: REDACTED if _SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v)
            for k, v in config.items()
        }
    if isinstance(config, list | tuple):
        return [redact(v) for v in config]
    if isinstance(config, str) and re.fullmatch(r"hf_[A-Za-z0-9]{20,}", config):
        return REDACTED
    return config


def stage_config(stage_args, training_args, model_args) -> dict:
    """The resolved stage config, as recorded and logged: our fields, `ModelConfig`'s and `GRPOConfig`'s."""
    return {
        "stage": dataclasses.asdict(stage_args),
        "model": dataclasses.asdict(model_args),
        "grpo": training_args.to_dict(),
    }


def write_stage_record(
    path: str | Path,
    *,
    stage_args,
    training_args,
    model_args,
    data: dict,
    state,
    wall_time_s: float,
    resumed_from: str | None,
    advanced_early: str | None,
    chat_template: dict,
    rewards: dict[str, dict],
    generation: dict,
    sampler: dict | None,
    curriculum_step_offset: int = 0,
    hub: dict | None = None,
) -> dict:
    """Write `stage.json` for a finished stage and return it.

    `curriculum_step` is the last curriculum-wide step the stage reached (`curriculum_step_offset`, the
    earlier stages' steps, plus its own); `hub` is where its export is pushed (`stagerl.train.hub`), None
    when it is not. Credentials in the config are redacted.
    """
    values = {
        "status": "done",
        "steps": state.global_step,
        "curriculum_step": curriculum_step_offset + state.global_step,
        "max_steps": state.max_steps,
        **reward_summary(state.log_history),
        "advanced_early": advanced_early,
        "think_open": chat_template["think_open"],
        "chat_template": chat_template,
        "rewards": {name: rewards.get(name, {}) for name in stage_args.reward_funcs},
        "generation": generation,
        "sampler": sampler,
        "data": data,
        "wall_time_s": round(wall_time_s, 2),
        "resumed_from": resumed_from,
        "version": code_version(),
        "config": redact(stage_config(stage_args, training_args, model_args)),
        "hub": hub,
    }
    record = {key: values.pop(key) for key in RECORD_KEYS}  # the schema readers rely on, in its order
    if values:
        raise KeyError(f"stage record keys {sorted(values)} are not in stagerl.data.stage_dir.RECORD_KEYS")
    atomic_write_json(path, record)
    return record
