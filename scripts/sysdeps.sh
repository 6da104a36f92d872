#!/usr/bin/env bash
# Installs the Debian packages that interop tests and benchmarks run as real peers.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
packages=(
  rtmpdump                      # rtmpdump: librtmp client (digest handshake)
  ffmpeg                        # Debian's ffmpeg/ffprobe 5.1 (second FFmpeg peer, ffprobe)
  gstreamer1.0-tools            # gst-launch-1.0
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good     # flvdemux, flvmux
  gstreamer1.0-plugins-bad      # rtmp2src / rtmp2sink
  gstreamer1.0-plugins-ugly     # x264enc (GStreamer as a publisher)
  gstreamer1.0-libav            # avdec_h264, avenc_aac
  nginx-light                   # nginx + libnginx-mod-rtmp: relay tests and benchmark baseline
  libnginx-mod-rtmp
  chromium                      # headless browser for the dashboard test (Playwright drives it)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "sysdeps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian nginx package starts a service on :80 when it can; the tests run their own.
$sudo systemctl disable --now nginx >/dev/null 2>&1 || true
$sudo pkill -x nginx >/dev/null 2>&1 || true
