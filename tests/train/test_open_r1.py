"""Where TRL and open-r1 users come from: TRL's dataset arguments, and open-r1's R1-Distill GRPO recipe."""

import pytest
import yaml

from stagerl.data.sources import fingerprint, load_stage_data
from stagerl.train import grpo
from stagerl.train.config import REMOVED_FIELDS, StageArguments
from tests.helpers.open_r1 import RECIPE, open_r1_rows


def test_removed_fields_fail_one_line_each_naming_the_replacement(monkeypatch):
    """open-r1's R1-Distill recipe as it stands: one line per field TRL or transformers removed."""
    monkeypatch.setattr("stagerl.train.models.resolve_model", lambda *a: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError) as err:
        grpo.main(["--config", str(RECIPE)])
    lines = str(err.value).splitlines()
    replacements = {
        "torch_dtype": "dtype",
        "max_prompt_length": "vllm_max_model_length",
        "overwrite_output_dir": "resume_from_checkpoint",
        "warmup_ratio": "warmup_steps",
        "vllm_device": "vllm_mode",
        "dataset_configs": "dataset_config",
    }
    assert len(lines) == len(replacements)
    for line, (removed, replacement) in zip(lines, replacements.items(), strict=True):
        assert line.startswith(f"{RECIPE}: {removed} is ") and f"`{replacement}" in line
    # transformers' switch to start afresh is gone: ours moves the old stage aside instead
    assert (
        "`replace_output_dir: true` moves it aside" in lines[list(replacements).index("overwrite_output_dir")]
    )
    with pytest.raises(ValueError, match=r"^--torch_dtype is renamed `dtype`"):
        grpo.main(["--torch_dtype", "bfloat16"])


def test_trl_dataset_arguments_are_another_spelling_of_data(tmp_path):
    source = str(open_r1_rows(tmp_path / "openr1"))
    trl = StageArguments(dataset_name=source, dataset_config="default", dataset_train_split="train")
    rows = load_stage_data(trl.components())
    assert [c.spec() for c in trl.components()] == [f"{source}[name=default]@1"]
    assert rows["answer"] == ["0", "2", "4", "6"]
    assert rows[1]["prompt"][-1]["content"].startswith("What is 1 + 1?")
    # TRL's mixture: `fraction` is the sampling weight; the components mix as `data: [A@w, B@w]` do.
    mixture = StageArguments(
        datasets=[{"path": source, "fraction": 0.5}, {"path": "arithmetic", "level": 1, "fraction": 0.5}]
    )
    ours = StageArguments(data=[f"{source}@0.5", "arithmetic:1@0.5"])
    assert fingerprint(load_stage_data(mixture.components())) == fingerprint(
        load_stage_data(ours.components())
    )
    # A split that does not exist fails naming it.
    with pytest.raises(ValueError, match="validation"):
        load_stage_data(StageArguments(dataset_name=source, dataset_train_split="validation").components())


# What the recipe may change to run here: its model, its dataset, the GPU switches, and the removed fields.
MODEL_AND_DATA = {"model_name_or_path", "model_revision", "dataset_name"}
GPU_SWITCHES = {"bf16", "use_vllm", "attn_implementation", "push_to_hub", "report_to"}
REPLACEMENTS = {"dtype", "warmup_steps", "dataset_config"}  # what the removed fields' messages say to write
ALLOWED = MODEL_AND_DATA | GPU_SWITCHES | set(REMOVED_FIELDS) | REPLACEMENTS


@pytest.mark.slow
def test_open_r1_recipe_runs_one_step_as_a_stage(tmp_path, monkeypatch):
    recipe = yaml.safe_load(RECIPE.read_text())
    changed = dict(recipe)
    for removed in ("max_prompt_length", "overwrite_output_dir", "vllm_device"):
        del changed[removed]
    changed["dtype"] = changed.pop("torch_dtype")
    changed["warmup_steps"] = changed.pop("warmup_ratio")
    changed["dataset_config"] = changed.pop("dataset_configs")[0]
    changed.update(
        model_name_or_path="stagerl:tiny-random-r1", dataset_name=str(open_r1_rows(tmp_path / "openr1"))
    )
    changed.update(
        bf16=False, use_vllm=False, attn_implementation="sdpa", push_to_hub=False, report_to=["tensorboard"]
    )
    assert {k for k in recipe.keys() | changed.keys() if recipe.get(k) != changed.get(k)} <= ALLOWED
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(changed))
    monkeypatch.chdir(tmp_path)  # the recipe's output_dir is relative
    record = grpo.main(["--config", str(tmp_path / "recipe.yaml")])
    assert record["steps"] == 1 and record["data"]["rows"] == 4
    assert record["config"]["stage"]["reward_funcs"] == ["accuracy", "format"]
    assert (tmp_path / recipe["output_dir"] / "final" / "model.safetensors").is_file()
