"""Pushing a stage to the Hugging Face Hub: its exported model (`final/`) and a model card, once, when it is done.

`push_to_hub` in a stage means this, not transformers' push: that one uploads the whole stage directory (the
row cache, logs, incomplete checkpoints) from the trainer, on every save and at export, before `final/` and
`stage.json` exist. The stage switches it off (`hub_target`) and, once `stage.json` is written, pushes
`final/` and a card (curriculum, stage, data, rewards, steps, evaluation results) in one commit. Where:

- `hub_model_id` (default: the output directory's name), with `{run}` replaced by the stage's run name made
  safe for a repo name (`demo-level1`): a repository per stage;
- else, for a stage in a curriculum (the runner gives its `run_group`), one branch per stage named so; a
  stage on its own pushes to `hub_revision` (default: main).

`STAGE/hub.json` records the commit, so a resumed or re-run stage pushes once. When the runner evaluates the
export after the stage (`eval_follows`), the push waits for the evaluation, so the card holds its results
(`python -m stagerl.train.publish`). The token is the Hub login's (`HF_TOKEN` or `hf auth login`) or the
stage's `hub_token`; it is never written anywhere, so a push that waits for the evaluation, made by that later
process, uses the login's.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from stagerl.data.files import atomic_write_json
from stagerl.data.stage_dir import FINAL_DIR, HUB_RECORD, curriculum_step, read_record

logger = logging.getLogger(__name__)

CARD = "README.md"


def run_slug(run_name: str) -> str:
    """A run name as a repository or branch name: `demo/level1` -> `demo-level1`.

    >>> run_slug("study/1-2-3 seed=0/level2")
    'study-1-2-3-seed-0-level2'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.") or "stage"


def hub_target(training_args, run_group: str | None) -> dict | None:
    """Where the stage's export goes (None without `push_to_hub`), and transformers' own push switched off.

    Args:
        training_args: the stage's `GRPOConfig` (`push_to_hub`, `hub_model_id`, `hub_revision`,
            `hub_private_repo`, `run_name`, `output_dir`); its `push_to_hub` is set to False.
        run_group: the curriculum or sweep the stage belongs to (None: a stage on its own).

    Returns:
        `{"repo_id", "revision", "private"}` (revision None: the default branch).
    """
    if not training_args.push_to_hub:
        return None
    training_args.push_to_hub = False  # transformers would push the whole stage directory, early and often
    slug = run_slug(training_args.run_name or Path(training_args.output_dir).name)
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
    revision = training_args.hub_revision
    if "{run}" in repo_id:
        repo_id = repo_id.replace("{run}", slug)
    elif revision is None and run_group is not None:
        revision = slug
    return {"repo_id": repo_id, "revision": revision, "private": training_args.hub_private_repo}


def model_card(record: dict, evaluation: dict[str, float] | None) -> str:
    """The model card of a finished stage, from its `stage.json` record and the runner's evaluation."""
    config = record["config"]
    stage, grpo = config["stage"], config["grpo"]
    name = grpo.get("run_name") or "stage"
    rewards = stage["reward_funcs"]
    weights = grpo.get("reward_weights") or [1.0] * len(rewards)
    start = (
        f"the export of the previous stage (`{Path(stage['previous_stage']).name}`)"
        if stage.get("previous_stage")
        else f"`{config['model']['model_name_or_path']}`"
    )
    steps, last = record["steps"], curriculum_step(record)
    lines = [
        "---",
        "library_name: transformers",
        "tags: [stagerl, trl, grpo]",
        "---",
        f"# {name}",
        "",
        f"Stage `{name.rsplit('/', 1)[-1]}` of the curriculum `{stage.get('run_group') or '-'}`, trained with "
        f"GRPO (TRL {record['version'].get('trl')}) by stagerl, starting from {start}.",
        "",
        f"- data: {', '.join(f'`{s}`' for s in record['data']['specs'])} ({record['data']['rows']} rows, "
        f"fingerprint `{record['data']['fingerprint']}`)",
        f"- rewards: {', '.join(f'`{r}` x{w:g}' for r, w in zip(rewards, weights, strict=True))}",
        f"- steps: {steps} (curriculum steps {last - steps + 1}-{last}); "
        f"train reward {_num(record.get('reward_start'))} -> {_num(record.get('reward_end'))}",
        f"- learning rate {grpo['learning_rate']:g}, {grpo['num_generations']} samples per prompt, "
        f"max completion {grpo['max_completion_length']} tokens",
    ]
    if record.get("advanced_early"):
        lines.append(f"- advanced early: {record['advanced_early']}")
    if evaluation:
        lines += ["", "## Evaluation", "", "| benchmark | pass@1 |", "|---|---|"]
        lines += [f"| {bench} | {value:.3f} |" for bench, value in evaluation.items()]
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def push_stage(
    stage_dir: Path, evaluation: dict[str, float] | None = None, token: str | None = None
) -> dict | None:
    """Push a finished stage's `final/` and its model card in one commit, unless it is pushed already.

    Args:
        stage_dir: the stage directory; `stage.json` must exist (the stage is finished).
        evaluation: pass@1 per benchmark of the export, for the card.
        token: a Hub token (default: the login's).

    Returns:
        `hub.json`'s record `{"repo_id", "revision", "commit"}`, or None when the stage does not push.

    Raises:
        ValueError: the stage has no readable `stage.json` (it has not finished).
    """
    stage_dir = Path(stage_dir)
    record = read_record(stage_dir)
    target = record.get("hub")
    if not target:
        return None
    done = stage_dir / HUB_RECORD
    if done.is_file():
        return json.loads(done.read_text())
    from huggingface_hub import CommitOperationAdd, HfApi

    final = stage_dir / FINAL_DIR
    files = sorted(p for p in final.rglob("*") if p.is_file() and p.relative_to(final).as_posix() != CARD)
    operations = [CommitOperationAdd(p.relative_to(final).as_posix(), str(p)) for p in files]
    operations.append(CommitOperationAdd(CARD, model_card(record, evaluation).encode()))
    api = HfApi(token=token)
    repo_id, revision = target["repo_id"], target["revision"]
    repo_id = api.create_repo(repo_id, private=target["private"], exist_ok=True).repo_id
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    name = record["config"]["grpo"].get("run_name") or stage_dir.name
    commit = api.create_commit(
        repo_id, operations, commit_message=f"{name}: exported model", revision=revision
    )
    pushed = {"repo_id": repo_id, "revision": revision, "commit": commit.oid, "url": commit.commit_url}
    atomic_write_json(done, pushed)
    logger.info("Pushed %s to %s%s", final, repo_id, f" ({revision})" if revision else "")
    return pushed
