#!/usr/bin/env bash
# Scale-out on one machine: throughput of 1, 2 and 3 scorer processes behind one learner,
# next to one `--role all` daemon, driven by the same load generator (PUSH round-robin
# over the scorers' PULL inputs, answers from all their outputs), over ipc://. Also the
# learner's own bound (scored instances pushed straight to it) and the size and cost of
# one model state (the fan-out per update).
#
#   bench/scaleout/run.sh            # writes docs/scaleout.md and docs/scaleout.jsonl
#   N=100000 bench/scaleout/run.sh   # a shorter run
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-300000}
swift build -c release >/dev/null
BIN=.build/release
tmp=$(mktemp -d /tmp/cfe-scale-XXXXXX)
out=docs/scaleout.jsonl
: > "$out"
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

load() { "$BIN/cfe-loadgen" load "$@" | tee -a "$out"; }
status() { "$BIN/cfe" status --state-dir "$1" --json --timeout 2; }
wait_control() {
  for _ in $(seq 200); do
    status "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon in $1 did not start" >&2; exit 1
}
common=(--log-level error --set metrics.listen=off --set learning.batch_size=256)

start_learner() {  # $1: name
  local d="$tmp/$1"
  "$BIN/cfensembled" --role learner --state-dir "$d" --input "@ipc://$d.in" --output "@ipc://$d.out" "${common[@]}" \
    --set state.checkpoint_interval_s=0 \
    --set cluster.model_endpoint="@ipc://$d.model" --set cluster.snapshot_endpoint="@ipc://$d.snap" \
    --set cluster.forward_endpoint="@ipc://$d.fwd" &
  wait_control "$d"
}
start_scorer() {  # $1: learner name, $2: scorer name
  local l="$tmp/$1" d="$tmp/$2"
  "$BIN/cfensembled" --role scorer --state-dir "$d" --input "@ipc://$d.in" --input-type pull --output "@ipc://$d.out" \
    "${common[@]}" --set cluster.model_endpoint="ipc://$l.model" --set cluster.snapshot_endpoint="ipc://$l.snap" \
    --set cluster.forward_endpoint="ipc://$l.fwd" &
  wait_control "$d"
}

# Baseline: one process doing everything, PULL input, same generator.
d="$tmp/all"
"$BIN/cfensembled" --state-dir "$d" --input "@ipc://$d.in" --input-type pull --output "@ipc://$d.out" "${common[@]}" &
wait_control "$d"
load --push --input "ipc://$d.in" --output "ipc://$d.out" --count "$N" --tag a --name "all"
load --push --input "ipc://$d.in" --output "ipc://$d.out" --count "$N" --labels 0.1 --tag c --name "all-labels"
kill -TERM %1; wait %1 || true

for K in 1 2 3; do
  start_learner "L$K"
  ins=(); outs=()
  for k in $(seq "$K"); do
    start_scorer "L$K" "L$K-s$k"
    ins+=("ipc://$tmp/L$K-s$k.in"); outs+=("ipc://$tmp/L$K-s$k.out")
  done
  in=$(IFS=,; echo "${ins[*]}"); outp=$(IFS=,; echo "${outs[*]}")
  load --push --input "$in" --output "$outp" --count "$N" --tag a --name "scorers-$K"
  load --push --input "$in" --output "$outp" --count "$N" --labels 0.1 --tag c --name "scorers-$K-labels"
  # The learner may still be working through forwarded instances: time how long it takes
  # to have learnt every label after the last score came back.
  labels=$(python3 -c "print(int(($N - 1000) * 0.1))")
  t0=$(date +%s.%N)
  for _ in $(seq 600); do
    got=$(status "$tmp/L$K" | python3 -c 'import json,sys; a=json.load(sys.stdin)["accounting"]; print(a["labels_learnt"] + a["labels_unmatched"])')
    [ "$got" -ge "$labels" ] && break
    sleep 0.05
  done
  lag=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
  sleep 0.5
  versions=""; applies=""
  for k in $(seq "$K"); do
    versions+="$(status "$tmp/L$K-s$k" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])'),"
    applies+="$(status "$tmp/L$K-s$k" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["cluster"]["apply_us_mean"]))'),"
  done
  status "$tmp/L$K" | python3 -c '
import json,sys; s=json.load(sys.stdin); c=s["cluster"]
print(json.dumps({"name":"learner-'$K'","catch_up_s":'$lag',"labels_learnt":s["accounting"]["labels_learnt"],
  "labels_unmatched":s["accounting"]["labels_unmatched"],"model_version":s["model_version"],
  "scorer_versions":[int(v) for v in "'"$versions"'".strip(",").split(",")],
  "scorer_apply_us":[int(v) for v in "'"$applies"'".strip(",").split(",")],
  "state_bytes":c["state_bytes"],"publish_us_mean":c["publish_us_mean"],"states_published":c["states_published"]}))' | tee -a "$out"
  kill -TERM $(jobs -p); wait || true
done

# The learner's own bound: scored instances (and 0.1 labels each) pushed straight to it.
start_learner "F"
expected=$(python3 -c "print(int($N + ($N - 1000) * 0.1))")
t0=$(date +%s.%N)
"$BIN/cfe-loadgen" feed --forward "ipc://$tmp/F.fwd" --count "$N" --labels 0.1
while true; do
  got=$(status "$tmp/F" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accounting"]["received"])')
  [ "$got" -ge "$expected" ] && break
  sleep 0.05
done
t1=$(date +%s.%N)
python3 -c "import json; print(json.dumps({'name':'learner-feed','messages':$expected,'seconds':$t1-$t0,'msgs_per_s':$expected/($t1-$t0)}))" | tee -a "$out"
kill -TERM %1 2>/dev/null || true; kill -TERM $(jobs -p) 2>/dev/null || true; wait || true

python3 bench/scaleout/summarise.py "$out" docs/scaleout.md
cat docs/scaleout.md
