#!/usr/bin/env bash
# How much periodic checkpoints disturb scoring: latency of a paced pred stream (pred
# sent to score received) while the daemon holds PENDING pending instances and writes a
# checkpoint every INTERVAL seconds, next to the same run with checkpoints off. Each
# configuration runs ROUNDS times, alternating, in one invocation. TRIGGER=command asks
# for each checkpoint with the control socket's `checkpoint` command instead of the
# periodic timer (an operator's or a backup job's request).
#
#   bench/throughput/checkpoint-stall.sh                   # the build in .build/release
#   BIN=/path/to/other/release bench/throughput/checkpoint-stall.sh   # an older build
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/throughput/common.sh
BIN=${BIN:-.build/release}
PENDING=${PENDING:-1000000}
RATE=${RATE:-20000}
COUNT=${COUNT:-240000}      # 12 s at 20k/s
INTERVAL=${INTERVAL:-4}
ROUNDS=${ROUNDS:-2}
TRIGGER=${TRIGGER:-timer}
# A Python with pyzmq (for TRIGGER=command): the quality benchmark's (bench/quality/setup.sh).
PY=${PY:-bench/quality/.venv/bin/python}
# More daemon options for every run, e.g. EXTRA="--set state.journal=false".
EXTRA=${EXTRA:-}
[ "$BIN" = .build/release ] && swift build -c release >/dev/null
# The load generator and the status client always come from this tree's release build.
LOADGEN=.build/release/cfe-loadgen CFE=.build/release/cfe
[ -x "$LOADGEN" ] && [ -x "$CFE" ] || swift build -c release >/dev/null
tmp=$(mktemp -d /tmp/cfe-stall-XXXXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

run() {  # run NAME INTERVAL
  local dir="$tmp/$1" interval=$2 timer=$2
  [ "$TRIGGER" = command ] && timer=0
  mkdir -p "$dir"
  "$BIN/cfensembled" --input "@ipc://$dir/in" --output "@ipc://$dir/out" --input-type sub --state-dir "$dir/state" \
    --log-level info --set metrics.listen=off --set "state.max_pending=$((PENDING + COUNT))" \
    --set "state.checkpoint_interval_s=$timer" $EXTRA 2> "$dir/log" &
  local pid=$!
  wait_control "$CFE" "$dir/state"
  "$LOADGEN" load --input "ipc://$dir/in" --output "ipc://$dir/out" --count "$PENDING" --tag m --name fill >/dev/null
  local asker=""
  if [ "$TRIGGER" = command ] && [ "$interval" != 0 ]; then
    # One long-lived client (starting a process per request would itself take CPU from
    # the daemon); each request is answered once its checkpoint is on disk.
    "$PY" -c '
import sys, time, zmq
ctx = zmq.Context()
while True:
    time.sleep(float(sys.argv[2]))
    req = ctx.socket(zmq.REQ)
    req.connect(sys.argv[1])
    req.send(b"{\"cmd\":\"checkpoint\"}")
    req.recv()
    req.close()' "ipc://$dir/state/control.sock" "$interval" &
    asker=$!
  fi
  "$LOADGEN" load --input "ipc://$dir/in" --output "ipc://$dir/out" --count "$COUNT" --rate "$RATE" --tag p --name "$1" \
    | python3 -c '
import json, re, sys
r = json.loads(sys.stdin.read())
ms = [int(m) for m in re.findall(r"ms=(\d+)", open(sys.argv[1]).read())]
r["checkpoints"] = len(ms); r["checkpoint_ms"] = ms
print(json.dumps(r))' "$dir/log"
  if [ -n "$asker" ]; then kill $asker 2>/dev/null || true; wait $asker 2>/dev/null || true; fi
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
}

for r in $(seq "$ROUNDS"); do
  run "checkpoints-off-$r" 0
  run "checkpoints-every-${INTERVAL}s-$r" "$INTERVAL"
done | tee "$tmp/results.jsonl"
python3 - "$tmp/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| run | lost | p50 µs | p99 µs | p999 µs | max µs | checkpoints (ms each) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['name']} | {r['lost']} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} | {r['p999_us']:,.0f} | {r['max_us']:,.0f} | "
          f"{r['checkpoints']} ({', '.join(map(str, r['checkpoint_ms'])) or '-'}) |")
EOF
