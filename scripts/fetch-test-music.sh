#!/usr/bin/env bash
# Fetches real music for the tests: the Vorbis tracks of Debian's frozen-bubble-data package
# (GPL-2), unpacked under test-assets/frozen-bubble/. Never committed (see .gitignore).
# Usage: scripts/fetch-test-music.sh [DEST_DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-"$root/test-assets/frozen-bubble"}

if compgen -G "$dest/*.ogg" > /dev/null; then
  echo "test music already present in $dest ($(ls "$dest"/*.ogg | wc -l) files)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download frozen-bubble-data > /dev/null 2>&1; then
  echo "apt-get download failed; refreshing the package lists once" >&2
  apt-get update -qq
  apt-get download frozen-bubble-data
fi
dpkg-deb -x frozen-bubble-data_*.deb unpacked
mkdir -p "$dest"
cp unpacked/usr/share/games/frozen-bubble/snd/*.ogg "$dest"/
echo "fetched $(ls "$dest"/*.ogg | wc -l) Vorbis files into $dest"
