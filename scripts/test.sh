#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine with Python 3.11, then
# runs lint and the test suite. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet '.[test]'
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
