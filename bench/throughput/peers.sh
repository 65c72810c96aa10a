#!/usr/bin/env bash
# Peers' events/s on this machine (River LR, Vowpal Wabbit), appended to docs/throughput.jsonl
# when that exists; run after bench/throughput/run.sh, then summarise again.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; fi
.venv/bin/python peers.py "${1:-100000}" | tee -a ../../docs/throughput.jsonl
cd ../.. && python3 bench/throughput/summarise.py docs/throughput.jsonl docs/throughput.md
