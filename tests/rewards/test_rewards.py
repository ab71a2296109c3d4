import math

import pytest

from rewards import REWARDS, build_reward_funcs, grade
from rewards.accuracy import accuracy
from rewards.format import format_reward
from rewards.overlong import overlong


def test_grade_examples():
    completions = [
        "so 16 + 18 = 34 hours",
        r"\boxed{5+77}",
        "the final answer is 5 + 77 = 122",
        r"\boxed{82}",
        r"\boxed{3} or \boxed{4}",
        r"$\boxed{\frac{1}{2}}$",
        r"$\boxed{(x+1)^2}$",
        "So $k < -5$.",
    ]
    golds = ["34", "82", "82", "82", "3", "0.5", "x^2+2x+1", r"(-\infty,-5)"]
    assert grade(completions, golds) == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]


def test_accuracy_reward_signature_and_none_gold():
    fn = accuracy()
    assert fn.__name__ == "accuracy"
    logged = {}
    out = fn(
        [[{"role": "assistant", "content": r"\boxed{4}"}], r"\boxed{4}", r"\boxed{4}"],
        answer=["4", "", r"\frac{"],
        prompts=["p"] * 3,
        log_metric=lambda k, v: logged.setdefault(k, v),
    )
    assert out[0] == 1.0 and out[1] is None and out[2] is None
    assert fn.stats["ungradable_gold"] == 2
    assert math.isclose(logged["accuracy/ungradable_gold"], 2 / 3)


def test_accuracy_answer_field_and_missing_column():
    fn = accuracy(answer_field="solution")
    assert fn([r"\boxed{2}"], solution=["2"]) == [1.0]
    with pytest.raises(ValueError, match="solution"):
        fn([r"\boxed{2}"], answer=["2"])


def test_format_reward():
    good = "Since 2 + 2 = 4, the sum is four. \\boxed{4}."
    fn = format_reward()
    assert fn.__name__ == "format"
    assert fn([good, "\\boxed{4}", good + " \\boxed{5}", "no box at all, just words here"]) == [
        1.0,
        0.0,
        0.0,
        0.0,
    ]
    assert fn(["<think>2+2 is 4, clearly enough.</think> \\boxed{4}"]) == [1.0]
    strict = format_reward(think=True)
    assert strict([good, "<think>2+2 is 4, clearly enough.</think> So \\boxed{4}"]) == [0.0, 1.0]
    assert strict(["<think></think> twenty characters of reasoning \\boxed{4}"]) == [0.0]


def test_overlong_reward():
    fn = overlong(max_completion_length=100, soft_cache=20)
    assert fn.__name__ == "overlong"
    assert fn(["x"] * 4, completion_ids=[[0] * 50, [0] * 80, [0] * 90, [0] * 101]) == [0.0, 0.0, -0.5, -1.0]
    assert fn(["a b c"]) == [0.0]  # no completion_ids: word count
    with pytest.raises(ValueError):
        overlong(max_completion_length=10, soft_cache=20)


def test_registry():
    assert {"accuracy", "format", "overlong"} <= set(REWARDS)
    fns = build_reward_funcs(
        ["accuracy", "format", "overlong", "rewards.format.format_reward"],
        {"overlong": {"max_completion_length": 64, "soft_cache": 16}, "format": {"think": True}},
    )
    assert [f.__name__ for f in fns] == ["accuracy", "format", "overlong", "format"]
    with pytest.raises(ValueError, match="valid names.*accuracy"):
        build_reward_funcs(["acuracy"])
    with pytest.raises(ValueError, match="valid names"):
        build_reward_funcs(["no.such.module.fn"])
    with pytest.raises(ValueError, match="bad settings"):
        build_reward_funcs(["overlong"], {"overlong": {"bogus": 1}})
