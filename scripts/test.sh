#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine with Python 3.11, then
# runs lint and the test suite. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# Real services the tests start themselves on loopback ports: redis-server, mosquitto
# (with TLS certificates made by openssl), and GStreamer's RTSP server driven by
# Debian's own Python (scripts/rtsp_test_server.py). opencv-doc: real footage no one here
# made (examples/data/Megamind.avi, Megamind_bugy.avi, vtest.avi) for the tracking tests. g++: the
# CUDA preprocessing kernels are compiled as C++ and checked against the pipeline on the CPU.
debs="redis-server mosquitto openssl gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad python3-gi chromium chromium-driver opencv-doc g++"
missing=$(for deb in $debs; do dpkg -s "$deb" >/dev/null 2>&1 || echo "$deb"; done)
if [ -n "$missing" ]; then
  sudo_cmd=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $sudo_cmd apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet '.[test]'
.venv/bin/ruff check .
# Types, with the pydantic plugin (pyproject's [tool.mypy]), over the package as Python imports it.
.venv/bin/mypy -p fiqa_stream
# The console script, not `python -m pytest`: the latter puts the checkout first on sys.path, so the
# tests would import the source folders instead of the package just installed.
exec .venv/bin/pytest -q "$@"
