#!/usr/bin/env bash
# The prepared GPU check of issue #26 (bench/gpu_check.py says what its four parts measure).
#
# On a lent GPU machine, from the repo root. First, here: `bash bench/gpu_wheels.sh` (wheels into .whl/, ignored by
# git, 22 MiB). Then the device tool, in one call:
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=570)
# It installs the carried wheels and this checkout (no deps, no index) into /tmp/site over the machine's torch and
# writes $OUT/gpu_check.json and $OUT/gpu_check.log: all that comes back, rewritten after every command, so a run
# killed at timeout_s still returns what it measured. Models and runs go to /tmp/stagerl-gpu-check (~15 GB).
# About a minute of install and setup (budget 90 s), then the parts within their budgets (150+170+60+30 s; time a
# part leaves passes on): about 6 minutes by estimate (never timed on a GPU), 9 at most. Then give the machine
# back, or rerun chosen parts
# at once on the warm machine (its models are kept), e.g.:
#   run(command="bash bench/gpu_check.sh --parts 2 --budget-scale 1.5", carry=[".whl"], timeout_s=400)
#
# Here, the same parts at tiny shapes on the CPU (what the slow test runs; the lock is the shared-machine rule):
#   flock /tmp/torch.lock bash bench/gpu_check.sh --cpu --out runs/gpu-check --work runs/gpu-check-work
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ " $* " == *" --cpu "* ]]; then
  exec "${PYTHON:-.venv/bin/python}" bench/gpu_check.py "$@"
fi

: "${OUT:?set OUT to the folder that receives gpu_check.json and gpu_check.log}"
mkdir -p "$OUT"
SITE=/tmp/site
# The machine's python3 is 3.12 and has torch 2.11, transformers 5.17, accelerate 1.15: the wheels bring our pins of
# what it lacks or has at another version (bench/gpu_wheels.sh). --no-deps: its torch stays. The project declares
# Python 3.11 only (its pins are tested there), hence --ignore-requires-python; .whl/build holds its build backend.
# A setuptools build/ folder left in the tree (an earlier `pip wheel .`) would be installed instead of the sources
# wherever its files look newer: the project is built in a folder of its own (setuptools reads DIST_EXTRA_CONFIG).
BUILD_CFG=/tmp/stagerl-build.cfg
rm -rf /tmp/stagerl-build  # an earlier run's copies (setuptools keeps a copy that looks newer than its source)
printf '[build]\nbuild_base = /tmp/stagerl-build\n' >"$BUILD_CFG"
{
  echo "$ install carried wheels and the project into $SITE"
  ls .whl/*.whl >/dev/null || echo "error: no .whl/: run 'bash bench/gpu_wheels.sh' here first and carry .whl"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl &&
    DIST_EXTRA_CONFIG="$BUILD_CFG" python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --find-links .whl/build --ignore-requires-python --target "$SITE" .
} >>"$OUT/gpu_check.log" 2>&1
status=$?
export GPU_CHECK_INSTALL="exit $status: $(ls .whl/*.whl 2>/dev/null | wc -l) wheels and the project into $SITE"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
exec python3 bench/gpu_check.py "$@"
