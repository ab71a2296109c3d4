"""`push_to_hub`: only the exported model and its card, once per stage, after `stage.json` (the Hub client's
calls intercepted: no network)."""

import json
from pathlib import Path

import pytest
from huggingface_hub import CommitInfo, HfApi, RepoUrl

from stagerl.train import grpo, publish

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(monkeypatch):
    """Every call of the Hub client that creates or uploads, recorded with what was on disk at that moment."""
    calls = []

    def record(kind):
        def call(self, repo_id, *args, **kwargs):
            entry = {"kind": kind, "repo_id": repo_id, **kwargs}
            if kind == "create_commit":
                entry["files"] = sorted(op.path_in_repo for op in args[0])
                entry["card"] = next(op.path_or_fileobj for op in args[0] if op.path_in_repo == "README.md")
            if kind == "upload_folder":  # transformers' own push uploads a folder
                entry["files"] = sorted(str(p) for p in Path(kwargs["folder_path"]).rglob("*") if p.is_file())
            entry["records"] = sorted(str(p) for p in Path.cwd().rglob("stage.json"))
            calls.append(entry)
            if kind == "create_repo":
                return RepoUrl(f"https://huggingface.co/{repo_id}")
            return CommitInfo(
                f"https://huggingface.co/{repo_id}/commit/{len(calls)}", "", "", f"{len(calls):040x}"
            )

        return call

    for kind in ("create_repo", "create_branch", "create_commit", "upload_folder"):
        monkeypatch.setattr(HfApi, kind, record(kind))
    return calls


TINY_PUSHING_STAGE = [
    *("--config", str(ROOT / "configs/stages/smoke.yaml"), "--model_name_or_path", "stagerl:tiny-random"),
    *("--resume_from_checkpoint", "latest", "--max_steps", "2", "--save_steps", "1"),
    *("--push_to_hub", "true", "--hub_model_id", "me/tiny", "--hub_token", "hf_" + "x" * 34),
]


def stage(out: Path, *extra: str) -> dict:
    return grpo.main([*TINY_PUSHING_STAGE, "--output_dir", str(out), *extra])


def test_each_stage_pushes_its_export_and_card_once_after_its_record(tmp_path, monkeypatch, hub):
    monkeypatch.chdir(tmp_path)
    first = ["--run_name", "demo/level1", "--run_group", "demo"]
    stage(tmp_path / "stage-1", *first)
    stage(tmp_path / "stage-1", *first)  # run again (a resumed runner): finished, pushes nothing more
    second = [
        "--run_name",
        "demo/level2",
        "--run_group",
        "demo",
        "--previous_stage",
        str(tmp_path / "stage-1"),
    ]
    stage(tmp_path / "stage-2", *second)

    commits = [c for c in hub if c["kind"] in ("create_commit", "upload_folder")]
    assert [(c["repo_id"], c.get("revision")) for c in commits] == [
        ("me/tiny", "demo-level1"),
        ("me/tiny", "demo-level2"),
    ]
    for i, commit in enumerate(commits, 1):
        final = tmp_path / f"stage-{i}" / "final"
        assert commit["files"] == sorted([*(p.name for p in final.iterdir()), "README.md"])
        assert str(tmp_path / f"stage-{i}" / "stage.json") in commit["records"]  # pushed after the record
        card = commit["card"].decode()
        assert f"# demo/level{i}" in card and "`arithmetic:1`" in card and "`accuracy` x1" in card
        assert "hf_xxx" not in card
    assert "curriculum steps 3-4" in commits[1]["card"].decode()
    assert json.loads((tmp_path / "stage-2" / "hub.json").read_text())["revision"] == "demo-level2"
    for record in tmp_path.glob("stage-*/stage.json"):
        assert "hf_xxx" not in record.read_text()


def test_with_an_evaluation_to_follow_the_push_waits_for_it(tmp_path, monkeypatch, hub):
    monkeypatch.chdir(tmp_path)
    per_run_repo = ["--hub_model_id", "me/tiny-{run}", "--eval_follows", "true"]
    stage(tmp_path / "s", "--run_name", "demo/level1", "--run_group", "demo", *per_run_repo)
    assert [c["kind"] for c in hub] == []
    for _ in range(2):
        assert publish.main([str(tmp_path / "s"), "--evaluation", json.dumps({"math500": 0.25})]) == 0
    (commit,) = [c for c in hub if c["kind"] == "create_commit"]
    assert commit["repo_id"] == "me/tiny-demo-level1" and commit["revision"] is None  # a repo per stage
    assert "| math500 | 0.250 |" in commit["card"].decode()
