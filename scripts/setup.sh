#!/usr/bin/env bash
# Installs the system packages paca-fer builds against (idempotent; needs root or sudo for apt).
#   build-essential, pkg-config: C parts of dependencies
#   libclang-dev: nokhwa's V4L2 bindings (camera feature)
#   nasm: SIMD JPEG decoding in nokhwa (optional, faster MJPEG)
set -euo pipefail
pkgs=(build-essential pkg-config libclang-dev nasm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: system packages present (${pkgs[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
