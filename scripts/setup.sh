#!/usr/bin/env bash
# One-time set-up of a fresh machine: the Fashion-MNIST files and a virtual
# environment in .venv with the pinned requirements. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# The package itself, editable (its dependencies are the pinned ones above),
# so that `import elr_tf` works from any directory and in scripts/.
.venv/bin/python -m pip install -q --no-deps -e .
