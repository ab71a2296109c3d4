import pytest

from rewards.extract import clean_answer, extract, extract_answer, to_text


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"so $\boxed{42}$.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\fbox{7}", "7"),
        (r"\boxed 7", "7"),
        ("Adding, 16 + 18 = 34 hours.", "34"),
        ("Therefore the total is **13**.", "13"),
        ("Thus $x = 5$ and $x = -2$.", "5, -2"),
        ("The roots are $x=5$ or $x=-2$", "5, -2"),
        ("The answer is 34 hours", "34"),
        ("Answer: 12", "12"),
        ("**Answer:** 13", "13"),
        ("#### 18", "18"),
        ("Final Answer: The final answer is $623$. I hope it is correct.", "623"),
        ("So $k < -5$.", r"(-\infty, -5)"),
        (r"Hence $-2 < x \le 7$.", "(-2, 7]"),
        ("Hence $x > 3$.", r"(3, \infty)"),
        ("So the length is √3.", r"\sqrt{3}"),
        ("The area is 4π.", r"4\pi"),
        ("The answer is −3.", "-3"),
        ("He earns \\$1,250 per week.", "1,250"),
        ("the final answer is 5 + 77 = 122", "122"),
        (r"$\boxed{n=1, 2, 3}$", "1, 2, 3"),
        (r"The solutions are $\boxed{1}$ and $\boxed{3}$.", "1, 3"),
        ("Putting it together:\n$$ \\frac{3}{4} $$", r"\frac{3}{4}"),
        ("<think>maybe \\boxed{6}</think>\nThe answer is $\\boxed{7}$.", "7"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        r"It is $\boxed{3}$ or possibly $\boxed{4}$.",
        r"So $\boxed{2}$. Checking again, it is $\boxed{3}$.",
        "The answer is 3. Wait, the answer is 4.",
    ],
)
def test_hedging_has_no_answer(text):
    ext = extract(text)
    assert ext.answer is None and ext.hedged


def test_same_answer_twice_is_not_a_hedge():
    assert extract_answer(r"So $x = \boxed{3}$. The answer is $\boxed{ 3 }$.") == "3"


@pytest.mark.parametrize("text", ["", None, "I could not finish.", "<think>\\boxed{5}</think>", "\\boxed{"])
def test_no_answer(text):
    assert extract_answer(text) is None


def test_conversational_and_bytes():
    assert extract_answer([{"role": "assistant", "content": r"\boxed{9}"}]) == "9"
    assert extract_answer(b"\\boxed{9} \xff\xfe") == "9"
    assert to_text("a\ud800b") == "a?b"


def test_raw_keeps_equation():
    assert clean_answer("y = 2x + 3") == ("2x + 3", "y = 2x + 3")
