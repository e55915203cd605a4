#!/usr/bin/env bash
# System packages mmmgen needs: FluidSynth + a General MIDI SoundFont (audio rendering) and
# Debian's Chromium (browser tests). Installs them when root on Debian/Ubuntu; otherwise prints
# the exact command. Idempotent: does nothing when everything is present.
set -euo pipefail
PKGS=(fluidsynth fluid-soundfont-gm chromium)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "setup: not a Debian system; install FluidSynth, a GM SoundFont and Chromium yourself." >&2
  exit 0
fi
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "setup: apt-get failed; audio falls back to the pretty_midi SoundFont, browser tests skip." >&2
  fi
else
  echo "setup: please run as root:  sudo $cmd" >&2
fi
