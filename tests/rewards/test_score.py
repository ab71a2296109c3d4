import json

from stagerl.rewards.score import main


def test_score_cli(tmp_path, capsys, caplog):
    src = tmp_path / "in.jsonl"
    rows = [
        {"completion": r"so \boxed{4}", "answer": "4"},
        {"completion": "the final answer is 5 + 77 = 122", "answer": "82"},
        {"completion": "no answer field"},
        {"text": r"\boxed{1}", "answer": "1"},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, "{not json")
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    assert main([str(src), "-o", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["reward"] for g in got] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert got[0]["extracted"] == "4" and got[1]["extracted"] == "122"
    assert got[2]["line"] == 3 and "error" in got[2]
    assert "line 3" in caplog.text and "line 4" in caplog.text  # bad rows are logged (stderr outside pytest)
    err = capsys.readouterr().err
    assert "scored 5 rows: 1 correct, 1 wrong, 0 ungradable gold, 3 bad rows" in err


def test_score_cli_field_flags_to_stdout(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": r"\boxed{1}", "gold": "1"}) + "\n")
    assert main([str(src), "--completion-field", "text", "--answer-field", "gold", "--timeout", "3"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reward"] == 1.0


def test_a_run_stopped_midway_leaves_no_output_file(tmp_path, monkeypatch):
    import pytest

    import stagerl.rewards.score as score

    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"completion": rf"\boxed{{{i}}}", "answer": str(i)}) + "\n" for i in range(4))
    )
    out = tmp_path / "out.jsonl"
    flush = score._flush

    def stop_after_the_first_batch(batch, *rest):
        flush(batch, *rest)
        raise KeyboardInterrupt  # the process stopped between two batches

    monkeypatch.setattr(score, "_flush", stop_after_the_first_batch)
    with pytest.raises(KeyboardInterrupt):
        main([str(src), "-o", str(out), "--batch-size", "2"])
    assert not out.exists() and (tmp_path / "out.jsonl.partial").read_text().count("\n") == 2
    monkeypatch.setattr(score, "_flush", flush)
    assert main([str(src), "-o", str(out), "--batch-size", "2"]) == 0
    assert out.read_text().count("\n") == 4 and not (tmp_path / "out.jsonl.partial").exists()
