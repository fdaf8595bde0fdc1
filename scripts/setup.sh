#!/usr/bin/env bash
# Install tabom into a virtual environment, `.venv/` beside this repository (PEP 668: Debian's and
# Ubuntu's own /usr/bin/python3 refuse system-wide pip installs). An environment that is already
# active ($VIRTUAL_ENV, or conda's $CONDA_PREFIX) is used instead, and `.venv` is made a link to it,
# so the README's `.venv/bin/...` commands hold either way.
#   bash scripts/setup.sh          # runtime
#   bash scripts/setup.sh --dev    # + test and evaluation extras (pytest, lm-eval, math-verify)
# torch: the CPU build where there is no NVIDIA GPU (never a multi-GB CUDA wheel on a CPU-only
# machine). GPU users: install the torch build for your CUDA into the environment first; a torch
# that is already installed there is kept. Where pip would pick a CUDA wheel on a CPU machine, set
# TORCH_INDEX_URL to PyTorch's CPU wheel index.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
BASE_PY=${PYTHON:-python3}

active="${VIRTUAL_ENV:-${CONDA_PREFIX:-}}"
if [ -n "$active" ]; then
  if [ ! -e .venv ]; then ln -s "$active" .venv; fi
elif [ ! -x .venv/bin/python ]; then
  if ! "$BASE_PY" -m venv .venv 2>/tmp/tabom-venv.err; then
    rm -rf .venv
    # Debian/Ubuntu ship venv's pip bootstrap in a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      pyver=$("$BASE_PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get update -qq && apt-get install -y -qq "python${pyver}-venv" >/dev/null \
        || apt-get install -y -qq python3-venv >/dev/null
      "$BASE_PY" -m venv .venv
    else
      echo "error: '$BASE_PY -m venv' failed (on Debian/Ubuntu: sudo apt-get install python3-venv):" >&2
      cat /tmp/tabom-venv.err >&2
      exit 2
    fi
  fi
fi
PY=.venv/bin/python
[ -x "$PY" ] || PY=.venv/bin/python3

if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$PY" -m pip install -q torch
  else
    "$PY" -m pip install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
"$PY" -m pip install -q -e ".${extras}"
echo "tabom is installed in $(cd .venv && pwd -P); run it as .venv/bin/tabom (or: source .venv/bin/activate)"
