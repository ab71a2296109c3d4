import math

import pytest

from stagerl.rewards import REWARDS, build_reward_funcs, grade
from stagerl.rewards.accuracy import accuracy
from stagerl.rewards.format import boxed_format_reward, format_reward
from stagerl.rewards.overlong import overlong


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


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        # The shapes: one answer written twice is not a hedge.
        (
            r"The probability is $\boxed{11/36}$. ... So the answer is $\boxed{\frac{11}{36}}$.",
            "\\frac{11}{36}",
            1.0,
        ),
        (r"so $\boxed{0.5}$, i.e. $\boxed{\frac12}$.", "1/2", 1.0),
        # Equivalence decided in the pool: the same answer, or two different ones (a hedge).
        (r"so $\boxed{\sqrt{8}}$, that is $\boxed{2\sqrt{2}}$.", "2\\sqrt{2}", 1.0),
        (r"so $\boxed{\sqrt{8}}$, or rather $\boxed{3}$.", "3", 0.0),
        # olympiadbench-745: a two-part gold answered in two separate boxes; a one-part gold hedged.
        (r"the maximum is \( \boxed{2} \). ... the minimum is \( \boxed{1} \).", "1,2", 1.0),
        (r"the maximum is \( \boxed{2} \). ... the minimum is \( \boxed{1} \).", "2", 0.0),
        # olympiadbench-976 and the issue: a percent gold against a bare number.
        (r"Thus, the percentage of the new mixture is acid is \(\boxed{17.5}\).", "17.5%", 1.0),
        (r"the share is $\boxed{17.5}$ percent.", "17.5\\%", 1.0),
        (r"the share is $\boxed{0.175}$.", "17.5\\%", 1.0),
        (r"the share is $\boxed{1.75}$.", "17.5\\%", 0.0),
        # math-744: the gold carries a unit.
        (r"The answer is: \( \boxed{8\sqrt{3}} \).", "8\\sqrt{3} \\text { square inches}", 1.0),
        # olympiadbench-851: the same function under another argument name.
        (
            r"Hence, the solution is \(f(n) = n\) for all positive integers \(n\). This function trivially"
            r" satisfies the requirement for forming a triangle for all \(x\) and \(y\).",
            "$f(z)=z$",
            1.0,
        ),
        # olympiadbench-503: a tuple equation answers a list of equations.
        (r"Therefore, the answer is: \[ \boxed{(f(n), g(n)) = (n, 1)} \]", "$f(n)=n$, $g(n)=1$", 1.0),
        # olympiadbench-607: a fraction of one for a percent gold (math-verify reads the percent sign).
        (r"the probability is $\boxed{0.625}$", "62.5%", 1.0),
        # What already held: \pm for one number, unevaluated arithmetic for a number.
        (r"so $x = \boxed{\pm 3}$", "3", 0.0),
        (r"so $\boxed{5+77}$", "82", 0.0),
    ],
)
def test_grade_real_shapes(pool, completion, gold, expected):
    assert grade([completion], [gold], pool=pool) == [expected]


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        # A self-correction earns the corrected answer's grade, whichever answer the gold is.
        (
            r"So the area is \(\boxed{\frac{1}{8}}\)."
            "\n\n"
            r"However, this calculation is incorrect. Subtracting"
            r" the four triangles instead, the area is \(\boxed{2 - \sqrt{3}}\).",
            "$2-\\sqrt{3}$",
            1.0,
        ),
        (
            r"So the area is \(\boxed{\frac{1}{8}}\)."
            "\n\n"
            r"However, this calculation is incorrect. Subtracting"
            r" the four triangles instead, the area is \(\boxed{2 - \sqrt{3}}\).",
            "\\frac{1}{8}",
            0.0,
        ),
        (
            r"Therefore, the number of students is $\boxed{6}$."
            "\n\n"
            r"However, this solution doesn't align with"
            r" the constraints. Upon closer examination, the correct total is $\boxed{7}$.",
            "7",
            1.0,
        ),
        # The hedge set: the last answer alone would be right, but the completion commits to none.
        (r"It could be $\boxed{\sqrt{2}}$; it could also be $\boxed{1}$.", "1", 0.0),
        (
            r"The number of ways is $\boxed{\frac{1}{2}}$, or, if this is wrong, $\boxed{\frac{1}{3}}$.",
            "1/3",
            0.0,
        ),
        (
            "So the ratio is \\(\\boxed{\\sqrt{2}}\\).\n\nAlternatively, by symmetry, it is \\(\\boxed{1}\\).",
            "1",
            0.0,
        ),
        ("The answer is 3/4. Alternatively, the answer is 0.5.", "0.5", 0.0),
        # A retraction in the work of a second part does not withdraw the first part's box (olympiadbench-745).
        (
            r"So the maximum is \( \boxed{2} \)."
            "\n\n### Minimum\n\n"
            r"With \(a = 2\) this does not work."
            r" Let's reconsider the sequence: the minimum is \( \boxed{1} \).",
            "1,2",
            1.0,
        ),
        # A bold answer under an answer heading; a list written in prose.
        (
            "First we need the answer: for \\(T = 3\\), the polynomial is \\(x^2 - 5x + 6\\).\n\n"
            "### Final Answer\nThe product of the roots when T is 3 is **6**.",
            "6",
            1.0,
        ),
        (r"Therefore, the integer values of \(k\) are \(-1, 0,\) and \(1\).", "-1, 0, 1", 1.0),
    ],
)
def test_grade_self_corrections_headings_and_prose_lists(pool, completion, gold, expected):
    assert grade([completion], [gold], pool=pool) == [expected]


def test_accuracy_reward_denies_fallback_credit_to_truncated_completions(pool):
    fn = accuracy(max_completion_length=10)
    completions = [
        "so the total is 4",  # fallback, cut off: the model may have been writing 42
        "so the total is 4",  # fallback, ended
        r"so \boxed{4} and then more text",  # box, cut off
        "The answer is 4. Now let me",  # finished answer phrase, cut off
        "The answer is 4",  # phrase running into the end of a cut-off text
    ]
    ids = [[1] * 10, [1] * 6, [1] * 10, [1] * 10, [1] * 10]
    logged = {}
    out = fn(
        completions, answer=["4"] * 5, completion_ids=ids, log_metric=lambda k, v: logged.setdefault(k, v)
    )
    assert out == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert fn.stats["truncated"] == 2 and math.isclose(logged["accuracy/truncated"], 2 / 5)
    assert accuracy(max_completion_length=10, deny_truncated_fallback=False)(
        completions[:1], answer=["4"], completion_ids=ids[:1]
    ) == [1.0]
    # Without the limit, or without the ids, truncation cannot be known: no completion counts as cut off.
    assert accuracy()(completions[:1], answer=["4"], completion_ids=ids[:1]) == [1.0]
    assert fn(completions[:1], answer=["4"]) == [1.0]
    with pytest.raises(ValueError, match="max_completion_length"):
        accuracy(max_completion_length=0)


def test_accuracy_reward_think_open():
    fn = accuracy(think_open=True)
    assert fn([r"so \boxed{4}", r"so 4</think> \boxed{4}"], answer=["4", "4"]) == [0.0, 1.0]


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


def test_boxed_format_reward():
    good = "Since 2 + 2 = 4, the sum is four. \\boxed{4}."
    fn = boxed_format_reward()
    assert fn.__name__ == "boxed_format"
    assert fn([good, "\\boxed{4}", good + " \\boxed{5}", "no box at all, just words here"]) == [
        1.0,
        0.0,
        0.0,
        0.0,
    ]
    assert fn(["<think>2+2 is 4, clearly enough.</think> \\boxed{4}"]) == [1.0]
    strict = boxed_format_reward(think=True)
    assert strict([good, "<think>2+2 is 4, clearly enough.</think> So \\boxed{4}"]) == [0.0, 1.0]
    assert strict(["<think></think> twenty characters of reasoning \\boxed{4}"]) == [0.0]


def test_boxed_format_think_open_judges_the_block_the_prompt_opened():
    """An R1-Distill completion closes the block its prompt opened: `</think>` without `<think>`."""
    opened = "2+2 is 4, clearly enough.\n</think>\nSo \\boxed{4}"
    assert boxed_format_reward(think=True)([opened]) == [0.0]  # what every completion scored before
    judged_opened = boxed_format_reward(think=True, think_open=True)
    assert judged_opened([opened, "no closing tag \\boxed{4}"]) == [1.0, 0.0]
    # Opening it again inside the completion is a second block.
    assert boxed_format_reward(think_open=True)(["<think>" + opened]) == [0.0]


def test_format_is_open_r1_tag_format():
    fn = format_reward()
    assert fn.__name__ == "format"
    good = "<think>\n2 + 2 = 4\n</think>\n<answer>\n4\n</answer>"
    chat = [{"role": "assistant", "content": good}]
    bad = [
        "Since 2 + 2 = 4, the sum is four. \\boxed{4}.",  # the boxed shape is not this one
        "<think>2 + 2 = 4</think><answer>4</answer>",  # open-r1 wants the newlines
        "<answer>\n4\n</answer>",
        "2 + 2 = 4\n</think>\n<answer>\n4\n</answer>",  # no opening tag
    ]
    assert fn([good, chat, *bad]) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    opened = format_reward(think_open=True)
    assert opened([bad[3], bad[1]]) == [1.0, 0.0]


def test_accuracy_grades_open_r1_rows_against_the_solution_box():
    fn = accuracy()
    solution = ["We add: $2+2=\\boxed{4}$.", "Thus the area is $\\boxed{\\frac{1}{2}}$.", "no box here"]
    assert fn(["\\boxed{4}", "\\boxed{0.5}", "\\boxed{1}"], solution=solution) == [1.0, 1.0, None]
    assert fn(["\\boxed{4}"], answer=["5"], solution=solution[:1]) == [0.0]  # `answer` wins when present


def test_overlong_reward():
    fn = overlong(max_completion_length=100, soft_cache=20)
    assert fn.__name__ == "overlong"
    assert fn(["x"] * 4, completion_ids=[[0] * 50, [0] * 80, [0] * 90, [0] * 101]) == [0.0, 0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="completion_ids"):
        fn(["a b c"])  # lengths are tokens, never guessed from words
    with pytest.raises(ValueError):
        overlong(max_completion_length=10, soft_cache=20)


def test_registry():
    assert {"accuracy", "boxed_format", "format", "overlong"} <= set(REWARDS)
    fns = build_reward_funcs(
        ["accuracy", "boxed_format", "format", "overlong", "stagerl.rewards.format.format_reward"],
        {
            "overlong": {"max_completion_length": 64, "soft_cache": 16},
            "boxed_format": {"think": True, "think_open": True},
            "format": {"think_open": True},
            "accuracy": {"max_completion_length": 64},
        },
    )
    assert [f.__name__ for f in fns] == ["accuracy", "boxed_format", "format", "overlong", "format"]
    with pytest.raises(ValueError, match="valid names.*boxed_format"):
        build_reward_funcs(["acuracy"])
    with pytest.raises(ValueError, match="valid names"):
        build_reward_funcs(["no.such.module.fn"])
    with pytest.raises(ValueError, match="bad settings"):
        build_reward_funcs(["overlong"], {"overlong": {"bogus": 1}})
    with pytest.raises(ValueError, match=r"reward 'format'.*its settings: \['think_open'\]"):
        build_reward_funcs(["format"], {"format": {"think": True}})  # the old meaning of `format`
