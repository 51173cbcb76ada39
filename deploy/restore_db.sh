#!/usr/bin/env bash
# Restore the Magic Master SQLite database from a snapshot made by backup_db.sh or
# downloaded from the admin panel (GET /api/admin/backup/db).
#
# Usage (as root):
#   restore_db.sh [--no-systemd] [--yes] SNAPSHOT(.sqlite3|.sqlite3.gz)
#
# Steps, in order; any failure stops the script before the live database is touched
# (steps 1-2) or says exactly where it stopped (steps 3-7):
#   1. unpack/copy the snapshot next to the live database (same file system);
#   2. PRAGMA integrity_check on that copy (must print "ok") and check it has tables;
#   3. stop the Magic Master units that are running (workers first, then the API),
#      remembering which ones ran;
#   4. move the live database aside as <db>.pre-restore-<UTC stamp>, together with its
#      -wal file (which may hold committed data: the pair stays readable), and delete
#      the -shm index;
#   5. move the verified copy into place (atomic rename) and remove any stale -wal/-shm;
#   6. give it to the service user (chown) with mode 0640;
#   7. start again the units that were running (API first, then workers).
#
# Options:
#   --no-systemd   do not stop/start units (restoring into a path no running service
#                  uses, e.g. to inspect a snapshot or in tests)
#   --yes          do not ask for confirmation
# Environment:
#   MAGIC_MASTER_DATA_DIR  [/var/lib/magic-master]
#   MAGIC_MASTER_DB_PATH   [$MAGIC_MASTER_DATA_DIR/magic_master.db]
#   MAGIC_MASTER_OWNER     owner:group of the restored file [magic-master:magic-master];
#                          empty = leave ownership as it is
set -euo pipefail

die() {
    echo "restore_db: ERROR: $*" >&2
    exit 1
}
log() {
    echo "restore_db: $*" >&2
}
usage() {
    sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

use_systemd=1
assume_yes=0
snapshot=""
while (($# > 0)); do
    case "$1" in
    --no-systemd) use_systemd=0 ;;
    --yes | -y) assume_yes=1 ;;
    -h | --help) usage ;;
    -*) die "unknown option: $1" ;;
    *)
        [[ -z "$snapshot" ]] || die "only one snapshot may be given"
        snapshot="$1"
        ;;
    esac
    shift
done
[[ -n "$snapshot" ]] || usage

data_dir="${MAGIC_MASTER_DATA_DIR:-/var/lib/magic-master}"
db="${MAGIC_MASTER_DB_PATH:-$data_dir/magic_master.db}"
owner="${MAGIC_MASTER_OWNER-magic-master:magic-master}"
db_dir="$(dirname -- "$db")"

command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is not installed (Debian package: sqlite3)"
[[ -f "$snapshot" ]] || die "snapshot not found: $snapshot"
[[ -d "$db_dir" ]] || die "database directory does not exist: $db_dir"
if ((use_systemd)); then
    command -v systemctl >/dev/null 2>&1 || die "systemctl not found (use --no-systemd if no units run here)"
fi

# 1. Copy or unpack the snapshot beside the live database, so step 5 is a rename.
new="$(mktemp "$db_dir/.restore-XXXXXX.partial")"
cleanup() { rm -f -- "$new" "$new-journal" "$new-wal" "$new-shm"; }
trap cleanup EXIT
case "$snapshot" in
*.gz)
    gzip -dc -- "$snapshot" >"$new" || die "cannot decompress $snapshot"
    ;;
*)
    cp -- "$snapshot" "$new" || die "cannot copy $snapshot"
    ;;
esac

# 2. Verify before anything live is touched.
check="$(sqlite3 -bail "$new" "PRAGMA integrity_check;" 2>&1)" || true
[[ "$check" == "ok" ]] || die "snapshot failed integrity_check, nothing changed: $(head -c 2000 <<<"$check")"
tables="$(sqlite3 -bail "$new" "SELECT count(*) FROM sqlite_schema WHERE type='table';" 2>&1)" ||
    die "cannot read the snapshot's schema, nothing changed: $tables"
[[ "$tables" =~ ^[0-9]+$ && "$tables" -gt 0 ]] || die "snapshot has no tables, nothing changed"
rm -f -- "$new-wal" "$new-shm" # a WAL-mode snapshot may leave these after the check
log "snapshot $snapshot verified: integrity ok, $tables tables"

if ((assume_yes == 0)); then
    [[ -t 0 ]] || die "not a terminal: pass --yes to confirm replacing $db"
    read -r -p "Replace $db with $snapshot? Units will be stopped and restarted. [y/N] " answer
    [[ "$answer" == y || "$answer" == Y || "$answer" == yes ]] || die "aborted, nothing changed"
fi

# 3. Stop what runs, workers first (they finish their current job: this can take
#    up to their TimeoutStopSec), then the API. Remember what ran.
was_running=()
if ((use_systemd)); then
    mapfile -t was_running < <(systemctl list-units --type=service --state=active --no-legend --plain \
        'magic-master-worker@*.service' 'magic-master.service' | awk '{print $1}')
    # The daily backup must not read the database while it is being swapped.
    systemctl stop magic-master-backup.timer magic-master-backup.service 2>/dev/null || true
    log "stopping workers (each finishes its running job first) and the API"
    systemctl stop 'magic-master-worker@*.service' || die "could not stop workers; database not changed"
    systemctl stop magic-master.service || die "could not stop magic-master.service; database not changed"
    if systemctl list-units --type=service --state=active,activating,deactivating,reloading \
        --no-legend --plain 'magic-master-worker@*.service' 'magic-master.service' | grep -q .; then
        die "Magic Master units are still active; database not changed"
    fi
fi

# 4. Move the live database aside (with its WAL, which may hold committed data).
stamp="$(date -u +%Y%m%d_%H%M%S)"
aside=""
if [[ -e "$db" ]]; then
    aside="$db.pre-restore-$stamp"
    mv -- "$db" "$aside" || die "could not move $db aside; units are stopped, database unchanged"
    if [[ -e "$db-wal" ]]; then
        mv -- "$db-wal" "$aside-wal" || die "could not move $db-wal aside (the database is at $aside)"
    fi
    log "previous database moved aside: $aside"
fi
# 5. Into place, with no stale -wal/-shm/-journal from the old file next to it.
rm -f -- "$db-shm" "$db-wal" "$db-journal"
mv -- "$new" "$db" || die "could not move the restored database into place at $db (the old one is at ${aside:-<none>})"
trap - EXIT

# 6. Ownership and mode.
chmod 0640 -- "$db"
if [[ -n "$owner" ]]; then
    chown -- "$owner" "$db" || die "chown $owner $db failed (restored, but the service may not open it)"
fi

# 7. Start again what ran before: the API first, then the workers.
if ((use_systemd)); then
    if ((${#was_running[@]} == 0)); then
        log "no Magic Master unit was running; start them with: systemctl start magic-master.service 'magic-master-worker@1.service'"
    else
        for u in "${was_running[@]}"; do
            if [[ "$u" == magic-master.service ]]; then
                systemctl start magic-master.service || die "restored, but magic-master.service failed to start: see journalctl -u magic-master"
            fi
        done
        for u in "${was_running[@]}"; do
            if [[ "$u" == magic-master-worker@* ]]; then
                systemctl start "$u" || die "restored, but $u failed to start: see journalctl -u $u"
            fi
        done
        log "started again: ${was_running[*]}"
    fi
    if systemctl is-enabled --quiet magic-master-backup.timer 2>/dev/null; then
        systemctl start magic-master-backup.timer || log "warning: could not restart magic-master-backup.timer"
    fi
fi

log "restored $db from $snapshot${aside:+ (previous database kept at $aside)}"
