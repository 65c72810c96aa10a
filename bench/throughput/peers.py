#!/usr/bin/env python3
"""What a user would run instead, on the same machine and the same stream as
cfe-loadgen (10 classifiers' probabilities, 10% positives): River's online logistic
regression and Vowpal Wabbit (logistic loss), each predicting then learning every
event in-process (no network, no JSON: an upper bound for them). Prints JSON lines."""
import json, random, sys, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = random.Random(7)
events = []
for i in range(N):
    y = 1 if rng.random() < 0.1 else 0
    x = {}
    for u in range(10):
        skill = 0.3 + 0.1 * (u % 5)
        centre = 0.5 + skill / 2 if y else 0.5 - skill / 2
        x[f"c{u}"] = min(0.9999, max(0.0001, centre + (rng.random() - 0.5) * 0.6))
    events.append((x, y))

from river import linear_model
m = linear_model.LogisticRegression()
t = time.perf_counter()
for x, y in events:
    m.predict_proba_one(x)
    m.learn_one(x, y)
dt = time.perf_counter() - t
print(json.dumps({"name": "river-lr", "events": N, "seconds": dt, "events_per_s": N / dt}))

from vowpalwabbit import pyvw
vw = pyvw.Workspace("--loss_function logistic --link logistic --quiet")
lines = [("1" if y else "-1") + " | " + " ".join(f"{k}:{v:.4f}" for k, v in x.items()) for x, y in events]
t = time.perf_counter()
for line in lines:
    vw.predict(line)
    vw.learn(line)
dt = time.perf_counter() - t
print(json.dumps({"name": "vowpal-wabbit", "events": N, "seconds": dt, "events_per_s": N / dt}))
vw.finish()
