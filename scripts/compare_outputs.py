#!/usr/bin/env python3
"""Compares two builds' outputs on the same inputs (scripts/cross-aarch64.sh: x86-64 against
aarch64 under qemu): `predict --json`, `eval --json` and `run --jsonl` files.

Prints one JSON object: per output the number of items, how many labels differ, the largest
absolute probability difference, and "ok" (no label differs and every difference <= --tol).
Exit status 0 when ok, 1 when not, 2 on unreadable input.
"""

import argparse
import json
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare_outputs: {path}: not a readable JSON file ({e})")


def load_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        sys.exit(f"compare_outputs: {path}: not a readable JSON-lines file ({e})")


def compare_probs(pairs):
    """pairs: (label_a, probs_a, label_b, probs_b) with probs as {class: p}."""
    differ, worst = 0, 0.0
    for la, pa, lb, pb in pairs:
        differ += la != lb
        if set(pa) != set(pb):
            sys.exit(f"compare_outputs: class sets differ: {sorted(pa)} vs {sorted(pb)}")
        worst = max([worst] + [abs(pa[c] - pb[c]) for c in pa])
    return {"items": len(pairs), "labels_differ": differ, "max_abs_prob_diff": worst}


def predict(a, b):
    pa, pb = load_json(a)["predictions"], load_json(b)["predictions"]
    if [p["image"] for p in pa] != [p["image"] for p in pb]:
        sys.exit(f"compare_outputs: {a} and {b} list different images")
    return compare_probs([(x["label"], x["probs"], y["label"], y["probs"]) for x, y in zip(pa, pb)])


def evaluate(a, b):
    ea, eb = load_json(a), load_json(b)
    return {
        "items": ea["images"],
        "accuracy": [ea["accuracy"], eb["accuracy"]],
        "confusion_equal": ea["confusion"] == eb["confusion"],
        "labels_differ": 0 if ea["confusion"] == eb["confusion"] else 1,
        "max_abs_prob_diff": 0.0,
    }


def run(a, b):
    ra, rb = load_jsonl(a), load_jsonl(b)
    if len(ra) != len(rb):
        return {"items": max(len(ra), len(rb)), "frames": [len(ra), len(rb)], "labels_differ": 1,
                "max_abs_prob_diff": float("inf")}
    pairs, box_diff, face_count_differ = [], 0.0, 0
    for fa, fb in zip(ra, rb):
        if len(fa["faces"]) != len(fb["faces"]):
            face_count_differ += 1
            continue
        for x, y in zip(fa["faces"], fb["faces"]):
            pairs.append((x["label"], x["probs"], y["label"], y["probs"]))
            box_diff = max([box_diff] + [abs(u - v) for u, v in zip(x["box"], y["box"])])
    out = compare_probs(pairs)
    out["frames"] = len(ra)
    out["frames_with_other_face_count"] = face_count_differ
    out["labels_differ"] += face_count_differ
    out["max_abs_box_diff_px"] = box_diff
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed probability difference")
    ap.add_argument("--predict", nargs=2, metavar=("A", "B"), action="append")
    ap.add_argument("--eval", nargs=2, metavar=("A", "B"))
    ap.add_argument("--jsonl", nargs=2, metavar=("A", "B"))
    args = ap.parse_args()
    result = {}
    for i, pair in enumerate(args.predict or []):
        result["predict" if i == 0 else f"predict_{i + 1}"] = predict(*pair)
    if args.eval:
        result["eval"] = evaluate(*args.eval)
    if args.jsonl:
        result["run"] = run(*args.jsonl)
    if not result:
        sys.exit("compare_outputs: nothing to compare (give --predict, --eval or --jsonl)")
    result["tol"] = args.tol
    result["ok"] = all(
        r["labels_differ"] == 0 and r["max_abs_prob_diff"] <= args.tol
        for k, r in result.items() if isinstance(r, dict)
    )
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
