"""Turns docs/scaleout.jsonl (bench/scaleout/run.sh) into the Markdown table in docs/scaleout.md."""
import json
import os
import platform
import sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        rows[r["name"]] = r

base = rows.get("all", {}).get("msgs_per_s") or 1
base_l = rows.get("all-labels", {}).get("msgs_per_s") or 1
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = [
    "# Scale-out on one machine",
    "",
    f"{os.cpu_count()} cores ({cpu}), one run of `bench/scaleout/run.sh`, ipc://, 10 classifiers,",
    "window of 1000 in flight, PUSH round-robin over the scorers. Ratios are to the single",
    "`--role all` daemon in the same run.",
    "",
    "| setup | preds/s | ratio | lost | preds/s with 0.1 label/pred | ratio | p50 µs | p99 µs |",
    "|---|---|---|---|---|---|---|---|",
]
for name, label in [("all", "one `--role all`"), ("scorers-1", "learner + 1 scorer"),
                    ("scorers-2", "learner + 2 scorers"), ("scorers-3", "learner + 3 scorers")]:
    r, l = rows.get(name), rows.get(name + "-labels")
    if not r:
        continue
    out.append(f"| {label} | {r['msgs_per_s']:,.0f} | {r['msgs_per_s'] / base:.2f} | {r['lost']} | "
               f"{l['msgs_per_s']:,.0f} | {l['msgs_per_s'] / base_l:.2f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} |" if l else "")
out += ["", "| learner | labels learnt | unmatched | caught up after the last score (s) | model_version | scorers' versions | state bytes | publish µs (mean) | scorers' apply µs (mean) |",
        "|---|---|---|---|---|---|---|---|---|"]
for k in (1, 2, 3):
    r = rows.get(f"learner-{k}")
    if r:
        out.append(f"| with {k} scorer(s) | {r['labels_learnt']:,} | {r['labels_unmatched']} | {r['catch_up_s']} | {r['model_version']} | {r['scorer_versions']} | "
                   f"{r['state_bytes']:,} | {r['publish_us_mean']:.0f} | {r.get('scorer_apply_us', '-')} |")
f = rows.get("learner-feed")
if f:
    out += ["", f"Learner alone, fed scored instances directly (`cfe-loadgen feed`, 0.1 label each): "
            f"**{f['msgs_per_s']:,.0f} msgs/s** ({f['messages']:,} in {f['seconds']:.2f} s)."]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
