"""Which prompts a generation batch holds: passes over the rows in a seeded order, GRESO's selection before
generation, learnability sampling, and the refills of dynamic sampling.

`PromptSampler` walks the rows pass after pass (a new seeded order each pass, `shuffle_dataset`) and hands out
batches of distinct problems. With `select_prompts` it applies GRESO (arXiv 2506.02177, reference code
Infini-AI-Lab/GRESO): a problem whose latest groups in a row were all right (or all wrong), with zero variance
in the total reward, is skipped with probability `1 - max(p ** streak, 0.01)`, where `p` is kept per side and
adapted after every batch, down by 0.01 when that side's share of zero-variance groups reached its target (a
third of `select_target_zero_variance` for all-right groups, two thirds for all-wrong ones, as the reference
splits it), else up by 0.01, within [0.05, 0.95]. As in the reference, `p` adapts only once problems have
history: from the start when earlier stages' statistics seed it, else from the second pass. A skipped problem
waits for the next pass; batches stay full. Dynamic sampling asks the same sampler for more prompts
(`refill`), which continue the same passes and are decided from every block scored before.

With `learnability_sampling` there are no passes: each batch draws problems without replacement with
probability proportional to a learnability weight (`Learnability`: E[p (1 - p)], or the probability that a group
survives dynamic sampling), from Beta posteriors seeded by the rows' labelled pass rates and the earlier stages'
attempts and updated with every group this stage grades (folded with the same lag as below), every weight
floored at a share of the mean weight so that no problem starves.

How it hooks into TRL (public surface only): `TrlSampler` takes the place of TRL's `RepeatSampler` (same repeat
structure) through the trainer's `_get_train_sampler`; the trainer feeds every generation block's groups to
`observe`, on every rank from the gathered rewards, so every rank draws the same prompts; the state is saved
with every checkpoint (`stagerl.train.checkpoints.StageCheckpoint`). An epoch keeps TRL's number of batches
(rows // prompts per batch); the passes over the rows run across epochs, and refills make them run ahead
(`max_steps` counts optimizer steps as always).

Exact resume: the dataloader asks for batch k before batch k - 1 is scored (it prefetches), so batch k is
decided from the groups of batches up to k - `lag` only, whenever it is asked for. Every random number comes
from a numpy stream keyed by (seed, what it is for, pass or draw): a pass's order and its candidates' coins
are computed once per pass, a learnability draw's coins (one per problem) once per draw, so nothing random is
carried in the state. The batches drawn in the current epoch are saved with the epoch they belong to and
replayed when transformers skips the consumed batches of a resumed epoch. A checkpoint holds this stage's
per-problem records only (the earlier stages' come from `problem_stats` again, which the resume check compares).

Scale: a draw costs the candidates it visits (passes, GRESO) or a few numpy passes over the problems
(learnability), never a Python loop over the pool; `bench/sampler_scale.py` measures one draw over 1,000,000
problems. (Before December 2026 the orders and coins were Python `random` and sha256 hashes, reshuffled or
rehashed on every draw; the draws changed once then.)

Both samplers know the trainer's epoch (`set_epoch`, which transformers calls at every epoch and
`StageTrainer` once more with the epoch a resumed stage restarts in): `TrlSampler` starts a new epoch's
batches only when the epoch changes, and `EpochRepeatSampler`, TRL's own sampler, draws each epoch's order
from its generator as an uninterrupted run does, so a stage resumed in any epoch walks that epoch's order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.data import Sampler
from trl.trainer.utils import RepeatSampler

from stagerl.data.problems import (
    PRIOR_STRENGTH,
    Group,
    ProblemRecord,
    ProblemTable,
    check_learnability,
    expected_learnability,
    posterior,
    survival_probability,
)
from stagerl.data.sources import row_ids
from stagerl.train.checkpoints import read_checkpoint_file

SAMPLER_FILE = "sampler.json"
# GRESO's constants, as in its reference code.
P_MIN, P_MAX, P_STEP, MIN_KEEP = 0.05, 0.95, 0.01, 0.01
SIDES = ("right", "wrong")


# What a random stream is for (`stream`): a pass's order, its candidates' coins, a learnability draw's coins.
PASS_ORDER, PASS_COINS, DRAW_COINS = 0, 1, 2


def stream(seed: int, purpose: int, index: int) -> np.random.Generator:
    """A random stream that depends only on its arguments (`index`: the pass or the draw).

    >>> stream(0, PASS_ORDER, 1).random() == stream(0, PASS_ORDER, 1).random() != stream(0, PASS_ORDER, 2).random()
    True
    """
    return np.random.default_rng([seed % 2**64, purpose, index])


class Greso:
    """GRESO's keep probability and its per-side exploration probability `p` (see the module docstring).

    Args:
        target_zero_variance: the target share of zero-variance groups in a batch, split a third (all right)
            to two thirds (all wrong).
        initial_p: both sides' starting `p`.
    """

    def __init__(self, target_zero_variance: float, initial_p: float):
        self.target = {"right": target_zero_variance / 3, "wrong": target_zero_variance * 2 / 3}
        self.p = {side: initial_p for side in SIDES}

    def keep_probability(self, record: ProblemRecord) -> float:
        for side, streak in (("right", record.right_streak), ("wrong", record.wrong_streak)):
            if streak:
                return max(self.p[side] ** streak, MIN_KEEP)
        return 1.0

    def adapt(self, groups: list[Group]) -> None:
        """One batch's groups move each side's `p` one step toward its target share."""
        for side in SIDES:
            share = sum(g.side == side for g in groups) / max(1, len(groups))
            step = -P_STEP if share >= self.target[side] else P_STEP
            self.p[side] = round(min(P_MAX, max(P_MIN, self.p[side] + step)), 6)


class Learnability:
    """Sampling weights from each problem's Beta posterior over its pass rate p
    (`stagerl.data.problems.posterior`: its labelled pass rate as a prior, then every attempt graded in earlier
    stages and in this one). `variance`: E[p (1 - p)], a sample's expected variance, largest at p = 0.5.
    `survival`: E[1 - p^n - (1 - p)^n], the chance that a group of n = `group_size` completions holds a right and a
    wrong one, which is what dynamic sampling keeps; flatter in the middle, and n times E[p] for a problem
    rarely solved, where E[p (1 - p)] is about E[p].

    Starvation guard: a problem drawn a few times and never solved looks unlearnable, is drawn less, and so its
    evidence never changes. Every weight is floored at `floor` times the pool's mean weight, so each of the k
    prompts of a draw from P problems goes to a given problem with probability at least f / ((1 + f) P): it is
    in one of the next ln(100) (1 + f) P / (f k) draws with probability at least 99% (`redraw_bound`).

    Args:
        pass_rates: each problem's labelled pass rate, by id (None where the data has none).
        strength: how many samples a labelled pass rate counts as.
        weight: `variance` or `survival`.
        group_size: n, the completions per prompt (`num_generations`); read by `survival` only.
        floor: the starvation guard's share of the mean weight, in [0, 1).
    """

    def __init__(
        self,
        pass_rates: dict[str, float | None],
        strength: float = PRIOR_STRENGTH,
        weight: str = "variance",
        group_size: int = 8,
        floor: float = 0.05,
    ):
        check_learnability(weight, floor)
        self.pass_rates, self.strength = pass_rates, strength
        self.kind, self.group_size, self.floor = weight, group_size, floor

    def prior_rates(self, problems: list[str]) -> np.ndarray:
        """The labelled pass rate of each problem, NaN where there is none."""
        return np.array([np.nan if (r := self.pass_rates.get(pid)) is None else r for pid in problems], float)

    def weights(self, successes: np.ndarray, attempts: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """Each problem's weight before the floor (arrays in one problem order)."""
        a, b = posterior(successes, attempts, rates, self.strength)
        if self.kind == "survival":
            return survival_probability(a, b, self.group_size)
        return expected_learnability(a, b)

    def floored(self, weights: np.ndarray) -> np.ndarray:
        return np.maximum(weights, self.floor * weights.mean())

    def redraw_bound(self, problems: int, size: int) -> int:
        """Draws of `size` within which a given problem is drawn with probability at least 99% (the floor's
        bound above; none without a floor)."""
        if self.floor == 0:
            raise ValueError(
                "without a floor (learnability_floor 0) no number of draws is sure to reach a problem"
            )
        return int(np.ceil(np.log(100) * (1 + self.floor) * problems / (self.floor * size)))


class PromptSampler:
    """The problems of each generation batch, and refills (see the module docstring).

    Args:
        ids: the problem id of every dataset row, in row order.
        seed: seeds each pass's order and the coins.
        lag: batches between one being scored and its groups informing a draw (see `selection_lag`).
        shuffle: a new order each pass (`GRPOConfig.shuffle_dataset`), else the rows' order.
        greso: GRESO's selection, or None to keep every problem.
        history: per-problem statistics of earlier stages (their streaks seed GRESO, their attempts the
            learnability posteriors).
        learnability: draw by learnability instead of walking passes (`Learnability`).
    """

    def __init__(
        self,
        ids: list[str],
        seed: int,
        lag: int,
        shuffle: bool = True,
        greso: Greso | None = None,
        history: ProblemTable | None = None,
        learnability: Learnability | None = None,
    ):
        if greso is not None and learnability is not None:
            raise ValueError(
                "select_prompts and learnability_sampling are two ways to choose prompts: pick one"
            )
        self.ids, self.seed, self.lag, self.shuffle, self.greso = ids, seed, lag, shuffle, greso
        self.learnability = learnability
        self.history = history or ProblemTable()  # earlier stages' records (read-only)
        self.stage_table = ProblemTable()  # this stage's folded groups: `record` combines the two
        self.adapting = bool(self.history.records)  # GRESO adapts p once problems have history
        self.unfolded: list[list[Group]] = []  # scored batches not folded in yet
        self.folded = 0  # batches folded into `stage_table`
        self.data_pass, self.cursor = 0, 0  # the pass over the rows, and the next candidate in its order
        self._pass_cache: tuple[int, np.ndarray, np.ndarray | None] | None = None  # (pass, order, coins)
        self.epoch = 0  # the trainer's epoch (`TrlSampler.set_epoch`)
        self.drawn: list[list[int]] = []  # row indices of each batch drawn in that epoch
        self.batches = 0  # batches drawn in this stage
        self.skipped_at: list[int] = []  # candidates GRESO skipped while drawing each batch of this stage
        self.refills_skipped = 0  # and while refilling
        self.draws = 0  # weighted draws made (learnability): each its own coins
        self.drawn_learnability: list[float] = []  # mean weight (before the floor) of each draw's problems
        first_rows: dict[str, int] = {}
        for row, pid in enumerate(ids):
            first_rows.setdefault(pid, row)
        self.problems = len(first_rows)
        if learnability is not None:  # what learnability sampling draws from: one entry per problem
            self.problem_ids = list(first_rows)
            self.problem_index = {pid: i for i, pid in enumerate(self.problem_ids)}
            self.first_rows = np.fromiter(first_rows.values(), dtype=np.int64, count=self.problems)
            self.rates = learnability.prior_rates(self.problem_ids)
            self.successes = np.zeros(self.problems)
            self.attempts = np.zeros(self.problems)
            self._update_evidence(self.history.records)

    # -- drawing ---------------------------------------------------------------------------------------------
    def record(self, problem_id: str) -> ProblemRecord:
        """What draws know of a problem: its earlier stages' record followed by this stage's folded groups."""
        earlier, mine = self.history.get(problem_id), self.stage_table.records.get(problem_id)
        return earlier if mine is None else earlier.then(mine)

    def _pass(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The current pass's order of the rows, and its candidates' coins (GRESO only), computed once a pass."""
        if self._pass_cache is None or self._pass_cache[0] != self.data_pass:
            rows = len(self.ids)
            order = stream(self.seed, PASS_ORDER, self.data_pass).permutation(rows) if self.shuffle else None
            coins = stream(self.seed, PASS_COINS, self.data_pass).random(rows) if self.greso else None
            self._pass_cache = (self.data_pass, np.arange(rows) if order is None else order, coins)
        return self._pass_cache[1:]

    def _update_evidence(self, problem_ids) -> None:
        """Learnability's arrays follow `record` for these problems."""
        for pid in problem_ids:
            i = self.problem_index.get(pid)
            if i is not None:
                rec = self.record(pid)
                self.successes[i], self.attempts[i] = rec.successes, rec.attempts

    def fold_until(self, batch: int) -> None:
        """Bring the records up to date with the groups of every batch up to `batch` - lag, and no further."""
        upto = batch - self.lag + 1
        if upto > self.folded + len(self.unfolded):
            raise RuntimeError(
                f"prompt sampling needs the groups of batch {upto - 1} to draw batch {batch}, which are not in "
                "yet: the dataloader runs further ahead than `lag` allows (dataloader_num_workers must be 0)"
            )
        while self.folded < upto:
            groups = self.unfolded.pop(0)
            self.stage_table.observe(groups)
            if self.learnability is not None:
                self._update_evidence({g.id for g in groups})
            self.adapting = self.adapting or self.data_pass > 0
            if self.greso is not None and self.adapting:
                self.greso.adapt(groups)
            self.folded += 1

    def learnability_weights(self) -> np.ndarray:
        """Every problem's weight (before the floor), in `problem_ids` order."""
        return self.learnability.weights(self.successes, self.attempts, self.rates)

    def _take_weighted(self, size: int, taken: set[str]) -> list[int]:
        """`size` problems not in `taken`, drawn without replacement with probability proportional to their
        floored weight (Efraimidis and Spirakis: the largest u ** (1 / w), u a coin per problem and draw)."""
        if self.problems - len(taken) < size:
            raise ValueError(
                f"asked for {size} more prompts, but only {self.problems - len(taken)} problems are left"
            )
        weights = self.learnability_weights()
        coins = stream(self.seed, DRAW_COINS, self.draws).random(self.problems)
        keys = np.log(np.maximum(coins, 1e-300)) / np.maximum(self.learnability.floored(weights), 1e-12)
        keys[[self.problem_index[pid] for pid in taken]] = -np.inf
        best = np.argpartition(-keys, size - 1)[:size]
        best = best[np.argsort(-keys[best], kind="stable")]
        self.draws += 1
        self.drawn_learnability.append(float(weights[best].mean()))
        return self.first_rows[best].tolist()

    def _take(self, size: int, taken: set[str]) -> tuple[list[int], int]:
        """The next `size` rows of the passes whose problems are not in `taken` and survive selection; with the
        number of candidates selection skipped. A pass that runs out goes on into the next, in a new order,
        where skipped problems get their next chance; a problem already in the batch is passed over."""
        if self.learnability is not None:
            return self._take_weighted(size, taken), 0
        order, coins = self._pass()
        chosen, skipped = [], 0
        while len(chosen) < size:
            if self.cursor == len(order):
                self.data_pass, self.cursor = self.data_pass + 1, 0
                order, coins = self._pass()
                if len(taken) >= self.problems:
                    raise ValueError(
                        f"asked for {size} more prompts, but every one of the {len(taken)} is taken"
                    )
            row, position = int(order[self.cursor]), self.cursor
            self.cursor += 1
            pid = self.ids[row]
            if pid in taken:
                continue
            if coins is None or coins[position] < self.greso.keep_probability(self.record(pid)):
                chosen.append(row)
                taken.add(pid)
            else:
                skipped += 1
        return chosen, skipped

    def draw(self, size: int) -> list[int]:
        """The next generation batch: `size` rows of distinct problems."""
        self.fold_until(self.batches)
        chosen, skipped = self._take(size, set())
        self.drawn.append(chosen)
        self.skipped_at.append(skipped)
        self.batches += 1
        return chosen

    def refill(self, size: int, taken: set[str]) -> tuple[list[int], int]:
        """`size` more rows for the batch being generated, none of whose problems are in `taken` (the batch's);
        with the candidates skipped for them. Decided from every block scored before this one: when a refill is
        asked for, the blocks before the one being generated are all in, whoever prefetched what."""
        self.fold_until(self.blocks_observed + self.lag - 1)
        chosen, skipped = self._take(size, set(taken))
        self.refills_skipped += skipped
        return chosen, skipped

    # -- scores ----------------------------------------------------------------------------------------------
    @property
    def blocks_observed(self) -> int:
        """Generation blocks observed so far: the index of the block being generated."""
        return self.folded + len(self.unfolded)

    def observe(self, groups: list[Group]) -> None:
        """Record one generation block's groups (every rank, the same gathered groups, in batch order)."""
        self.unfolded.append(groups)

    def summary(self) -> dict:
        """What `stage.json` records of the sampler."""
        return {
            "select_prompts": self.greso is not None,
            "learnability_sampling": self.learnability is not None,
            "greso_p": self.greso.p if self.greso else None,
            "passes_started": self.data_pass + 1,
            "batches": self.batches,
            "skipped": {"drawing": sum(self.skipped_at), "refilling": self.refills_skipped},
        }

    # -- checkpoints -----------------------------------------------------------------------------------------
    STATE = (
        "adapting",
        "folded",
        "data_pass",
        "cursor",
        "epoch",
        "drawn",
        "batches",
        "skipped_at",
        "refills_skipped",
        "draws",
        "drawn_learnability",
    )

    def checkpoint_files(self) -> dict[str, str]:
        drawn = gather_object([self.drawn])  # every rank must have drawn the same batches
        if any(d != drawn[0] for d in drawn):
            raise RuntimeError("prompt sampling: ranks drew different batches; their histories diverged")
        state = {k: getattr(self, k) for k in self.STATE}
        state["stage_problems"] = self.stage_table.text()  # the earlier stages' come from problem_stats again
        state["unfolded"] = [[asdict(g) for g in groups] for groups in self.unfolded]  # tuples become lists
        state["greso_p"] = self.greso.p if self.greso else None
        return {SAMPLER_FILE: json.dumps(state)}

    def load_checkpoint(self, checkpoint: str | Path) -> None:
        state = json.loads(read_checkpoint_file(checkpoint, SAMPLER_FILE))
        missing = [key for key in (*self.STATE, "stage_problems") if key not in state]
        if missing:
            raise ValueError(
                f"{checkpoint}/{SAMPLER_FILE} lacks {missing}: it was saved by an earlier stagerl and cannot be "
                "resumed exactly"
            )
        for key in self.STATE:
            setattr(self, key, state[key])
        self.stage_table = ProblemTable.parse(state["stage_problems"], f"{checkpoint}/{SAMPLER_FILE}")
        if self.learnability is not None:
            self._update_evidence(self.stage_table.records)
        self.unfolded = [[Group.from_dict(g) for g in groups] for groups in state["unfolded"]]
        if self.greso is not None:
            self.greso.p = state["greso_p"]


class TrlSampler(Sampler):
    """TRL's `RepeatSampler` structure (each index `mini_repeat_count` times in a row, each batch of
    `batch_size` prompts `repeat_count` times) over the batches a `PromptSampler` draws.

    An epoch has as many batches as TRL's (rows // batch_size), so transformers' step accounting holds. An
    epoch replays the batches already drawn in it first: transformers skips the consumed ones when it resumes
    mid-epoch, and they must be the same. Which epoch that is, the trainer says (`set_epoch`): the dataloader
    prefetches, so a checkpoint just before an epoch's end may hold every batch of the epoch already drawn.
    """

    def __init__(self, sampler: PromptSampler, mini_repeat_count: int, batch_size: int, repeat_count: int):
        self.sampler, self.mini_repeat_count = sampler, mini_repeat_count
        self.batch_size, self.repeat_count = batch_size, repeat_count

    def set_epoch(self, epoch: int) -> None:
        """The trainer's epoch: another one than the drawn batches belong to starts with none drawn."""
        if epoch != self.sampler.epoch:
            self.sampler.epoch, self.sampler.drawn = epoch, []

    def __iter__(self):
        batches = len(self.sampler.ids) // self.batch_size
        replay = list(self.sampler.drawn)
        for k in range(batches):
            batch = replay[k] if k < len(replay) else self.sampler.draw(self.batch_size)
            for _ in range(self.repeat_count):
                for index in batch:
                    yield from [index] * self.mini_repeat_count
        self.set_epoch(self.sampler.epoch + 1)  # a whole epoch walked: the next one, unless told otherwise

    def __len__(self) -> int:  # as TRL's RepeatSampler
        batches = len(self.sampler.ids) // self.batch_size
        return batches * self.batch_size * self.mini_repeat_count * self.repeat_count


class EpochRepeatSampler(RepeatSampler):
    """TRL's `RepeatSampler`, which can be put in any epoch.

    TRL's seeds one generator at construction and draws a new order from it at every `__iter__`; transformers
    restores nothing of it, so a stage resumed in epoch e would walk epoch 0's order. `set_epoch(e)` (called
    by transformers at every epoch, and by `StageTrainer` with the epoch a resumed stage restarts in) seeds
    the generator again and draws the e orders before, so the orders are TRL's own, epoch by epoch.
    """

    def set_epoch(self, epoch: int) -> None:
        if not self.shuffle:
            return
        self.generator.manual_seed(self.seed)
        for _ in range(epoch):
            torch.randperm(self.num_samples, generator=self.generator)


def selection_lag(gradient_accumulation_steps: int, steps_per_generation: int, num_iterations: int) -> int:
    """Batches between a batch being drawn and the last batch whose groups are surely in.

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


def sampler_settings(stage_args, training_args) -> dict:
    """What decides which prompts each batch holds, besides the rows and the batch sizes: the sampler's kind,
    seed and order, and the settings of dynamic sampling, selection or learnability where they are on."""
    if stage_args.learnability_sampling:
        kind = "learnability"
    elif stage_args.select_prompts:
        kind = "greso"
    else:
        kind = "passes" if stage_args.dynamic_sampling else "trl"
    settings = {
        "sampler": kind,
        "sampler_seed": sampler_seed(training_args),
        "shuffle_dataset": training_args.shuffle_dataset,
        "dynamic_sampling": stage_args.dynamic_sampling,
    }
    if stage_args.dynamic_sampling:
        settings["dynamic_sampling_max_rounds"] = stage_args.dynamic_sampling_max_rounds
    if stage_args.select_prompts:
        settings["select_target_zero_variance"] = stage_args.select_target_zero_variance
        settings["select_initial_p"] = stage_args.select_initial_p
    if stage_args.learnability_sampling:
        settings["learnability_prior_strength"] = stage_args.learnability_prior_strength
        settings["learnability_weight"] = stage_args.learnability_weight
        settings["learnability_floor"] = stage_args.learnability_floor
    if stage_args.select_prompts or stage_args.learnability_sampling:
        # A checkpoint holds this stage's records only: the earlier stages' must be the same files again.
        settings["problem_stats_sha256"] = [
            hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in stage_args.problem_stats
        ]
    return settings


def prompt_sampler(training_args, dataset, greso=None, history=None, learnability=None) -> PromptSampler:
    """A `PromptSampler` over `dataset`'s rows (named by `row_ids`), for the batches `training_args` make."""
    lag = selection_lag(
        training_args.gradient_accumulation_steps,
        training_args.steps_per_generation,
        training_args.num_iterations,
    )
    return PromptSampler(
        row_ids(dataset),
        sampler_seed(training_args),
        lag,
        training_args.shuffle_dataset,
        greso,
        history,
        learnability,
    )


def build_sampler(stage_args, training_args, dataset) -> PromptSampler | None:
    """The stage's `PromptSampler` when it selects prompts, samples by learnability or samples dynamically,
    else None (TRL's own sampler)."""
    if not (stage_args.select_prompts or stage_args.dynamic_sampling or stage_args.learnability_sampling):
        return None
    greso = learnability = None
    if stage_args.select_prompts:
        greso = Greso(stage_args.select_target_zero_variance, stage_args.select_initial_p)
    if stage_args.learnability_sampling:
        rates = dataset["pass_rate"] if "pass_rate" in dataset.column_names else [None] * len(dataset)
        learnability = Learnability(
            dict(zip(row_ids(dataset), rates, strict=True)),
            stage_args.learnability_prior_strength,
            stage_args.learnability_weight,
            training_args.num_generations,
            stage_args.learnability_floor,
        )
    history = ProblemTable.read(stage_args.problem_stats) if greso or learnability else None
    return prompt_sampler(training_args, dataset, greso, history, learnability)
