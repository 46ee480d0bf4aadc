#!/usr/bin/env bash
# Regenerates assets/fonts/DejaVuSans.ttf: Debian's DejaVu Sans (package fonts-dejavu-core),
# cut down to the characters the plots print so the embedded font adds ~40 KiB, not ~740 KiB.
# Needs: apt-get install fonts-dejavu-core; pip install fonttools.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
out=assets/fonts/DejaVuSans.ttf
# Basic Latin, Latin-1 (µ, ×, ·, °), en/em dash, ellipsis, minus, ≤, ≥.
pyftsubset "$src" \
  --unicodes='U+0020-007E,U+00A0-00FF,U+2013,U+2014,U+2026,U+2212,U+2264,U+2265' \
  --layout-features='kern' --legacy-kern --no-hinting --drop-tables+=MATH,GSUB --name-IDs='*' --name-legacy --name-languages='*' \
  --output-file="$out"
cp /usr/share/doc/fonts-dejavu-core/copyright assets/fonts/DejaVuSans.LICENSE
ls -l "$out"
