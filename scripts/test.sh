#!/usr/bin/env bash
# Sets up .venv if needed, then runs the whole test suite (unit, integration and
# learning tests; about 15 minutes on 2 cores). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
