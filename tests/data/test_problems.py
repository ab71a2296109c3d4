import pytest

from stagerl.data.problems import Group, ProblemRecord, ProblemTable


def group(pid, accuracy, zero_variance):
    return Group(pid, tuple(accuracy), zero_variance)


def test_sides_of_a_group():
    assert group("a", [1.0, 1.0], True).side == "right"
    assert group("a", [0.0, 0.0], True).side == "wrong"
    assert group("a", [0.0, None], True).side == "wrong"  # an ungradable completion does not decide
    assert group("a", [1.0, 0.0], False).side is None
    assert group("a", [None, None], True).side is None  # no accuracy reward: zero variance, but no side
    assert group("a", [1.0, 1.0], False).side is None  # equal accuracy, other rewards varied


def test_streaks_count_the_latest_groups_in_a_row():
    record = ProblemRecord()
    for g in [
        group("a", [1, 1], True),
        group("a", [1, 1], True),
        group("a", [0, 1], False),
        group("a", [0, 0], True),
    ]:
        record.add(g)
    assert record == ProblemRecord(attempts=8, successes=5, groups=4, right_streak=0, wrong_streak=1)


def test_files_of_successive_stages_add_up_and_streaks_carry_over(tmp_path):
    early, late = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    first, second = ProblemTable(), ProblemTable()
    first.observe([group("a", [1, 1], True), group("b", [0, 0], True), group("c", [0, 0], True)])
    second.observe([group("a", [1, 1], True), group("b", [1, 0], False)])  # c not seen in stage 2
    early.write_text(first.text())
    late.write_text(second.text())
    table = ProblemTable.read([early, late])
    assert table.get("a") == ProblemRecord(attempts=4, successes=4, groups=2, right_streak=2)
    assert table.get("b") == ProblemRecord(attempts=4, successes=1, groups=2, right_streak=0, wrong_streak=0)
    assert table.get("c") == ProblemRecord(attempts=2, successes=0, groups=1, wrong_streak=1)


def test_older_files_without_streaks_read_as_zeros_and_bad_lines_are_named(tmp_path):
    old = tmp_path / "problems.jsonl"
    old.write_text('{"id": "a", "attempts": 4, "successes": 4}\n')
    assert ProblemTable.read([old]).get("a") == ProblemRecord(attempts=4, successes=4)
    old.write_text('{"id": "a", "attempts": 4}\nnot json\n')
    with pytest.raises(ValueError, match=r"problems.jsonl:2: not a problem statistics line"):
        ProblemTable.read([old])
