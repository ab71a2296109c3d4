"""Dynamic sampling scores first and pays after: per round only generation and rewards, then TRL's scoring pass
once over the kept rows; exactly TRL's when every group is kept; one vLLM weight push per block with sleep mode;
fillers masked, and row-averaged losses refused. In-process on the tiny random model (fast tier)."""

from __future__ import annotations

import math
import types

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig

from stagerl.train.models import TINY_RANDOM, resolve_model
from stagerl.train.sampling import PromptSampler, selection_lag
from stagerl.train.trainer import StageTrainer
from tests.helpers.rewards import half_constant_reward, length_reward

PROBLEMS = 16


def dataset() -> Dataset:
    return Dataset.from_dict(
        {"prompt": [f"What is {i} + {i}?" for i in range(PROBLEMS)], "id": [f"p{i}" for i in range(PROBLEMS)]}
    )


def trainer(tmp_path, reward, dynamic=True, max_rounds=4, **grpo) -> StageTrainer:
    settings = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        num_generations=4,
        steps_per_generation=2,  # 2 groups per block, 2 optimizer steps: TRL computes old log-probs
        max_completion_length=8,
        max_steps=4,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        seed=0,
        beta=0.001,  # the shipped KL: a reference forward too
    )
    rows, args = dataset(), GRPOConfig(**{**settings, **grpo})
    lag = selection_lag(args.gradient_accumulation_steps, args.steps_per_generation, args.num_iterations)
    sampler = PromptSampler(rows["id"], seed=0, lag=lag)
    return StageTrainer(
        model=resolve_model(TINY_RANDOM),
        reward_funcs=[reward],
        args=args,
        train_dataset=rows,
        sampler=sampler,
        dynamic_sampling=dynamic,
        max_rounds=max_rounds,
    )


def count_scoring_rows(t: StageTrainer) -> dict:
    """Rows through the log-prob forwards outside the loss (no gradient), by model: TRL's scoring pass."""
    rows = {"policy": 0, "reference": 0}
    forward = t._get_per_token_logps_and_entropies

    def counted(model, input_ids, *args, **kwargs):
        if not torch.is_grad_enabled():
            rows["reference" if model is t.ref_model else "policy"] += input_ids.shape[0]
        return forward(model, input_ids, *args, **kwargs)

    t._get_per_token_logps_and_entropies = counted
    return rows


def test_a_block_whose_groups_all_have_variance_is_exactly_trls(tmp_path):
    """The length reward varies within every group, so dynamic sampling keeps the first round whole: the same
    losses and weights as TRL's own scoring pass on the same prompts."""
    runs = {}
    for dynamic in (False, True):
        t = trainer(tmp_path / str(dynamic), length_reward, dynamic=dynamic)
        t.train()
        losses = [h["loss"] for h in t.state.log_history if "loss" in h]
        runs[dynamic] = (losses, {k: v.clone() for k, v in t.model.state_dict().items()})
    assert len(runs[True][0]) == 4 and runs[True][0] == runs[False][0]
    assert all(torch.equal(v, runs[False][1][k]) for k, v in runs[True][1].items())


def test_the_forwards_cover_the_kept_rows_only(tmp_path):
    """Half the problems give zero-variance groups: refill rounds generate more rows than the batch keeps, and
    the old-policy and reference forwards see the kept batch only, once per block."""
    t = trainer(tmp_path, half_constant_reward)
    rows = count_scoring_rows(t)
    t.train()
    generated = sum(h["generation/rollouts"] for h in t.state.log_history if "generation/rollouts" in h)
    rounds = sum(h["generation/rounds"] for h in t.state.log_history if "generation/rounds" in h)
    assert rounds > 2 and generated > 2 * 8  # 2 blocks of 8 rows each, and refills on top
    assert rows == {"policy": 2 * 8, "reference": 2 * 8}


class FakeEngine:
    """Stands in for vLLM's `LLM` under TRL's own `VLLMGeneration`: random tokens, and a log of what TRL asks."""

    def __init__(self, vocab: int):
        self.events, self.vocab = [], vocab
        model = types.SimpleNamespace(load_weights=lambda weights: self.events.append("load"))
        runner = types.SimpleNamespace(model=model)
        self.llm_engine = types.SimpleNamespace(
            model_executor=types.SimpleNamespace(driver_worker=types.SimpleNamespace(model_runner=runner))
        )

    def generate(self, prompts, sampling_params, use_tqdm=False):
        self.events.append("generate")
        outs = []
        for prompt in prompts:
            ids = torch.randint(
                3, self.vocab, (int(torch.randint(2, sampling_params["max_tokens"] + 1, ())),)
            )
            logprobs = [{int(i): types.SimpleNamespace(logprob=-1.0, rank=1)} for i in ids]
            out = types.SimpleNamespace(token_ids=ids.tolist(), logprobs=logprobs)
            outs.append(types.SimpleNamespace(prompt_token_ids=prompt["prompt_token_ids"], outputs=[out]))
        return outs

    def sleep(self, level=1):
        self.events.append(f"sleep-{level}")

    def wake_up(self, tags=None):
        self.events.append(f"wake-{','.join(tags or [])}")

    def reset_prefix_cache(self):
        pass


def test_with_sleep_mode_the_weights_are_pushed_once_per_block(tmp_path, monkeypatch):
    """TRL's colocated generation (its `VLLMGeneration`, sleep mode on) over a stand-in engine: a block's refill
    rounds reuse the weights pushed for its first, and the engine sleeps once per block."""
    from trl.generation import vllm_generation
    from trl.generation.vllm_generation import VLLMGeneration

    monkeypatch.setattr(vllm_generation, "SamplingParams", lambda **kwargs: kwargs, raising=False)
    t = trainer(tmp_path, half_constant_reward)
    generation = VLLMGeneration.__new__(VLLMGeneration)  # TRL's class, its engine left unbuilt
    settings = dict(
        model=t.model,
        accelerator=t.accelerator,
        _dist=vllm_generation.DistributedBackend(t.accelerator),
        processing_class=t.processing_class,
        mode="colocate",
        structured_outputs_regex=None,
        tensor_parallel_size=1,
        enable_sleep_mode=True,
        _llm_weights_sleeping=True,  # TRL puts the engine to sleep once it is built
        repetition_penalty=1.0,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_p=0.0,
        max_completion_length=8,
        logprobs=0,
        generation_kwargs={},
        llm=FakeEngine(len(t.processing_class)),
    )
    vars(generation).update(settings)
    pushes = []
    push = generation.sync_weights
    generation.sync_weights = lambda: pushes.append(t.state.global_step) or push()
    t.use_vllm, t.vllm_mode, t.vllm_generation, t._last_loaded_step = True, "colocate", generation, -1
    t.train()
    events = generation.llm.events
    rounds = sum(h["generation/rounds"] for h in t.state.log_history if "generation/rounds" in h)
    blocks = 2  # 4 optimizer steps, 2 per block
    assert rounds > blocks and events.count("generate") == rounds
    assert pushes == [0, 2] and events.count("sleep-2") == blocks


def test_past_the_round_cap_the_fillers_are_out_of_the_loss(tmp_path):
    """One round per block: the block's zero-variance groups (half_constant_reward's even-hashed problems) fill
    the batch, masked whole after the kept groups; the loss normaliser counts the kept groups' tokens."""
    t = trainer(tmp_path, half_constant_reward, max_rounds=1, steps_per_generation=4)  # 4 groups a block
    outputs = []
    score = t._generate_and_score_completions
    t._generate_and_score_completions = lambda inputs: outputs.append(score(inputs)) or outputs[-1]
    t.train()
    for output in outputs:
        mask, advantages = output["completion_mask"], output["advantages"]
        kept = int((mask.sum(dim=1) > 0).sum())
        assert mask[:kept].sum(dim=1).min() > 0 and mask[kept:].sum() == 0
        assert torch.all(advantages[kept:] == 0) and int(output["num_items_in_batch"]) == int(mask.sum())
    assert any(0 < int((o["completion_mask"].sum(dim=1) > 0).sum()) < 16 for o in outputs)  # fillers used


def test_a_pool_used_up_within_a_block_trains_on_what_it_found(tmp_path, caplog):
    """No group ever varies and the rounds are not capped: refills stop once every problem of the pool is in
    the block (they asked the sampler for problems it did not have: `ValueError: asked for 2 more prompts, but
    every one of the 16 is taken`), and the batch trains on its fillers, masked, as past the round cap."""
    t = trainer(tmp_path, constant_reward, max_rounds=100, max_steps=2)
    with caplog.at_level("WARNING", logger="stagerl.train.trainer"):
        t.train()
    rounds = [h["generation/rounds"] for h in t.state.log_history if "generation/rounds" in h]
    assert rounds and all(r > 1 for r in rounds)
    assert "found 0 of 2 groups with variance" in caplog.text
    assert all(math.isfinite(h["loss"]) for h in t.state.log_history if "loss" in h)


def constant_reward(completions, **kwargs) -> list[float]:
    return [1.0] * len(completions)


@pytest.mark.parametrize("loss_type", ["grpo", "sapo", "dr_grpo"])
def test_losses_that_average_over_rows_are_refused(tmp_path, loss_type):
    with pytest.raises(ValueError, match=f"loss_type='{loss_type}' averages over rows"):
        trainer(tmp_path, length_reward, loss_type=loss_type)
