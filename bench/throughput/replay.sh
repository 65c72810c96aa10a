#!/usr/bin/env bash
# How long a restart after a crash takes when the journal must be replayed: COUNT preds
# with labels for LABELS of them (one label per pred by default) and no checkpoint, then
# kill -9, then the time from the restart to the first `status` answer, and the
# daemon's own `replayed the journal` line.
#
#   bench/throughput/replay.sh                      # the build in .build/release
#   COUNT=200000 bench/throughput/replay.sh
#   BIN=/path/to/other/release bench/throughput/replay.sh   # an older build
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/throughput/common.sh
BIN=${BIN:-.build/release}
COUNT=${COUNT:-1000000}
LABELS=${LABELS:-1.0}
[ "$BIN" = .build/release ] && swift build -c release >/dev/null
LOADGEN=.build/release/cfe-loadgen CFE=.build/release/cfe
[ -x "$LOADGEN" ] && [ -x "$CFE" ] || swift build -c release >/dev/null
tmp=$(mktemp -d /tmp/cfe-replay-XXXXXX)
cleanup() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

start() {
  "$BIN/cfensembled" --input "@ipc://$tmp/in" --output "@ipc://$tmp/out" --input-type sub --state-dir "$tmp/state" \
    --log-level info --set metrics.listen=off --set state.checkpoint_interval_s=0 --set state.journal_max_mb=100000 \
    --set "state.max_pending=$((COUNT + 1))" 2>> "$tmp/log" &
  pid=$!
}

start; wait_control "$CFE" "$tmp/state" 300
"$LOADGEN" load --input "ipc://$tmp/in" --output "ipc://$tmp/out" --count "$COUNT" --labels "$LABELS" --tag r --name fill >/dev/null
sleep 0.5   # past state.journal_flush_ms
before=$("$CFE" status --state-dir "$tmp/state" --json)
kill -9 $pid; wait $pid 2>/dev/null || true
journal=$(du -sb "$tmp"/state/journal.*.cfe | awk '{s += $1} END {print s}')
t0=$(date +%s.%N)
start; wait_control "$CFE" "$tmp/state" 300
t1=$(date +%s.%N)
# Peak and current resident memory of the restarted daemon (the replay's high-water mark).
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status); rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
after=$("$CFE" status --state-dir "$tmp/state" --json)
python3 - "$before" "$after" "$journal" "$t0" "$t1" "$tmp/log" "$hwm" "$rss" <<'PY'
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
line = next((l for l in open(sys.argv[6]) if "replayed the journal" in l), "").strip()
print(f"journal {int(sys.argv[3]) / 1e6:.0f} MB; restart to first status {float(sys.argv[5]) - float(sys.argv[4]):.1f} s")
print(f"  restarted daemon: peak RSS {int(sys.argv[7]) / 1024:.0f} MiB, RSS after replay {int(sys.argv[8]) / 1024:.0f} MiB")
for k in ["model_version", "labelled", "pending"]:
    print(f"  {k}: {b.get(k)} before the crash, {a.get(k)} after")
print("  daemon: " + line[line.find("cfensembled:") + 12:line.find("[Daemon]")].strip() if line else "  (no replay line)")
PY
kill -TERM $pid; wait $pid 2>/dev/null || true
