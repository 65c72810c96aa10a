"""No false alert: every stream of the four quality suites (none of them changes but
`drift-10%`, whose best classifier degrades halfway, and the rollout stream, where a
classifier appears and another stops) through the real daemon with the shipped
configuration, and every firing of the label-free conditions. Only the daemon runs
(no peers), so this takes minutes where the quality benchmark takes most of an hour.

    bench/quality/.venv/bin/python bench/monitoring/healthy.py   (bench/monitoring/run.sh runs it)
"""
import argparse
import datetime
import json
import os
import platform
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "quality"))
import evaluate as quality  # noqa: E402

LABEL_FREE = ("classifier_drift", "score_drift", "estimated_quality_drop")
CHANGED = {"drift-10%": "its best classifier degrades to chance halfway",
           "rollout-1%": "a new classifier starts halfway and one stops at 60%"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/cfensembled")
    ap.add_argument("--config", default="config/cfensembled.yaml")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args()
    suites = {"main": lambda: quality.build_streams(False), "fraud": quality.fraud_streams,
              "validation": quality.validation_streams, "imbalanced": quality.imbalanced_streams}
    rows = []
    for suite, make in suites.items():
        for build in make():
            stream = build()
            _, _, _, alerts = quality.run_daemon(stream, args.binary, args.config, [])
            fired = [f"{a} @{t}" for t, a, st, _ in alerts if st == "firing" and a.split(":")[0] in LABEL_FREE]
            rows.append({"suite": suite, "stream": stream.name, "n": stream.n, "fired": fired})
            print(json.dumps(rows[-1]), flush=True)
    date = datetime.date.today().isoformat()
    machine = f"{platform.node()}, {os.cpu_count()} cores"
    with open(os.path.join(args.out, "monitoring-healthy.json"), "w") as f:
        json.dump({"date": date, "machine": machine, "rows": rows}, f, indent=1)
    unchanged = [r for r in rows if r["stream"] not in CHANGED]
    false = [r for r in unchanged if r["fired"]]
    longest = max(r["n"] for r in unchanged)
    with open(os.path.join(args.out, "monitoring-healthy.md"), "w") as f:
        f.write("# Label-free conditions on the quality suites\n\n")
        f.write(f"Command: `bench/quality/.venv/bin/python bench/monitoring/healthy.py`. Date: {date}. "
                f"Machine: {machine}. Release build, shipped configuration.\n\n")
        f.write(f"{len(rows)} streams of the four suites of the [quality benchmark](quality.md) (up to {longest:,} "
                f"instances). `classifier_drift`, `score_drift` or `estimated_quality_drop` fired on "
                f"{len(false)} of the {len(unchanged)} streams without a change"
                + (": " + ", ".join(f"{r['stream']} ({'; '.join(r['fired'])})" for r in false) if false else "")
                + ". On the streams that change:\n\n| stream | change | label-free alerts (firing @ instance) |\n|---|---|---|\n")
        for r in rows:
            if r["stream"] in CHANGED:
                f.write(f"| {r['stream']} | {CHANGED[r['stream']]} | {', '.join(r['fired']) or 'none'} |\n")
        short = sum(1 for r in unchanged if r["n"] < 6000)
        f.write(f"\n{short} of the unchanged streams are shorter than 6,000 instances, the least that fills a "
                "classifier's reference and recent window with the shipped sizes; on them the conditions cannot "
                "fire at all.\n")


if __name__ == "__main__":
    main()
