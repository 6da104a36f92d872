#!/usr/bin/env bash
# Installs the Debian packages that interop tests and benchmarks run as real peers.
# Idempotent: does nothing when every package is already installed.
#
# It never stops or reconfigures a process it did not start: a service that a package
# would start on installation (nginx on :80, redis-server on :6379) is kept from starting
# with a policy-rc.d that answers 101 ("action forbidden", Debian Policy's invoke-rc.d
# interface) for the length of the install, removed afterwards unless it was there before.
# The tests run their own nginx and redis-server on free ports.
#
# SYSDEPS_FORCE=1 runs the install even when everything is present (repairs a broken set;
# the sysdeps test uses it to go through the install path).
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
  redis-server                  # the cluster directory (tests run their own on a free port)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
wanted=("${missing[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  [ "${SYSDEPS_FORCE:-0}" = 1 ] || exit 0
  wanted=("${packages[@]}")
fi
echo "sysdeps: installing ${wanted[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
ours=""
cleanup() {
  if [ -n "$ours" ]; then
    $sudo rm -f "$policy"
  fi
}
trap cleanup EXIT
if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
  # Ours only if there was none: an existing one (a container's) is left as it is.
  printf '#!/bin/sh\n# aiortmp scripts/sysdeps.sh: no service starts during its install\nexit 101\n' \
    | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  ours=1
fi

apt_install() {
  $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${wanted[@]}" >/dev/null
}
# The package lists are refreshed only when the install needs it (no network otherwise).
if ! apt_install 2>/dev/null; then
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300
  apt_install
fi
# A service installed just now would start at the next boot (on :80, :6379): disabled, not
# stopped. One that was installed before is the user's, and left as it is.
for p in "${missing[@]}"; do
  if [ "$p" = nginx-light ] && command -v systemctl >/dev/null; then
    $sudo systemctl disable nginx >/dev/null 2>&1 || true
  fi
  if [ "$p" = redis-server ] && command -v systemctl >/dev/null; then
    $sudo systemctl disable redis-server >/dev/null 2>&1 || true
  fi
done
