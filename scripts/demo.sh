#!/usr/bin/env bash
# The paca-fer demo on the shipped models (the zoo's choice for this machine, see `paca-fer select`):
#   - with a camera (/dev/video*) and a display: the live window (Esc or q quits);
#   - otherwise: the bundled public-domain sample photo, headless, one JSON line per frame on
#     stdout and the annotated frame in demo-out/.
# Extra arguments go to `paca-fer run` (e.g. --input DIR, --show-clusters, --camera 1).
set -euo pipefail
cd "$(dirname "$0")/.."
run=(cargo run --release --quiet -- run)
if [ $# -eq 0 ] && compgen -G "/dev/video*" >/dev/null && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "${run[@]}"
elif [ $# -gt 0 ]; then
  exec "${run[@]}" "$@"
else
  echo "demo: no camera or no display; classifying the sample photo tests/fixtures/face/astronaut.png" >&2
  exec "${run[@]}" --headless --input tests/fixtures/face/astronaut.png --detect-width 320 \
    --jsonl - --save-annotated demo-out
fi
