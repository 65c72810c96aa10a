# Shared by the benchmark scripts (sourced).

# wait_control CFE STATE_DIR [SECONDS]: until the daemon answers `status` on its control
# socket (it has bound its sockets and restored its state), or exit 1 after SECONDS (10).
wait_control() {
  local cfe=$1 dir=$2 tries=$(( ${3:-10} * 10 ))
  for _ in $(seq "$tries"); do
    "$cfe" status --state-dir "$dir" --json --timeout 0.2 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no status answer from the daemon in $dir" >&2; exit 1
}

# free_port: a loopback TCP port free at this moment (for what takes no port 0).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
