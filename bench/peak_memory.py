"""Run a training script and record, at exit, the peak GPU memory its process allocated (0 on a CPU).

    accelerate launch ... bench/peak_memory.py OUT_DIR SCRIPT [ARGS ...]

Each process writes `OUT_DIR/rank-<RANK>`: the same measurement for whichever script it wraps.
"""

import atexit
import os
import runpy
import sys
from pathlib import Path


def record(out_dir: Path) -> None:
    import torch

    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"rank-{os.environ.get('RANK', '0')}").write_text(str(peak))


if __name__ == "__main__":
    out_dir, script, *args = sys.argv[1:]
    atexit.register(record, Path(out_dir))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
