#!/usr/bin/env python3
"""Learning levers beyond the replica, screened in numpy over the streams of evaluate.py.

replica.py reproduces the shipped learner exactly; this file tries other learners in the
same prequential event order: logistic regression to convergence (Newton, `--learner
newton`) or the shipped gradient steps (`--learner sgd`), in probability or log-odds
space (`--space`), on a replay buffer of `--pos` positives and `--neg` negatives, with
the prior's strength per effective sample (`--l2mode neff`) or per label (`total`), the
missing entries filled with the mean of the reported (`--fill mean`) or by
conditional-mean imputation in log-odds (`cond`), the published value normalised as the
daemon's (default), with the intercept (`--normb`) or the raw logistic output (`--raw`),
and the shipped expert selector on top (`--no-select` to leave it out). It prints each
synthetic stream against the refitted stacker of docs/quality-*.json and the real
streams' margins over the simple average and the best peer.

    bench/quality/.venv/bin/python bench/quality/levers.py --learner sgd --l2 1e-4      # ~ the shipped learner
    bench/quality/.venv/bin/python bench/quality/levers.py --learner newton --l2 0.1 --pos 4096 --neg 16384
"""
import argparse
import json
import math
import os
import sys
import time
import numpy as np
from sklearn.metrics import average_precision_score
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replica  # noqa: E402
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")

sigmoid = replica.sigmoid
prec_at_pos = replica.precision_at_positives


def features(M, a):
    """Filled feature rows and the average of what was reported."""
    obs = ~np.isnan(M)
    avg = np.nanmean(M, axis=1)
    if a.space == "logit":
        eps = a.eps
        L = np.log(np.clip(M, eps, 1 - eps) / (1 - np.clip(M, eps, 1 - eps)))
        fill = np.nanmean(L, axis=1)
        X = np.where(obs, L, fill[:, None])
    else:
        X = np.where(obs, M, avg[:, None])
    if a.indicators:
        X = np.hstack([X, (~obs).astype(float)])
    return X, avg, np.where(obs, M, avg[:, None])

def newton(X, L, omega, w, b, lam, prior, iters):
    n, m = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.append(w, b)
    P = np.append(prior, 0.0)
    reg = np.full(m + 1, lam); reg[-1] = 0
    for _ in range(iters):
        p = sigmoid(A @ theta)
        g = A.T @ (omega * (p - L)) + reg * (theta - P)
        H = (A * (omega * p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-10 * np.eye(m + 1)
        step = np.linalg.solve(H, g)
        nrm = np.max(np.abs(step))
        if nrm > 1.0: step = step / nrm
        theta = theta - step
        if np.max(np.abs(step)) < 1e-6: break
    return theta[:m], theta[m]

def value(X, w, b, a, m0):
    if a.raw:
        return sigmoid(np.clip(X @ w + b, -30, 30))
    tot = w[:m0].sum()
    if tot <= 1e-9:
        return None
    z = (X[:, :m0] @ w[:m0] + (X[:, m0:] @ w[m0:] if X.shape[1] > m0 else 0)) / tot
    if a.normb:
        return sigmoid(a.scale * (z + b / tot))
    return sigmoid(z) if a.space == "logit" else z

def logits(M, eps):
    P = np.clip(M, eps, 1 - eps)
    return np.log(P / (1 - P))

def cond_fill(Lg, obs, mu, C, ridge=1e-3):
    """Conditional-mean imputation of missing logits under N(mu, C), per pattern."""
    out = np.where(obs, Lg, 0.0)
    keys = np.packbits(obs, axis=1, bitorder="little")
    keys = keys.view(np.uint8).astype(np.int64) @ (256 ** np.arange(keys.shape[1]))
    for k in np.unique(keys):
        rows = np.nonzero(keys == k)[0]
        o = obs[rows[0]]
        if o.all(): continue
        S, Mi = np.nonzero(o)[0], np.nonzero(~o)[0]
        Css = C[np.ix_(S, S)] + ridge * np.eye(len(S))
        B = np.linalg.solve(Css, C[np.ix_(S, Mi)])
        out[np.ix_(rows, Mi)] = mu[Mi] + (Lg[np.ix_(rows, S)] - mu[S]) @ B
    return out

def run(s, a):
    M, y, arrive = s["M"], s["y"], s["arrive"]
    n, m0 = M.shape
    X, avg, filled = features(M, a)
    if a.fill == "cond":
        obs = ~np.isnan(M)
        Lg = np.where(obs, logits(np.nan_to_num(M, nan=0.5), a.eps), 0.0)
        # running pairwise-complete statistics of logits over scored instances, in blocks of 2048
        Xc = np.zeros_like(Lg)
        blk = 2048
        S1 = np.zeros(m0); N1 = np.zeros(m0); S2 = np.zeros((m0, m0)); N2 = np.zeros((m0, m0)); SA = np.zeros((m0, m0)); SB = np.zeros((m0, m0))
        for lo in range(0, n, blk):
            hi = min(n, lo + blk)
            if N1.min() < 50:
                mu = np.zeros(m0); C = np.eye(m0)
            else:
                mu = S1 / N1
                # pairwise covariance with pair means
                ma, mb = SA / np.maximum(N2, 1), SB / np.maximum(N2, 1)
                C = S2 / np.maximum(N2, 1) - ma * mb
                ev, V = np.linalg.eigh((C + C.T) / 2); C = (V * np.maximum(ev, 1e-6)) @ V.T
            Xc[lo:hi] = cond_fill(Lg[lo:hi], obs[lo:hi], mu, C)
            o = obs[lo:hi].astype(float); x = Lg[lo:hi] * o
            S1 += x.sum(0); N1 += o.sum(0); S2 += x.T @ x; N2 += o.T @ o; SA += x.T @ o; SB += o.T @ x
        if a.space == "logit":
            X = Xc
        else:
            X = np.where(obs, M, sigmoid(Xc))
        filled = np.where(obs, M, sigmoid(Xc))
    m = X.shape[1]
    if a.space == "logit":
        w = np.full(m, 1.0 / m0) if not a.indicators else np.r_[np.full(m0, 1.0 / m0), np.zeros(m0)]
        b = 0.0
    else:
        w = np.full(m, a.scale / m0) if not a.indicators else np.r_[np.full(m0, a.scale / m0), np.zeros(m0)]
        b = -a.scale / 2
    prior = w.copy() if a.prior == "equal" else np.zeros(m)
    # label deliveries in order
    due = [(int(t), i) for i, t in enumerate(arrive) if math.isfinite(t) and t < n]
    due.sort()
    pos, neg = [], []
    learned = np.zeros(n)
    scores = np.zeros(n)
    counts = [0, 0, 0]
    state = {}
    fitted = False
    t_prev = 0
    k = 0
    def publish(lo, hi):
        if hi <= lo: return
        val = value(X[lo:hi], w, b, a, m0) if fitted else None
        if val is None:
            val = avg[lo:hi]
        pi = state.get("pi")
        if pi is not None and a.select:
            v = pi[0] * val + pi[1] * avg[lo:hi] + filled[lo:hi] @ pi[2:]
        else:
            v = val
        scores[lo:hi] = v
    while k < len(due):
        batch = due[k:k + a.batch]
        if len(batch) < a.batch: break
        k += a.batch
        t = batch[-1][0]       # update happens when the batch fills, before instance t is scored
        publish(t_prev, t); t_prev = t
        idx = np.array([i for _, i in batch])
        lv = value(X[idx], w, b, a, m0) if fitted else None
        learned[idx] = lv if lv is not None else avg[idx]
        for i in idx:
            (pos if y[i] == 1 else neg).append(i)
        if len(pos) > a.pos: del pos[:len(pos) - a.pos]
        if len(neg) > a.neg: del neg[:len(neg) - a.neg]
        counts = [counts[0] + len(idx), counts[1] + int(y[idx].sum()), counts[2] + int((1 - y[idx]).sum())]
        if not (pos and neg): continue
        rows = np.array(pos + neg)
        L = y[rows].astype(float)
        p, q = len(pos), len(neg)
        omega = np.where(L == 1, 0.5 / p, 0.5 / q)
        neff = 2 * p * q / (p + q)
        lam = a.l2 / neff if a.l2mode == "neff" else a.l2 / (p + q)
        if a.learner == "sgd":
            Xr = X[rows]
            for _ in range(a.steps):
                gz = omega * (sigmoid(Xr @ w + b) - L)
                g = Xr.T @ gz + lam * (w - w.mean() if a.prior == "equal" else w)
                w, b = w - a.lr * g, b - a.lr * gz.sum()
        else:
            w, b = newton(X[rows], L, omega, w, b, lam, prior, a.iters)
        fitted = True
        if a.select:
            stride = max(1, q // max(256, 2 * p))
            sample = neg[::stride]
            if p >= 2 and (state.get("pi") is None or (counts[1] - state["pos_at"] >= max(1, p // 8) and (p + len(sample) < 1024 or counts[0] - state["lab_at"] >= (p + len(sample)) // 4))):
                sel = np.array(pos + sample)
                LL = y[sel]
                negw = (counts[2] / max(counts[1], 1)) * p / len(sample)
                experts = [learned[sel], avg[sel]] + [filled[sel, u] for u in range(m0)]
                P = np.array([prec_at_pos(e, LL, negw) for e in experts])
                def margin(r):
                    d = P - P[r]
                    return d.mean(axis=1) - a.z * (d.std(axis=1, ddof=1) / np.sqrt(p) + 1e-9)
                sc = margin(0); sc[2:] = np.minimum(sc[2:], margin(1)[2:]); sc[0] = 0
                lg = a.eta * p * sc
                pi = np.exp(lg - lg.max())
                state.update(pi=pi / pi.sum(), pos_at=counts[1], lab_at=counts[0])
    publish(t_prev, n)
    return scores

def refit_scores(s):
    import os
    class A: pass
    a = A(); a.space = "prob"; a.indicators = False; a.scale = 4.0; a.batch = 256; a.pos = 10**6; a.neg = 10**6
    a.fill = "mean"; a.learner = "newton"; a.l2 = 1.0; a.l2mode = "total"; a.prior = "zero"; a.select = False; a.raw = True; a.iters = 50; a.eps = 1e-3
    return run(s, a)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="prob")
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--indicators", action="store_true")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pos", type=int, default=512)
    ap.add_argument("--neg", type=int, default=2048)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--l2mode", default="neff")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--normb", action="store_true")
    ap.add_argument("--halves", action="store_true")
    ap.add_argument("--fill", default="mean")
    ap.add_argument("--learner", default="newton")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=3.0)
    ap.add_argument("--prior", default="equal")
    ap.add_argument("--no-select", dest="select", action="store_false")
    ap.add_argument("--z", type=float, default=3.0)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--suites", default="main,fraud")
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    streams = replica.streams()
    ref, suite_of = {}, {}
    for suite in ["main", "validation", "imbalanced", "fraud"]:
        for r in json.load(open(os.path.join(DOCS, f"quality-{suite}.json"))):
            ref[r["stream"]] = r["pr_auc"]
            suite_of[r["stream"]] = suite
    rows = []
    for name, s in streams.items():
        if suite_of.get(name) not in a.suites.split(","): continue
        if a.only and a.only not in name: continue
        t0 = time.time()
        sc = run(s, a)
        v = average_precision_score(s["y"], sc)
        r = ref.get(name, {})
        rows.append((name, suite_of[name], v, r.get("daemon", np.nan), r.get("refit_lr", np.nan), r.get("average", np.nan),
                     max(r.get(k, -1) for k in ["average", "best_single", "river_lr", "river_lr_weighted", "refit_lr"]) if r else np.nan))
        if a.halves:
            h = len(sc) // 2
            ref_sc = refit_scores(s)
            print(f"   halves new {average_precision_score(s['y'][:h], sc[:h]):.4f} {average_precision_score(s['y'][h:], sc[h:]):.4f}"
                  f"  refit {average_precision_score(s['y'][:h], ref_sc[:h]):.4f} {average_precision_score(s['y'][h:], ref_sc[h:]):.4f}")
        if suite_of[name] in ("main", "fraud"):
            print(f"{name:24s} new {v:.4f} daemon {rows[-1][3]:.4f} refit {rows[-1][4]:.4f} avg {rows[-1][5]:.4f}  vs refit {v - rows[-1][4]:+.4f} ({time.time()-t0:.0f}s)", flush=True)
    real = [r for r in rows if r[1] in ("main", "validation", "imbalanced") and not r[0].startswith(("synthetic", "missing", "drift", "outage"))]
    syn = [r for r in rows if r not in real]
    if syn:
        d = [r[2] - r[4] for r in syn]
        print(f"synthetic vs refit: mean {np.mean(d):+.4f} worst {min(d):+.4f}; below -0.002: {sum(x < -0.002 for x in d)}/{len(d)}")
    if real:
        da = [r[2] - r[5] for r in real]; db = [r[2] - r[6] for r in real]; dd = [r[3] - r[5] for r in real]
        print(f"real ({len(real)}): vs avg mean {np.mean(da):+.4f} (daemon {np.mean(dd):+.4f}) below avg-0.005: {sum(x < -0.005 for x in da)}; "
              f"within 0.005 of best peer: {np.mean([x >= -0.005 for x in db]):.0%} (daemon {np.mean([r[3]-r[6] >= -0.005 for r in real]):.0%}); worst vs avg {min(da):+.4f}")

if __name__ == "__main__":
    main()
