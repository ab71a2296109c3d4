"""The stage's trainer: TRL's `GRPOTrainer` with our prompt sampler, one view of every generation block's groups,
and DAPO's dynamic sampling (arXiv 2503.14476) that pays for the log-prob forwards of the rows it trains on only.

TRL 1.16 has no public hook for refilling a batch. What this relies on, each override calling `super()` (each
pinned by a test against TRL's own trainer, `tests/train/test_trainer.py`):

- `_get_train_sampler`: TRL's `RepeatSampler` (`EpochRepeatSampler`: one that can be put in any epoch), seeded
  by `data_seed` when set; or our `PromptSampler` (`stagerl.train.sampling`) when the stage selects prompts,
  samples by learnability or samples dynamically (`dynamic_sampling=True` alone builds a plain one).
- `_init_training_state`: tells the sampler the epoch a resumed stage restarts in (transformers' `set_epoch`
  does not reach a sampler through accelerate's batch skipping on several processes).
- `_calculate_rewards(inputs, prompts, completions, completion_ids_list)`, which returns every rank's rewards:
  kept per round, so the groups (`stagerl.train.rollouts`) are seen once, alike on every rank, and fed to the
  per-problem statistics, early advance and the sampler.
- `_generate(prompts)`, TRL's generation (transformers, or vLLM with its weight push), returning per-row lists
  `(prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images)`.
- `_generate_and_score_completions(inputs)`, TRL's scoring pass: it calls the two above, then pads, runs the old
  policy's and the reference model's log-prob forwards (when TRL needs them), computes advantages and logs.
- For vLLM with sleep mode: `vllm_generation.generate`, `vllm_generation.llm.sleep` and TRL's
  `vllm_generation._llm_weights_sleeping` flag.

Dynamic sampling (`dynamic_sampling`) generates a block in rounds, scoring first and paying after. Each round
calls only `_generate` and `_calculate_rewards`; from the gathered rewards every rank knows which groups have
zero variance in the total reward (`reward_weights`, None/NaN as TRL aggregates them); each rank keeps its own
groups with variance, up to its share of the batch, and while any rank is short all generate another round
from further prompts of the same sampler (`PromptSampler.refill`, sized from the share of groups kept so far,
at most a full batch). Then TRL's scoring pass runs once, over the kept rows, served the generations and
rewards the rounds made instead of generating anew: the forwards cover only what is trained on, and a block
whose first round keeps every group is exactly TRL's. A colocated vLLM engine with sleep mode stays awake
through a block's rounds (weights pushed once per block) and sleeps before the forwards. Past
`dynamic_sampling_max_rounds`, or once every problem of the pool is in the block (a small pool), the batch is
topped up with dropped groups, masked out of the loss, and the log says so: then `num_items_in_batch` counts
the kept tokens only, and with `scale_rewards: batch` the advantages are rescaled by the standard deviation of
the kept groups; loss types that average over rows (grpo, sapo, dr_grpo, luspo) would still count the masked
rows, and are refused with dynamic sampling. A rank that filled its share early still generates in later rounds
(generation is collective); its extra groups are counted as generated, not trained. On vLLM's CPU build the weight push is `stagerl.train.vllm_cpu`'s.

Refill prompts continue the sampler's passes over the rows: an epoch keeps TRL's number of optimizer steps, the
passes run ahead of it, `max_steps` counts optimizer steps as always, and a resumed stage redraws exactly the
same refills (the sampler's state is in every checkpoint).

With every stage feature off it is TRL's trainer, on any dataset TRL's accepts (a row without an `id` is named
by its prompt, `stagerl.data.sources.row_id`), except that `data_seed` seeds the prompt order.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from accelerate.utils import gather, gather_object
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

from stagerl.data.files import failpoint
from stagerl.data.sources import row_id
from stagerl.train import vllm_cpu
from stagerl.train.config import StageArguments
from stagerl.train.rollouts import GENERATED_REWARD, Round, groups_of, totals_of
from stagerl.train.sampling import EpochRepeatSampler, PromptSampler, TrlSampler, prompt_sampler, sampler_seed

logger = logging.getLogger(__name__)

LOSS_MASKS = ("completion_mask", "tool_mask")


# Loss types that average over the rows of a micro-batch: rows masked out still count in that mean.
ROW_NORMALISED_LOSSES = ("grpo", "sapo", "dr_grpo", "luspo")


def check_dynamic_sampling(args) -> None:
    """Dynamic sampling keeps or drops whole groups on each rank, rescales advantages batch-wide itself, and
    masks the filler rows of a batch it could not fill (a GRPOConfig)."""
    rows = args.per_device_train_batch_size * args.steps_per_generation
    if rows % args.num_generations:
        raise ValueError(
            f"dynamic_sampling keeps whole groups on each process: per_device_train_batch_size="
            f"{args.per_device_train_batch_size} x steps_per_generation={args.steps_per_generation} = {rows} "
            f"completions must be a multiple of num_generations={args.num_generations}"
        )
    if args.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            f"dynamic_sampling recomputes advantages for the kept groups as sum_then_normalize does; "
            f"multi_objective_aggregation={args.multi_objective_aggregation!r} is not supported with it"
        )
    if args.loss_type in ROW_NORMALISED_LOSSES:
        raise ValueError(
            f"loss_type={args.loss_type!r} averages over rows, so the masked rows that fill a batch dynamic_sampling "
            "could not fill within its rounds would still dilute the loss; use dapo (TRL's default), bnpo, cispo or "
            "vespo with dynamic_sampling"
        )


class StageTrainer(GRPOTrainer):
    """TRL's `GRPOTrainer` for a stage (see the module docstring).

    Args:
        sampler: the prompt sampler (fed every block's groups), or None for TRL's `RepeatSampler` (with
            `dynamic_sampling`: a `PromptSampler` walking seeded passes over the rows).
        observers: further stage state fed every generation block's groups (`observe(groups)`).
        counts: `GenerationCounts`, fed every block's counts.
        dynamic_sampling: drop zero-variance groups and refill.
        max_rounds: the most generation rounds per block (the stage's default).
    """

    def __init__(
        self,
        *args,
        sampler: PromptSampler | None = None,
        observers=(),
        counts=None,
        dynamic_sampling: bool = False,
        max_rounds: int = StageArguments.dynamic_sampling_max_rounds,
        **kwargs,
    ):
        self.counts, self.dynamic_sampling, self.max_rounds = counts, dynamic_sampling, max_rounds
        self._round: Round | None = None
        self._replay: Replay | None = None
        self._epoch_sampler = None  # the train sampler, told the epoch a resumed stage restarts in
        super().__init__(*args, **kwargs)
        if dynamic_sampling:
            check_dynamic_sampling(self.args)
            if sampler is None:  # what refills are drawn from
                sampler = prompt_sampler(self.args, self.train_dataset)
        self.prompt_sampler = sampler
        self.observers = list(observers) + ([sampler] if sampler is not None else [])
        self._draws_logged = len(sampler.drawn_learnability) if sampler is not None else 0
        if self.use_vllm and self.vllm_mode == "colocate" and vllm_cpu.cpu_build():
            vllm_cpu.keep_weights_in_sync(self.vllm_generation)  # TRL's push fails on vLLM's CPU engine

    # -- prompts ---------------------------------------------------------------------------------------------
    def _get_train_sampler(self, dataset=None):
        batch_size = self.args.generation_batch_size // self.num_generations
        repeat_count = self.num_iterations * self.args.steps_per_generation
        if self.prompt_sampler is not None:
            sampler = TrlSampler(self.prompt_sampler, self.num_generations, batch_size, repeat_count)
        else:
            sampler = EpochRepeatSampler(
                dataset if dataset is not None else self.train_dataset,
                self.num_generations,
                batch_size,
                repeat_count,
                shuffle=self.shuffle_dataset,
                seed=sampler_seed(self.args),
            )
        self._epoch_sampler = sampler
        return sampler

    def _init_training_state(self, *args, **kwargs):
        epochs_trained, steps_to_skip = super()._init_training_state(*args, **kwargs)
        if self.state.global_step and self.prompt_sampler is not None and not self.prompt_sampler.batches:
            # a resumed epoch's batches would be drawn anew, and from scores the sampler never saw
            raise ValueError(
                "resuming with a PromptSampler (dynamic sampling, selection, learnability) needs the sampler's "
                "state, which the stage's checkpoints hold: resume the stage with train/grpo.py"
            )
        # A resumed stage restarts in epoch `epochs_trained`. transformers' set_epoch reaches the sampler at the
        # start of every epoch, except on several processes in the one it resumes in the middle of (accelerate's
        # batch skipping hides the sampler from it): said here, for every epoch and process count alike.
        if self._epoch_sampler is not None:
            self._epoch_sampler.set_epoch(epochs_trained)
        return epochs_trained, steps_to_skip

    # -- scores ----------------------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self._replay is not None:  # the kept rows' rewards, computed in the rounds that generated them
            return self._replay.rewards
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # gathered
        if self.model.training:
            names = list(self.reward_func_names)
            accuracy = (
                rewards[:, names.index("accuracy")].tolist() if "accuracy" in names else [None] * len(rewards)
            )
            tokens = torch.tensor(sum(len(ids) for ids in completion_ids_list), device=rewards.device)
            self._round = Round(
                ids=gather_object([row_id(x) for x in inputs]),
                totals=totals_of(rewards, self.reward_weights),
                accuracy=[None if a is None or math.isnan(a) else a for a in accuracy],
                completion_tokens=int(gather(tokens).sum()),
            )
        return rewards

    # -- generation blocks -----------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        block = self.prompt_sampler.blocks_observed if self.prompt_sampler is not None else None
        skipped = self.prompt_sampler.skipped_at[block] if block is not None else 0
        if not self.dynamic_sampling:
            output = super()._generate_and_score_completions(inputs)
            groups = groups_of(self._round, self.num_generations)
            self._account(groups, [self._round], len(groups), [], skipped)
            return output
        return self._dynamic_sampling(inputs, skipped)

    def _generate(self, prompts):
        if self._replay is not None:  # the block's kept rows, generated in its rounds
            return self._replay.generated
        return super()._generate(prompts)

    def _dynamic_sampling(self, inputs: list[dict], skipped: int) -> dict:
        size = self.num_generations
        rank, ranks = self.accelerator.process_index, self.accelerator.num_processes
        share = len(inputs) // size  # groups each rank trains on
        kept: list[list[tuple[int, int]]] = [[] for _ in range(ranks)]  # (round, group of its rank), per rank
        # each rank's dropped groups: the fillers past the cap
        spare: list[list[tuple[int, int]]] = [[] for _ in range(ranks)]
        rounds: list[GeneratedRound] = []
        groups, dropped, local = [], [], inputs
        with self._engine_awake_for_the_block():
            while True:
                rounds.append(self._generate_and_reward(local))
                new = groups_of(rounds[-1].scores, size)
                groups += new
                per_rank = len(new) // ranks
                for g, group in enumerate(new):  # every rank's decision, made alike on every rank
                    r, picked = g // per_rank, (len(rounds) - 1, g % per_rank)
                    if group.zero_variance:
                        dropped.append(group)
                        spare[r].append(picked)
                    elif len(kept[r]) < share:
                        kept[r].append(picked)
                need = max(share - len(k) for k in kept)
                taken = {g.id for g in groups}
                # prompts per rank the pool still has: a small pool can be in the block whole
                left = (self.prompt_sampler.problems - len(taken)) // ranks
                if need == 0 or len(rounds) == self.max_rounds or left == 0:
                    break
                failpoint("dynamic-sampling-refill")  # a kill between two rounds (tests)
                rate = sum(not g.zero_variance for g in groups) / len(groups)
                extra = min(share, left, math.ceil(1.25 * need / max(rate, 1 / share)))  # prompts per rank
                rows, refill_skipped = self.prompt_sampler.refill(extra * ranks, taken)
                skipped += refill_skipped
                local = [
                    self.train_dataset[i]
                    for i in rows[rank * extra : (rank + 1) * extra]
                    for _ in range(size)
                ]
        trained = sum(len(k) for k in kept)
        if trained < share * ranks:
            logger.warning(
                "dynamic sampling: %d rounds found %d of %d groups with variance; %d zero-variance groups fill "
                "the batch, masked out of the loss",
                len(rounds),
                trained,
                share * ranks,
                share * ranks - trained,
            )
        batches = [k + s[: share - len(k)] for k, s in zip(kept, spare, strict=True)]
        output = self._score_kept(rounds, batches, rank)
        if trained < share * ranks:
            self._mask_fillers(output, rounds, kept, rank)
        self._account(groups, [r.scores for r in rounds], trained, dropped, skipped)
        return output

    def _generate_and_reward(self, inputs: list[dict]) -> GeneratedRound:
        """One round: TRL's generation and rewards for `inputs`, nothing else (no log-prob forward)."""
        if any(key in inputs[0] for key in ("image", "images")) or self.tools or self.environment_factories:
            raise ValueError("dynamic_sampling supports text prompts only (no images, tools or environments)")
        prompts = [x["prompt"] for x in inputs]
        generated = self._generate(prompts)
        completions, completion_ids = generated[3], generated[1]
        rewards = self._calculate_rewards(inputs, prompts, completions, completion_ids)  # every rank's
        return GeneratedRound(inputs, generated, rewards, self._round)

    def _score_kept(
        self, rounds: list[GeneratedRound], batches: list[list[tuple[int, int]]], rank: int
    ) -> dict:
        """TRL's whole scoring pass (old and reference log-probs, advantages, logs), once, over the batch each
        rank keeps: its rows and rewards, taken from the rounds that generated them, are served to TRL's
        `_generate_and_score_completions` in place of a new generation."""
        size = self.num_generations

        def rows(picked: tuple[int, int]) -> range:
            return range(picked[1] * size, (picked[1] + 1) * size)

        inputs = [rounds[k].inputs[i] for k, g in batches[rank] for i in rows((k, g))]
        generated = take_rows([(rounds[k].generated, rows((k, g))) for k, g in batches[rank]])
        gathered = [
            rounds[k].rewards[r * len(rounds[k].inputs) + i]
            for r, batch in enumerate(batches)
            for k, g in batch
            for i in rows((k, g))
        ]
        self._replay = Replay(generated, torch.stack(gathered))
        try:
            return super()._generate_and_score_completions(inputs)
        finally:
            self._replay = None

    def _mask_fillers(self, output: dict, rounds: list[GeneratedRound], kept, rank: int) -> None:
        """Past the round cap: the filler rows out of the loss, the loss normaliser counting the kept tokens only,
        and with `scale_rewards: batch` the advantages scaled by the kept groups' standard deviation."""
        size = self.num_generations
        real = torch.zeros_like(output["advantages"], dtype=torch.bool)
        real[: len(kept[rank]) * size] = True
        for key in LOSS_MASKS:
            if key in output:
                output[key] = output[key] * real.unsqueeze(1).to(output[key].dtype)
        output["advantages"] = output["advantages"] * real
        if self.scale_rewards == "batch":  # TRL's batch scaling, over the groups that are trained on
            totals = torch.cat(
                [rounds[k].group_totals(r, g, size) for r, mine in enumerate(kept) for k, g in mine]
            )
            grouped = totals.view(-1, size)
            centred = (grouped - torch.nanmean(grouped, dim=1, keepdim=True)).view(-1)
            start = sum(len(k) for k in kept[:rank]) * size
            mine = centred[start : start + len(kept[rank]) * size] / (nanstd(totals) + 1e-4)
            output["advantages"][: mine.numel()] = torch.nan_to_num(mine, nan=0.0).to(
                output["advantages"].device
            )
        loss_mask = (
            output["completion_mask"] * output["tool_mask"]
            if "tool_mask" in output
            else output["completion_mask"]
        )
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()

    @contextmanager
    def _engine_awake_for_the_block(self):
        """Weights pushed to vLLM once per generation block. TRL's colocated engine with sleep mode sleeps at level
        2 (weights discarded) after every generate, so each refill round would push every weight again (a full
        gather under ZeRO-3): within a block it stays awake, and sleeps once its rounds are done, before the
        log-prob forwards need the memory."""
        generation = getattr(self, "vllm_generation", None) if self.use_vllm else None
        if generation is None or self.vllm_mode != "colocate" or not generation.enable_sleep_mode:
            yield
            return
        llm, generate = generation.llm, generation.generate

        def generate_awake(*args, **kwargs):
            result = generate(*args, **kwargs)
            generation._llm_weights_sleeping = False  # TRL's flag; the sleep below was skipped
            return result

        llm.sleep, generation.generate = (lambda *args, **kwargs: None), generate_awake
        try:
            yield
        finally:
            del llm.sleep, generation.generate  # the instance attributes: back to the methods
            llm.sleep(level=2)
            generation._llm_weights_sleeping = True

    def _account(self, groups: list, rounds: list[Round], trained: int, dropped: list, skipped: int) -> None:
        """Feed the block's groups to the stage state and log what it generated and trained on."""
        block = {
            "prompts": len(groups),
            "rollouts": sum(len(r.ids) for r in rounds),
            "completion_tokens": sum(r.completion_tokens for r in rounds),
            "rounds": len(rounds),
            "groups_trained": trained,
            "zero_variance_dropped": len(dropped),
            "zero_variance_dropped_all_right": sum(g.side == "right" for g in dropped),
            "zero_variance_dropped_all_wrong": sum(g.side == "wrong" for g in dropped),
            "prompts_skipped": skipped,
        }
        for observer in self.observers:
            observer.observe(groups)
        if self.counts is not None:
            self.counts.add(block)
        for key, value in block.items():
            self._metrics["train"][f"generation/{key}"].append(value)
        # TRL's `reward` is the mean over the rows it scored: with dynamic sampling, the kept groups only.
        totals = torch.cat([r.totals for r in rounds])
        self._metrics["train"][GENERATED_REWARD].append(float(torch.nanmean(totals)))
        draws = self.prompt_sampler.drawn_learnability[self._draws_logged :] if self.prompt_sampler else []
        # learnability sampling: how learnable the problems drawn since the last block were expected to be
        if draws:
            self._metrics["train"]["sampler/drawn_learnability"].append(sum(draws) / len(draws))
            self._draws_logged += len(draws)


@dataclass
class GeneratedRound:
    """One round of a dynamic-sampling block: this rank's inputs and TRL's `_generate` output for them, every
    rank's rewards (gathered, as TRL returns them) and the round's groups' scores."""

    inputs: list[dict]
    generated: tuple
    rewards: torch.Tensor
    scores: Round

    def group_totals(self, rank: int, group: int, size: int) -> torch.Tensor:
        """The total rewards of one rank's `group`-th group of this round."""
        start = rank * len(self.inputs) + group * size
        return self.scores.totals[start : start + size]


@dataclass
class Replay:
    """What TRL's scoring pass is served instead of generating and rewarding anew."""

    generated: tuple
    rewards: torch.Tensor


# TRL 1.16's `_generate` returns, per row where a list: (prompt_ids, completion_ids, tool_mask, completions,
# logprobs, extra_fields, images, tool_images).
PER_ROW = (0, 1, 2, 3, 4)


def take_rows(parts: list[tuple[tuple, range]]) -> tuple:
    """TRL's `_generate` output for the rows `rows` of each output `out` in `parts`, in order, as one output.

    Rows of rollout_func's `extra_fields` lists are taken alike; images are refused before (text only).
    """
    outputs = [out for out, _ in parts]
    merged = []
    for f in PER_ROW:
        values = [out[f] for out in outputs]
        merged.append(None if values[0] is None else [out[f][i] for out, rows in parts for i in rows])
    extra = {
        key: [out[5][key][i] for out, rows in parts for i in rows] if isinstance(value, list) else value
        for key, value in outputs[0][5].items()
    }
    return (*merged, extra, None, [])
