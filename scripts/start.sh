#!/usr/bin/env bash
# README command 1: install if needed, prepare database + models, start the assistant.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export RASA_TELEMETRY_ENABLED=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m bot up "$@"
