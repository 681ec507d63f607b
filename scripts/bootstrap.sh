#!/usr/bin/env bash
# Creates .venv (once) with torch's CPU build first, then this package and its
# dev tools. Safe to run again: it reinstalls only when setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP="$VENV/.rllib_maml-installed"
want=$(sha256sum setup.py | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "Setting up $VENV (torch CPU build, ray[rllib] 2.60, rllib_maml) ..." >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch first: a bare torch requirement would pull several GB of CUDA wheels.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[dev]"
echo "$want" > "$STAMP"
