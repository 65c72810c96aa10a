#!/usr/bin/env python3
"""A minimal cfensembled client (pyzmq): publishes preds, prints the scores, then sends
the labels and shows the model learning from them (model_version grows).

    pip install pyzmq
    python3 examples/client.py                       # daemon on its default endpoints
    python3 examples/client.py --input ipc:///tmp/in --output ipc:///tmp/out -n 500
"""
import argparse
import json
import random
import time

import zmq


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default="tcp://127.0.0.1:5555", help="the daemon's input (it binds, we connect)")
    ap.add_argument("--output", default="tcp://127.0.0.1:5556", help="the daemon's output PUB socket")
    ap.add_argument("-n", type=int, default=300, help="instances to send (>= learning.batch_size for an update)")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(args.input)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"score")
    sub.connect(args.output)

    def send(topic, body):
        pub.send_multipart([topic.encode(), json.dumps(body).encode()])

    def scores(until, timeout):
        """Yield score bodies until `until(body)` is true or the timeout passes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if sub.poll(100):
                _, body = sub.recv_multipart()
                msg = json.loads(body)
                yield msg
                if until(msg):
                    return

    # PUB/SUB connections take a moment to carry subscriptions (ZeroMQ's "slow joiner"):
    # send a probe until its score comes back, then nothing sent afterwards is lost.
    ready = False
    for k in range(100):
        send("pred", {"id": f"probe-{k}", "preds": {"xgb": 0.5}})
        if any(m["id"] == f"probe-{k}" for m in scores(lambda m: m["id"] == f"probe-{k}", 0.2)):
            ready = True
            break
    if not ready:
        raise SystemExit("no score from the daemon: is it running on %s / %s?" % (args.input, args.output))

    rng = random.Random(7)
    labels = {}
    for i in range(args.n):
        y = 1 if rng.random() < 0.1 else 0
        labels[f"txn-{i:06d}"] = y
        p = lambda skill: min(1.0, max(0.0, rng.gauss(0.5 + (skill if y else -skill), 0.2)))
        send("pred", {"id": f"txn-{i:06d}", "ts": time.time(),
                      "preds": {"xgb": round(p(0.3), 4), "rf": round(p(0.25), 4), "lr": round(p(0.1), 4)}})

    got = {}
    for m in scores(lambda m: len(got) + (m["id"] in labels and m["id"] not in got) >= args.n, args.timeout):
        if m["id"] in labels:
            got[m["id"]] = m
    for m in list(got.values())[:5]:
        print(f"score {m['id']} {m['score']:.4f} model_version={m['model_version']} n_preds={m['n_preds']}")
    print(f"preds sent: {args.n}, scores received: {len(got)}")

    # Labels arrive later (chargebacks); the daemon learns in mini-batches.
    for txn, y in labels.items():
        send("label", {"id": txn, "label": y})
    version = 0
    deadline = time.time() + args.timeout
    k = 0
    while version == 0 and time.time() < deadline:
        k += 1
        send("pred", {"id": f"after-{k}", "preds": {"xgb": 0.9, "rf": 0.8, "lr": 0.6}})
        for m in scores(lambda m: m["id"] == f"after-{k}", 0.5):
            if m["id"] == f"after-{k}":
                version = m["model_version"]
                print(f"score {m['id']} {m['score']:.4f} model_version={version}")
    print(f"labels sent: {len(labels)}, model_version now: {version}")
    if len(got) != args.n or version == 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
