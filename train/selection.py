"""Online difficulty filtering: skip, before generation, problems whose recent groups all scored alike.

A GRPO group whose completions all score the same (all correct, or all wrong) has zero advantage: its
rollouts cost generation and teach nothing. Following GRESO (arXiv 2506.02177), each problem keeps a streak,
the number of its latest groups in this stage that had zero variance in the accuracy reward; when a batch
is drawn, a problem with streak s is kept with probability `max(min_keep, explore ** s)` and otherwise
skipped for this pass over the data. The probability shrinks as the streak grows but never reaches zero, so
every problem is retried, and a group with variance resets the streak. Batches stay full: the sampler draws
further candidates until a batch has its prompts.

How it hooks into TRL (public surface only): `SelectionSampler` takes the place of TRL's `RepeatSampler`
(same repeat structure) through the trainer's `_get_train_sampler`; `PromptSelector.observe` is fed by the
accuracy reward's wrapper, gathering every rank's scores first, so all ranks hold the same history and draw
the same prompts; its state is saved with every checkpoint (`stagerl.train.checkpoints.StageCheckpoint`). An epoch
keeps TRL's number of batches; a skipped problem waits for the next pass over the rows.

Exact resume: the dataloader asks the sampler for batch k before batch k-1 is scored (it prefetches), so
batch k is decided from the groups of batches up to k - `lag` only, whenever it is asked for; the coin of
each candidate is a hash of (seed, pass, position), not a random stream. The batches drawn so far in this
epoch are saved, and replayed when transformers skips the consumed batches of a resumed epoch, so a resumed
stage draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from torch.utils.data import Sampler
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from stagerl.train.checkpoints import read_checkpoint_file
from stagerl.train.distributed import gather

SELECTION_FILE = "selection.json"


def coin(seed: int, data_pass: int, position: int) -> float:
    """A uniform number in [0, 1) that depends only on its arguments.

    >>> coin(0, 0, 5) == coin(0, 0, 5) != coin(0, 0, 6)
    True
    """
    digest = hashlib.sha256(f"{seed}:{data_pass}:{position}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class PromptSelector:
    """Per-problem zero-variance streaks, and the batches drawn from them (see the module docstring).

    Args:
        ids: the problem id of every dataset row, in row order.
        explore: keep probability per zero-variance group in a row (GRESO's exploration base), in (0, 1].
        min_keep: the keep probability never falls below this, in (0, 1].
        lag: batches between one being scored and its scores informing a draw (see `selection_lag`).
        seed: seeds the order of each pass and the coins.
        shuffle: a new order each pass (`GRPOConfig.shuffle_dataset`), else the rows' order.
    """

    def __init__(
        self, ids: list[str], explore: float, min_keep: float, lag: int, seed: int, shuffle: bool = True
    ):
        if not 0 < explore <= 1 or not 0 < min_keep <= 1:
            raise ValueError(f"select_explore={explore} and select_min_keep={min_keep} must be in (0, 1]")
        self.ids, self.explore, self.min_keep, self.lag, self.seed = ids, explore, min_keep, lag, seed
        self.shuffle = shuffle
        self.streak: dict[str, int] = {}  # zero-variance groups in a row, from the batches folded in so far
        self.folded = 0  # batches folded into the streaks
        self.unfolded: list[
            dict[str, bool]
        ] = []  # batches scored, not folded yet: problem id -> zero variance
        self.data_pass, self.cursor = 0, 0  # the pass over the rows, and the next candidate in its order
        self.drawn: list[list[int]] = []  # row indices of each batch drawn in the trainer's current epoch
        self.skipped: list[int] = []  # candidates skipped while drawing each batch of this stage
        self.groups, self.zero_variance_groups = 0, 0  # over every batch scored in this stage

    # -- drawing ---------------------------------------------------------------------------------------------
    def keep_probability(self, problem_id: str) -> float:
        return max(self.min_keep, self.explore ** self.streak.get(problem_id, 0))

    def fold_until(self, batch: int) -> None:
        """Bring the streaks up to date with the groups of every batch up to `batch` - lag, and no further."""
        upto = batch - self.lag + 1
        if upto > self.folded + len(self.unfolded):
            raise RuntimeError(
                f"prompt selection needs the scores of batch {upto - 1} to draw batch {batch}, which are not in "
                "yet: the dataloader runs further ahead than `lag` allows (dataloader_num_workers must be 0)"
            )
        while self.folded < upto:
            for pid, zero_variance in self.unfolded.pop(0).items():
                self.streak[pid] = self.streak.get(pid, 0) + 1 if zero_variance else 0
            self.folded += 1

    def order(self) -> list[int]:
        """The rows in the order of the current pass."""
        order = list(range(len(self.ids)))
        if self.shuffle:
            random.Random(f"{self.seed}-{self.data_pass}").shuffle(order)
        return order

    def draw(self, size: int) -> list[int]:
        """The next batch of `size` rows. A pass over the rows that runs out (skipped rows shorten it) goes on
        into the next pass, in a new order, where the skipped rows get their next chance."""
        self.fold_until(len(self.skipped))
        order = self.order()
        chosen, skipped = [], 0
        while len(chosen) < size:
            if self.cursor == len(order):
                self.data_pass, self.cursor = self.data_pass + 1, 0
                order = self.order()
            row = order[self.cursor]
            if coin(self.seed, self.data_pass, self.cursor) < self.keep_probability(self.ids[row]):
                chosen.append(row)
            else:
                skipped += 1
            self.cursor += 1
        self.drawn.append(chosen)
        self.skipped.append(skipped)
        return chosen

    # -- scores ----------------------------------------------------------------------------------------------
    def observe(self, ids: list[str], scores: list[float | None], log_metric=None) -> None:
        """Record one scored batch (called on every rank with its own completions; gathers them all)."""
        groups: dict[str, set[float]] = {}
        for part in gather(list(zip(ids, scores, strict=True))):
            for pid, score in part:
                if score is not None:
                    groups.setdefault(pid, set()).add(score)
        batch = self.folded + len(self.unfolded)
        self.unfolded.append({pid: len(values) == 1 for pid, values in groups.items()})
        zero = sum(self.unfolded[-1].values())
        self.groups += len(groups)
        self.zero_variance_groups += zero
        if callable(log_metric):
            skipped = self.skipped[batch] if batch < len(self.skipped) else 0
            log_metric("selection/prompts_skipped", skipped)
            log_metric("selection/zero_variance_groups", zero)
            log_metric("selection/zero_variance_fraction", zero / max(1, len(groups)))

    def totals(self, num_generations: int) -> dict:
        """What `stage.json` records: prompts skipped, rollouts that saved, groups and zero-variance groups."""
        skipped = sum(self.skipped)
        return {
            "batches": len(self.skipped),
            "prompts_skipped": skipped,
            "rollouts_saved": skipped * num_generations,
            "groups": self.groups,
            "zero_variance_groups": self.zero_variance_groups,
        }

    # -- checkpoints -----------------------------------------------------------------------------------------
    def checkpoint_files(self) -> dict[str, str]:
        drawn = gather(self.drawn)  # every rank must have drawn the same batches
        if any(d != drawn[0] for d in drawn):
            raise RuntimeError("prompt selection: ranks drew different batches; their histories diverged")
        state = {k: getattr(self, k) for k in ("streak", "folded", "unfolded", "data_pass", "cursor", "drawn",
                                               "skipped", "groups", "zero_variance_groups")}  # fmt: skip
        return {SELECTION_FILE: json.dumps(state)}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        for key, value in json.loads(read_checkpoint_file(checkpoint, SELECTION_FILE)).items():
            setattr(self, key, value)


class SelectionSampler(Sampler):
    """TRL's `RepeatSampler` structure (each index `mini_repeat_count` times in a row, each batch of
    `batch_size` prompts `repeat_count` times) over the batches a `PromptSelector` draws.

    An epoch has as many batches as TRL's (rows // batch_size), so transformers' step accounting holds; the
    selector's passes over the rows run across epochs. An epoch replays the batches already drawn in it
    first: transformers skips the consumed ones when it resumes mid-epoch, and they must be the same.
    """

    def __init__(self, selector: PromptSelector, mini_repeat_count: int, batch_size: int, repeat_count: int):
        self.selector, self.mini_repeat_count = selector, mini_repeat_count
        self.batch_size, self.repeat_count = batch_size, repeat_count

    def __iter__(self):
        batches = len(self.selector.ids) // self.batch_size
        if len(self.selector.drawn) >= batches:  # the last epoch ended: a new one
            self.selector.drawn = []
        replay = list(self.selector.drawn)
        for k in range(batches):
            batch = replay[k] if k < len(replay) else self.selector.draw(self.batch_size)
            for _ in range(self.repeat_count):
                for index in batch:
                    yield from [index] * self.mini_repeat_count

    def __len__(self) -> int:  # as TRL's RepeatSampler
        batches = len(self.selector.ids) // self.batch_size
        return batches * self.batch_size * self.mini_repeat_count * self.repeat_count


def selection_lag(gradient_accumulation_steps: int, steps_per_generation: int, num_iterations: int) -> int:
    """Batches between a batch being drawn and the last batch whose scores are surely in.

    transformers pulls `gradient_accumulation_steps` dataloader batches at the start of an optimizer step and
    accelerate prefetches one more; a drawn batch is used for `steps_per_generation * num_iterations` of
    them. So when batch k is asked for, batches up to k - ceil(accumulation / repeats) - 1 have been scored.

    >>> selection_lag(1, 1, 1), selection_lag(32, 32, 1), selection_lag(2, 1, 1)
    (2, 2, 3)
    """
    repeats = steps_per_generation * num_iterations
    return -(-gradient_accumulation_steps // repeats) + 1


def sampler_seed(args) -> int:
    """The seed of the prompt order: `data_seed` when set, else `seed`, as transformers documents
    `data_seed` ("reproducibility of data sampling, independent of the model seed"; TRL's sampler reads only
    `seed`)."""
    return args.data_seed if args.data_seed is not None else args.seed


class StageTrainer(GRPOTrainer):
    """TRL's `GRPOTrainer`, drawing prompts through `selector` when the stage selects them, else through TRL's
    own `RepeatSampler`, both seeded by `sampler_seed`."""

    def __init__(self, *args, selector: PromptSelector | None = None, **kwargs):
        self.selector = selector
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, dataset=None):
        batch_size = self.args.generation_batch_size // self.num_generations
        repeat_count = self.num_iterations * self.args.steps_per_generation
        if self.selector is not None:
            return SelectionSampler(self.selector, self.num_generations, batch_size, repeat_count)
        return RepeatSampler(dataset if dataset is not None else self.train_dataset, self.num_generations,
                             batch_size, repeat_count, shuffle=self.shuffle_dataset, seed=sampler_seed(self.args))  # fmt: skip
