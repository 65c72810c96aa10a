#!/usr/bin/env bash
# The test command (what .ci/run runs on a clean clone): installs what is missing,
# builds, and runs every test (unit, and integration over real ZeroMQ sockets) while a
# daemon on the default configuration runs beside them, as it would on a developer's
# machine after ./scripts/run.sh: a test that depends on a fixed port or path fails.
# Not parallelised, so runners read its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
CFE_PYTHON=$(./scripts/python-env.sh)
export CFE_PYTHON
swift build --build-tests

# The Quick start's daemon (default endpoints and metrics port), in the background.
bystander=$(mktemp -d /tmp/cfe-bystander-XXXXXX)
.build/debug/cfensembled --state-dir "$bystander/state" --log-level warning 2>"$bystander/log" &
bystander_pid=$!
stop_bystander() {
    kill -TERM "$bystander_pid" 2>/dev/null && wait "$bystander_pid" 2>/dev/null || true
    rm -rf "$bystander"
}
trap stop_bystander EXIT
for _ in $(seq 1 100); do
    [ -S "$bystander/state/control.sock" ] && break
    kill -0 "$bystander_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -S "$bystander/state/control.sock" ]; then
    if grep -q "in use" "$bystander/log"; then
        # ./scripts/run.sh's daemon (or another) holds the default endpoints: the suite
        # runs beside that one instead.
        echo "test.sh: the default endpoints are in use (a daemon from ./scripts/run.sh?); the tests run beside it" >&2
    else
        echo "the default daemon did not start:" >&2; cat "$bystander/log" >&2; exit 1
    fi
fi

swift test
