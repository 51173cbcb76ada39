#!/usr/bin/env bash
# Prints what the processes of a hung test are doing: each thread's kernel wait, and gdb
# backtraces of the test binaries and services.
#   report-hung.sh PGID           every process of a process group (scripts/test.sh, shortly
#                                 before a step's time limit)
#   report-hung.sh --pids PID...  these processes (the API tests' watchdog)
set -uo pipefail
if [ "${1:-}" = "--pids" ]; then
  shift
  pids="$*"
  echo "=== HUNG TEST REPORT (processes $pids) at $(date -u +%FT%TZ) ==="
else
  pgid=$1
  pids=$(ps -e -o pid=,pgid= | awk -v g="$pgid" '$2 == g { print $1 }')
  echo "=== HUNG STEP REPORT (process group $pgid) at $(date -u +%FT%TZ) ==="
fi
for pid in $pids; do
  [ -r "/proc/$pid/cmdline" ] || { echo "--- pid $pid: gone"; continue; }
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-200)
  echo "--- pid $pid: $cmd"
  for task in /proc/"$pid"/task/*; do
    [ -d "$task" ] || continue
    printf '  thread %s %-16s state %s wchan %s\n' "${task##*/}" "$(cat "$task/comm" 2>/dev/null)" \
      "$(awk '{ sub(/.*\) /, ""); print $1 }' "$task/stat" 2>/dev/null)" "$(cat "$task/wchan" 2>/dev/null)"
  done
  case "$cmd" in
    */deps/* | *magic-master-api* | *magic-master-worker*)
      if command -v gdb > /dev/null; then
        timeout 60 gdb -batch -nx -p "$pid" -ex "thread apply all bt 12" 2> /dev/null \
          | grep -E '^(#|Thread)' | cut -c1-200 | sed 's/^/  /'
      fi
      ;;
  esac
done
echo "=== END OF HUNG STEP REPORT ==="
