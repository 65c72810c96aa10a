#!/usr/bin/env bash
# Creates bench/quality/.venv with what the evaluation needs (PyPI packages).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
