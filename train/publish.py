"""What follows a stage's evaluation: its results into the stage's tracker run, then the export to the Hub.

    python -m stagerl.train.publish STAGE_DIR --evaluation '{"math500": 0.41}'

The runner evaluates a stage's export in its own process after the stage; it then runs this, so the results
reach the stage's run (`stagerl.train.tracking.log_evaluation`) and the model card of its push
(`stagerl.train.hub.push_stage`; the stage left the push to this when `eval_follows`). Both are done once:
run again, it does nothing, and it costs no import of the training stack then.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from stagerl.data.stage_dir import STAGE_RECORD, TRACKING_FILE


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m stagerl.train.publish", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stage_dir", type=Path, help="a finished stage's directory")
    parser.add_argument("--evaluation", default="{}", help="pass@1 per benchmark, a JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not (args.stage_dir / STAGE_RECORD).is_file():
        raise SystemExit(f"error: {args.stage_dir / STAGE_RECORD} does not exist: the stage has not finished")
    evaluation = json.loads(args.evaluation)
    tracked = args.stage_dir / TRACKING_FILE
    run = json.loads(tracked.read_text()) if tracked.is_file() else {}
    if evaluation and run.get("report_to") and not run.get("evaluation_logged"):
        from stagerl.train.tracking import log_evaluation

        log_evaluation(args.stage_dir, evaluation)
    from stagerl.train.hub import push_stage

    push_stage(args.stage_dir, evaluation or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
