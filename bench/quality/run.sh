#!/usr/bin/env bash
# One command: builds the release daemon, installs the evaluation's Python packages into
# bench/quality/.venv, runs every stream and writes docs/quality.md and docs/quality-*.png.
# Extra arguments go to evaluate.py (e.g. --streams synthetic-10 --quick).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/install-deps.sh
swift build -c release --product cfensembled
bench/quality/setup.sh
exec bench/quality/.venv/bin/python bench/quality/evaluate.py --binary .build/release/cfensembled \
    --config config/cfensembled.yaml --out docs "$@"
