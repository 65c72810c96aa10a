#!/usr/bin/env python3
"""Turns bench/throughput/run.sh's JSON lines into docs/throughput.md (tables and ratios)."""
import json, os, platform, subprocess, sys, datetime

runs = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        runs.setdefault(r["name"], []).append(r)
# Repeated throughput runs (REPEAT in run.sh): the median by msgs/s stands for the
# configuration; `spread` keeps the range for the text.
rows, spread = {}, {}
for name, rs in runs.items():
    if "msgs_per_s" in rs[0]:
        rs = sorted(rs, key=lambda r: r["msgs_per_s"])
        spread[name] = (rs[0]["msgs_per_s"], rs[-1]["msgs_per_s"], len(rs))
    rows[name] = dict(rs[len(rs) // 2])
    if name.endswith("-labels"):
        rows[name]["labels_sent_total"] = sum(r["labels_sent"] for r in rs)
# Every label sent to one daemon (single and batched runs), against what it learnt.
labels_total = {t: sum(r["labels_sent"] for n, rs in runs.items() if n.startswith(f"daemon-{t}") and n.endswith("-labels")
                       for r in rs) for t in ("ipc", "tcp")}

def paired(num, den):
    """Median over the alternating runs of num's rate / den's rate (same-moment pairs)."""
    a, b = runs.get(num, []), runs.get(den, [])
    ratios = sorted(x["msgs_per_s"] / y["msgs_per_s"] for x, y in zip(a, b))
    return ratios[len(ratios) // 2] if ratios else rows[num]["msgs_per_s"] / rows[den]["msgs_per_s"]

def cpu():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

out = []
out.append(f"# Throughput and latency ({datetime.date.today()})\n")
repeats = max((n for _, _, n in spread.values()), default=1)
out.append(f"Produced by `bench/throughput/run.sh` on {os.cpu_count()} cores ({cpu()}), one invocation, "
           "relay and daemon side by side with the same load generator (`cfe-loadgen`), 10 classifiers per `pred`; "
           f"throughput is the median of {repeats} runs (range in brackets), relay, daemon and daemon with labels "
           f"alternating; ratios are the median of the {repeats} same-moment pairs.\n")
def rate(name):
    lo, hi, n = spread.get(name, (None, None, 1))
    text = f"{rows[name]['msgs_per_s']:,.0f}"
    return text + (f" ({lo / 1000:,.0f}k-{hi / 1000:,.0f}k)" if n > 1 else "")
out.append("| transport | relay msgs/s | daemon msgs/s | ratio | relay p50 / p99 / p999 µs at 20k/s | daemon p50 / p99 / p999 µs at 20k/s | daemon p99 bound (2 x relay p99 + 200 µs) |")
out.append("|---|---|---|---|---|---|---|")
for t in ("ipc", "tcp"):
    r, d = rows.get(f"relay-{t}"), rows.get(f"daemon-{t}")
    rp, dp = rows.get(f"relay-{t}-20k"), rows.get(f"daemon-{t}-20k")
    if not (r and d and rp and dp):
        continue
    bound = 2 * rp["p99_us"] + 200
    out.append(f"| {t} | {rate(f'relay-{t}')} | {rate(f'daemon-{t}')} | {paired(f'daemon-{t}', f'relay-{t}'):.2f} | "
               f"{rp['p50_us']:.0f} / {rp['p99_us']:.0f} / {rp['p999_us']:.0f} | {dp['p50_us']:.0f} / {dp['p99_us']:.0f} / {dp['p999_us']:.0f} | "
               f"{bound:.0f} ({'met' if dp['p99_us'] <= bound else 'NOT met'}) |")
B = os.environ.get("BATCH", "64")
PB = os.environ.get("PACED_BATCH", "16")
if any(f"daemon-{t}-b{B}" in rows for t in ("ipc", "tcp")):
    out.append("")
    out.append(f"Batches of {B} instances (`pred_batch` in, `score_batch` out), same runs. The floor is the daemon's own "
               "per-instance path without sockets on one core (`cfensembled --cost-floor`: decode, resolve, score, pending "
               "insert, journal, encode), measured between the socket runs:\n")
    out.append(f"| transport | floor inst/s, single / batch {B} | daemon single msgs/s | daemon batch {B} inst/s | "
               f"÷ floor (target ≥ 0.8) | ÷ single (target ≥ 4) | relay batch {B} inst/s |")
    out.append("|---|---|---|---|---|---|---|")
    for t in ("ipc", "tcp"):
        d, db, f1, fb = (rows.get(n) for n in (f"daemon-{t}", f"daemon-{t}-b{B}", f"floor-{t}", f"floor-{t}-b{B}"))
        if not (d and db and f1 and fb):
            continue
        out.append(f"| {t} | {rate(f'floor-{t}')} / {rate(f'floor-{t}-b{B}')} | {rate(f'daemon-{t}')} | {rate(f'daemon-{t}-b{B}')} | "
                   f"{paired(f'daemon-{t}-b{B}', f'floor-{t}-b{B}'):.2f} | {paired(f'daemon-{t}-b{B}', f'daemon-{t}'):.2f} | "
                   f"{rate(f'relay-{t}-b{B}')} |")
    out.append("")
    out.append(f"Learning in batches (one label per instance in `label_batch` messages of {B}, for instances a window "
               "earlier; `learning.batch_size` 256):\n")
    out.append(f"| transport | inst scored/s, batches, no labels | inst scored/s with labels | labels learnt/s | "
               "learnt/s ÷ scored/s without labels (target ≥ 0.8) |")
    out.append("|---|---|---|---|---|")
    for t in ("ipc", "tcp"):
        db, dl = rows.get(f"daemon-{t}-b{B}"), rows.get(f"daemon-{t}-b{B}-labels")
        if not (db and dl):
            continue
        pairs = sorted((l["labels_sent"] / l["seconds"]) / n["msgs_per_s"]
                       for l, n in zip(runs[f"daemon-{t}-b{B}-labels"], runs[f"daemon-{t}-b{B}"]))
        out.append(f"| {t} | {rate(f'daemon-{t}-b{B}')} | {rate(f'daemon-{t}-b{B}-labels')} | "
                   f"{dl['labels_sent'] / dl['seconds']:,.0f} | {pairs[len(pairs) // 2]:.2f} |")
    out.append("")
    out.append(f"Latency at 20,000 instances/s in batches of {PB} (send of the batch to each instance's score):\n")
    out.append("| transport | relay p50 / p99 / p999 µs | daemon p50 / p99 / p999 µs | daemon p99 bound (2 x relay p99 + 200 µs) |")
    out.append("|---|---|---|---|")
    for t in ("ipc", "tcp"):
        rp, dp = rows.get(f"relay-{t}-20k-b{PB}"), rows.get(f"daemon-{t}-20k-b{PB}")
        if not (rp and dp):
            continue
        bound = 2 * rp["p99_us"] + 200
        out.append(f"| {t} | {rp['p50_us']:.0f} / {rp['p99_us']:.0f} / {rp['p999_us']:.0f} | "
                   f"{dp['p50_us']:.0f} / {dp['p99_us']:.0f} / {dp['p999_us']:.0f} | {bound:.0f} ({'met' if dp['p99_us'] <= bound else 'NOT met'}) |")
out.append("")
out.append("Scoring while learning (one `label` per `pred`, `learning.batch_size` 256):\n")
out.append("| transport | preds scored/s, no labels | preds scored/s with labels | ratio | labels sent/s | labels learnt | lost |")
out.append("|---|---|---|---|---|---|---|")
for t in ("ipc", "tcp"):
    d, l, s = rows.get(f"daemon-{t}"), rows.get(f"daemon-{t}-labels"), rows.get(f"daemon-status-{t}")
    if not (d and l):
        continue
    out.append(f"| {t} | {rate(f'daemon-{t}')} | {rate(f'daemon-{t}-labels')} | {paired(f'daemon-{t}-labels', f'daemon-{t}'):.2f} | "
               f"{l['labels_sent']/l['seconds']:,.0f} | {s['labels_learnt'] if s else '?'} of {labels_total[t]} (all runs) | {l['lost']} |")
m = rows.get("memory")
if m:
    out.append("")
    out.append(f"Memory: {m['pending']:,} pending instances (10 classifiers): RSS {m['rss_before_kib']/1024:.0f} MiB -> "
               f"{m['rss_after_kib']/1024:.0f} MiB, **{m['bytes_per_pending']} bytes per pending instance**.")
peers = [rows[k] for k in ("river-lr", "vowpal-wabbit") if k in rows]
if peers:
    out.append("")
    out.append("Peers, same machine, same kind of stream, in-process (predict then learn each event; no network, no JSON):\n")
    out.append("| system | events/s |")
    out.append("|---|---|")
    for t in ("ipc", "tcp"):
        l = rows.get(f"daemon-{t}-labels")
        if l:
            out.append(f"| cfensembled over {t} (score each pred, learn one label per pred, JSON both ways) | {l['msgs_per_s']:,.0f} |")
        lb = rows.get(f"daemon-{t}-b{B}-labels")
        if lb:
            out.append(f"| cfensembled over {t}, batches of {B} (the same, {B} instances or labels to a message) | {lb['msgs_per_s']:,.0f} |")
    for p in peers:
        out.append(f"| {'River LogisticRegression' if p['name'] == 'river-lr' else 'Vowpal Wabbit (logistic)'} | {p['events_per_s']:,.0f} |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
