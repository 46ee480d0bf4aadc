#!/usr/bin/env bash
# Cross-builds paca-fer for aarch64-unknown-linux-gnu (a Jetson's CPU) on an x86-64 Debian 12
# machine and checks the build under qemu against this machine's own (x86-64) build:
#   1. installs what it needs (idempotent; root or sudo for apt): Debian's Rust 1.96 with the arm64
#      standard library (rustc-web, cargo-web, libstd-rust-web-dev:arm64), the aarch64 linker and C
#      library, qemu-user, and the arm64 C runtime qemu loads binaries against (libc6:arm64);
#   2. cross-builds the release binary and the library's unit tests (camera and window features
#      on; gstreamer off: its arm64 dev packages cannot be installed beside the amd64 ones, a
#      Jetson build uses JetPack's GStreamer on the board);
#   3. under qemu: runs the unit tests, `predict` and `eval` on a FER+ valid subset, and
#      `run --headless` on a folder of frames, then compares the labels and probabilities with the
#      x86-64 build's (scripts/compare_outputs.py: same labels, probabilities within 1e-4).
# Emulated times are not board times: qemu translates every instruction.
#
# With --gram-bench it instead runs only the Gram-kernel benchmark under qemu (NEON against the
# portable matrixmultiply path: `cargo bench --bench cluster -- gram`), and prints its medians.
#
# Usage: scripts/cross-aarch64.sh [--no-tests] [--gram-bench] [TEST_FILTER]
# Env:   SHARED (default ../shared), CROSS_TARGET_DIR (default ~/.cache/paca-fer/target-aarch64),
#        CARGO_TARGET_DIR (the x86-64 build, default ~/.cache/paca-fer/target), OUT (default
#        target-aarch64/check: outputs and timings.json)
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=1
gram_bench=0
filter=""
for a in "$@"; do
  case "$a" in
    --no-tests) run_tests=0 ;;
    --gram-bench) gram_bench=1 ;;
    -*) echo "cross-aarch64: unknown flag $a (expected --no-tests, --gram-bench or a test filter)" >&2; exit 2 ;;
    *) filter="$a" ;;
  esac
done
shared=${SHARED:-../shared}
ferplus="$shared/data/ferplus"
[ -d "$ferplus/valid" ] || { echo "cross-aarch64: $ferplus/valid not found (set SHARED)" >&2; exit 1; }
target=aarch64-unknown-linux-gnu
cross_dir=${CROSS_TARGET_DIR:-$HOME/.cache/paca-fer/target-aarch64}
host_dir=${CARGO_TARGET_DIR:-$HOME/.cache/paca-fer/target}
out=${OUT:-$cross_dir/check}
mkdir -p "$out"

# --- 1. packages --------------------------------------------------------------------------
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "cross-aarch64: adding the arm64 architecture to dpkg"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi
pkgs=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  qemu-user libc6:arm64 libgcc-s1:arm64 libclang-dev pkg-config python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "cross-aarch64: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- 2. cross build -----------------------------------------------------------------------
# Debian's toolchain (its arm64 std matches its rustc); rustup's cargo and rustc would need
# `rustup target add`, which needs the network.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
cargo=/usr/bin/cargo
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# cargo's runner, not `qemu-aarch64 -L /usr/aarch64-linux-gnu`: with -L dynamic binaries hang at
# their first thread; the multiarch libc6:arm64 serves the loader at its usual path instead.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
export PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
features="camera,window"
echo "cross-aarch64: features on: $features; off: gstreamer (no arm64 GStreamer dev packages beside amd64)"
base=(--target "$target" --target-dir "$cross_dir" --no-default-features --features "$features")
common=(--release "${base[@]}")

if [ "$gram_bench" -eq 1 ]; then
  $cargo bench "${base[@]}" --bench cluster -- gram 2>&1 | tee "$out/gram-bench.log"
  exit 0
fi

now() { date +%s.%N; }
secs() { python3 -c "print(round($2 - $1, 1))"; }
t0=$(now)
$cargo build "${common[@]}" --bin paca-fer
t1=$(now)
build_s=$(secs "$t0" "$t1")
bin="$cross_dir/$target/release/paca-fer"
file "$bin" 2>/dev/null || true
echo "cross-aarch64: release binary built in ${build_s} s: $bin"

# --- 3. under qemu ------------------------------------------------------------------------
tests_s=null
if [ "$run_tests" -eq 1 ]; then
  t0=$(now)
  # shellcheck disable=SC2086
  $cargo test "${common[@]}" --lib -- ${filter} 2>&1 | tee "$out/unit-tests.log"
  t1=$(now)
  tests_s=$(secs "$t0" "$t1")
  grep -E "^test result:" "$out/unit-tests.log"
fi

# The x86-64 build to compare with (this machine's default target folder).
host_bin="$host_dir/release/paca-fer"
if [ ! -x "$host_bin" ]; then
  echo "cross-aarch64: building the x86-64 binary for the comparison"
  cargo build --release --bin paca-fer
fi

# A FER+ valid subset: the first 10 faces of every class (80 faces), and frames made from faces.
sub="$out/ferplus-subset"
rm -rf "$sub"
for d in "$ferplus"/valid/*/; do
  c=$(basename "$d")
  mkdir -p "$sub/valid/$c"
  find "$d" -maxdepth 1 -name '*.png' | sort | sed -n "1,10p" | while read -r f; do ln -s "$(realpath "$f")" "$sub/valid/$c/"; done
done
frames="$out/frames"
rm -rf "$frames"
"$host_bin" bench frames --data "$ferplus" --out "$frames" --count 8 --shot 4 --seed 3 >/dev/null
images=$(find "$sub/valid" -name '*.png' | sort | awk 'NR % 8 == 1')

run_both() { # name, then the arguments of paca-fer; writes $out/<name>.{x86_64,aarch64}.json
  local name=$1; shift
  "$host_bin" "$@" > "$out/$name.x86_64.json"
  local t0 t1
  t0=$(now)
  qemu-aarch64 "$bin" "$@" > "$out/$name.aarch64.json"
  t1=$(now)
  echo "$(secs "$t0" "$t1")"
}
model=models/default
# shellcheck disable=SC2086
predict_s=$(run_both predict --json predict --model "$model" $images)
# a clustering model too (spectral k=2: the Gram kernel, NEON on aarch64, and the eigensolver)
cluster_model=models/product/ferplus-mobilenet_v2/spectral-k2
# shellcheck disable=SC2086
predict_cluster_s=$(run_both predict-cluster --json predict --model "$cluster_model" $images)
eval_s=$(run_both eval --json eval --data "$sub" --layout ferplus --split valid --model "$model")
"$host_bin" run --headless --input "$frames" --model "$model" --jsonl "$out/run.x86_64.jsonl" >/dev/null
t0=$(now)
qemu-aarch64 "$bin" run --headless --input "$frames" --model "$model" --jsonl "$out/run.aarch64.jsonl" >/dev/null
t1=$(now)
run_s=$(secs "$t0" "$t1")

python3 scripts/compare_outputs.py --tol 1e-4 \
  --predict "$out/predict.x86_64.json" "$out/predict.aarch64.json" \
  --predict "$out/predict-cluster.x86_64.json" "$out/predict-cluster.aarch64.json" \
  --eval "$out/eval.x86_64.json" "$out/eval.aarch64.json" \
  --jsonl "$out/run.x86_64.jsonl" "$out/run.aarch64.jsonl" > "$out/compare.json" || true
cat > "$out/timings.json" <<EOF
{"target": "$target", "features": "$features", "build_s": $build_s, "unit_tests_qemu_s": $tests_s,
 "predict_qemu_s": $predict_s, "predict_cluster_qemu_s": $predict_cluster_s, "eval_qemu_s": $eval_s, "run_qemu_s": $run_s,
 "compare": $(cat "$out/compare.json")}
EOF
cat "$out/timings.json"
python3 -c "import json,sys; sys.exit(0 if json.load(open('$out/compare.json'))['ok'] else 1)"
