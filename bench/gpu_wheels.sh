#!/usr/bin/env bash
# The wheels bench/gpu_check.sh installs on a lent GPU machine, which reaches no package index: run it here, then
# carry the folder (".whl", ignored by git) in the device tool's `run` call. It prints their total size (the
# working tree and carried paths may not exceed 64 MiB together; this must stay under 40 MiB).
#
# The machine (the device tool's KINDS.md): CPython 3.12 x86-64 with torch 2.11, transformers 5.17, accelerate
# 1.15, peft, pyarrow, pandas, xxhash, sympy, ninja, psutil, ... and no trl, datasets, math-verify, deepspeed.
# Fetched: our pins (pyproject.toml) of what it lacks or has at another version, and the needs of those that it
# lacks, at the versions this environment runs the tests with. huggingface_hub (1.33 there) and tokenizers (0.23.2)
# already satisfy transformers and datasets. peft is carried at our pin: the machine's pairs with its transformers.
# deepspeed ships only a source archive: it is built here into a pure-Python wheel, its C++/CUDA ops not prebuilt
# (DS_BUILD_OPS=0; ZeRO-2 with torch's AdamW loads none). torch is never fetched: the machine's stays.
#
#   bash bench/gpu_wheels.sh            # -> .whl/*.whl and .whl/build/ (setuptools, to build this project there)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=.whl
PINNED=(trl transformers datasets math-verify deepspeed peft)
NEEDS=(dill multiprocess                           # datasets
       latex2sympy2_extended antlr4-python3-runtime  # math-verify's LaTeX parser
       hjson pydantic pydantic-core annotated-types typing-inspection)  # deepspeed
BUILD_BACKEND=setuptools==80.9.0  # pyproject.toml's build backend (>= 68), for `pip install .` there

# name==version for each: the pin from pyproject.toml, else the version installed here.
mapfile -t SPECS < <("$PY" - "${PINNED[@]}" -- "${NEEDS[@]}" <<'EOF'
import importlib.metadata as md, sys, tomllib
from packaging.requirements import Requirement
args = sys.argv[1:]
split = args.index("--")
pins = {Requirement(r).name: str(Requirement(r).specifier) for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]}
for name in args[:split]:
    if not pins.get(name, "").startswith("=="):
        sys.exit(f"pyproject.toml has no exact pin for {name}")
    print(f"{name}{pins[name]}")
for name in args[split + 1:]:
    print(f"{name}=={md.version(name)}")
EOF
)

rm -rf "$DEST"
mkdir -p "$DEST/build"
PLATFORMS=()
for tag in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 \
  manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
  PLATFORMS+=(--platform "$tag")
done
BINARY=()
for spec in "${SPECS[@]}"; do [[ $spec == deepspeed==* ]] && DEEPSPEED=$spec || BINARY+=("$spec"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --abi abi3 --abi none "${PLATFORMS[@]}" -d "$DEST" "${BINARY[@]}"
DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-cache-dir -w "$DEST" "$DEEPSPEED"
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$DEST/build" "$BUILD_BACKEND"

# One file per package, each as asked for.
for spec in "${SPECS[@]}"; do
  name=${spec%%==*} version=${spec#*==}
  stem=$(echo "$name" | tr '-' '_')
  count=$(ls "$DEST" | grep -ci "^${stem}-${version}-" || true)
  [[ $count == 1 ]] || { echo "error: $count wheels of $spec in $DEST" >&2; exit 1; }
done
ls -l "$DEST"/*.whl "$DEST"/build/*.whl | awk '{printf "%8.2f MiB  %s\n", $5 / 1048576, $9}'
total=$(cat "$DEST"/*.whl "$DEST"/build/*.whl | wc -c)
awk -v b="$total" 'BEGIN { printf "total: %.2f MiB (limit 40 MiB)\n", b / 1048576 }'
((total < 40 * 1048576)) || { echo "error: over 40 MiB" >&2; exit 1; }
