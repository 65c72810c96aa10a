#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (unit and
# integration over real ZeroMQ sockets). Not parallelised, so runners read its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build --build-tests
swift test
