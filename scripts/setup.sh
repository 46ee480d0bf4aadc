#!/usr/bin/env bash
# Installs the system packages paca-fer builds against (idempotent; needs root or sudo for apt).
#   build-essential, pkg-config: C parts of dependencies
#   libclang-dev: nokhwa's V4L2 bindings (camera feature)
#   nasm: SIMD JPEG decoding in nokhwa (optional, faster MJPEG)
#   libgstreamer*-dev + plugins: video files, RTSP/HTTP streams and camera pipelines (gstreamer
#     feature); plugins-ugly (x264enc) and libav (avdec_h264) encode and decode the tests' H.264 clips
# With --x11 also: xvfb, x11-apps (virtual display and screen grab for scripts/xvfb_check.py).
set -euo pipefail
pkgs=(build-essential pkg-config libclang-dev nasm
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)
if [ "${1:-}" = "--x11" ]; then
  pkgs+=(xvfb x11-apps)
fi
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
