#!/usr/bin/env bash
# One command from a fresh checkout to a running daemon: installs what is missing,
# builds the release binary and starts it on its default configuration (loopback
# endpoints tcp://127.0.0.1:5555 in, :5556 out; state in ./state). Extra arguments
# go to cfensembled, e.g. ./scripts/run.sh --config config/cfensembled.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product cfensembled
exec .build/release/cfensembled --state-dir ./state "$@"
