#!/usr/bin/env bash
# Whether learning stalls scoring: latency of a paced pred stream (pred sent to score
# received) at RATE preds/s over ipc, for a do-nothing relay, the daemon without labels,
# and the daemon learning one label per pred (each for an instance scored a window
# earlier: a model update every learning.batch_size labels, at the shipped defaults),
# and the same with the updates on the scoring thread (learning.update_thread=false).
# ROUNDS rounds, alternating, in one invocation; one JSON line per run on stdout and in
# docs/learning-latency.jsonl.
#
#   bench/throughput/learning-latency.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/throughput/common.sh
RATE=${RATE:-20000}
COUNT=${COUNT:-200000}     # 10 s at 20k/s
ROUNDS=${ROUNDS:-3}
LABELS=${LABELS:-1}       # labels per pred
swift build -c release >/dev/null
BIN=.build/release
tmp=$(mktemp -d /tmp/cfe-learnlat-XXXXXX)
out=docs/learning-latency.jsonl
: > "$out"
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
load() { "$BIN/cfe-loadgen" load "$@" | tee -a "$out"; }

"$BIN/cfe-loadgen" relay --input "ipc://$tmp/rin" --output "ipc://$tmp/rout" > "$tmp/relay.log" &
until grep -q "relay ready" "$tmp/relay.log"; do sleep 0.05; done
"$BIN/cfensembled" --input "@ipc://$tmp/in" --output "@ipc://$tmp/out" --input-type sub --state-dir "$tmp/state" \
  --log-level error --set metrics.listen=off &
daemon=$!
"$BIN/cfensembled" --input "@ipc://$tmp/in2" --output "@ipc://$tmp/out2" --input-type sub --state-dir "$tmp/state2" \
  --log-level error --set metrics.listen=off --set learning.update_thread=false &
loopd=$!
wait_control "$BIN/cfe" "$tmp/state"
wait_control "$BIN/cfe" "$tmp/state2"
for r in $(seq "$ROUNDS"); do
  load --input "ipc://$tmp/rin" --output "ipc://$tmp/rout" --expect pred --count "$COUNT" --rate "$RATE" --tag "$(echo abc | cut -c"$r")" --name relay
  load --input "ipc://$tmp/in" --output "ipc://$tmp/out" --count "$COUNT" --rate "$RATE" --tag "$(echo def | cut -c"$r")" --name daemon
  load --input "ipc://$tmp/in" --output "ipc://$tmp/out" --count "$COUNT" --rate "$RATE" --labels "$LABELS" --tag "$(echo ghi | cut -c"$r")" --name daemon-labels
  load --input "ipc://$tmp/in2" --output "ipc://$tmp/out2" --count "$COUNT" --rate "$RATE" --labels "$LABELS" --tag "$(echo jkl | cut -c"$r")" --name daemon-labels-on-loop
done
"$BIN/cfe" status --state-dir "$tmp/state" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(json.dumps({"name": "status", "model_version": s.get("model_version"), "labels_learnt": s.get("accounting", {}).get("labels_learnt")}))' | tee -a "$out"
kill -TERM $daemon $loopd; wait $daemon || true; wait $loopd || true
