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
out.append("")
out.append("Scoring while learning (one `label` per `pred`, `learning.batch_size` 256):\n")
out.append("| transport | preds scored/s, no labels | preds scored/s with labels | ratio | labels sent/s | labels learnt | lost |")
out.append("|---|---|---|---|---|---|---|")
for t in ("ipc", "tcp"):
    d, l, s = rows.get(f"daemon-{t}"), rows.get(f"daemon-{t}-labels"), rows.get(f"daemon-status-{t}")
    if not (d and l):
        continue
    out.append(f"| {t} | {rate(f'daemon-{t}')} | {rate(f'daemon-{t}-labels')} | {paired(f'daemon-{t}-labels', f'daemon-{t}'):.2f} | "
               f"{l['labels_sent']/l['seconds']:,.0f} | {s['labels_learnt'] if s else '?'} of {l['labels_sent_total']} | {l['lost']} |")
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
    for p in peers:
        out.append(f"| {'River LogisticRegression' if p['name'] == 'river-lr' else 'Vowpal Wabbit (logistic)'} | {p['events_per_s']:,.0f} |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
