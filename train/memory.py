"""Whether a CPU launch's processes fit in this machine's memory, decided before any model loads.

A training process on CPU holds the policy's weights, their gradients and AdamW's two moments (fp32), a
reference model when `beta > 0`, and the runtime (torch, the libraries, the data, generation): about 3 GB
for the 135M embedded model. Eight of them do not fit in a 24 GB machine, and the kernel kills one minutes
into the stage; a launch that cannot fit is refused at the start instead, saying how many processes would.
On GPUs the weights and optimizer state live in GPU memory, so nothing is checked there.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# torch, transformers, TRL, the rows and generation's cache, per process (measured ~1 GB)
RUNTIME_BYTES = 1 << 30
ADAM_BYTES = 8  # AdamW's two fp32 moments per parameter


def parameter_count(model_path: str, trust_remote_code: bool = False) -> int:
    """The model's parameters, without loading any weight: from the shapes in its safetensors files' headers
    when it is a local directory (shared tensors are stored once), else from an empty (meta-device) copy built
    from its config."""
    files = sorted(Path(model_path).glob("*.safetensors")) if Path(model_path).is_dir() else []
    if files:
        from safetensors import safe_open

        total = 0
        for file in files:
            with safe_open(str(file), framework="pt") as f:
                total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
        return total
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    model.tie_weights()  # tied embeddings are one parameter, as in the loaded model
    return sum(p.numel() for p in model.parameters())


def process_bytes(parameters: int, weight_bytes: int, reference_model: bool, adapters: bool = False) -> int:
    """Estimated memory of one training process on CPU.

    Args:
        parameters: the policy's parameter count.
        weight_bytes: bytes per weight (4 for float32, 2 for bfloat16).
        reference_model: whether a frozen reference copy is held (`beta > 0`).
        adapters: LoRA (`use_peft`): only the adapters train, so gradients and AdamW state are the adapters'
            (counted as nothing), and the reference is the base with the adapters off (no copy).

    Returns:
        Weights + gradients + AdamW moments (+ reference weights) + the runtime, in bytes.

    >>> round(process_bytes(135_000_000, 4, False) / 1e9, 2)
    3.23
    """
    if adapters:
        return parameters * weight_bytes + RUNTIME_BYTES
    per_parameter = 2 * weight_bytes + ADAM_BYTES + (weight_bytes if reference_model else 0)
    return parameters * per_parameter + RUNTIME_BYTES


def available_bytes() -> int:
    """Memory this machine can still give (MemAvailable: free plus reclaimable caches)."""
    import psutil

    return psutil.virtual_memory().available


def check_fits(
    parameters: int,
    weight_bytes: int,
    reference_model: bool,
    processes: int,
    available: int,
    adapters: bool = False,
) -> None:
    """Refuse a launch of `processes` training processes on this machine that cannot fit in `available` bytes.

    Raises:
        ValueError: naming the estimate, what is available, and how many processes would fit.
    """
    each = process_bytes(parameters, weight_bytes, reference_model, adapters)
    if processes * each <= available:
        return
    fit = available // each
    advice = (
        f"launch at most {fit} (accelerate launch --num_processes {fit}, or ./launch.sh --num-processes {fit})"
        if fit
        else "not even one fits: free memory, or use a smaller model"
    )
    if adapters:
        held = "weights, LoRA adapters"
    else:
        held = f"weights, gradients and AdamW state{', a reference model' if reference_model else ''}"
    raise ValueError(
        f"{processes} training processes of a {parameters / 1e6:.0f}M-parameter model need about "
        f"{processes * each / 1e9:.1f} GB on this machine ({each / 1e9:.1f} GB each: {held}, ~1 GB of "
        "runtime), but "
        f"{available / 1e9:.1f} GB is available: {advice}"
    )


def check_cpu_launch(
    model_path: str, training_args, trust_remote_code: bool = False, adapters: bool = False
) -> None:
    """`check_fits` for this stage's launch when it trains on CPU: this machine's processes
    (`LOCAL_WORLD_SIZE`), the model's parameters and dtype (`model_init_kwargs`), `beta`, LoRA (`adapters`)."""
    import torch

    if torch.cuda.is_available() and not training_args.use_cpu:
        return
    dtype = str((training_args.model_init_kwargs or {}).get("dtype") or "float32")
    weight_bytes = 2 if dtype.endswith(("bfloat16", "float16")) else 4
    processes = int(os.environ.get("LOCAL_WORLD_SIZE") or 1)
    parameters = parameter_count(model_path, trust_remote_code)
    check_fits(parameters, weight_bytes, training_args.beta > 0, processes, available_bytes(), adapters)
