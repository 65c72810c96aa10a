#!/usr/bin/env python3
"""A numpy replica of cfensembled's aggregator, for screening learning levers in seconds.

The daemon's aggregator reads the reported probabilities as they are
(`model.aggregator_input: observed`) and, for a classifier that did not report, the
mean of those that did (`model.missing_fill: average`), so its scores depend only on
the aggregator: start at w = s/m, b = -s/2 (a classifier registered after the first
update starts at the mean weight); every `learning.batch_size` labels, note the
learned expert's score of each (before learning from it), add them to the
class-stratified replay buffer and take `learning.aggregator_steps` gradient steps
(`--step-rule adam`: the earlier Adam rule) on the class-weighted cross-entropy with
the equal-weights prior; let the expert selector weigh the learned combination, the
average and each classifier; publish sigmoid(s (combined value - 1/2)). This file
repeats that in numpy over every stream of evaluate.py's four suites, in the same
event order and with the classifiers registered in the daemon's order. With the
shipped configuration it reproduces the daemon's PR-AUC in docs/quality*.json to 4
decimals (`--check` verifies that). A lever that looks good here still has to be
built into the daemon and measured with run.sh; levers.py screens learners the
replica does not model (convergence, log-odds, other fills and outputs).

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
CACHE = os.path.join(HERE, ".venv", "replica-streams-v3.pkl")


def streams():
    """Every stream of evaluate.py (every suite), as matrices with NaN where a classifier
    did not report, cached."""
    if os.path.exists(CACHE):
        with open(CACHE, "rb") as f:
            return pickle.load(f)
    out = {}
    makers = (evaluate.build_streams(False) + evaluate.fraud_streams(False) + evaluate.validation_streams()
              + evaluate.imbalanced_streams())
    for make in makers:
        s = make()
        out[s.name] = {
            "M": np.array([[p.get(n, np.nan) for n in s.names] for p in s.preds]), "y": s.labels,
            "arrive": s.arrive, "train": s.train_preds, "train_y": s.train_labels, "kind": s.kind,
            "names": s.names, "first": [next(iter(p)) for p in s.preds[:1]],
            "order": registration_order(s),
        }
    with open(CACHE, "wb") as f:
        pickle.dump(out, f)
    return out


def registration_order(s):
    """The classifiers' indices in the order the daemon registers them (first report; within
    a message, in the message's order), and the instance at which each first reports."""
    seen, first = [], {}
    for t, p in enumerate(s.preds):
        for name in p:
            if name not in first:
                first[name] = t
                seen.append(s.names.index(name))
    return [(u, first[s.names[u]]) for u in seen]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def precision_at_positives(scores, labels, negw):
    """Per positive, precision at its score's threshold (ties one threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    s, ls = scores[order], labels[order]
    tp, fp = np.cumsum(ls), np.cumsum(1 - ls) * negw
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    end = np.repeat(last, np.diff(np.r_[-1, last]))
    out = np.empty(len(labels))
    out[order] = tp[end] / (tp[end] + fp[end])
    return out[labels == 1]


def decide(X, avg, y, pos, neg, learned, counts, a, state):
    """ExpertSelector.decide over the replay buffer: experts learned, average, each classifier."""
    p, q = len(pos), len(neg)
    stride = max(1, q // max(256, 2 * p))
    sample = neg[::stride]
    due = state.get("pi") is None or (counts[1] - state["pos_at"] >= max(1, p // 8)
                                      and (p + len(sample) < 1024 or counts[0] - state["lab_at"] >= (p + len(sample)) // 4))
    if p < 2 or not due:
        return
    idx = np.array(pos + sample)
    L = y[idx]
    negw = (counts[2] / max(counts[1], 1)) * p / len(sample)
    experts = [learned[idx], avg[idx]] + [X[idx, u] for u in range(X.shape[1])]
    P = np.array([precision_at_positives(e, L, negw) for e in experts])

    def margin(r):
        d = P - P[r]
        z = np.full(len(P), a.expert_z)
        if r == 0 and a.expert_z_average is not None:
            z[1] = a.expert_z_average   # experiment: a separate threshold for moving to the average
        return d.mean(axis=1) - z * (d.std(axis=1, ddof=1) / np.sqrt(p) + 1e-9)
    score = margin(0)
    score[2:] = np.minimum(score[2:], margin(1)[2:])
    score[0] = 0
    logit = a.expert_eta * p * score
    pi = np.exp(logit - logit.max())
    state.update(pi=pi / pi.sum(), pos_at=counts[1], lab_at=counts[0])


def replay(stream, a):
    """Prequential scores of the replica on one stream."""
    M, y, arrive = stream["M"], stream["y"], stream["arrive"]
    n = M.shape[0]
    s = a.initial_scale
    avg = np.nanmean(M, axis=1)
    # What the aggregator reads: reported probabilities, missing ones the mean of those
    # reported (model.missing_fill: average).
    F = np.where(np.isnan(M), avg[:, None], M)
    registration = list(stream["order"])   # (column, first instance), in registration order
    reg = []                                # registered columns, in the daemon's index order
    w, b = np.zeros(0), -s / 2
    first, second, steps = np.zeros(1), np.zeros(1), 0
    due = {}
    for i, t in enumerate(arrive):
        if math.isfinite(t) and t < n:
            due.setdefault(int(t), []).append(i)
    order = list(range(n))
    if a.history:   # pred messages carrying their label, before the stream
        F = np.vstack([F, stream["train"]])
        avg = np.concatenate([avg, stream["train"].mean(axis=1)])
        y = np.concatenate([y, stream["train_y"]])
        due[-1] = list(range(n, len(y)))
        order = [-1] + order
    pos, neg, batch = [], [], []
    nextpos = nextneg = 0   # ring positions, as ReplayBuffer keeps them
    scores = np.zeros(n)
    learned = np.zeros(len(y))
    state, counts, version = {}, [0, 0, 0], 0   # labels, positives, negatives learnt
    state["trace"] = []

    def register(t):
        nonlocal w, b, first, second
        while registration and (registration[0][1] <= t or t < 0):
            u, _ = registration.pop(0)
            reg.append(u)
            if version > 0 and len(w):
                w = np.append(w, w.max() if a.new_weight == "max" else w.mean())
            else:
                w = np.full(len(reg), s / len(reg))
                b = -s / 2
            first, second = np.append(first, 0.0), np.append(second, 0.0)   # the optimizer's moments resize
            if state.get("pi") is not None:
                state["pi"] = np.append(state["pi"], 0.0)

    if a.history:
        register(-1)
    for t in order:
        for i in due.get(t, []):
            batch.append(i)
            if len(batch) < a.batch_size:
                continue
            X_all = F[:, reg]
            total = w.sum()
            for j in batch:
                # The learned expert's score before learning from it (normalized output).
                learned[j] = X_all[j] @ w / total if total > 1e-9 else avg[j]
                if y[j] == 1:
                    if len(pos) < a.replay_positives: pos.append(j)
                    else: pos[nextpos] = j
                    nextpos = (nextpos + 1) % a.replay_positives
                else:
                    if len(neg) < a.replay_negatives: neg.append(j)
                    else: neg[nextneg] = j
                    nextneg = (nextneg + 1) % a.replay_negatives
            counts = [counts[0] + len(batch), counts[1] + int(y[batch].sum()), counts[2] + int((1 - y[batch]).sum())]
            batch = []
            version += 1
            if not (pos and neg):
                continue
            m = len(reg)
            rows = np.array(pos + neg)
            X, L = X_all[rows], y[rows]
            p, q = len(pos), len(neg)
            omega = np.where(L == 1, 0.5 / p, 0.5 / q)
            strength = a.l2 / (2 * p * q / (p + q))
            scale = np.ones(m + 1)
            if a.reported_step:   # experiment: each weight steps at the rate of the rows where its classifier reported
                R = ~np.isnan(M[rows][:, reg]) if not a.history else np.ones((len(rows), m), bool)
                frac = omega @ R
                scale[:m] = 1 / np.maximum(frac, a.reported_floor)
            for _ in range(a.aggregator_steps):
                gz = omega * (sigmoid(X @ w + b) - L)
                g = np.append(X.T @ gz, gz.sum())
                g[:m] += strength * (w - w.mean())
                steps += 1
                if a.step_rule == "sgd":
                    d = a.lr * g * scale
                else:
                    first = 0.9 * first + 0.1 * g
                    second = 0.999 * second + 0.001 * g * g
                    d = a.lr * (first / (1 - 0.9 ** steps)) / (np.sqrt(second / (1 - 0.999 ** steps)) + 1e-8)
                w, b = w - d[:m], b - d[m]
                if a.nonnegative:
                    w = np.maximum(w, 0)
            if a.expert_selection:
                decide(X_all, avg, y, pos, neg, learned, counts, a, state)
            state["trace"].append((t, dict(zip(reg, w))))
        if t < 0:
            continue
        register(t)
        x = F[t, reg]
        total = w.sum()
        pi = state.get("pi")
        if pi is not None:
            value = pi[0] * (x @ w / total if total > 1e-9 else avg[t]) + pi[1] * avg[t] + pi[2:] @ x
            scores[t] = sigmoid(s * (value - 0.5))
        else:
            scores[t] = sigmoid(s * (x @ w / total - 0.5)) if total > 1e-9 else sigmoid(x @ w + b)
    stream["_trace"] = state["trace"]
    return scores


def parser():
    """The command line; its defaults are the shipped configuration."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3.0)
    ap.add_argument("--step-rule", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--no-expert-selection", dest="expert_selection", action="store_false")
    ap.add_argument("--expert-z", type=float, default=3.0)
    ap.add_argument("--expert-eta", type=float, default=1.0)
    ap.add_argument("--expert-z-average", type=float, default=None,
                    help="experiment: the threshold for moving from the learned combination to the average (default: --expert-z)")
    ap.add_argument("--aggregator-steps", type=int, default=5)
    ap.add_argument("--l2", type=float, default=0.0001)
    ap.add_argument("--initial-scale", type=float, default=4.0)
    ap.add_argument("--replay-positives", type=int, default=512)
    ap.add_argument("--replay-negatives", type=int, default=2048)
    ap.add_argument("--nonnegative", action="store_true", help="learning.nonnegative_weights=true")
    ap.add_argument("--reported-step", action="store_true")
    ap.add_argument("--reported-floor", type=float, default=0.05)
    ap.add_argument("--new-weight", choices=["mean", "max"], default="mean",
                    help="experiment: a classifier registered after learning started takes the mean (shipped) or the largest weight")
    ap.add_argument("--history", action="store_true",
                    help="first replay the base models' out-of-fold training predictions with their labels")
    ap.add_argument("--check", action="store_true", help="fail unless the replica matches docs/quality*.json")
    return ap


def main():
    a = parser().parse_args()

    daemon, best = {}, {}
    for name in ["quality-main.json", "quality-fraud.json", "quality-validation.json", "quality-imbalanced.json"]:
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
