"""`StageTrainer` as a drop-in for TRL's `GRPOTrainer`, in a user's own script: with every stage feature off it
trains as TRL's does (each case trains both on the same seed and compares weights and logs), on datasets
that hold only TRL's `prompt` column; `dynamic_sampling=True` alone refills."""

import hashlib

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from stagerl.train.config import StageArguments
from stagerl.train.models import TINY_RANDOM, resolve_model
from stagerl.train.trainer import StageTrainer

PROMPTS = [f"What is {a} + {b}?" for a, b in zip(range(8), range(3, 11), strict=True)]
# Logged values that measure the machine, not the training.
TIMINGS = {"step_time", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


@pytest.fixture(scope="module")
def model():
    return resolve_model(TINY_RANDOM)


def length_reward(completions, **kwargs) -> list[float]:
    """Varies within a group, so advantages are not zero."""
    return [len(c if isinstance(c, str) else c[-1]["content"]) / 10 for c in completions]


def _odd(prompt) -> bool:
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 1


def digits_or_none_reward(completions, **kwargs) -> list[float | None]:
    """None (a reward that does not apply, which TRL leaves out of the sum) for completions of even length, the
    digits written for the others."""
    return [sum(ch.isdigit() for ch in c) if len(c) % 2 else None for c in completions]


def constant_for_half_reward(prompts, completions, **kwargs) -> list[float]:
    """0 for half the prompts (their groups have zero variance), the length reward for the others."""
    return [score if _odd(p) else 0.0 for p, score in zip(prompts, length_reward(completions), strict=True)]


def config(tmp_path, **settings) -> GRPOConfig:
    return GRPOConfig(
        output_dir=str(tmp_path),
        **{
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 8,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "use_cpu": True,
            "activation_checkpointing": False,
            "seed": 0,
            **settings,
        },
    )


def train(trainer_class, model, tmp_path, dataset, rewards, **settings):
    trainer = trainer_class(
        model=model,
        reward_funcs=rewards,
        args=config(tmp_path / trainer_class.__name__, **settings),
        train_dataset=dataset,
    )
    trainer.train()
    return trainer


def assert_trained_alike(ours, trls) -> None:
    a, b = ours.model.state_dict(), trls.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(ours.state.log_history) == len(trls.state.log_history)
    for mine, theirs in zip(ours.state.log_history, trls.state.log_history, strict=True):
        # ours adds what it generated and trained on (`generation/*`); TRL's own values are unchanged
        assert {k for k in mine if k not in theirs} <= {k for k in mine if k.startswith("generation/")}
        assert {k: v for k, v in mine.items() if k in theirs and k not in TIMINGS} == {
            k: v for k, v in theirs.items() if k not in TIMINGS
        }


def standard() -> Dataset:
    return Dataset.from_dict({"prompt": PROMPTS})


def conversational() -> Dataset:
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in PROMPTS]})


def case(name, settings, rewards=(length_reward,), dataset=standard):
    return pytest.param(dataset, list(rewards), settings, id=name)


@pytest.mark.parametrize(
    ("dataset", "rewards", "settings"),
    [
        *[
            case(f"loss_type-{t}", {"loss_type": t})
            for t in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo")
        ],
        case("num_iterations-2", {"num_iterations": 2, "max_steps": 4}),
        case("steps_per_generation-2", {"steps_per_generation": 2, "max_steps": 4}),
        case(
            "reward_weights-and-None", {"reward_weights": [1.0, 0.5]}, (length_reward, digits_or_none_reward)
        ),
        case("scale_rewards-batch", {"scale_rewards": "batch", "steps_per_generation": 2}),
        case("scale_rewards-none", {"scale_rewards": "none"}),
        case("mask_truncated_completions", {"mask_truncated_completions": True, "max_completion_length": 6}),
        case("beta-0.1", {"beta": 0.1}),
        case("conversational", {}, dataset=conversational),
    ],
)
def test_with_every_stage_feature_off_it_trains_as_trls_trainer(tmp_path, model, dataset, rewards, settings):
    ours = train(StageTrainer, model, tmp_path, dataset(), rewards, **settings)
    trls = train(GRPOTrainer, model, tmp_path, dataset(), rewards, **settings)
    assert_trained_alike(ours, trls)


def test_data_seed_seeds_the_prompt_order_and_nothing_else(tmp_path, model):
    """transformers documents `data_seed` as the data sampling's seed, independent of the model seed."""
    trainer = StageTrainer(
        model=model,
        reward_funcs=length_reward,
        args=config(tmp_path, data_seed=7),
        train_dataset=standard(),
    )
    order = list(trainer._get_train_sampler())
    assert order == list(RepeatSampler(standard(), 4, 1, 1, seed=7))
    assert order != list(RepeatSampler(standard(), 4, 1, 1, seed=0))


def test_an_epoch_budget_is_counted_as_transformers_counts_it(tmp_path, model):
    """`epoch_budget_steps` (what a `save_steps` ratio of an epoch budget resolves against) against
    transformers' own count of the same trainer's dataloader."""
    from stagerl.train.grpo import epoch_budget_steps

    for settings in (
        {},
        {"steps_per_generation": 2},
        {"num_iterations": 3, "gradient_accumulation_steps": 2},
    ):
        args = config(tmp_path, max_steps=-1, num_train_epochs=1.5, **settings)
        trainer = StageTrainer(model=model, reward_funcs=length_reward, args=args, train_dataset=standard())
        counted = trainer.set_initial_training_values(args, trainer.get_train_dataloader())[-1]
        assert epoch_budget_steps(args, len(PROMPTS)) == counted, settings


def test_dynamic_sampling_alone_refills_from_a_sampler_it_builds(tmp_path, model):
    """TRL's call, with `dynamic_sampling=True` and nothing else: groups of zero variance are dropped and
    refilled from further prompts (more than one round), up to the stage's default round cap."""
    trainer = StageTrainer(
        model=model,
        reward_funcs=constant_for_half_reward,
        args=config(tmp_path, max_steps=4),
        train_dataset=standard(),
        dynamic_sampling=True,
    )
    assert trainer.max_rounds == StageArguments.dynamic_sampling_max_rounds == 4
    trainer.train()
    logged = [e for e in trainer.state.log_history if "generation/rounds" in e]
    assert len(logged) == 4 and max(e["generation/rounds"] for e in logged) > 1
    assert sum(e["generation/zero_variance_dropped"] for e in logged) > 0
    # each step trained on a group with variance
    assert all(e["generation/groups_trained"] == 1 for e in logged)


def test_a_resume_without_the_samplers_state_is_refused_in_one_line(tmp_path, model):
    """Outside the stage nothing saves the prompt sampler: a resumed run would draw its epoch anew."""

    def build():
        saving = config(tmp_path, max_steps=2, save_strategy="steps", save_steps=1)
        return StageTrainer(
            model=model,
            reward_funcs=constant_for_half_reward,
            args=saving,
            train_dataset=standard(),
            dynamic_sampling=True,
        )

    build().train()
    with pytest.raises(ValueError, match="needs the sampler's state, which the stage's checkpoints hold"):
        build().train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))
