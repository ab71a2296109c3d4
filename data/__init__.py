"""The data layer: what stages train on and are measured against, below the trainer and the runner.

- `sources`: level sources (`SOURCE[:LEVEL][@WEIGHT]`) -> rows `{prompt, answer, id, level}`, mixing;
- `prompts`: the one chat prompt of a problem (training, evaluation and labelling ask alike);
- `arithmetic`: generated levels, with held-out evaluation sets disjoint from training;
- `benchmarks`: the shipped evaluation sets; `decontaminate`: n-gram overlap with them;
- `levels`: the paper's difficulty rules from reference-model pass rates;
- `files`: crash-safe writes (temp name, then rename).

Imports nothing from `stagerl.train` or the runner (`stagerl.curricula`); only `stagerl.rewards` and libraries.
"""
