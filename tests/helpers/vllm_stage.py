"""A stage (`stagerl.train.grpo.main`) with its vLLM generation instrumented, for the vLLM tier's tests.

    python tests/helpers/vllm_stage.py [--skip-sync N] [--counts FILE] -- STAGE ARGUMENTS...

`--skip-sync N` leaves out the Nth weight push to the CPU engine (1 = the first, before step 1): the negative
control of the weight-sync test. `--counts FILE` writes `{"generate": ..., "sync": ...}`, how often TRL's
`VLLMGeneration.generate` ran and how many pushes were made, when the stage ends.
"""

import argparse
import json

from trl.generation.vllm_generation import VLLMGeneration

from stagerl.rewards.cli import run_command
from stagerl.train import grpo, vllm_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-sync", type=int)
    parser.add_argument("--counts")
    parser.add_argument("stage", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    counts = {"generate": 0, "sync": 0}
    push, generate = vllm_cpu.sync_weights, VLLMGeneration.generate

    def counted_push(generation):
        counts["sync"] += 1
        if counts["sync"] != args.skip_sync:
            push(generation)

    def counted_generate(self, *a, **k):
        counts["generate"] += 1
        return generate(self, *a, **k)

    vllm_cpu.sync_weights = counted_push  # bound by keep_weights_in_sync when the trainer is built
    VLLMGeneration.generate = counted_generate
    stage = args.stage[1:] if args.stage[:1] == ["--"] else args.stage

    def run() -> None:
        grpo.main(stage)
        if args.counts:
            with open(args.counts, "w") as f:
                json.dump(counts, f)

    run_command(run)


if __name__ == "__main__":
    main()
