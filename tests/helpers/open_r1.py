"""open-r1's world for tests: its R1-Distill GRPO recipe (a copy, see tests/data/open_r1/README.md) and rows
shaped like its OpenR1-Math-220k dataset."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "tests/data/open_r1/config_demo.yaml"


def open_r1_rows(directory: Path, n: int = 4) -> Path:
    """`n` rows shaped like open-r1/OpenR1-Math-220k's (problem, reference solution, answer, messages) in a
    dataset directory, which `datasets.load_dataset(directory)` reads as it reads a hub dataset."""
    rows = [
        {
            "problem": f"What is {i} + {i}?",
            "solution": f"We add: ${i}+{i}=\\boxed{{{2 * i}}}$.",
            "answer": str(2 * i),
            "messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
        }
        for i in range(n)
    ]
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "train-00000-of-00001.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    return directory
