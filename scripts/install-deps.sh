#!/usr/bin/env bash
# Installs the system packages that building and testing cfensembled need on
# Debian/Ubuntu, skipping what is present: libzmq3-dev (the daemon's only native
# dependency), systemd-analyze (the unit-file test), python3-venv (Python stays in
# virtual environments: the example client and the tests' .venv, never the system
# Python), and prometheus / prometheus-alertmanager (promtool and Alertmanager, for
# the operator-tool tests), and etcd-server and etcd-client (the failover tests start
# their own etcd on loopback, on free ports, with a temporary data directory; etcdctl
# sets up its users for the auth test). Runs apt-get as root (or
# through sudo).
set -euo pipefail

need=()
dpkg -s libzmq3-dev >/dev/null 2>&1 || need+=(libzmq3-dev)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then need+=(python3-venv); fi
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ "${CFE_OPERATOR_TOOLS:-1}" = "1" ]; then
    command -v promtool >/dev/null 2>&1 || need+=(prometheus)
    command -v prometheus-alertmanager >/dev/null 2>&1 || [ -x /usr/bin/alertmanager ] || need+=(prometheus-alertmanager)
fi
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${need[*]}" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
