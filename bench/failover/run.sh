#!/usr/bin/env bash
# Learner failover (docs/scale-out.md#failover), release binary, on this machine:
#  1. What the warm standby costs: one scorer behind its learner, forwarding to that
#     learner alone, then to it and a standby (two PUSH), same load generator, rounds
#     alternated; preds/s with 0.1 label per pred.
#  2. The failover targets at 5,000 preds/s: the integration tests of ElectionTests run
#     against the release daemon (kill -9 of the active: score gaps, takeover time, labels
#     learnt; SIGSTOP past the lease; etcd down 30 s; ten failovers in a row).
#
#   bench/failover/run.sh     # writes docs/failover.jsonl; docs/failover.md quotes it
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/throughput/common.sh
N=${N:-200000}
RATE=${RATE:-5000}
swift build -c release >/dev/null
swift build --build-tests >/dev/null
BIN=.build/release
tmp=$(mktemp -d /tmp/cfe-failover-XXXXXX)
out=docs/failover.jsonl
: > "$out"
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

common=(--log-level error --set metrics.listen=off --set learning.batch_size=256 --set state.checkpoint_interval_s=0)

# etcd for part 1 (the standby campaigns and stays a standby).
cp=$(free_port); pp=$(free_port)
etcd --name b --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
  --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
  --initial-cluster "b=http://127.0.0.1:$pp" --log-level warn >"$tmp/etcd.log" 2>&1 &
for _ in $(seq 100); do curl -sf -X POST "http://127.0.0.1:$cp/v3/kv/range" -d '{"key":"AA=="}' >/dev/null && break; sleep 0.1; done
election=(--set "cluster.etcd_endpoints=http://127.0.0.1:$cp" --set cluster.etcd_ttl_s=5)

learner() {  # $1: name, then extra arguments
  local d="$tmp/$1"; shift
  "$BIN/cfensembled" --role learner --state-dir "$d" --input "@ipc://$d.in" --output "@ipc://$d.out" "${common[@]}" \
    --set cluster.name="$(basename "$d")" --set cluster.model_endpoint="@ipc://$d.model" \
    --set cluster.snapshot_endpoint="@ipc://$d.snap" --set cluster.forward_endpoint="@ipc://$d.fwd" "$@" &
  wait_control "$BIN/cfe" "$d" 20
}
scorer() {  # $1: name, $2: forward endpoints, then extra arguments
  local d="$tmp/$1" f="$2"; shift 2
  "$BIN/cfensembled" --role scorer --state-dir "$d" --input "@ipc://$d.in" --input-type pull --output "@ipc://$d.out" \
    "${common[@]}" --set cluster.forward_endpoints="$f" "$@" &
  wait_control "$BIN/cfe" "$d" 20
}

for round in 1 2 3; do
  for setup in alone standby; do
    name="$setup-$round"
    if [ "$setup" = alone ]; then
      learner "$name-L"
      scorer "$name-s" "ipc://$tmp/$name-L.fwd" --set cluster.model_endpoint="ipc://$tmp/$name-L.model" \
        --set cluster.snapshot_endpoint="ipc://$tmp/$name-L.snap"
    else
      learner "$name-A" "${election[@]}" --set cluster.etcd_prefix="/b$round"
      learner "$name-B" "${election[@]}" --set cluster.etcd_prefix="/b$round"
      scorer "$name-s" "ipc://$tmp/$name-A.fwd,ipc://$tmp/$name-B.fwd" "${election[@]}" --set cluster.etcd_prefix="/b$round"
    fi
    "$BIN/cfe-loadgen" load --push --input "ipc://$tmp/$name-s.in" --output "ipc://$tmp/$name-s.out" --count "$N" \
      --labels 0.1 --tag "${setup:0:1}" --name "$name" | tee -a "$out"
    kill -TERM $(jobs -p | tail -n +2) 2>/dev/null || true
    sleep 2
  done
done
kill -TERM %1 2>/dev/null || true

# Part 2: the failover tests against the release daemon.
report="$tmp/report.txt"; : > "$report"
CFENSEMBLED_BIN="$PWD/$BIN/cfensembled" CFE_FAILOVER_RATE="$RATE" CFE_FAILOVER_REPORT="$report" \
  CFE_PYTHON="$(./scripts/python-env.sh)" swift test --skip-build --filter ElectionTests 2>&1 | grep -E "✔|✘|failover:" || true
python3 - "$report" "$RATE" >>"$out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    print(json.dumps({"name": "failover-test", "rate": int(sys.argv[2]), "report": line.strip()}))
PY
cat "$out"
