#!/bin/sh
# Fetches real recordings for the mastering crate's real-music test (QUALITY.md §5):
# Debian's frozen-bubble-data ships Vorbis music (GPL-2). Nothing is committed.
# Usage: mastering/scripts/fetch-test-music.sh [dir]   (default: target/test-music)
set -eu
dir="${1:-target/test-music}"
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download frozen-bubble-data >/dev/null && dpkg-deb -x frozen-bubble-data_*.deb x)
cp "$tmp"/x/usr/share/games/frozen-bubble/snd/*.ogg "$dir"/
echo "$dir"
