#!/usr/bin/env python3
"""Soak test: drives the release daemon at a fixed rate over ipc:// for a bounded time and
records its resident memory (RSS) over time. Pending instances are capped
(state.max_pending) so memory must go flat once the cap is reached; the summary compares
RSS in the second and last quarters of the run.

    python3 bench/soak/soak.py --seconds 600 --rate 5000 --out docs/soak.csv
"""
import argparse, json, os, random, subprocess, tempfile, time

import zmq


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/release/cfensembled")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=5000, help="pred messages per second")
    ap.add_argument("--max-pending", type=int, default=100000)
    ap.add_argument("--out", default="docs/soak.csv")
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="cfe-soak-")
    proc = subprocess.Popen([args.binary, "--input-type", "pull", "--input", f"@ipc://{d}/in", "--output", f"@ipc://{d}/out",
                             "--state-dir", f"{d}/state", "--log-level", "warning", "--set", "metrics.listen=off",
                             "--set", f"state.max_pending={args.max_pending}", "--set", "state.checkpoint_interval_s=60"])
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 100000)
    push.connect(f"ipc://{d}/in")
    time.sleep(1)
    rng = random.Random(5)
    samples = []
    start = time.time()
    next_sample = start
    sent = 0
    truth = {}
    try:
        while time.time() - start < args.seconds:
            # One tick of 10 ms worth of messages: preds, and labels for 30% of them (delayed).
            due = int((time.time() - start) * args.rate)
            while sent < due:
                y = 1 if rng.random() < 0.05 else 0
                preds = {f"m{u}": round(min(1, max(0, rng.gauss(0.5 + (0.2 if y else -0.2), 0.2))), 4) for u in range(10)}
                push.send_multipart([b"pred", json.dumps({"id": f"s{sent}", "preds": preds}).encode()])
                truth[sent] = y
                # 30% of instances get their own label, 1,000 preds later.
                old = truth.pop(sent - 1000, None)
                if old is not None and rng.random() < 0.3:
                    push.send_multipart([b"label", json.dumps({"id": f"s{sent - 1000}", "label": old}).encode()])
                sent += 1
            if time.time() >= next_sample:
                samples.append((round(time.time() - start, 1), rss_kib(proc.pid), sent))
                next_sample += 10
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write("seconds,rss_kib,preds_sent\n")
        for s in samples:
            f.write(f"{s[0]},{s[1]},{s[2]}\n")
    n = len(samples)
    q2 = [s[1] for s in samples[n // 4: n // 2]]
    q4 = [s[1] for s in samples[3 * n // 4:]]
    print(f"{sent} preds in {args.seconds:.0f} s at {args.rate:.0f}/s, max_pending {args.max_pending}")
    print(f"RSS second quarter {min(q2)/1024:.1f}-{max(q2)/1024:.1f} MiB, last quarter {min(q4)/1024:.1f}-{max(q4)/1024:.1f} MiB "
          f"(change of the mean: {(sum(q4)/len(q4) - sum(q2)/len(q2))/1024:+.1f} MiB); samples in {args.out}")


if __name__ == "__main__":
    main()
