#!/usr/bin/env bash
# stagerl launcher: run a curriculum (or a sweep of curricula), one launch per stage (`accelerate launch`, or
# plain `python` for one process on one machine).
#
#   ./launch.sh                                   # the embedded demo: 3 stages on SmolLM2-135M, CPU, < 15 min
#   ./launch.sh configs/curricula/am_math_1_2_3.yaml --accelerate-config configs/accelerate/zero2.yaml --num-processes 8
#   ./launch.sh CURRICULUM.yaml --output_dir runs/x   # re-run the same command after a crash: it resumes
#   ./launch.sh CURRICULUM.yaml --from-stage 2        # restart from the end of stage 1
#   ./launch.sh CURRICULUM.yaml --dry-run             # print the stage commands only
#   ./launch.sh --sweep configs/sweeps/smoke.yaml [--output_dir DIR] [--dry-run] [--emit commands|slurm]
#
# Options (checked by the Python modules it calls, which say what is wrong):
#   --output_dir DIR            run directory (default runs/<curriculum name>)
#   --accelerate-config FILE    configs/accelerate/{ddp,zero2,zero3,zero3_offload}.yaml
#   --num-processes N           processes per machine; multi-node: set NUM_MACHINES, MACHINE_RANK,
#                               MAIN_PROCESS_IP, MAIN_PROCESS_PORT (slurm/train.slurm does)
#   --from-stage K, --dry-run   see above
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# The project's virtual environment, made by the README's set-up command. Paths you pass stay relative to
# where you run this from; the shipped configs are also found from anywhere.
PYTHON=${PYTHON:-$here/.venv/bin/python}
[[ -x "$PYTHON" ]] || { echo "error: $PYTHON not found; run the set-up command in README.md first" >&2; exit 2; }

case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  # A sweep: a tree of curricula, each distinct stage trained once.
  --sweep) shift; exec "$PYTHON" -m stagerl.curricula.run --sweep "$@" ;;
  # A curriculum (the demo when no file is given).
  *) exec "$PYTHON" -m stagerl.curricula.run "$@" ;;
esac
