#!/usr/bin/env bash
# Install golf-core and every bundled plugin (editable) into the current Python.
# torch is installed first where it is missing (pinned, so a CPU machine takes its local
# CPU build instead of pulling gigabytes of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing torch==2.13.0"
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
if ! "$PY" -c "import setuptools" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet "setuptools>=61"
fi
args=(-e ".[test]")
n=0
for d in plugins/golf-*/; do
    if [ -f "$d/pyproject.toml" ]; then args+=(-e "$d"); n=$((n + 1)); fi
done
echo "setup: installing golf-core and $n bundled plugins (editable)"
"$PY" -m pip install --quiet --no-build-isolation "${args[@]}"
"$PY" -m golf_core plugins >/dev/null
echo "setup: done ($("$PY" -m golf_core --version))"
