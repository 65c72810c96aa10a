#!/usr/bin/env python3
"""How far a stream's margin over the simple average is from noise: for every fully
observed real stream where the shipped learner (reproduced by replica.py) trails the
simple average by more than 0.005 PR-AUC, a paired bootstrap over the stream's
instances (1,000 resamples) gives the standard error of that difference and how often
it stays below zero. Also the difference in each half of the stream.

    bench/quality/.venv/bin/python bench/quality/noise.py
"""
import os
import sys

import numpy as np
from sklearn.metrics import average_precision_score as ap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replica  # noqa: E402


def main():
    a = replica.parser().parse_args([])
    rng = np.random.default_rng(1)
    print(f"{'stream':24s} {'positives':>9s} {'margin':>8s} {'boot SE':>8s} {'P(<0)':>6s} {'1st half':>9s} {'2nd half':>9s}")
    for name, s in replica.streams().items():
        if s["kind"] != "real":
            continue
        y, avg = s["y"], s["M"].mean(axis=1)
        scores = replica.replay(s, a)
        diff = ap(y, scores) - ap(y, avg)
        if diff >= -0.005:
            continue
        n = len(y)
        boot = []
        for _ in range(1000):
            i = rng.integers(0, n, n)
            if 0 < y[i].sum() < n:
                boot.append(ap(y[i], scores[i]) - ap(y[i], avg[i]))
        boot = np.array(boot)
        halves = []
        for lo, hi in [(0, n // 2), (n // 2, n)]:
            yy = y[lo:hi]
            halves.append(ap(yy, scores[lo:hi]) - ap(yy, avg[lo:hi]) if yy.sum() else float("nan"))
        print(f"{name:24s} {int(y.sum()):9d} {diff:+8.4f} {boot.std():8.4f} {np.mean(boot < 0):6.2f} {halves[0]:+9.4f} {halves[1]:+9.4f}")


if __name__ == "__main__":
    main()
