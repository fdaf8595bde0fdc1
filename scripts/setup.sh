#!/usr/bin/env bash
# Install tabom for this machine: the CPU build of torch where there is no NVIDIA GPU (never a
# multi-GB CUDA wheel on a CPU-only machine), then tabom itself in editable mode.
#   bash scripts/setup.sh          # runtime
#   bash scripts/setup.sh --dev    # + test and evaluation extras (pytest, lm-eval, math-verify)
# GPU users: install the torch build for your CUDA first (https://pytorch.org), then run this;
# a torch that is already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$PY" -m pip install -q torch
  else
    # The CPU build. Where pip would otherwise pick a CUDA wheel, point TORCH_INDEX_URL at
    # PyTorch's CPU wheel index.
    "$PY" -m pip install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
"$PY" -m pip install -q -e ".${extras}"
