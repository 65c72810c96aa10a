#!/usr/bin/env python3
"""A numpy replica of cfensembled's aggregator, for screening learning levers in seconds.

On a stream where every classifier reports in every message, the daemon's aggregator
reads the reported probabilities as they are (`model.aggregator_input: observed`), so
its scores depend only on the aggregator: start at w = s/m, b = -s/2; every
`learning.batch_size` labels, add them to the class-stratified replay buffer and take
`learning.aggregator_steps` Adam steps on the class-weighted cross-entropy with the
equal-weights prior; publish sigmoid(s (w.v / sum(w) - 1/2)). This file repeats that in
numpy over the same streams as evaluate.py (the fully observed ones: synthetic, drift,
outage and real), in the same event order. With the shipped configuration it reproduces
the daemon's PR-AUC in docs/quality*.json to 4 decimals on all 24 of them; `--check`
verifies that. A lever that looks good here still has to be built into the daemon and
measured with run.sh (streams with missing entries need the CF reconstruction, which
the replica does not model).

    bench/quality/.venv/bin/python bench/quality/replica.py --check
    bench/quality/.venv/bin/python bench/quality/replica.py --nonnegative
    bench/quality/.venv/bin/python bench/quality/replica.py --history   # replay training preds first
"""
import argparse
import json
import math
import os
import pickle
import sys

import numpy as np
from sklearn.metrics import average_precision_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, "..", "..", "docs")
CACHE = os.path.join(HERE, ".venv", "replica-streams.pkl")


def streams():
    """The fully observed streams of evaluate.py (main and validation), cached."""
    if os.path.exists(CACHE):
        with open(CACHE, "rb") as f:
            return pickle.load(f)
    out = {}
    for make in evaluate.build_streams(False) + evaluate.validation_streams():
        s = make()
        if any(len(p) != len(s.names) for p in s.preds):
            continue
        out[s.name] = {
            "M": np.array([[p[n] for n in s.names] for p in s.preds]), "y": s.labels, "arrive": s.arrive,
            "train": s.train_preds, "train_y": s.train_labels, "kind": s.kind,
        }
    with open(CACHE, "wb") as f:
        pickle.dump(out, f)
    return out


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def replay(stream, a):
    """Prequential scores of the replica on one stream."""
    M, y, arrive = stream["M"], stream["y"], stream["arrive"]
    n, m = M.shape
    s = a.initial_scale
    w, b = np.full(m, s / m), -s / 2
    first, second, steps = np.zeros(m + 1), np.zeros(m + 1), 0
    due = {}
    for i, t in enumerate(arrive):
        if math.isfinite(t) and t < n:
            due.setdefault(int(t), []).append(i)
    order = list(range(n))
    if a.history:   # pred messages carrying their label, before the stream
        M = np.vstack([M, stream["train"]])
        y = np.concatenate([y, stream["train_y"]])
        due[-1] = list(range(n, len(y)))
        order = [-1] + order
    pos, neg, batch = [], [], []
    scores = np.zeros(n)
    for t in order:
        for i in due.get(t, []):
            batch.append(i)
            if len(batch) < a.batch_size:
                continue
            for j in batch:
                (pos if y[j] == 1 else neg).append(j)
            pos, neg, batch = pos[-a.replay_positives:], neg[-a.replay_negatives:], []
            if not (pos and neg):
                continue
            rows = np.array(pos + neg)
            X, L = M[rows], y[rows]
            p, q = len(pos), len(neg)
            omega = np.where(L == 1, 0.5 / p, 0.5 / q)
            strength = a.l2 / (2 * p * q / (p + q))
            for _ in range(a.aggregator_steps):
                gz = omega * (sigmoid(X @ w + b) - L)
                g = np.append(X.T @ gz, gz.sum())
                g[:m] += strength * (w - w.mean())
                steps += 1
                first = 0.9 * first + 0.1 * g
                second = 0.999 * second + 0.001 * g * g
                d = a.lr * (first / (1 - 0.9 ** steps)) / (np.sqrt(second / (1 - 0.999 ** steps)) + 1e-8)
                w, b = w - d[:m], b - d[m]
                if a.nonnegative:
                    w = np.maximum(w, 0)
        if t < 0:
            continue
        total = w.sum()
        scores[t] = sigmoid(s * (M[t] @ w / total - 0.5)) if total > 1e-9 else sigmoid(M[t] @ w + b)
    return scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--aggregator-steps", type=int, default=5)
    ap.add_argument("--l2", type=float, default=0.0001)
    ap.add_argument("--initial-scale", type=float, default=4.0)
    ap.add_argument("--replay-positives", type=int, default=512)
    ap.add_argument("--replay-negatives", type=int, default=2048)
    ap.add_argument("--nonnegative", action="store_true", help="learning.nonnegative_weights=true")
    ap.add_argument("--history", action="store_true",
                    help="first replay the base models' out-of-fold training predictions with their labels")
    ap.add_argument("--check", action="store_true", help="fail unless the replica matches docs/quality*.json")
    a = ap.parse_args()

    daemon, best = {}, {}
    for name in ["quality.json", "quality-validation.json"]:
        path = os.path.join(DOCS, name)
        if os.path.exists(path):
            for r in json.load(open(path)):
                daemon[r["stream"]] = r["pr_auc"]["daemon"]
                best[r["stream"]] = max(r["pr_auc"][k] for k in evaluate.PEERS)
    margins, mismatched = [], []
    print(f"{'stream':24s} {'replica':>8s} {'daemon':>8s} {'best peer':>9s} {'margin':>8s}")
    for name, s in streams().items():
        v = average_precision_score(s["y"], replay(s, a))
        d, bp = daemon.get(name, float("nan")), best.get(name, float("nan"))
        margins.append((name, s["kind"], v - bp))
        if not abs(v - d) < 1e-4:
            mismatched.append(name)
        print(f"{name:24s} {v:8.4f} {d:8.4f} {bp:9.4f} {v - bp:+8.4f}")
    real = [mg for _, kind, mg in margins if kind == "real"]
    below = [n for n, _, mg in margins if mg < -0.00005]
    print(f"below the best peer: {len(below)} of {len(margins)} ({', '.join(below)}); worst margin "
          f"{min(mg for _, _, mg in margins):+.4f}; mean margin on the {len(real)} real streams {np.mean(real):+.5f}")
    if a.check:
        if mismatched:
            sys.exit(f"replica differs from the daemon by 1e-4 or more on: {', '.join(mismatched)}")
        print("replica matches the daemon on every stream")


if __name__ == "__main__":
    main()
