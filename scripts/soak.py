#!/usr/bin/env python3
"""Soak test of the live runtime: `paca-fer run --headless` over a looped folder of frames for
many frames, sampling the process's resident memory (VmRSS) once a second.

    python3 scripts/soak.py --frames 100000 --input /tmp/bench-frames --out soak-out
    (make the frames first: paca-fer bench frames --data ../shared/data/ferplus --out /tmp/bench-frames)

Writes <out>/rss.csv (seconds, rss_mib), <out>/summary.json (the run's own JSON summary plus the
memory figures) and prints the summary. Exits non-zero when the run fails, frames are missing,
or resident memory grows by more than --max-growth-mib between the end of warm-up (--warmup
fraction of the run) and the end.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default="target/release/paca-fer")
    p.add_argument("--input", required=True, help="folder of frames, looped")
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--detect-every", type=int, default=10,
                   help="face detection every N frames, tracking in between (as for cameras)")
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of the run treated as warm-up")
    p.add_argument("--max-growth-mib", type=float, default=16.0)
    p.add_argument("--out", default="soak-out")
    a = p.parse_args()

    os.makedirs(a.out, exist_ok=True)
    jsonl = os.path.join(a.out, "frames.jsonl")
    cmd = [a.binary, "--json", "run", "--headless", "--input", a.input, "--loops", "0",
           "--max-frames", str(a.frames), "--detect-every", str(a.detect_every), "--jsonl", jsonl]
    print(" ".join(cmd), file=sys.stderr)
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    samples = []
    while proc.poll() is None:
        r = rss_mib(proc.pid)
        if r is not None:
            samples.append((time.time() - t0, r))
        time.sleep(1.0)
    out = proc.stdout.read()
    wall = time.time() - t0
    with open(os.path.join(a.out, "rss.csv"), "w") as f:
        f.write("seconds,rss_mib\n")
        for s, r in samples:
            f.write(f"{s:.1f},{r:.1f}\n")
    if proc.returncode != 0:
        print(f"run failed with exit code {proc.returncode}", file=sys.stderr)
        return 1
    run = json.loads(out)
    # JSONL lines written = frames that reached the outputs; count them without holding them.
    with open(jsonl) as f:
        lines = sum(1 for _ in f)
    os.remove(jsonl)  # ~50 MB for 100,000 frames; the count is what matters
    warm = [r for s, r in samples if s >= a.warmup * wall]
    summary = {
        "command": " ".join(cmd),
        "run": run,
        "jsonl_lines": lines,
        "wall_seconds": wall,
        "rss_samples": len(samples),
        "rss_peak_mib": max(r for _, r in samples),
        "rss_after_warmup_mib": warm[0] if warm else None,
        "rss_end_mib": samples[-1][1],
        "rss_growth_after_warmup_mib": (max(warm) - warm[0]) if warm else None,
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    ok = True
    if run["frames_out"] != a.frames or lines != a.frames:
        print(f"expected {a.frames} frames, got {run['frames_out']} (JSONL {lines})", file=sys.stderr)
        ok = False
    growth = summary["rss_growth_after_warmup_mib"]
    if growth is not None and growth > a.max_growth_mib:
        print(f"resident memory grew {growth:.1f} MiB after warm-up (> {a.max_growth_mib})", file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
