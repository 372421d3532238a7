#!/usr/bin/env bash
# Fresh machine -> installed dependencies -> the whole test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
python -m pytest -q "$@"
