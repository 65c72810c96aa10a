"""Label-free monitoring through the real daemon: streams with a known change at a known
instance while labels arrive at least 5,000 instances late, and control streams without
one. For each, the first firing of every condition after the change, how many instances
that took, and whether any label of the changed traffic had arrived by then.

    bench/monitoring/run.sh      (builds the release daemon, then runs this)
"""
import argparse
import datetime
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "quality"))
import evaluate as quality  # noqa: E402

N, CHANGE, MIN_DELAY = 40_000, 20_000, 5_000


def late_labels(stream, seed):
    """Every label at least MIN_DELAY instances late (then exponential, mean 3,000);
    10% never."""
    rng = np.random.default_rng(seed)
    arrive = np.arange(stream.n) + MIN_DELAY + np.floor(rng.exponential(3000, stream.n))
    arrive[rng.random(stream.n) < 0.10] = np.inf
    stream.arrive = arrive
    return stream


def with_change(name, rate, seed, classifier, how):
    """A 10-classifier synthetic stream whose `classifier` changes at CHANGE: `scaled`
    (outputs x 0.4), `shifted` (+1.5 in log-odds), `stuck` (one constant). Labels unchanged."""
    s = quality.synthetic(name, rate, N, seed)
    for t in range(CHANGE, s.n):
        row = s.preds[t]
        if classifier not in row:
            continue
        p = row[classifier]
        if how == "scaled":
            row[classifier] = round(p * 0.4, 6)
        elif how == "shifted":
            z = np.log(p / (1 - p)) + 1.5
            row[classifier] = round(float(1 / (1 + np.exp(-z))), 6)
        else:
            row[classifier] = 0.37
    s.kind = "monitoring"
    return late_labels(s, seed + 1)


def rate_triples(seed):
    """1% positives before CHANGE, 3% after: a 3% stream whose first part keeps one
    positive in three."""
    s = quality.synthetic("rate-triples", 0.03, int(N * 1.05), seed)
    rng = np.random.default_rng(seed + 7)
    keep = [t for t in range(s.n) if t >= CHANGE * 1.03 or s.labels[t] == 0 or rng.random() < 1 / 3]
    first = sum(1 for t in keep if t < CHANGE * 1.03)
    keep = keep[:N]
    s.preds = [s.preds[t] for t in keep]
    s.labels = s.labels[keep]
    s.kind = "monitoring"
    return late_labels(s, seed + 1), first


def streams():
    out = [
        ("a: lr scaled x0.4", with_change("lr-scaled", 0.01, 501, "lr", "scaled"), CHANGE, "classifier_drift:lr"),
        ("a: svm shifted +1.5 log-odds", with_change("svm-shifted", 0.01, 502, "svm", "shifted"), CHANGE, "classifier_drift:svm"),
        ("a: rf stuck at 0.37", with_change("rf-stuck", 0.01, 503, "rf", "stuck"), CHANGE, "classifier_drift:rf"),
    ]
    drift = late_labels(quality.synthetic("drift-10%", 0.1, N, seed=300, drift=True), 301)
    # rf is the most skilled classifier of seed 300, the one that degrades.
    out.append(("b: best classifier (rf) to chance (10%)", drift, N // 2, "classifier_drift:rf"))
    triples, at = rate_triples(504)
    out.append(("c: positive rate 1% -> 3%", triples, at, "score_drift"))
    for rate, seed in ((0.01, 505), (0.1, 506), (0.002, 507)):
        s = late_labels(quality.synthetic(f"control-{rate:.1%}", rate, N, seed), seed + 1)
        out.append((f"control {rate:.1%} (no change)", s, None, None))
    return out


NEW = ("classifier_drift", "score_drift", "estimated_quality_drop")
WINDOW = 5_000


def expected_ap(p):
    """The daemon's label-free estimate (ExpectedQuality.averagePrecision), written again
    here: sum_k p_k (1 + C_{k-1}) / k over C_n, ranked by probability."""
    p = np.sort(np.clip(np.asarray(p, float), 0, 1))[::-1]
    c = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    return float(np.sum(p * (1 + c) / np.arange(1, len(p) + 1)) / np.sum(p))


def realised_noise(probabilities, scores, seed, draws=200):
    """How far the realised PR-AUC of a window strays by sampling alone: its standard
    deviation over labels drawn from the published probabilities (were they exact, the
    best any estimate can do is to be off by about this)."""
    from sklearn.metrics import average_precision_score
    rng = np.random.default_rng(seed)
    p = np.clip(np.asarray(probabilities, float), 0, 1)
    aps = []
    for _ in range(draws):
        y = rng.random(len(p)) < p
        if y.any():
            aps.append(average_precision_score(y, scores))
    return float(np.std(aps)) if len(aps) > 1 else float("nan")


def estimate_windows(stream, scores, probabilities, change, fitted_at):
    """Per window of WINDOW instances from the first after the probability's map was
    fitted (before, the probability is the simple average and the daemon leaves it out
    of its windows): the estimate from the published probabilities and the PR-AUC
    realised on the window's labels (all of them, known here)."""
    from sklearn.metrics import average_precision_score
    out = []
    for start in range(fitted_at, stream.n - WINDOW + 1, WINDOW):
        sl = slice(start, start + WINDOW)
        y = stream.labels[sl]
        if y.sum() == 0:
            continue
        out.append({"start": start, "estimate": expected_ap(probabilities[sl]),
                    "realised": float(average_precision_score(y, scores[sl])),
                    "noise": realised_noise(probabilities[sl], scores[sl], seed=start),
                    "changed": change is not None and start >= change})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/cfensembled")
    ap.add_argument("--config", default="config/cfensembled.yaml")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    rows = []
    for title, stream, change, expected in streams():
        scores, probabilities, trace, alerts = quality.run_daemon(stream, args.binary, args.config, args.set)
        # The status is read every 256 instances; its calibration says when the map was fitted.
        fitted_at = next((t + 1 for t, _, _, _, c in trace if c and c.get("fitted")), stream.n)
        firings = [(t, a) for t, a, st, _ in alerts if st == "firing"]
        row = {"stream": title, "n": stream.n, "change": change, "expected": expected, "alerts": alerts,
               "fitted_at": fitted_at, "windows": estimate_windows(stream, scores, probabilities, change, fitted_at)}
        if change is None:
            row["false"] = [f"{a}@{t}" for t, a in firings if a.split(":")[0] in NEW]
        else:
            row["false"] = [f"{a}@{t}" for t, a in firings if a.split(":")[0] in NEW and t < change]
            hit = [(t, a) for t, a in firings if t >= change and a.startswith(expected)]
            first_label = int(np.min(stream.arrive[change:]))
            row["first_label_of_changed"] = first_label
            if hit:
                row["fired"] = hit[0][1]
                row["delay"] = hit[0][0] - change
                row["before_labels"] = hit[0][0] < first_label
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("alerts", "windows")}), flush=True)
    write(rows, args)


def write(rows, args):
    machine = f"{platform.node()}, {os.cpu_count()} cores"
    date = datetime.date.today().isoformat()
    with open(os.path.join(args.out, "monitoring.json"), "w") as f:
        json.dump({"date": date, "machine": machine, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "monitoring.md"), "w") as f:
        f.write("# Label-free monitoring: detection without labels\n\n")
        f.write(f"Command: `bench/monitoring/run.sh`. Date: {date}. Machine: {machine}. "
                "Release build, shipped configuration.\n\n")
        f.write(f"Streams of {N:,} instances; the change comes at the instance in the `change` column; every label "
                f"arrives at least {MIN_DELAY:,} instances after its instance (then exponentially, mean 3,000; 10% never). "
                "`delay`: instances from the change to the first firing of the expected condition (alerts are read "
                "every 256 instances, so delays are rounded up to that). `before labels`: it fired before the first "
                "label of the changed traffic arrived. `false`: classifier_drift or score_drift firing where there is "
                "no change (before it, or on a control stream).\n\n")
        f.write("| stream | change | expected | fired | delay | before labels | false |\n|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['stream']} | {r['change'] if r['change'] is not None else '-'} | {r['expected'] or '-'} | "
                    f"{r.get('fired', 'no' if r['change'] is not None else '-')} | {r.get('delay', '-')} | "
                    f"{'yes' if r.get('before_labels') else ('no' if 'delay' in r else '-')} | "
                    f"{', '.join(r['false']) or 'none'} |\n")
        f.write("\n## The label-free PR-AUC estimate\n\n"
                "Per window of 5,000 instances: the PR-AUC expected from the probabilities the daemon published "
                "(its estimator, recomputed here from them) against the PR-AUC realised on the window once all its "
                "labels are in, from the first instance scored after the probability's map was fitted. Windows of unchanged traffic only (before the change, and the control streams); "
                "the last column shows the changed windows of each stream, estimate / realised.\n\n"
                "`sampling SD`: the mean over the windows of the realised PR-AUC's standard deviation when labels are "
                "drawn from the published probabilities themselves (200 draws): the error that even exact probabilities "
                "leave.\n\n"
                "| stream | windows | mean abs. error | worst error | mean estimate - realised | sampling SD | changed windows |\n"
                "|---|---|---|---|---|---|---|\n")
        errors = []
        for r in rows:
            same = [w for w in r["windows"] if not w["changed"]]
            err = [w["estimate"] - w["realised"] for w in same]
            errors += err
            changed = ", ".join(f"{w['estimate']:.3f} / {w['realised']:.3f}" for w in r["windows"] if w["changed"]) or "-"
            if err:
                sd = np.mean([w["noise"] for w in same])
                f.write(f"| {r['stream']} | {len(err)} | {np.mean(np.abs(err)):.4f} | {max(err, key=abs):+.4f} | "
                        f"{np.mean(err):+.4f} | {sd:.4f} | {changed} |\n")
        if errors:
            f.write(f"| all | {len(errors)} | {np.mean(np.abs(errors)):.4f} | {max(errors, key=abs):+.4f} | "
                    f"{np.mean(errors):+.4f} | | |\n")
        f.write("\n## Every alert\n\n| stream | alerts (state @ instance) |\n|---|---|\n")
        for r in rows:
            f.write(f"| {r['stream']} | " + (", ".join(f"{a} {st} @{t}" for t, a, st, _ in r["alerts"]) or "none") + " |\n")


if __name__ == "__main__":
    main()
