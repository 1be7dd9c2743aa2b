#!/usr/bin/env bash
# README command 2: install if needed, then run the whole test suite (unit, store on SQLite and
# PostgreSQL, actions, NLU, stories, end-to-end conversations through running servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The web chat browser tests drive Debian's Chromium (no Playwright browser download); the
# CJK font keeps their screenshots in artifacts/screenshots/ readable.
if ! command -v chromium >/dev/null || [ ! -d /usr/share/fonts/truetype/wqy ]; then
  apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei
fi
export RASA_TELEMETRY_ENABLED=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
