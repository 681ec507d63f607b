#!/usr/bin/env bash
# Sets up .venv if needed, then trains MAML on rllib_maml/Navigation2D-v0 with a
# local Ray (or the cluster at RAY_ADDRESS). Arguments go to examples/quickstart.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python examples/quickstart.py "$@"
