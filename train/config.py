"""Stage configuration: our fields, beside TRL's `GRPOConfig` and `ModelConfig`.

One stage YAML fills all three dataclasses through `TrlParser`; any field can be overridden on the command
line (`--max_steps 2`), and unknown fields are an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

from trl import TrlParser

from stagerl.data.problems import check_learnability
from stagerl.data.prompts import R1_INSTRUCTION
from stagerl.data.sources import DataComponent

MIX_STOPPING = ("first_exhausted", "all_exhausted_without_replacement")


@dataclass
class StageArguments:
    """What a stage trains on and how it is rewarded (model and optimiser settings live in TRL's dataclasses)."""

    # --- data ---
    data: list[str] | None = field(
        default=None,
        metadata={
            "help": "Data components SOURCE[:LEVEL][@WEIGHT], e.g. a-m-team/AM-Math-Difficulty-RL:2, "
            "math-levels:1, arithmetic:1, rows.jsonl; several are mixed by weight. Default arithmetic:1, "
            "unless TRL's spelling (dataset_name or datasets) gives the data."
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "TRL's spelling of one data component: a hub dataset or local directory read whole with "
            "datasets.load_dataset (config dataset_config, split dataset_train_split)."
        },
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "TRL's: the configuration (load_dataset's name) of dataset_name."}
    )
    dataset_train_split: str = field(default="train", metadata={"help": "TRL's: the split of dataset_name."})
    datasets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "TRL's dataset mixture (DatasetMixtureConfig.datasets): mappings {path, name, split, "
            "data_dir, data_files, columns, fraction} (JSON objects on the command line); fraction is the "
            "component's sampling weight."
        },
    )
    question_column: str | None = field(
        default=None, metadata={"help": "Problem column (auto-detected if unset)."}
    )
    answer_column: str | None = field(
        default=None, metadata={"help": "Gold answer column (auto-detected if unset)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows (after mixing)."}
    )
    prompt_template: str = field(
        default=R1_INSTRUCTION,
        metadata={"help": "User message; `{problem}` is replaced by the problem text."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system message."})
    chat_template: str | None = field(
        default=None,
        metadata={"help": "A Jinja chat template that replaces the model's own (open-r1's chat_template)."},
    )
    decontaminate: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Benchmarks (names such as math500, aime24, or jsonl paths) whose problems must not be "
            "trained on: rows sharing a word 13-gram with them are removed, and the count logged."
        },
    )
    problem_stats: list[str] = field(
        default_factory=list,
        metadata={
            "help": "problems.jsonl files of earlier stages, oldest first (the runner passes them): what they say "
            "of each problem seeds prompt selection and learnability sampling, and drop_solved reads them."
        },
    )
    drop_solved: bool = field(
        default=False,
        metadata={
            "help": "Drop problems that problem_stats show as always solved (and, with drop_unsolved_min_attempts, "
            "never solved): zero GRPO advantage."
        },
    )
    drop_solved_min_attempts: int = field(
        default=4,
        metadata={"help": "Attempts, all right, after which drop_solved drops a problem as always solved."},
    )
    drop_unsolved_min_attempts: int | None = field(
        default=None,
        metadata={
            "help": "Attempts, all wrong, after which a problem is dropped as never solved; unset keeps such "
            "problems (a later, harder-trained stage is where they may start to teach)."
        },
    )
    mix_stopping: str = field(
        default="first_exhausted",
        metadata={
            "help": "How weighted components mix (datasets' interleave_datasets): first_exhausted stops when a "
            "component runs out (shares follow the weights exactly); all_exhausted_without_replacement uses every "
            "row once (shares drift from the weights once a component runs out). Neither repeats a row.",
            "choices": MIX_STOPPING,
        },
    )
    # --- rewards ---
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy"],
        metadata={
            "help": "Reward names from stagerl.rewards.registry (or dotted import paths); weights are GRPOConfig's "
            "reward_weights."
        },
    )
    reward_settings: str | None = field(
        default=None,
        metadata={
            "help": 'JSON object of per-reward keyword settings, e.g. {"boxed_format": {"think": true}}. '
            "overlong gets max_completion_length from the GRPO config unless set."
        },
    )
    think_open: bool | None = field(
        default=None,
        metadata={
            "help": "Whether the chat template opens a reasoning block in the prompt (DeepSeek-R1-Distill's ends "
            "with `<think>\\n`): then no answer counts until `</think>`. Default: read from the model's own "
            "chat template; set true/false to override."
        },
    )
    # --- which groups are generated and trained on ---
    dynamic_sampling: bool = field(
        default=False,
        metadata={
            "help": "DAPO's dynamic sampling: drop groups whose total reward (as TRL aggregates the reward functions) "
            "has zero standard deviation, and fill the batch with groups generated from further prompts. See "
            "train/trainer.py."
        },
    )
    dynamic_sampling_max_rounds: int = field(
        default=4,
        metadata={
            "help": "The most generation rounds per batch, the first included; past it the batch trains on the "
            "groups with variance it has (the rest masked), and the log says so."
        },
    )
    select_prompts: bool = field(
        default=False,
        metadata={
            "help": "GRESO (arXiv 2506.02177): skip, before generation, problems whose latest groups were all right "
            "or all wrong, with probability 1 - p**streak (p adapted per side toward target zero-variance "
            "fractions); batches stay full. Seeded by problem_stats. See train/sampling.py."
        },
    )
    learnability_sampling: bool = field(
        default=False,
        metadata={
            "help": "Draw problems with probability proportional to a learnability weight (learnability_weight) "
            "under each problem's Beta posterior over its pass rate: prior from the rows' labelled pass rates (a "
            "pass_rate or difficulty column) and earlier stages' problem_stats, updated with every graded group. "
            "See train/sampling.py."
        },
    )
    learnability_prior_strength: float = field(
        default=8.0,
        metadata={"help": "How many graded samples a row's labelled pass rate counts as in its prior."},
    )
    learnability_weight: str = field(
        default="variance",
        metadata={
            "help": "What learnability sampling weighs a problem by: `variance`, E[p (1 - p)]; or `survival`, "
            "E[1 - p^n - (1 - p)^n] with n = num_generations, the chance that its group has a right and a wrong "
            "completion (what dynamic sampling keeps). See train/sampling.py and the README's measurement."
        },
    )
    learnability_floor: float = field(
        default=0.05,
        metadata={
            "help": "Starvation guard of learnability sampling: every weight is at least this share of the mean "
            "weight, so a problem that looks unlearnable is still drawn now and then (0 turns it off)."
        },
    )
    select_target_zero_variance: float = field(
        default=0.25,
        metadata={
            "help": "GRESO's target fraction of zero-variance groups per batch: a third for all-right groups, two "
            "thirds for all-wrong ones, as the reference code splits it."
        },
    )
    select_initial_p: float = field(
        default=0.5,
        metadata={"help": "GRESO's starting exploration probability p, for both sides."},
    )
    stop_at_completion_tokens: int | None = field(
        default=None,
        metadata={
            "help": "End the stage once it has generated this many completion tokens (every round counted): arms "
            "of a study compared at equal cost. Decided at the end of a generation block, recorded as the "
            "stage's end."
        },
    )
    # --- advancing ---
    advance_reward_threshold: float | None = field(
        default=None,
        metadata={
            "help": "End the stage early once the accuracy reward's mean over the last advance_window optimizer "
            "steps reaches this."
        },
    )
    advance_plateau_delta: float | None = field(
        default=None,
        metadata={
            "help": "End the stage early when the accuracy reward's mean over the last advance_window optimizer "
            "steps gained less than this over the window before."
        },
    )
    advance_window: int = field(default=10, metadata={"help": "Optimizer steps in the moving average."})
    advance_min_steps: int = field(default=0, metadata={"help": "No early advance before this many steps."})
    # --- the stage directory ---
    replace_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start afresh in an output_dir that holds a stage (checkpoints, final/, stage.json): it is "
            "moved aside as <output_dir>.replaced-<time>, never deleted. Without it such a launch is refused "
            "unless it resumes (resume_from_checkpoint: latest)."
        },
    )
    # --- tracking and publishing in a curriculum (set by the runner) ---
    run_group: str | None = field(
        default=None,
        metadata={"help": "The curriculum or sweep this stage belongs to: the trackers' run group."},
    )
    previous_stage: str | None = field(
        default=None,
        metadata={
            "help": "Directory of the stage this one follows: the curriculum-wide step continues from the "
            "last one its stage.json records."
        },
    )
    eval_follows: bool = field(
        default=False,
        metadata={
            "help": "An evaluation of the export follows (a curriculum's eval:): the hub push waits for it "
            "(python -m stagerl.train.publish), so the model card holds its results."
        },
    )

    def __post_init__(self):
        if isinstance(self.data, str):
            self.data = [self.data]
        trl_spelling = [name for name in ("dataset_name", "datasets") if getattr(self, name)]
        if len(trl_spelling) > 1 or (trl_spelling and self.data is not None):
            given = trl_spelling + (["data"] if self.data is not None else [])
            raise ValueError(f"the data is given twice ({' and '.join(given)}): keep one of them")
        if self.data is None and not trl_spelling:
            self.data = ["arithmetic:1"]
        if self.data is not None and not self.data:
            raise ValueError("data is empty: give at least one SOURCE[:LEVEL][@WEIGHT]")
        for component in self.components():
            component.check()
        for path in self.problem_stats:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"problem_stats: file {path} does not exist")
        if self.drop_solved and not self.problem_stats:
            raise ValueError("drop_solved: true needs problem_stats (earlier stages' problems.jsonl)")
        if self.select_prompts and self.learnability_sampling:
            raise ValueError(
                "select_prompts and learnability_sampling are two ways to choose prompts: set one"
            )
        if self.stop_at_completion_tokens is not None and self.stop_at_completion_tokens < 1:
            raise ValueError(f"stop_at_completion_tokens={self.stop_at_completion_tokens} must be >= 1")
        check_learnability(self.learnability_weight, self.learnability_floor)
        if self.dynamic_sampling_max_rounds < 1:
            raise ValueError(f"dynamic_sampling_max_rounds={self.dynamic_sampling_max_rounds} must be >= 1")
        if not self.reward_funcs:
            raise ValueError("reward_funcs is empty: name at least one reward")
        if not 0 < self.select_target_zero_variance < 1 or not 0 < self.select_initial_p < 1:
            raise ValueError(
                f"select_target_zero_variance={self.select_target_zero_variance} and "
                f"select_initial_p={self.select_initial_p} must be in (0, 1)"
            )
        if self.mix_stopping not in MIX_STOPPING:
            raise ValueError(f"mix_stopping={self.mix_stopping!r}: valid values are {list(MIX_STOPPING)}")
        if self.drop_unsolved_min_attempts is not None and self.drop_unsolved_min_attempts < 1:
            raise ValueError(f"drop_unsolved_min_attempts={self.drop_unsolved_min_attempts} must be >= 1")
        if self.advance_window < 1:
            raise ValueError(f"advance_window={self.advance_window} must be >= 1")
        self.reward_settings_dict()  # validate early

    def components(self) -> list[DataComponent]:
        """The stage's data components, from `data` or from TRL's spelling of it."""
        if self.dataset_name:
            entry = {
                "path": self.dataset_name,
                "name": self.dataset_config,
                "split": self.dataset_train_split,
            }
            return [DataComponent.from_trl(entry, "dataset_name")]
        if self.datasets:
            places = [f"datasets[{i}]" for i in range(len(self.datasets))]
            return [
                DataComponent.from_trl(_mapping(e, w), w) for e, w in zip(self.datasets, places, strict=True)
            ]
        return [DataComponent.parse(spec) for spec in self.data]

    def reward_settings_dict(self) -> dict[str, dict]:
        """`reward_settings` parsed (YAML may give a mapping directly, the command line gives JSON)."""
        if not self.reward_settings:
            return {}
        settings = self.reward_settings
        if isinstance(settings, str):
            try:
                settings = json.loads(settings)
            except json.JSONDecodeError as e:
                raise ValueError(f"reward_settings={self.reward_settings!r} is not valid JSON: {e}") from None
        if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
            raise ValueError(
                f"reward_settings={self.reward_settings!r} must map reward names to settings objects"
            )
        unknown = set(settings) - set(self.reward_funcs)
        if unknown:
            raise ValueError(
                f"reward_settings names {sorted(unknown)}, which are not in reward_funcs={self.reward_funcs}"
            )
        return settings


def _mapping(entry, where: str) -> dict:
    """A `datasets:` entry: a mapping from YAML, or a JSON object from the command line."""
    if isinstance(entry, str):
        try:
            entry = json.loads(entry)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: {entry!r} is not a JSON object: {e}") from None
    return entry


# Fields that TRL 1.16 or transformers 5.24 removed and open-r1's recipes still carry: what to write instead.
REMOVED_FIELDS = {
    "torch_dtype": "renamed `dtype` (ModelConfig, transformers 5): write `dtype:` with the same value",
    "max_prompt_length": "removed from GRPOConfig in TRL 1.x (prompts are no longer truncated): delete it; "
    "cap vLLM's context with `vllm_max_model_length`, or keep long problems out of the data",
    "overwrite_output_dir": "removed in transformers 5: delete it; a stage never deletes its output_dir: "
    "`resume_from_checkpoint: latest` resumes it, `replace_output_dir: true` moves it aside to start afresh",
    "warmup_ratio": "merged into `warmup_steps` in transformers 5: write `warmup_steps:` with the same "
    "value (a number below 1 is a ratio of the training steps)",
    "vllm_device": "removed in TRL (vLLM shares the training GPUs or runs as a server): write "
    "`vllm_mode: colocate`, or `vllm_mode: server` with `trl vllm-serve` and `vllm_server_host`",
    "dataset_configs": "open-r1's list was replaced by TRL's `dataset_config` (one name): write "
    "`dataset_config:` with that name",
}


def removed_field_errors(argv: list[str]) -> list[str]:
    """One line per removed field (`REMOVED_FIELDS`) set in the `--config` YAML or on the command line.

    Args:
        argv: the stage's command line.

    Returns:
        `FILE: FIELD is ...` / `--FIELD is ...` lines, each naming what to write instead (empty: none).
    """
    import yaml

    errors = []
    if "--config" in argv[:-1]:  # TrlParser's one spelling (it does not read --config=PATH)
        path = argv[argv.index("--config") + 1]
        with open(path) as f:
            config = yaml.safe_load(f)
        keys = config if isinstance(config, dict) else {}
        errors += [f"{path}: {key} is {why}" for key, why in REMOVED_FIELDS.items() if key in keys]
    flags = {arg[2:].split("=", 1)[0] for arg in argv if arg.startswith("--")}
    errors += [f"--{key} is {why}" for key, why in REMOVED_FIELDS.items() if key in flags]
    return errors


class StageParser(TrlParser):
    """TRL's parser for the stage's dataclasses; fields that TRL or transformers removed fail first, one line
    each naming the replacement (TRL's own error would name neither the field's fate nor what to write)."""

    def parse_args_and_config(self, args=None, *rest, **kwargs):
        argv = list(args) if args is not None else sys.argv[1:]
        errors = removed_field_errors(argv)
        if errors:
            raise ValueError("\n".join(errors))
        return super().parse_args_and_config(argv, *rest, **kwargs)


def stage_field_names() -> list[str]:
    """Every field a stage YAML may set: ours, TRL's `GRPOConfig` and `ModelConfig`."""
    from trl import GRPOConfig, ModelConfig

    return sorted(
        {f.name for dc in (StageArguments, GRPOConfig, ModelConfig) for f in dataclasses.fields(dc)}
    )


# `python -m stagerl.train.config --fields`: what the runner checks curricula against.
if __name__ == "__main__":
    if sys.argv[1:] != ["--fields"]:
        sys.exit("usage: python -m stagerl.train.config --fields")
    print(json.dumps(stage_field_names()))
