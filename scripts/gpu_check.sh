#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (issue #19). Build here, carry, run there:
#
#   CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda      # here (no toolkit needed)
#   mkdir -p gpu && cp $CARGO_TARGET_DIR/release/paca-fer gpu/ \
#     && python3 scripts/ferplus_pack.py pack ../shared/data/ferplus gpu/ \
#     && cp -r $CARGO_TARGET_DIR/autotune gpu/ 2>/dev/null || true       # burn's autotune cache, if any
#   scripts/gpu_check.sh gpu/paca-fer --data gpu --minutes 9              # there (device `run`, carry gpu)
#
# Prints one JSON object on stdout (progress on stderr): the card and driver; burn-cuda images/s of
# ViT training on cached features (`bench train`, batch 256 and 1024) and of fine-tuning the shipped
# model (trunk + ViT); PyTorch's figures for the same models on the same card when a CUDA build of
# torch is importable there (else why not); then as many full-scale sweep cells (the product sweep's
# command, 15 epochs on all FER+ faces) as the time left allows, with their wall times. The sweep's
# results and models land in gpu-out/ (the device run's $OUT when set), to carry back.
#
# Usage: scripts/gpu_check.sh BINARY [--data DIR] [--minutes M] [--device cuda|cpu] [--quick]
#   --data: a FER+ folder ({train,valid}/<class>/*.png) or a pack from scripts/ferplus_pack.py
#   --minutes: the time budget of the whole script (default 9)
#   --device cpu --quick: a dry run anywhere (small batches, few steps), to check the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/gpu_check.sh BINARY [--data DIR] [--minutes M] [--device cuda|cpu]}
shift
data=../shared/data/ferplus
minutes=9
device=cuda
batches=(256 1024)
steps=30
ft_per_class=128
ft_batch=128
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --quick) batches=(32 64); steps=3; ft_per_class=4; ft_batch=16; shift ;;
    *) echo "gpu_check: unknown argument $1 (expected --data, --minutes, --device or --quick)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "gpu_check: $bin is not an executable (the paca-fer binary built with --features cuda)" >&2; exit 2; }
bin=$(realpath "$bin")
start=$(date +%s)
deadline=$((start + minutes * 60))
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
log() { echo "gpu_check: $*" >&2; }

# The data: a pack is unpacked once.
if [ -f "$data/train.txt" ] && [ -f "$data/train.png" ]; then
  log "unpacking $data"
  python3 scripts/ferplus_pack.py unpack "$data" /tmp/ferplus >&2
  data=/tmp/ferplus
fi
[ -d "$data/train" ] && [ -d "$data/valid" ] || { echo "gpu_check: $data has no train/ and valid/" >&2; exit 2; }
# burn's autotune cache, carried beside the binary
if [ -d "$(dirname "$bin")/autotune" ]; then
  export CUBECL_AUTOTUNE_CACHE_DIR="$(dirname "$bin")/autotune"
fi

card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

bench_train() { # batch -> bench train JSON
  "$bin" bench train --json --device "$device" --batch-size "$1" --steps "$steps" 2>/dev/null
}
log "bench train, batch ${batches[0]} and ${batches[1]}, on $device"
train_small=$(bench_train "${batches[0]}" || echo null)
train_large=$(bench_train "${batches[1]}" || echo null)

log "fine-tuning models/default, 2 epochs of $((ft_per_class * 8)) faces, on $device"
ft=$(mktemp -d)
sub="$ft/fer"
for split_n in train:$ft_per_class valid:2; do
  split=${split_n%:*}; n=${split_n#*:}
  for d in "$data/$split"/*/; do
    c=$(basename "$d"); mkdir -p "$sub/$split/$c"
    find "$d" -maxdepth 1 -name '*.png' | sort | sed -n "1,${n}p" | xargs -I{} cp {} "$sub/$split/$c/"
  done
done
finetune=null
if (cd "$ft" && "$bin" finetune --data "$sub" --init "$OLDPWD/models/default" --out "$ft/model" --epochs 2 \
  --batch-size "$ft_batch" --warmup-steps 0 --no-augment --device "$device" >/dev/null 2>&1); then
  finetune=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["history"]; print(json.dumps({"faces_per_s_epoch2": h[-1]["images_per_s"], "faces_per_s_epoch1": h[0]["images_per_s"], "batch_size": int(sys.argv[2])}))' "$ft/model/finetune.json" "$ft_batch")
fi

torch=$(python3 - "$device" <<'EOF' 2>/dev/null || echo '{"skipped": "python3 failed"}'
import json, sys
try:
    import torch
except ImportError:
    print(json.dumps({"skipped": "torch is not installed on this machine"})); sys.exit()
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"skipped": f"torch {torch.__version__} sees no CUDA device"})); sys.exit()
print(json.dumps({"skipped": f"torch {torch.__version__} is here, but scripts/torch_twin.py bench runs on the CPU only"}))
EOF
)

# Sweep cells until the budget is spent: the product sweep's resumable command, killed at the
# deadline (it resumes from its last epoch when run again).
log "sweep cells until $(date -u -d @"$deadline" +%H:%M:%S) UTC"
sweep_start=$(date +%s)
left=$((deadline - sweep_start - 20))
cells="[]"
if [ "$left" -gt 60 ]; then
  timeout "$left" "$bin" --config config/default-model.toml train --data "$data" --sweep config/sweep.toml \
    --embedder-weights models/default/embedder.mpk --out "$out/results" --models-dir "$out/models" \
    --resume --device "$device" >"$out/sweep.log" 2>&1 || true
  cells=$(python3 - "$out/results" <<'EOF'
import json, sys
from pathlib import Path
res = sorted(Path(sys.argv[1]).glob("*/results.json"))
cells = json.loads(res[0].read_text())["cells"] if res else []
print(json.dumps([{k: c.get(k) for k in ("method", "k", "accuracy", "macro_f1", "epochs", "train_images", "train_seconds", "train_images_per_s")} for c in cells]))
EOF
)
fi
end=$(date +%s)
cat <<EOF
{"card": $(json_str "$card"), "device": "$device", "binary": $(json_str "$bin"),
 "burn": {"vit_train": [$train_small, $train_large], "finetune": $finetune},
 "torch": $torch,
 "sweep_cells": $cells, "sweep_seconds": $((end - sweep_start)), "total_seconds": $((end - start))}
EOF
