"""`train/grpo.py`, with every build of the stage's rows appended to `$STAGERL_TEST_BUILDS` (one line per build,
with the process's rank): launched by a test in place of `train/grpo.py` to count them across processes."""

import os

from stagerl.train import grpo, stage_data

build_rows = stage_data.build_rows


def counted(*args, **kwargs):
    with open(os.environ["STAGERL_TEST_BUILDS"], "a") as f:
        f.write(f"rank {os.environ.get('RANK', '0')}\n")
    return build_rows(*args, **kwargs)


if __name__ == "__main__":
    stage_data.build_rows = counted
    grpo.main()
