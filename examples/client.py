#!/usr/bin/env python3
"""A minimal cfensembled client, with the project's Python package (clients/python):
publishes preds, prints the scores, then sends the labels and shows the model learning
from them (model_version grows).

    ./scripts/python-env.sh                          # .venv with pyzmq and the package
    .venv/bin/python examples/client.py              # daemon on its default endpoints
    .venv/bin/python examples/client.py --input ipc:///tmp/in --output ipc:///tmp/out --state-dir /tmp/state -n 500
"""
import argparse
import random
import time

from cfensembled import ControlClient, DaemonUnavailable, Producer, Score, Subscriber


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default="tcp://127.0.0.1:5555", help="the daemon's input (it binds, we connect)")
    ap.add_argument("--output", default="tcp://127.0.0.1:5556", help="the daemon's output PUB socket")
    ap.add_argument("--state-dir", default="./state", help="the daemon's state directory (its control socket)")
    ap.add_argument("-n", type=int, default=300, help="instances to send (>= learning.batch_size for an update)")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    control = ControlClient(state_dir=args.state_dir)
    scores = Subscriber(args.output, topics=["score"])
    producer = Producer(args.input)  # PUB, for the daemon's default input.type sub
    try:
        # PUB/SUB connections take a moment to carry subscriptions ("slow joiner"): wait
        # until what we send reaches the daemon, then nothing sent afterwards is lost.
        producer.wait_ready(control)
    except DaemonUnavailable as e:
        raise SystemExit(f"{e}: is the daemon running on {args.input} / {args.output}?")
    time.sleep(0.2)  # our own subscription to the output, likewise

    rng = random.Random(7)
    labels = {}
    for i in range(args.n):
        y = 1 if rng.random() < 0.1 else 0
        labels[f"txn-{i:06d}"] = y
        p = lambda skill: min(1.0, max(0.0, rng.gauss(0.5 + (skill if y else -skill), 0.2)))
        producer.send_pred(f"txn-{i:06d}", {"xgb": round(p(0.3), 4), "rf": round(p(0.25), 4), "lr": round(p(0.1), 4)},
                           ts=time.time())

    got = {}

    def keep(m):
        if isinstance(m, Score) and m.id in labels:
            got[m.id] = m
        return len(got) == args.n

    scores.run(keep, timeout=args.timeout)
    for m in list(got.values())[:5]:
        print(f"score {m.id} {m.score:.4f} model_version={m.model_version} n_preds={m.n_preds}")
    print(f"preds sent: {args.n}, scores received: {len(got)}")

    # Labels arrive later (chargebacks); the daemon learns in mini-batches.
    for txn, y in labels.items():
        producer.send_label(txn, y)
    version = 0
    deadline = time.time() + args.timeout
    k = 0
    while version == 0 and time.time() < deadline:
        k += 1
        producer.send_pred(f"after-{k}", {"xgb": 0.9, "rf": 0.8, "lr": 0.6})
        m = scores.recv(timeout=0.5)
        while m is not None and not (isinstance(m, Score) and m.id == f"after-{k}"):
            m = scores.recv(timeout=0.5)
        if m is not None:
            version = m.model_version
            print(f"score {m.id} {m.score:.4f} model_version={version}")
    print(f"labels sent: {len(labels)}, model_version now: {version}")
    if len(got) != args.n or version == 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
