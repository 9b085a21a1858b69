#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine with Python 3.11, then
# runs lint and the test suite. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# Real services the tests start themselves on loopback ports.
if ! command -v redis-server >/dev/null; then
  sudo_cmd=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet '.[test]'
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
