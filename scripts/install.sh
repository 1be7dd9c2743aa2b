#!/usr/bin/env bash
# Install (or update) everything the assistant needs into ./.venv.
# Idempotent and quiet when requirements.lock has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false

PYTHON_BIN="${PYTHON:-python3}"
UV_VERSION="0.13.9"

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv with $($PYTHON_BIN --version)"
  "$PYTHON_BIN" -m venv .venv
fi

stamp=".venv/.installed-$(sha256sum requirements.lock | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> Installing locked dependencies (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  .venv/bin/uv pip sync --quiet --python .venv/bin/python requirements.lock
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# TensorFlow imports jax; a jaxlib wheel newer than the locked jax crashes it.
if .venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('jaxlib') is None)"; then
  echo "error: jaxlib is installed in .venv but must not be (it breaks TensorFlow)" >&2
  exit 1
fi
