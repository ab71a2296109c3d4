import torch

from stagerl.train.rollouts import GenerationCounts, Round, groups_of, totals_of

NAN = float("nan")


def test_groups_are_judged_on_the_total_reward_as_trl_aggregates_it():
    # Two rewards, weights 1 and 0.5. Group "a": accuracy equal, format varies -> variance. Group "b": both
    # constant -> zero variance. Group "c": every reward None in one completion, the others equal -> zero.
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [NAN, NAN], [1.0, 0.0]])
    totals = totals_of(rewards, torch.tensor([1.0, 0.5]))
    assert totals[:4].tolist() == [1.0, 1.5, 0.5, 0.5] and torch.isnan(totals[4])
    round_ = Round(
        ids=["a", "a", "b", "b", "c", "c"], totals=totals, accuracy=[1, 1, 0, 0, None, 1], completion_tokens=9
    )
    groups = groups_of(round_, num_generations=2)
    assert [(g.id, g.zero_variance, g.side) for g in groups] == [
        ("a", False, None),
        ("b", True, "wrong"),
        ("c", True, "right"),
    ]


def test_generation_counts_add_up_and_split_the_dropped():
    counts = GenerationCounts()
    counts.add(
        {
            "prompts": 4,
            "rollouts": 16,
            "rounds": 2,
            "zero_variance_dropped": 3,
            "zero_variance_dropped_all_right": 1,
            "zero_variance_dropped_all_wrong": 2,
        }
    )
    counts.add({"prompts": 2, "rollouts": 8, "rounds": 1})
    record = counts.record()
    assert record["prompts"] == 6 and record["rollouts"] == 24 and record["rounds"] == 3
    assert record["zero_variance_dropped"] == {"total": 3, "all_right": 1, "all_wrong": 2}
