#!/usr/bin/env bash
# Creates .venv (for the example client and the tests) with pyzmq and the project's
# Python client package (clients/python). Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check pyzmq >&2
# Reinstalled every time (it is small): the tests run against the package as it is now.
# pip builds it in the source tree; its build/ and egg-info are removed afterwards.
.venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./clients/python >&2
rm -rf clients/python/build clients/python/*.egg-info
echo "$PWD/.venv/bin/python"
