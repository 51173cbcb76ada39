#!/usr/bin/env bash
# The project's whole test suite: the one command the README gives and CI runs.
#   1. fetches the real-music test files (Debian's frozen-bubble-data, never committed), and
#      checks the documentation's links (scripts/check-docs.sh);
#   2. runs every Rust test in release mode (DSP tests process real-length signals), every test
#      binary even when an earlier one fails;
#   3. checks the deployment files (systemd units, Prometheus rules, backup/restore);
#   4. runs the browser tests (headless Chromium against the release API binary).
# It ends with one line "N passed, M failed" summing all of them, and exits non-zero on any failure.
# Each step has a time limit (a hang fails its step with a message instead of stalling CI);
# the API tests that start processes also have a watchdog of their own that reports what hung.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
status=0

bash scripts/fetch-test-music.sh || { echo "could not fetch the real-music test files" >&2; status=1; }
export MAGIC_MASTER_TEST_MUSIC_DIR="$root/test-assets/frozen-bubble"

# Runs "$@" under a time limit of $1 seconds. timeout(1) runs it in a process group of its
# own and stops the whole group, so a hung test binary or service cannot hold the step open.
# A minute before the limit, what every process of the group is doing is written to a file
# (not to the pipe: a sleeping reporter must not keep `tee` waiting) and printed afterwards.
limited() {
  local seconds=$1
  shift
  local report="$log_dir/hung-$RANDOM.txt"
  timeout --kill-after=30 "$seconds" "$@" &
  local step=$!
  (sleep $((seconds - 60)) && kill -0 "$step" 2> /dev/null && bash scripts/report-hung.sh "$step") > "$report" 2>&1 &
  local reporter=$!
  wait "$step"
  local rc=$?
  pkill -P "$reporter" sleep 2> /dev/null
  kill "$reporter" 2> /dev/null
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    cat "$report" >&2
    echo "TIMED OUT after $seconds s: $*" >&2
  fi
  return "$rc"
}

# Documentation: links inside the repository name existing files and nothing points outside
# it; the self-test first proves that the checker catches each kind of broken link.
docs_passed=0
docs_failed=0
for docs_check in --self-test --check; do
  if bash scripts/check-docs.sh "$docs_check"; then
    docs_passed=$((docs_passed + 1))
  else
    docs_failed=$((docs_failed + 1))
    status=1
  fi
done

limited 2100 cargo test --workspace --release --no-fail-fast 2>&1 | tee "$log_dir/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ -f ops/check.sh ]; then
  limited 480 bash ops/check.sh 2>&1 | tee "$log_dir/ops.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

if [ -f e2e/run.sh ]; then
  MAGIC_MASTER_API_BIN="${CARGO_TARGET_DIR:-$root/target}/release/magic-master-api" limited 720 bash e2e/run.sh 2>&1 | tee "$log_dir/e2e.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

passed=$docs_passed
failed=$docs_failed
while read -r p f; do
  passed=$((passed + p)); failed=$((failed + f))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log_dir/cargo.log")
if [ -f "$log_dir/ops.log" ]; then
  read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$log_dir/ops.log" | tail -n 1) || true
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
fi
if [ -f "$log_dir/e2e.log" ]; then
  p=$(sed -nE 's/^ℹ pass ([0-9]+).*/\1/p' "$log_dir/e2e.log" | tail -n 1)
  f=$(sed -nE 's/^ℹ fail ([0-9]+).*/\1/p' "$log_dir/e2e.log" | tail -n 1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a step failed without a test count (build error, script error)
fi
echo
echo "$passed passed, $failed failed"
exit "$status"
