#!/usr/bin/env bash
# End-to-end proof that a sharded sweep on Slurm gives the table of an unsharded run:
#   1. starts the one-node local cluster (scripts/slurm-local.sh),
#   2. submits the --quick sweep as a 2-task job array (train/slurm/sweep.sbatch, shards 0/2 and
#      1/2) and the merge (train/slurm/merge.sbatch) as a job that depends on it (afterok),
#   3. once both are done, runs the unsharded --quick sweep directly (no Slurm),
#   4. compares the merged results.json with the unsharded one cell by cell, ignoring the timing
#      fields and model_dir (and results.csv without its timing columns), prints a verdict and
#      exits non-zero on any difference.
# Both runs use the same --threads (PROOF_THREADS), so their training is the same computation.
#
#   scripts/slurm-proof.sh                  the proof (needs a paca-fer with `train --shard`)
#   PROOF_DRY_RUN=1 scripts/slurm-proof.sh  submit the jobs with PACA_FER_DRY_RUN=1: they print
#                                           the paca-fer commands; no training, no comparison
#   scripts/slurm-proof.sh compare MERGED.json UNSHARDED.json   only the comparison
#
# Outputs (each run starts them afresh):
#   PROOF_DIR (train/results/slurm-proof/): sharded/<run>/ (shards + merged table),
#     unsharded/<run>/, logs/ (Slurm and unsharded logs), verdict.txt
#   PROOF_SCRATCH (train/runs/slurm-proof/, ignored by git): the models of both runs
#     (--models-dir, so models/ is not touched) and the runs' working directories, which hold
#     their checkpoints (train/runs/) and feature caches (train/cache/) apart from the repo's
# Environment: PACA_FER (binary, as in sweep.sbatch), PACA_FER_DATA (../shared/data/ferplus),
# PROOF_THREADS (CPUs per shard and --threads of both runs; default nproc/2), PROOF_TIMEOUT
# (seconds to wait for the Slurm jobs, default 14400), PROOF_KEEP_CLUSTER=1 (leave the cluster
# running; by default it is stopped at the end when this script started it).
set -euo pipefail

IGNORED="cluster_seconds cluster_us_per_image model_ms_per_image train_images_per_s train_seconds model_dir"

compare() { # merged.json unsharded.json -> verdict on stdout, status 0 when equal
  python3 - "$1" "$2" "$IGNORED" <<'EOF'
import csv, json, os, sys

merged_path, unsharded_path, ignored = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
merged, unsharded = (json.load(open(p)) for p in (merged_path, unsharded_path))
diffs = []

def walk(a, b, where):
    """Differences between two JSON values, exact (floats included)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in ignored:
                continue
            if k not in a or k not in b:
                diffs.append(f"{where}.{k}: only in {'unsharded' if k not in a else 'merged'}")
            else:
                walk(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{where}: {len(a)} items merged, {len(b)} unsharded")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{where}[{i}]")
    elif a != b or type(a) is not type(b):
        diffs.append(f"{where}: merged {a!r}, unsharded {b!r}")

top = lambda d: {k: v for k, v in d.items() if k != "cells"}
walk(top(merged), top(unsharded), "results")
name = lambda c: f"{c.get('method')}-k{c.get('k')}"
mc, uc = merged.get("cells", []), unsharded.get("cells", [])
mnames, unames = [name(c) for c in mc], [name(c) for c in uc]
for n in sorted(set(unames) - set(mnames)):
    diffs.append(f"cell {n}: missing from the merged table")
for n in sorted(set(mnames) - set(unames)):
    diffs.append(f"cell {n}: only in the merged table")
if len(set(mnames)) != len(mnames):
    diffs.append(f"merged table repeats cells: {mnames}")
if [n for n in mnames if n in unames] != [n for n in unames if n in mnames]:
    diffs.append(f"cells in another order: merged {mnames}, unsharded {unames}")
by_name = {name(c): c for c in uc}
for c in mc:
    if name(c) in by_name:
        walk(c, by_name[name(c)], f"cell {name(c)}")

# results.csv beside each results.json: equal rows once the timing columns are dropped.
mcsv, ucsv = (os.path.join(os.path.dirname(p), "results.csv") for p in (merged_path, unsharded_path))
csv_note = "results.csv: not compared (missing)"
if os.path.isfile(mcsv) and os.path.isfile(ucsv):
    def rows(p):
        with open(p, newline="") as f:
            r = list(csv.reader(f))
        keep = [i for i, h in enumerate(r[0]) if h not in ignored] if r else []
        return [[row[i] for i in keep if i < len(row)] for row in r]
    if rows(mcsv) == rows(ucsv):
        csv_note = "results.csv: equal without the timing columns"
    else:
        diffs.append("results.csv: differs without the timing columns")
        csv_note = "results.csv: DIFFERS"

print(f"merged:    {merged_path}")
print(f"unsharded: {unsharded_path}")
print(f"cells: {len(mc)} merged, {len(uc)} unsharded; ignored fields: {' '.join(sorted(ignored))}")
print(csv_note)
if diffs:
    print(f"VERDICT: DIFFERENT ({len(diffs)} differences)")
    for d in diffs[:50]:
        print(f"  {d}")
    if len(diffs) > 50:
        print(f"  ... {len(diffs) - 50} more")
    sys.exit(1)
print(f"VERDICT: EQUAL - the merged table of {len(mc)} cells matches the unsharded run cell by cell")
EOF
}

if [ "${1:-}" = compare ]; then
  [ $# -eq 3 ] || { echo "usage: $0 compare MERGED.json UNSHARDED.json" >&2; exit 2; }
  compare "$2" "$3"
  exit
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
proof=${PROOF_DIR:-train/results/slurm-proof}
scratch=${PROOF_SCRATCH:-train/runs/slurm-proof}
dry=${PROOF_DRY_RUN:-0}
threads=${PROOF_THREADS:-$(($(nproc) / 2))}
[ "$threads" -ge 1 ] || threads=1
timeout=${PROOF_TIMEOUT:-14400}
say() { echo "slurm-proof: $*"; }
die() { echo "slurm-proof: $*" >&2; exit 1; }

bin=${PACA_FER:-}
if [ -z "$bin" ]; then
  if [ -x "$HOME/.cache/paca-fer/target/release/paca-fer" ]; then
    bin=$HOME/.cache/paca-fer/target/release/paca-fer
  else
    bin=$(command -v paca-fer || true)
  fi
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then die "no paca-fer binary (${bin:-none}): build it or set PACA_FER"; fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
if [ "$dry" != 1 ] && ! "$bin" train --help | grep -q -- '--shard'; then
  die "$bin has no 'train --shard': rebuild it (or PROOF_DRY_RUN=1 to check the Slurm side only)"
fi
data=${PACA_FER_DATA:-../shared/data/ferplus}
[ -d "$data" ] || die "no dataset at $data (set PACA_FER_DATA)"
data=$(cd "$data" && pwd)

# Fresh outputs: only these two folders are removed.
for d in "$proof" "$scratch"; do
  case "$(realpath -m "$d")" in
    / | "$repo" | "$repo"/train | "$repo"/train/results | "$repo"/train/runs | "$repo"/models*) die "refusing to clear $d" ;;
  esac
done
rm -rf "$proof" "$scratch"
mkdir -p "$proof/logs" "$scratch/work-sharded" "$scratch/work-unsharded"
proof=$(cd "$proof" && pwd)
scratch=$(cd "$scratch" && pwd)
# The runs' working directories see the repository's config/ as a run from the root does.
ln -s "$repo/config" "$scratch/work-sharded/config"
ln -s "$repo/config" "$scratch/work-unsharded/config"

started_cluster=0
if ! sinfo -h >/dev/null 2>&1; then started_cluster=1; fi
scripts/slurm-local.sh
# shellcheck disable=SC2317  # run by the EXIT trap
stop_cluster() {
  if [ "$started_cluster" = 1 ] && [ "${PROOF_KEEP_CLUSTER:-0}" != 1 ]; then
    scripts/slurm-local.sh stop
  fi
}
trap stop_cluster EXIT

export PACA_FER=$bin PACA_FER_DATA=$data PACA_FER_SWEEP=$repo/config/sweep.toml
export PACA_FER_OUT=$proof/sharded PACA_FER_MODELS_DIR=$scratch/models-sharded
export PACA_FER_WORKDIR=$scratch/work-sharded PACA_FER_DRY_RUN=$dry
unset PACA_FER_ARGS PACA_FER_SHARDS PACA_FER_RUN PACA_FER_RESUME
sweep_cmd=(sbatch --parsable --array=0-1 --cpus-per-task="$threads" --job-name=proof-sweep
  --output="$proof/logs/%x-%A_%a.out" train/slurm/sweep.sbatch --quick)
jid=$("${sweep_cmd[@]}")
jid=${jid%%;*}
merge_cmd=(sbatch --parsable --dependency="afterok:$jid" --job-name=proof-merge
  --output="$proof/logs/%x-%j.out" train/slurm/merge.sbatch --quick)
mjid=$("${merge_cmd[@]}")
mjid=${mjid%%;*}
{
  echo "# $(date -Is) on $(hostname -s), slurm $(sinfo -V | awk '{print $2}'), $threads CPUs per shard"
  echo "${sweep_cmd[*]}   # job $jid"
  echo "${merge_cmd[*]}   # job $mjid"
} >"$proof/commands.txt"
say "submitted the array $jid (2 shards of --quick, $threads CPUs each) and the merge $mjid (afterok:$jid)"

# Wait until neither job is pending or running (squeue no longer lists them).
t0=$(date +%s) last=0
while :; do
  active=$(squeue -h -j "$jid,$mjid" -o '%i %T' 2>/dev/null || true)
  [ -n "$active" ] || break
  now=$(date +%s)
  if [ $((now - t0)) -ge "$timeout" ]; then
    scancel "$jid" "$mjid" || true
    die "jobs still not done after ${timeout} s; cancelled them; logs in $proof/logs"
  fi
  if [ $((now - last)) -ge 60 ]; then
    say "$((now - t0)) s: $(echo "$active" | tr '\n' ' ')"
    last=$now
  fi
  sleep 5
done

# Every array task and the merge must have completed (scontrol keeps finished jobs MinJobAge).
states=$(scontrol -o show job "$jid" | sed -n 's/.*ArrayTaskId=\([0-9]*\).* JobState=\([A-Z_]*\).*/task \1 \2/p'
  scontrol -o show job "$mjid" | sed -n 's/.* JobState=\([A-Z_]*\).*/merge \1/p')
say "job states: $(echo "$states" | tr '\n' ' ')"
if [ "$(echo "$states" | grep -c ' COMPLETED$')" -ne 3 ]; then
  for f in "$proof"/logs/*; do echo "--- $f"; tail -20 "$f"; done >&2
  die "not every job completed (see $proof/logs)"
fi
for f in "$proof"/logs/proof-*.out; do echo "--- $f"; grep -E '^(== |run:|dry run:)' "$f" || true; done

unsharded_cmd=("$bin" train --data "$data" --sweep "$repo/config/sweep.toml" --quick --threads "$threads"
  --out "$proof/unsharded" --models-dir "$scratch/models-unsharded")
echo "(cd $scratch/work-unsharded && ${unsharded_cmd[*]})   # unsharded" >>"$proof/commands.txt"
if [ "$dry" = 1 ]; then
  say "dry run: the unsharded run would be: (cd $scratch/work-unsharded && ${unsharded_cmd[*]})"
  say "dry run: done (no training, no comparison)"
  exit 0
fi
say "the unsharded --quick sweep ($threads threads); log: $proof/logs/unsharded.log"
if ! (cd "$scratch/work-unsharded" && "${unsharded_cmd[@]}") >"$proof/logs/unsharded.log" 2>&1; then
  tail -20 "$proof/logs/unsharded.log" >&2
  die "the unsharded run failed"
fi

shopt -s nullglob
merged=("$proof"/sharded/*/results.json)
unsharded=("$proof"/unsharded/*/results.json)
[ ${#merged[@]} -eq 1 ] || die "expected one merged results.json under $proof/sharded/, found ${#merged[@]}"
[ ${#unsharded[@]} -eq 1 ] || die "expected one results.json under $proof/unsharded/, found ${#unsharded[@]}"
set +e
compare "${merged[0]}" "${unsharded[0]}" | tee "$proof/verdict.txt"
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
