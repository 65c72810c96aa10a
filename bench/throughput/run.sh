#!/usr/bin/env bash
# Throughput and latency of cfensembled against a do-nothing ZeroMQ relay (the ceiling:
# one hop), back to back, same load generator, over ipc:// and tcp://127.0.0.1, with
# single messages and with batches of 64 (pred_batch / score_batch); the daemon's own
# per-instance cost without sockets (cfensembled --cost-floor, one core) in the same
# runs; scoring while learning from labels (learning.batch_size 256); latency at 20k
# instances/s single and in batches of 16; RSS per pending instance; the peers (River,
# Vowpal Wabbit) in the same minutes.
#
#   bench/throughput/run.sh            # writes docs/throughput.md and docs/throughput.jsonl
#   N=100000 bench/throughput/run.sh   # a shorter run
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/throughput/common.sh
N=${N:-300000}            # messages per throughput run
PACED=${PACED:-100000}    # messages per paced run (5 s at 20k/s)
PENDING=${PENDING:-1000000}
REPEAT=${REPEAT:-3}       # throughput runs per configuration (1-5); the table shows the median
BATCH=${BATCH:-64}        # instances per batch message in the batched runs
PACED_BATCH=${PACED_BATCH:-16}
# Each run's ids carry a one-character tag so that no id repeats within a daemon's life.
wtag() { echo adefg | cut -c"$1"; }
ltag() { echo chijk | cut -c"$1"; }
btag() { echo lmnop | cut -c"$1"; }
mtag() { echo qrstu | cut -c"$1"; }
swift build -c release >/dev/null
BIN=.build/release
tmp=$(mktemp -d /tmp/cfe-tput-XXXXXX)
out=docs/throughput.jsonl
: > "$out"
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

load() { "$BIN/cfe-loadgen" load "$@" | tee -a "$out"; }
# The daemon's path without sockets, same configuration as the benchmark daemon.
floor() { "$BIN/cfensembled" --cost-floor "$N" --cost-floor-batch "$1" --set learning.batch_size=256 \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); r["name"]=sys.argv[1]; r["msgs_per_s"]=r["instances_per_s"]; print(json.dumps(r))' "$2" \
  | tee -a "$out"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }


# Relay and daemon run side by side (each idle while the other is loaded) and their
# throughput runs alternate, so that every relay/daemon pair shares the machine's
# conditions of the moment: on a shared machine the relay alone varied 2x between runs.
for transport in ipc tcp; do
  if [ $transport = ipc ]; then rin="ipc://$tmp/rin"; rout="ipc://$tmp/rout"; in="ipc://$tmp/in"; outp="ipc://$tmp/out"
  else rin="tcp://127.0.0.1:$(free_port)"; rout="tcp://127.0.0.1:$(free_port)"
       in="tcp://127.0.0.1:$(free_port)"; outp="tcp://127.0.0.1:$(free_port)"; fi

  "$BIN/cfe-loadgen" relay --input "$rin" --output "$rout" > "$tmp/relay.log" &
  relay=$!
  until grep -q "relay ready" "$tmp/relay.log"; do sleep 0.05; done
  state="$tmp/state-$transport"
  "$BIN/cfensembled" --input "@$in" --output "@$outp" --input-type sub --state-dir "$state" \
    --log-level error --set metrics.listen=off --set learning.batch_size=256 &
  daemon=$!
  wait_control "$BIN/cfe" "$state"

  for r in $(seq "$REPEAT"); do
    load --input "$rin" --output "$rout" --expect pred --count "$N" --tag "$(wtag $r)" --name "relay-$transport"
    load --input "$in" --output "$outp" --count "$N" --tag "$(wtag $r)" --name "daemon-$transport"
    # Scoring while learning: one label (for an instance scored a window earlier) per pred.
    load --input "$in" --output "$outp" --count "$N" --labels 1 --tag "$(ltag $r)" --name "daemon-$transport-labels"
    # The same in batches (a window of 1,000 instances in flight, as above).
    load --input "$rin" --output "$rout" --expect pred --count "$N" --batch "$BATCH" --tag "$(btag $r)" --name "relay-$transport-b$BATCH"
    load --input "$in" --output "$outp" --count "$N" --batch "$BATCH" --tag "$(btag $r)" --name "daemon-$transport-b$BATCH"
    load --input "$in" --output "$outp" --count "$N" --batch "$BATCH" --labels 1 --tag "$(mtag $r)" --name "daemon-$transport-b$BATCH-labels"
    floor 1 "floor-$transport"
    floor "$BATCH" "floor-$transport-b$BATCH"
  done
  load --input "$rin" --output "$rout" --expect pred --count "$PACED" --rate 20000 --tag b --name "relay-$transport-20k"
  load --input "$in" --output "$outp" --count "$PACED" --rate 20000 --tag b --name "daemon-$transport-20k"
  load --input "$rin" --output "$rout" --expect pred --count "$PACED" --rate 20000 --batch "$PACED_BATCH" --tag v --name "relay-$transport-20k-b$PACED_BATCH"
  load --input "$in" --output "$outp" --count "$PACED" --rate 20000 --batch "$PACED_BATCH" --tag v --name "daemon-$transport-20k-b$PACED_BATCH"
  "$BIN/cfe" status --state-dir "$state" --json | python3 -c '
import json,sys; s=json.load(sys.stdin); a=s.get("accounting",{})
print(json.dumps({"name":"daemon-status-'$transport'","labels_learnt":a.get("labels_learnt"),"model_version":s.get("model_version")}))' | tee -a "$out"
  kill -TERM $daemon; wait $daemon || true
  kill $relay; wait $relay 2>/dev/null || true
done

# Memory: RSS per pending instance with 10 classifiers, PENDING unlabelled preds.
in="ipc://$tmp/min"; outp="ipc://$tmp/mout"; state="$tmp/state-mem"
"$BIN/cfensembled" --input "@$in" --output "@$outp" --input-type sub --state-dir "$state" \
  --log-level error --set metrics.listen=off --set state.max_pending=$PENDING --set state.checkpoint_interval_s=0 &
daemon=$!
wait_control "$BIN/cfe" "$state"
# RSS of the idle daemon (its pending table is reserved for the cap but not yet touched):
# the per-instance figure charges the table, the entries and the order queue in full.
before=$(rss_kib $daemon)
"$BIN/cfe-loadgen" load --input "$in" --output "$outp" --count 20000 --tag w --name warm >/dev/null
"$BIN/cfe-loadgen" load --input "$in" --output "$outp" --count "$PENDING" --tag m --name "memory" >/dev/null
sleep 1
after=$(rss_kib $daemon)
pending=$("$BIN/cfe" status --state-dir "$state" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])')
echo "{\"name\":\"memory\",\"pending\":$pending,\"rss_before_kib\":$before,\"rss_after_kib\":$after,\"bytes_per_pending\":$(( (after - before) * 1024 / pending ))}" | tee -a "$out"
kill -TERM $daemon; wait $daemon || true

# The peers, in the same minutes (their own venv; skipped, and said so, when it cannot be made).
if (cd bench/throughput && { [ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }; }) >/dev/null 2>&1; then
  bench/throughput/.venv/bin/python bench/throughput/peers.py 100000 | tee -a "$out"
else
  echo "peers skipped: could not install bench/throughput/requirements.txt" >&2
fi

BATCH=$BATCH PACED_BATCH=$PACED_BATCH python3 bench/throughput/summarise.py "$out" docs/throughput.md
cat docs/throughput.md
