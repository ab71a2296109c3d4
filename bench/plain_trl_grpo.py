"""The baseline of bench/stage_overhead.py: a plain TRL GRPO script, the way TRL's own `grpo.py` runs one.

Same model, rows, reward functions (with the stage's settings: `build_rewards` gives accuracy the
`max_completion_length` and the chat template's `think_open`, so neither side credits a cut-off completion's
fallback answer or an unfinished thought) and GRPO settings as the stage it is compared with; none of the stage's machinery (config checks, per-problem stats, checkpoint markers,
atomic export, stage record).
"""

from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser

from stagerl.data.sources import load_stage_data
from stagerl.train.config import StageArguments
from stagerl.train.models import resolve_model
from stagerl.train.stage_rewards import build_rewards, reasoning_block

if __name__ == "__main__":
    stage, args, model = TrlParser((StageArguments, GRPOConfig, ModelConfig)).parse_args_and_config()
    dataset = load_stage_data(stage.data, seed=args.seed, prompt_template=stage.prompt_template)
    args.model_init_kwargs = {"dtype": model.dtype or "float32"}
    path = resolve_model(model.model_name_or_path)
    rewards, _ = build_rewards(stage, args, reasoning_block(path, stage, args, model)["think_open"])
    trainer = GRPOTrainer(model=path, reward_funcs=rewards, args=args, train_dataset=dataset)
    trainer.train()
    trainer.save_model(args.output_dir)
    trainer.state.save_to_json(f"{args.output_dir}/trainer_state.json")  # what bench/gpu_stage.py reads
    trainer.end()
