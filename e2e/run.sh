#!/usr/bin/env bash
# Runs the browser tests against the release API binary.
#   e2e/run.sh                      (binary from ../target/release/magic-master-api)
#   MAGIC_MASTER_API_BIN=/path/to/magic-master-api e2e/run.sh
# Needs: Debian's chromium and sqlite3 (installed here when missing), node >= 20 with npm.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v chromium >/dev/null 2>&1 || [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

npm ci --no-audit --no-fund --loglevel=error

export MAGIC_MASTER_API_BIN="${MAGIC_MASTER_API_BIN:-$(pwd)/../target/release/magic-master-api}"
if [ ! -x "$MAGIC_MASTER_API_BIN" ]; then
  echo "API binary not found at $MAGIC_MASTER_API_BIN (cargo build --release -p magic-master-api)" >&2
  exit 1
fi
rm -rf screenshots
exec node --test --test-concurrency=1 --test-reporter=spec tests/
