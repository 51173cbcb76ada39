#!/usr/bin/env bash
# Consistent online snapshot of the Magic Master SQLite database, with rotation.
#
# Safe while the API and workers are running: the copy is made with SQLite's online
# backup API (sqlite3 ".backup"), which sees one committed state of the database,
# WAL included. The snapshot is checked with PRAGMA integrity_check before it is kept.
#
# Environment (all optional):
#   MAGIC_MASTER_DATA_DIR  data directory                 [/var/lib/magic-master]
#   MAGIC_MASTER_DB_PATH   database file                  [$MAGIC_MASTER_DATA_DIR/magic_master.db]
#   BACKUP_DIR             where snapshots go             [/var/backups/magic-master]
#   BACKUP_KEEP            newest snapshots to keep (>=1) [14]
#   BACKUP_GZIP            1 = gzip the snapshot, 0 = not [1]
#
# Output: magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3[.gz] in BACKUP_DIR (UTC time; the
# same name as the admin endpoint's download). Prints the snapshot's path on stdout.
# Exit status: 0 on success; non-zero with a message on stderr on any failure, in which
# case no partial snapshot is left behind and no old snapshot is rotated away.
set -euo pipefail

readonly PREFIX="magic_master_backup_"

die() {
    echo "backup_db: ERROR: $*" >&2
    exit 1
}
log() {
    echo "backup_db: $*" >&2
}

data_dir="${MAGIC_MASTER_DATA_DIR:-/var/lib/magic-master}"
db="${MAGIC_MASTER_DB_PATH:-$data_dir/magic_master.db}"
backup_dir="${BACKUP_DIR:-/var/backups/magic-master}"
keep="${BACKUP_KEEP:-14}"
use_gzip="${BACKUP_GZIP:-1}"

command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is not installed (Debian package: sqlite3)"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_KEEP must be a positive integer, got '$keep'"
[[ "$use_gzip" == 0 || "$use_gzip" == 1 ]] || die "BACKUP_GZIP must be 0 or 1, got '$use_gzip'"
if [[ "$use_gzip" == 1 ]]; then
    command -v gzip >/dev/null 2>&1 || die "gzip is not installed (or set BACKUP_GZIP=0)"
fi
# sqlite3 would silently create an empty database at a wrong path: refuse instead.
[[ -f "$db" ]] || die "database not found: $db (set MAGIC_MASTER_DB_PATH or MAGIC_MASTER_DATA_DIR)"
[[ -r "$db" ]] || die "database not readable by $(id -un): $db"
[[ -d "$backup_dir" ]] || die "backup directory does not exist: $backup_dir (set BACKUP_DIR)"
[[ -w "$backup_dir" ]] || die "backup directory not writable by $(id -un): $backup_dir"

# One backup at a time (a timer run and a manual run must not rotate each other's files).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$backup_dir/.backup.lock"
    flock -n 9 || die "another backup is running (lock $backup_dir/.backup.lock)"
fi

tmp="$(mktemp "$backup_dir/.${PREFIX}XXXXXX.partial")"
cleanup() { rm -f -- "$tmp" "$tmp.gz" "$tmp-journal" "$tmp-wal" "$tmp-shm"; }
trap cleanup EXIT

# 1. Snapshot. ".timeout" waits for writers holding a lock instead of failing at once.
#    The path goes inside an SQL-ish dot-command argument: reject quotes rather than escape.
[[ "$tmp" != *"'"* ]] || die "backup path must not contain a single quote: $tmp"
if ! err="$(sqlite3 -bail "$db" ".timeout 30000" ".backup '$tmp'" 2>&1)"; then
    die "snapshot of $db failed: $err"
fi

# 2. Make the snapshot a self-contained single file (no -wal needed to read it).
if ! err="$(sqlite3 -bail "$tmp" "PRAGMA journal_mode=DELETE;" 2>&1 >/dev/null)"; then
    die "could not switch the snapshot to rollback-journal mode: $err"
fi

# 3. Verify. integrity_check prints exactly "ok" for a sound database.
check="$(sqlite3 -bail "$tmp" "PRAGMA integrity_check;" 2>&1)" || true
[[ "$check" == "ok" ]] || die "integrity_check of the snapshot failed (source $db): $(head -c 2000 <<<"$check")"
tables="$(sqlite3 -bail "$tmp" "SELECT count(*) FROM sqlite_schema WHERE type='table';" 2>&1)" ||
    die "cannot read the snapshot's schema: $tables"
[[ "$tables" =~ ^[0-9]+$ && "$tables" -gt 0 ]] || die "snapshot has no tables: is $db a Magic Master database?"

# 4. Compress (optional) and test the archive.
suffix=".sqlite3"
final_src="$tmp"
if [[ "$use_gzip" == 1 ]]; then
    gzip -n -6 -- "$tmp" || die "gzip failed"
    gzip -t -- "$tmp.gz" || die "gzip archive test failed"
    suffix=".sqlite3.gz"
    final_src="$tmp.gz"
fi

# 5. Publish atomically under a unique name (a rename in the same directory). Several
#    snapshots in one second get a counter that sorts after the ones already there.
stamp="$(date -u +%Y%m%d_%H%M%S)"
out="$backup_dir/$PREFIX$stamp$suffix"
last="$(find "$backup_dir" -maxdepth 1 -type f -name "$PREFIX${stamp}*" -printf '%f\n' |
    sed -n "s/^$PREFIX${stamp}\(_\([0-9]*\)\)\{0,1\}\.sqlite3.*/\2 x/p" | sort -n | tail -n 1)"
if [[ -n "$last" ]]; then
    n="${last% x}"
    out="$backup_dir/$PREFIX${stamp}_$(printf '%03d' $((10#${n:-0} + 1)))$suffix"
fi
[[ ! -e "$out" ]] || die "snapshot name already taken: $out"
chmod 0640 -- "$final_src"
mv -- "$final_src" "$out" || die "could not move the snapshot into place: $out"
sync -- "$out" 2>/dev/null || true

# 6. Rotate: keep the $keep newest snapshots, the one just made always among them (even
#    if the clock went back). Names sort by time (UTC stamp, then counter).
mapfile -t older < <(find "$backup_dir" -maxdepth 1 -type f \
    \( -name "${PREFIX}*.sqlite3" -o -name "${PREFIX}*.sqlite3.gz" \) ! -name "${out##*/}" \
    -printf '%f\n' | LC_ALL=C sort)
removed=0
if ((${#older[@]} > keep - 1)); then
    for old in "${older[@]:0:${#older[@]}-(keep - 1)}"; do
        rm -f -- "$backup_dir/$old" || die "could not remove old snapshot $backup_dir/$old"
        removed=$((removed + 1))
    done
fi

size="$(stat -c %s -- "$out")"
log "snapshot ok: $out ($size bytes, integrity ok, $tables tables); kept $((${#older[@]} - removed + 1)), removed $removed"
echo "$out"
