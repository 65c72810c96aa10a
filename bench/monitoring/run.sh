#!/usr/bin/env bash
# Label-free monitoring benchmark: builds the release daemon and writes
# docs/monitoring.md and docs/monitoring.json (see evaluate.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product cfensembled
bench/quality/setup.sh
bench/quality/.venv/bin/python bench/monitoring/evaluate.py --binary .build/release/cfensembled \
    --config config/cfensembled.yaml --out docs "$@"
bench/quality/.venv/bin/python bench/monitoring/healthy.py --binary .build/release/cfensembled \
    --config config/cfensembled.yaml --out docs
