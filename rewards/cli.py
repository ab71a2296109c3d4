"""What every stagerl command does around its `main`: one logging set-up for every rank, and a user mistake
reported as one line.

It lives in the lowest layer so that every layer's commands can use it (`python -m stagerl.rewards.score`
too).

- `run_command(main)`: a user mistake (a `ValueError` or `OSError` that reaches the top: a config field or
  value, a missing or malformed data file, a setting this machine cannot run) ends the command with
  `error: <message>` on one line, from the main process only, and exit status 2. `STAGERL_DEBUG=1` lets the
  traceback through instead.
- `setup_logging()`: our loggers at INFO on the main process (global rank 0) and at ERROR on the others, so
  the other ranks stay quiet; transformers' and datasets' loggers follow that level (WARNING where ours is
  INFO: their INFO is file-by-file loading chatter), and their progress bars show on the main process only;
  Python warnings go to the log. Each warning is shown once per run: once per process, and across processes
  when `STAGERL_WARNED` names a file of the warnings already shown (the curriculum runner hands one to its
  stages and evaluations, so stage 2 does not repeat stage 1's).
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import os
import sys
from collections.abc import Callable

DEBUG_ENV = "STAGERL_DEBUG"
WARNED_ENV = "STAGERL_WARNED"
USER_ERRORS = (ValueError, OSError)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LIBRARY_LOGGERS = {"transformers": "TRANSFORMERS_VERBOSITY", "datasets": "DATASETS_VERBOSITY"}


def main_process() -> bool:
    """Whether this is the launch's main process (global rank 0; a process outside any launch is)."""
    return int(os.environ.get("RANK") or 0) == 0


def run_command(main: Callable[[], object]) -> None:
    """Run a command's `main` and exit: 0 (or the int it returns), or 2 with one line for a user mistake.

    Args:
        main: the command, called without arguments (it reads `sys.argv`).
    """
    try:
        result = main()
    except USER_ERRORS as e:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        if main_process():
            print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


class OncePerRun(logging.Filter):
    """Lets each distinct warning through once: once in this process, and, with `path`, once among all the
    processes that share that file (each shown warning is appended to it, under a lock)."""

    def __init__(self, path: str | None = None):
        super().__init__()
        self.path, self.seen = path, set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        key = f"{record.name}: {record.getMessage()}".replace("\n", "\\n")
        if key in self.seen:
            return False
        self.seen.add(key)
        if not self.path:
            return True
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            if key in f.read().splitlines():
                return False
            f.write(key + "\n")
        return True


def setup_logging() -> int:
    """Configure logging for this process as the module docstring says.

    Returns:
        The level of our loggers here (INFO on the main process, ERROR on the others).
    """
    level = logging.INFO if main_process() else logging.ERROR
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:  # else someone (a test harness) already shows the records: leave its handlers be
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(OncePerRun(os.environ.get(WARNED_ENV)))
        root.addHandler(handler)
    logging.captureWarnings(True)
    library_level = max(level, logging.WARNING)
    for name, env in LIBRARY_LOGGERS.items():
        # Read when the library is first imported (here, or by a process this one starts).
        os.environ[env] = logging.getLevelName(library_level).lower()
        if name in sys.modules:  # already imported: its own handler goes, its records come through ours
            library = logging.getLogger(name)
            for handler in list(library.handlers):
                library.removeHandler(handler)
            library.setLevel(library_level)
            library.propagate = True
    if not main_process():  # no progress bars either: the main process shows the launch's progress
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        if "transformers" in sys.modules:
            importlib.import_module("transformers.utils.logging").disable_progress_bar()
        if "datasets" in sys.modules:
            importlib.import_module("datasets").disable_progress_bars()
    return level
