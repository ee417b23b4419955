#!/bin/sh
# Builds the exporter's runtime virtualenv: the Dockerfile's build stage runs exactly this, and
# tests/test_packaging.py runs it too, so the image's install steps are tested without Docker.
# Usage: scripts/build-venv.sh VENV_DIR [SOURCE_DIR]
set -eu
venv="$1"
src="${2:-.}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip
# A regular (non-editable) install: only what the wheel ships ends up in the venv.
"$venv/bin/python" -m pip install --quiet --no-cache-dir "$src"
"$venv/bin/dli-exporter" --version
