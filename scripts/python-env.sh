#!/usr/bin/env bash
# Creates .venv (for the example client and the tests) with pyzmq and the project's
# Python client package (clients/python). Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check pyzmq >&2
if [ -f clients/python/pyproject.toml ]; then
    .venv/bin/pip install --quiet --disable-pip-version-check ./clients/python >&2
fi
echo "$PWD/.venv/bin/python"
