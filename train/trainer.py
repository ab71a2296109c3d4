"""The stage's trainer: TRL's `GRPOTrainer` with our prompt sampler, one view of every generation block's groups,
and DAPO's dynamic sampling (arXiv 2503.14476).

Everything goes through `GRPOTrainer`'s own methods, each override calling `super()` (TRL 1.16 has no public hook
for refilling a batch):

- `_get_train_sampler`: TRL's `RepeatSampler`, seeded by `data_seed` when set; or our `PromptSampler`
  (`stagerl.train.sampling`) when the stage selects prompts, samples by learnability or samples dynamically.
- `_calculate_rewards`: keeps each round's gathered rewards, so the groups (`stagerl.train.rollouts`) are seen
  once, alike on every rank, and fed to the per-problem statistics, early advance and the sampler.
- `_generate_and_score_completions`: with `dynamic_sampling`, a generation block is generated in rounds. After
  each round every rank knows, from the gathered rewards, which groups have zero variance in the total reward
  (`reward_weights`, None/NaN as TRL aggregates them); each rank keeps its own groups with variance, up to its
  share of the batch, and while any rank is short all generate another round from further prompts of the same
  sampler (`PromptSampler.refill`, sized from the share of groups kept so far, at most a full batch). Past
  `dynamic_sampling_max_rounds` the batch is topped up with dropped groups, fully masked out of the loss, and
  the log says so. The kept rows are merged (prompts left-padded, completions right-padded) and then, as TRL
  would have for such a batch: `num_items_in_batch` counts the kept tokens only (the loss normalisation), and
  with `scale_rewards: batch` the advantages are rescaled by the standard deviation of the kept groups. A rank
  that filled its share early still generates in later rounds (generation is collective); its extra groups
  are counted as generated, not trained. Generation itself is TRL's, vLLM included (on vLLM's CPU build, with
  the weight sync of `stagerl.train.vllm_cpu`).

Refill prompts continue the sampler's passes over the rows: an epoch keeps TRL's number of optimizer steps, the
passes run ahead of it, `max_steps` counts optimizer steps as always, and a resumed stage redraws exactly the
same refills (the sampler's state is in every checkpoint).
"""

from __future__ import annotations

import logging
import math

import torch
from accelerate.utils import gather, gather_object
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler, nanstd

from stagerl.data.files import failpoint
from stagerl.train import vllm_cpu
from stagerl.train.rollouts import Round, groups_of, totals_of
from stagerl.train.sampling import PromptSampler, TrlSampler, sampler_seed

logger = logging.getLogger(__name__)

LEFT_PADDED = ("prompt_ids", "prompt_mask")
LOSS_MASKS = ("completion_mask", "tool_mask")


class StageTrainer(GRPOTrainer):
    """TRL's `GRPOTrainer` for a stage (see the module docstring).

    Args:
        sampler: the prompt sampler, or None for TRL's `RepeatSampler`.
        observers: stage state fed every generation block's groups (`observe(groups)`).
        counts: `GenerationCounts`, fed every block's counts.
        dynamic_sampling: drop zero-variance groups and refill (needs `sampler`).
        max_rounds: the most generation rounds per block.
    """

    def __init__(
        self,
        *args,
        sampler: PromptSampler | None = None,
        observers=(),
        counts=None,
        dynamic_sampling: bool = False,
        max_rounds: int = 1,
        **kwargs,
    ):
        if dynamic_sampling and sampler is None:
            raise ValueError("dynamic_sampling needs a PromptSampler to draw refills from")
        self.prompt_sampler, self.observers, self.counts = sampler, list(observers), counts
        self.dynamic_sampling, self.max_rounds = dynamic_sampling, max_rounds
        self._round: Round | None = None
        self._draws_logged = len(sampler.drawn_learnability) if sampler is not None else 0
        super().__init__(*args, **kwargs)
        if self.use_vllm and self.vllm_mode == "colocate" and vllm_cpu.cpu_build():
            vllm_cpu.keep_weights_in_sync(self.vllm_generation)  # TRL's push fails on vLLM's CPU engine

    # -- prompts ---------------------------------------------------------------------------------------------
    def _get_train_sampler(self, dataset=None):
        batch_size = self.args.generation_batch_size // self.num_generations
        repeat_count = self.num_iterations * self.args.steps_per_generation
        if self.prompt_sampler is not None:
            return TrlSampler(self.prompt_sampler, self.num_generations, batch_size, repeat_count)
        return RepeatSampler(
            dataset if dataset is not None else self.train_dataset,
            self.num_generations,
            batch_size,
            repeat_count,
            shuffle=self.shuffle_dataset,
            seed=sampler_seed(self.args),
        )

    # -- scores ----------------------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # gathered
        if self.model.training:
            names = list(self.reward_func_names)
            accuracy = (
                rewards[:, names.index("accuracy")].tolist() if "accuracy" in names else [None] * len(rewards)
            )
            tokens = torch.tensor(sum(len(ids) for ids in completion_ids_list), device=rewards.device)
            self._round = Round(
                ids=gather_object([x["id"] for x in inputs]),
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

    def _dynamic_sampling(self, inputs: list[dict], skipped: int) -> dict:
        size = self.num_generations
        rank, ranks = self.accelerator.process_index, self.accelerator.num_processes
        share = len(inputs) // size  # groups each rank trains on
        kept: list[list[tuple[dict | None, list[int], torch.Tensor]]] = [[] for _ in range(ranks)]
        spare: list[tuple[dict, list[int]]] = []  # this rank's dropped groups: fillers past the cap
        rounds, groups, dropped, local = [], [], [], inputs
        while True:
            output = super()._generate_and_score_completions(local)
            rounds.append(self._round)
            new = groups_of(self._round, size)
            groups += new
            per_rank = len(new) // ranks
            for g, group in enumerate(new):  # every rank's decision, made alike on every rank
                r, rows = g // per_rank, list(range((g % per_rank) * size, (g % per_rank + 1) * size))
                if group.zero_variance:
                    dropped.append(group)
                    if r == rank:
                        spare.append((output, rows))
                elif len(kept[r]) < share:
                    totals = self._round.totals[g * size : (g + 1) * size]
                    kept[r].append((output if r == rank else None, rows, totals))
            need = max(share - len(k) for k in kept)
            if need == 0 or len(rounds) == self.max_rounds:
                break
            failpoint("dynamic-sampling-refill")  # a kill between two rounds (tests)
            rate = sum(not g.zero_variance for g in groups) / len(groups)
            extra = min(share, math.ceil(1.25 * need / max(rate, 1 / share)))  # prompts per rank
            rows, refill_skipped = self.prompt_sampler.refill(extra * ranks, {g.id for g in groups})
            skipped += refill_skipped
            local = [
                self.train_dataset[i] for i in rows[rank * extra : (rank + 1) * extra] for _ in range(size)
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
        output = self._merge(kept, spare[: share - len(kept[rank])], rank)
        self._account(groups, rounds, trained, dropped, skipped)
        return output

    def _merge(self, kept, fillers, rank: int) -> dict:
        """This rank's batch: its kept groups' rows from each round, then masked fillers; the loss normaliser
        and (with batch scaling) the advantages recomputed over the kept groups of every rank."""
        merged = merge_rows(
            [(out, rows) for out, rows, _ in kept[rank]] + list(fillers), self._tokenizer.pad_token_id
        )
        real = torch.zeros_like(merged["advantages"], dtype=torch.bool)
        real[: len(kept[rank]) * self.num_generations] = True
        for key in LOSS_MASKS:
            if key in merged:
                merged[key] = merged[key] * real.unsqueeze(1).to(merged[key].dtype)
        merged["advantages"] = merged["advantages"] * real
        if self.scale_rewards == "batch":  # TRL's batch scaling, over the groups that are trained on
            totals = torch.cat([t for rank_kept in kept for _, _, t in rank_kept])
            grouped = totals.view(-1, self.num_generations)
            centred = (grouped - torch.nanmean(grouped, dim=1, keepdim=True)).view(-1)
            start = sum(len(k) for k in kept[:rank]) * self.num_generations
            mine = centred[start : start + len(kept[rank]) * self.num_generations] / (nanstd(totals) + 1e-4)
            merged["advantages"][: mine.numel()] = torch.nan_to_num(mine, nan=0.0).to(
                merged["advantages"].device
            )
        loss_mask = (
            merged["completion_mask"] * merged["tool_mask"]
            if "tool_mask" in merged
            else merged["completion_mask"]
        )
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        return merged

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
        draws = self.prompt_sampler.drawn_learnability[self._draws_logged :] if self.prompt_sampler else []
        # learnability sampling: how learnable the problems drawn since the last block were expected to be
        if draws:
            self._metrics["train"]["sampler/drawn_learnability"].append(sum(draws) / len(draws))
            self._draws_logged += len(draws)


def merge_rows(parts: list[tuple[dict, list[int]]], pad_token_id: int) -> dict:
    """The rows `rows` of each batch dict `out` in `parts`, as one batch dict: 1-D tensors concatenated, 2-D ones
    padded to the widest (prompts on the left, as TRL pads them; the rest on the right)."""
    merged = {}
    for key, value in parts[0][0].items():
        if key == "num_items_in_batch":
            continue
        if not isinstance(value, torch.Tensor) or value.ndim not in (1, 2):
            raise ValueError(
                f"dynamic_sampling cannot merge the batch's {key!r} (multimodal inputs are not supported)"
            )
        pieces = [out[key][torch.tensor(rows, device=out[key].device)] for out, rows in parts]
        if value.ndim == 2:
            width = max(p.shape[1] for p in pieces)
            fill = pad_token_id if key in ("prompt_ids", "completion_ids") else 0
            pieces = [_pad(p, width, fill, left=key in LEFT_PADDED) for p in pieces]
        merged[key] = torch.cat(pieces)
    return merged


def _pad(tensor: torch.Tensor, width: int, value, left: bool) -> torch.Tensor:
    missing = width - tensor.shape[1]
    if missing == 0:
        return tensor
    pad = torch.full((tensor.shape[0], missing), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([pad, tensor] if left else [tensor, pad], dim=1)
