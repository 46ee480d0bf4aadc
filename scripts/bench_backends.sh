#!/usr/bin/env bash
# burn-flex against burn-ndarray on this CPU (issue #19, item 4), side by side with farm-bench --vs
# (A = flex, B = ndarray, run in turn, ratio pair by pair), one binary built with `--features flex`
# so both backends run from the same executable:
#   1. ViT training on cached features + one-face ViT inference: `bench train`;
#   2. fine-tuning trunk + ViT of models/default on 128 FER+ faces: `finetune`, 2 epochs (the second timed);
#   3. the live pipeline, every frame detected (`bench pipeline`'s sync pass and the rest), on 60
#      generated 640x480 frames (with the flex build's `cpu` device the detector is already on
#      burn-flex; the classifier's backend is the difference).
# The commands' own figures (images/s, ms a face, FPS) are appended to $OUT/*.log.
# Usage: scripts/bench_backends.sh BINARY [RUNS]   (BINARY built with --features flex)
# Env:   SHARED (default ../shared), OUT (default /tmp/bench-backends)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/bench_backends.sh BINARY [RUNS] (a binary built with --features flex)}
runs=${2:-5}
bin=$(realpath "$bin")
"$bin" bench train --help | grep -q "flex" || { echo "bench_backends: $bin has no --device flex" >&2; exit 2; }
ferplus=${SHARED:-../shared}/data/ferplus
out=${OUT:-/tmp/bench-backends}
rm -rf "$out" && mkdir -p "$out"

echo "== bench train (ViT on cached features), flex vs ndarray"
farm-bench -n "$runs" --timeout 1200 \
  --vs "sh -c 'exec $bin bench train --json --steps 20 --device cpu >>$out/train-ndarray.log 2>/dev/null'" \
  -- sh -c "exec $bin bench train --json --steps 20 --device flex >>$out/train-flex.log 2>/dev/null"

sub="$out/fer"
for split_n in train:16 valid:2; do
  split=${split_n%:*}; n=${split_n#*:}
  for d in "$ferplus/$split"/*/; do
    c=$(basename "$d"); mkdir -p "$sub/$split/$c"
    find "$d" -maxdepth 1 -name '*.png' | sort | sed -n "1,${n}p" | xargs -I{} cp {} "$sub/$split/$c/"
  done
done
# A fresh output and checkpoint folder every run (else finetune would resume); the run's
# finetune.json (faces/s per epoch) is kept in ft-logs/.
ft_cmd() {
  local dev=$1 dir="$out/ft-$1"
  echo "rm -rf $dir $out/train && cd $out && $bin finetune --data $sub --init $repo/models/default --out $dir --epochs 2 --batch-size 32 --warmup-steps 0 --no-augment --device $dev >/dev/null 2>&1 && cp $dir/finetune.json $out/ft-logs/$dev.\$\$.json"
}
repo=$PWD
mkdir -p "$out/ft-logs"
echo "== finetune (trunk + ViT, 128 faces, batch 32, 2 epochs), flex vs ndarray"
farm-bench -n "$runs" --timeout 3000 --vs "sh -c '$(ft_cmd cpu)'" -- sh -c "$(ft_cmd flex)"

frames="$out/frames"
"$bin" bench frames --data "$ferplus" --out "$frames" --count 60 --seed 5 >/dev/null
echo "== bench pipeline (60 frames, 640x480, one face each), flex vs ndarray classifier"
farm-bench -n "$runs" --timeout 3000 \
  --vs "sh -c 'exec $bin bench pipeline --json --input $frames --model $repo/models/default --device cpu >>$out/pipe-ndarray.log 2>/dev/null'" \
  -- sh -c "exec $bin bench pipeline --json --input $frames --model $repo/models/default --device flex >>$out/pipe-flex.log 2>/dev/null"

python3 - "$out" <<'EOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
def lines(name):
    return [json.loads(l) for l in (out / name).read_text().splitlines() if l.startswith("{")]
med = statistics.median
res = {}
for dev in ("flex", "ndarray"):
    t = lines(f"train-{dev}.log")
    f = [json.loads(p.read_text()) for p in (out / "ft-logs").glob(("cpu" if dev == "ndarray" else dev) + ".*.json")]
    p = lines(f"pipe-{dev}.log")
    res[dev] = {
        "train_images_per_s": med(r["images_per_s"] for r in t),
        "vit_infer_ms_per_face": med(r["infer_ms_batch1"] for r in t),
        "finetune_faces_per_s": med(e["images_per_s"] for r in f for e in r["history"][1:]),
        "pipeline_sync_fps": med(r["sync"]["fps"] for r in p),
        "pipeline_sync_p95_ms": med(r["sync"]["p95_ms"] for r in p),
        "runs": len(t),
    }
print(json.dumps(res))
EOF
