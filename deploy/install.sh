#!/usr/bin/env bash
# Install or upgrade Magic Master on a systemd host (Debian 12 or similar), as root.
#
#   cargo build --release -p magic-master-api -p magic-master-worker
#   sudo deploy/install.sh [--workers N] [--bin-dir DIR]
#
# Creates the magic-master system user (sysusers.d) and its directories (tmpfiles.d),
# copies the binaries to /usr/local/bin, the backup/restore scripts to
# /usr/local/lib/magic-master, the units to /etc/systemd/system and the runbook to
# /usr/local/share/doc/magic-master; writes /etc/magic-master/magic-master.env from the
# example unless it exists; enables the API, N workers (default 2) and the backup timer.
# Units are (re)started only once the environment file sets MAGIC_MASTER_JWT_SECRET (and has
# no CHANGE_ME left from older examples); the API itself refuses a weak secret.
# Re-running it upgrades binaries and units in place and restarts what runs.
#
# Environment: DESTDIR (stage into a directory instead of /, no systemctl calls; for tests).
set -euo pipefail

die() {
    echo "install: ERROR: $*" >&2
    exit 1
}
log() { echo "install: $*" >&2; }

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname -- "$here")"
workers=2
bin_dir="$repo/target/release"
while (($# > 0)); do
    case "$1" in
    --workers)
        workers="${2:-}"
        shift
        ;;
    --bin-dir)
        bin_dir="${2:-}"
        shift
        ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1" ;;
    esac
    shift
done
[[ "$workers" =~ ^[0-9]+$ ]] || die "--workers needs a number"
root="${DESTDIR:-}"
[[ -n "$root" || "$(id -u)" == 0 ]] || die "run as root (or set DESTDIR to stage)"

for b in magic-master-api magic-master-worker; do
    [[ -x "$bin_dir/$b" ]] || die "binary not found: $bin_dir/$b (cargo build --release first, or --bin-dir)"
done
if [[ -z "$root" ]]; then
    command -v sqlite3 >/dev/null 2>&1 || log "warning: sqlite3 not installed; backups need it (apt-get install sqlite3)"
fi

# User and directories, declared once in sysusers.d/tmpfiles.d so that systemd recreates
# the directories at boot.
install -D -m 0644 "$here/magic-master.sysusers" "$root/usr/lib/sysusers.d/magic-master.conf"
install -D -m 0644 "$here/magic-master.tmpfiles" "$root/usr/lib/tmpfiles.d/magic-master.conf"
if [[ -n "$root" ]]; then
    systemd-sysusers --root="$root" magic-master.conf
    systemd-tmpfiles --root="$root" --create magic-master.conf
else
    systemd-sysusers magic-master.conf
    systemd-tmpfiles --create magic-master.conf
fi

# Binaries and scripts (install(1) writes a new file and renames it: safe while running).
install -D -m 0755 "$bin_dir/magic-master-api" "$root/usr/local/bin/magic-master-api"
install -D -m 0755 "$bin_dir/magic-master-worker" "$root/usr/local/bin/magic-master-worker"
install -D -m 0755 "$here/backup_db.sh" "$root/usr/local/lib/magic-master/backup_db.sh"
install -D -m 0755 "$here/restore_db.sh" "$root/usr/local/lib/magic-master/restore_db.sh"
if [[ -f "$repo/ops/RUNBOOK.md" ]]; then
    install -D -m 0644 "$repo/ops/RUNBOOK.md" "$root/usr/local/share/doc/magic-master/RUNBOOK.md"
fi

# Units.
for u in magic-master.service magic-master-worker@.service \
    magic-master-backup.service magic-master-backup.timer; do
    install -D -m 0644 "$here/$u" "$root/etc/systemd/system/$u"
done

# Configuration: never overwrite the operator's file.
env_file="$root/etc/magic-master/magic-master.env"
if [[ ! -e "$env_file" ]]; then
    install -D -m 0640 "$here/magic-master.env.example" "$env_file"
    if [[ -z "$root" ]]; then chown root:magic-master "$env_file"; fi
    log "wrote $env_file from the example: fill in the secrets (MAGIC_MASTER_JWT_SECRET: openssl rand -hex 32), then run this again"
fi

if [[ -n "$root" ]]; then
    log "staged into $root (no units enabled)"
    exit 0
fi

systemctl daemon-reload
units=(magic-master.service magic-master-backup.timer)
for ((i = 1; i <= workers; i++)); do units+=("magic-master-worker@$i.service"); done
systemctl enable "${units[@]}"
if grep -q 'CHANGE_ME' "$env_file" || ! grep -Eq '^MAGIC_MASTER_JWT_SECRET=[^[:space:]]' "$env_file"; then
    log "enabled ${units[*]} but NOT started: set MAGIC_MASTER_JWT_SECRET (openssl rand -hex 32) and replace any CHANGE_ME in $env_file"
    exit 0
fi
# API first, then workers.
systemctl restart magic-master.service
for ((i = 1; i <= workers; i++)); do systemctl restart "magic-master-worker@$i.service"; done
systemctl start magic-master-backup.timer
log "running: ${units[*]}; check: curl -s http://127.0.0.1:8000/api/health"
