#!/usr/bin/env bash
# One command from a fresh checkout to a running daemon: installs what is missing,
# builds the release binaries (.build/release/cfensembled and .build/release/cfe) and
# starts the daemon in the foreground on its default configuration (input
# tcp://127.0.0.1:5555, output :5556, control ipc://./state/control.sock, metrics
# http://127.0.0.1:9464/metrics, state in ./state). Extra arguments go to cfensembled,
# e.g. ./scripts/run.sh --config config/cfensembled.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
CFE_OPERATOR_TOOLS=0 ./scripts/install-deps.sh
swift build -c release --product cfensembled
swift build -c release --product cfe
echo "built .build/release/cfensembled and .build/release/cfe; starting the daemon (Ctrl-C stops it)" >&2
exec .build/release/cfensembled --state-dir ./state "$@"
