#!/usr/bin/env bash
# Installs what building and testing cfensembled needs on Debian/Ubuntu: libzmq3-dev
# (and pkg-config), systemd-analyze for the unit-file test, and pyzmq for the Python
# example client. Skips what is present.
set -euo pipefail

need=()
dpkg -s libzmq3-dev >/dev/null 2>&1 || need+=(libzmq3-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # the unit-file test
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${need[*]}" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi

if [ "${CFE_SKIP_PYTHON:-0}" != "1" ] && command -v python3 >/dev/null 2>&1; then
    python3 -c "import zmq" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyzmq
fi
