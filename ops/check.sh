#!/usr/bin/env bash
# CI checks for deploy/ and ops/:
#   systemd units (systemd-analyze verify + security), install.sh staging,
#   Prometheus config/rules/rule tests and a real Prometheus scrape (promtool, prometheus),
#   shell scripts (bash -n, shellcheck), nginx example (nginx -t, if nginx is installed),
#   backup/restore round trips on a generated SQLite database; and, when the release
#   binaries are built, the worker and API started exactly as their units start them, plus a
#   backup/restore round trip with real jobs.
# Usage: ops/check.sh   (from anywhere, as root: staging sets file owners; CHECK_VERBOSE=1
#        also shows the logs of passing checks; MAGIC_MASTER_BIN_DIR=DIR picks the built binaries,
#        default target/release)
# Debian packages: systemd (systemd-analyze, systemd-sysusers, systemd-tmpfiles),
#   prometheus (promtool, prometheus), sqlite3, shellcheck, curl (real-binary round trip),
#   python3 (stand-in /metrics); optional: nginx-light + openssl (nginx -t).
# Prints one PASS/FAIL/SKIP line per check and ends with "N passed, M failed";
# exits non-zero if any check failed. A SKIP names what is missing.
set -uo pipefail

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$repo/deploy"
ops="$repo/ops"
work="$(mktemp -d "${TMPDIR:-/tmp}/magic-master-check.XXXXXX")"
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf -- "$work"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0

# run_check NAME FUNCTION: runs FUNCTION in a subshell with errexit on (not inside an
# `if`, so errexit really applies), output to a log that is shown only on failure.
run_check() {
    local name="$1" fn="$2" log rc
    log="$work/log.$((passed + failed + skipped))"
    (
        set -e
        "$fn"
    ) >"$log" 2>&1
    rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "PASS  $name"
        if [[ -n "${CHECK_VERBOSE:-}" ]]; then sed 's/^/      | /' "$log"; fi
    else
        failed=$((failed + 1))
        echo "FAIL  $name"
        sed 's/^/      | /' "$log" | tail -n 60
    fi
}
skip() {
    skipped=$((skipped + 1))
    echo "SKIP  $1"
}
die() {
    echo "$*" >&2
    return 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------
root="$work/root"
units=(magic-master.service magic-master-worker@.service magic-master-backup.service magic-master-backup.timer)
verify_targets=(magic-master.service magic-master-worker@1.service magic-master-worker@2.service
    magic-master-backup.service magic-master-backup.timer)

# Stage an installation with install.sh into $root, with stub binaries in place of the
# Rust builds: exactly the paths the units reference, created by the real installer.
check_install_stage() {
    local bin="$work/stub-bin" sysunits b uid
    mkdir -p "$bin" "$root/etc"
    for b in magic-master-api magic-master-worker; do
        printf '#!/bin/sh\nexit 0\n' >"$bin/$b"
        chmod 0755 "$bin/$b"
    done
    DESTDIR="$root" bash "$deploy/install.sh" --bin-dir "$bin"
    # the unit files systemd itself ships (targets the units are ordered against)
    sysunits=/usr/lib/systemd/system
    [[ -d "$sysunits" ]] || sysunits=/lib/systemd/system
    mkdir -p "$root/usr/lib/systemd"
    cp -a "$sysunits" "$root/usr/lib/systemd/"
    for u in "${units[@]}"; do
        [[ -f "$root/etc/systemd/system/$u" ]] || die "install.sh did not install $u"
    done
    for f in usr/local/bin/magic-master-api usr/local/bin/magic-master-worker \
        usr/local/lib/magic-master/backup_db.sh usr/local/lib/magic-master/restore_db.sh; do
        [[ -x "$root/$f" ]] || die "install.sh did not install executable /$f"
    done
    [[ -f "$root/etc/magic-master/magic-master.env" ]] || die "no /etc/magic-master/magic-master.env"
    grep -q '^magic-master:' "$root/etc/passwd" || die "sysusers did not create user magic-master"
    grep -q '^magic-master:' "$root/etc/group" || die "sysusers did not create group magic-master"
    uid="$(awk -F: '$1 == "magic-master" { print $3 }' "$root/etc/passwd")"
    for d in var/lib/magic-master var/lib/magic-master/uploads var/lib/magic-master/results \
        var/lib/magic-master/tmp var/backups/magic-master; do
        [[ -d "$root/$d" ]] || die "tmpfiles did not create /$d"
        [[ "$(stat -c %u "$root/$d")" == "$uid" ]] || die "/$d not owned by magic-master (uid $uid)"
        [[ "$(stat -c %a "$root/$d")" == 750 ]] || die "/$d mode is not 0750"
    done
    awk -F: '$1 == "magic-master" && $7 !~ /nologin|false/ { exit 1 }' "$root/etc/passwd" ||
        die "magic-master has a login shell"
}

# systemd-analyze verify exits 0 on settings it "ignores" (a misspelt ProtectSystem=
# would silently drop the hardening), so any diagnostic at all counts as a failure.
strict_verify() {
    local out rc
    out="$(systemd-analyze verify --root="$root" --man=no "$@" 2>&1)"
    rc=$?
    if ((rc != 0)) || [[ -n "$out" ]]; then
        printf 'systemd-analyze verify %s: exit %d\n%s\n' "$*" "$rc" "$out" >&2
        return 1
    fi
}

check_units_verify() {
    strict_verify "${verify_targets[@]}"
}

# Prove the verifier bites: each deliberately broken unit must be rejected.
check_verify_rejects_broken() {
    local d="$root/etc/systemd/system" n=0 case_name sed_expr
    while IFS='|' read -r case_name sed_expr; do
        n=$((n + 1))
        sed -e "$sed_expr" "$d/magic-master.service" >"$d/broken-$n.service"
        cmp -s "$d/magic-master.service" "$d/broken-$n.service" && die "mutation '$case_name' changed nothing"
        if strict_verify "broken-$n.service" 2>"$work/broken-$n.out"; then
            rm -f "$d/broken-$n.service"
            die "verify accepted a broken unit: $case_name"
        fi
        echo "rejected as expected ($case_name): $(head -n 1 "$work/broken-$n.out")"
        rm -f "$d/broken-$n.service"
    done <<'EOF'
misspelt hardening key|s/^ProtectSystem=strict/ProtectSytem=strict/
bad restart value|s/^Restart=on-failure/Restart=sometimes/
bad time span|s/^TimeoutStopSec=.*/TimeoutStopSec=thirty/
missing binary|s#^ExecStart=.*#ExecStart=/usr/local/bin/magic-master-apii#
misspelt section|s/^\[Service\]/[Servce]/
unknown syscall group|s/^SystemCallFilter=@system-service/SystemCallFilter=@sytem-service/
EOF
}

check_units_security() {
    local u
    # --threshold is in tenths: 20 = overall exposure 2.0 (0 = locked down, 10.0 = unprotected)
    for u in magic-master.service magic-master-worker@1.service magic-master-backup.service; do
        systemd-analyze security --offline=true --root="$root" --threshold=20 --no-pager "$u" |
            tail -n 1
    done
}

# What the design needs from the units, beyond syntax.
unit_value() { # FILE KEY -> last value of KEY= in FILE
    awk -F= -v k="$2" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$1"
}
check_units_policy() {
    local api="$deploy/magic-master.service" wk="$deploy/magic-master-worker@.service"
    local bk="$deploy/magic-master-backup.service" f key t secs user
    user="$(awk '$1 == "u" { print $2 }' "$deploy/magic-master.sysusers")"
    [[ "$user" == magic-master ]] || die "sysusers file does not declare magic-master"
    for f in "$api" "$wk" "$bk"; do
        [[ "$(unit_value "$f" User)" == "$user" ]] || die "$f: User= is not $user"
        for key in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
            CapabilityBoundingSet= ReadWritePaths=/var/lib/magic-master; do
            grep -qx "${key}.*" "$f" || die "$f: missing $key"
        done
        grep -qx 'EnvironmentFile=-\{0,1\}/etc/magic-master/magic-master.env' "$f" ||
            die "$f: no EnvironmentFile=/etc/magic-master/magic-master.env"
        [[ -z "$(unit_value "$f" CapabilityBoundingSet)" ]] || die "$f: capability bounding set not empty"
    done
    for f in "$api" "$wk"; do
        [[ "$(unit_value "$f" Restart)" == on-failure ]] || die "$f: Restart= is not on-failure"
        [[ "$(unit_value "$f" KillSignal)" == SIGTERM ]] || die "$f: KillSignal= is not SIGTERM"
        grep -q '^StartLimitBurst=' "$f" || die "$f: no StartLimitBurst="
    done
    grep -qx 'Environment=MAGIC_MASTER_EMBEDDED_WORKERS=0' "$api" || die "API unit runs embedded workers"
    grep -qx 'MAGIC_MASTER_EMBEDDED_WORKERS=0' "$deploy/magic-master.env.example" ||
        die "env example does not set MAGIC_MASTER_EMBEDDED_WORKERS=0"
    [[ "$(unit_value "$wk" ExecStart)" == "/usr/local/bin/magic-master-worker run --name worker-%i" ]] ||
        die "worker ExecStart does not pass the stable name worker-%i"
    # longest job ~10 min (2 h input at >= 50x real time, 4x contention): demand >= 15 min
    t="$(unit_value "$wk" TimeoutStopSec)"
    secs="$(systemd-analyze timespan "$t" | awk '/μs:|us:/ { print int($2 / 1000000) }')"
    [[ -n "$secs" ]] || die "cannot parse TimeoutStopSec=$t"
    ((secs >= 900)) || die "worker TimeoutStopSec=$t is shorter than 15 min"
    echo "worker TimeoutStopSec=$t = ${secs}s"
    grep -q '^OnCalendar=' "$deploy/magic-master-backup.timer" || die "timer has no OnCalendar="
    grep -qx 'Persistent=true' "$deploy/magic-master-backup.timer" || die "timer not Persistent"
}

# The worker unit's command line is accepted by the real binary (when one is built):
# clap rejects unknown arguments before it handles --help, so `ARGS --help` exiting 0
# means ARGS parse; a bogus flag is the control that proves the binary parses at all.
worker_bin="${MAGIC_MASTER_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}/magic-master-worker"
check_worker_cli() {
    local args
    read -r -a args <<<"$(unit_value "$deploy/magic-master-worker@.service" ExecStart | sed 's/%i/1/g')"
    if "$worker_bin" --no-such-flag-for-check --help >/dev/null 2>&1; then
        die "$worker_bin accepts a bogus flag: not a real build?"
    fi
    "$worker_bin" "${args[@]:1}" --help >/dev/null || die "$worker_bin rejects the unit's arguments: ${args[*]:1}"
    echo "accepted: magic-master-worker ${args[*]:1}"
}

# The worker, started as its unit starts it (same arguments, the production env example,
# data paths moved to a temp dir), parses its settings, heartbeats under its stable name,
# and on SIGTERM (the unit's KillSignal) exits 0 and removes its heartbeat row.
check_worker_runs_like_unit() {
    local d="$work/wr" args pid n rc=0 db
    mkdir -p "$d/data"
    db="$d/data/magic_master.db"
    read -r -a args <<<"$(unit_value "$deploy/magic-master-worker@.service" ExecStart | sed 's/%i/1/g')"
    mapfile -t envs < <(grep -E '^[A-Z_]+=' "$deploy/magic-master.env.example" |
        grep -v '^MAGIC_MASTER_\(DATA_DIR\|DB_PATH\|TEMP_DIR\)=')
    env -i -C "$d" PATH="$PATH" HOME="$d" "${envs[@]}" MAGIC_MASTER_DATA_DIR="$d/data" \
        MAGIC_MASTER_DB_PATH="$db" MAGIC_MASTER_TEMP_DIR="$d/data/tmp" \
        "$worker_bin" "${args[@]:1}" >"$d/worker.log" 2>&1 &
    pid=$!
    launched_all+=("$pid")
    trap kill_launched EXIT
    n=0
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { cat "$d/worker.log"; die "the worker exited at start"; }
        n="$(sqlite3 -readonly "$db" ".timeout 2000" \
            "SELECT count(*) FROM worker_heartbeats WHERE name = 'worker-1';" 2>/dev/null || echo 0)"
        [[ "$n" == 1 ]] && break
        sleep 0.5
    done
    if [[ "$n" != 1 ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        cat "$d/worker.log"
        die "no heartbeat row for worker-1 within 30 s"
    fi
    echo "worker-1 heartbeating (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        die "the idle worker did not stop within 30 s of SIGTERM"
    fi
    wait "$pid" || rc=$?
    ((rc == 0)) || { tail -n 20 "$d/worker.log"; die "the worker exited with status $rc after SIGTERM"; }
    n="$(sqlite3 -readonly "$db" "SELECT count(*) FROM worker_heartbeats WHERE name = 'worker-1';")"
    [[ "$n" == 0 ]] || die "heartbeat row left after a graceful stop"
    echo "SIGTERM: exit 0, heartbeat row removed; first log line: $(head -n 1 "$d/worker.log" | head -c 200)"
}

# The API, started as its unit starts it (the unit's Environment= defaults, then the
# production env example, on a free port and a temp data dir, placeholder secrets replaced),
# answers HTTP and exits 0 on SIGTERM. It must run no embedded workers: with none running,
# no heartbeat row may appear.
api_bin="${MAGIC_MASTER_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}/magic-master-api"
# Jobs belong to the guest session that uploaded them: every request of these checks presents
# the same guest token (32+ characters of [A-Za-z0-9_-]), as a browser presents its cookie.
guest_token="ops-check-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
http_status() { # PORT PATH -> HTTP status code of a GET (no curl needed)
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Guest-Token: %s\r\n\r\n' "$2" "$guest_token" >&3
    read -r line <&3 || true
    exec 3<&-
    line="${line#HTTP/* }"
    printf '%s' "${line%% *}"
}
check_api_runs_like_unit() {
    local d="$work/api" pid port="" p code="" rc=0 db hb
    mkdir -p "$d/data"
    db="$d/data/magic_master.db"
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port="$p" && break; fi
    done
    [[ -n "$port" ]] || die "no free port"
    mapfile -t unit_envs < <(sed -n 's/^Environment=//p' "$deploy/magic-master.service")
    mapfile -t envs < <(grep -E '^[A-Z_]+=' "$deploy/magic-master.env.example" |
        grep -v '^MAGIC_MASTER_\(DATA_DIR\|DB_PATH\|TEMP_DIR\|PORT\|JWT_SECRET\|ADMIN_PASSWORD\)=')
    env -i -C "$d" PATH="$PATH" HOME="$d" "${unit_envs[@]}" "${envs[@]}" \
        MAGIC_MASTER_DATA_DIR="$d/data" MAGIC_MASTER_DB_PATH="$db" MAGIC_MASTER_TEMP_DIR="$d/data/tmp" \
        MAGIC_MASTER_PORT="$port" MAGIC_MASTER_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        MAGIC_MASTER_ADMIN_PASSWORD="check-$RANDOM-$RANDOM-password" \
        "$api_bin" >"$d/api.log" 2>&1 &
    pid=$!
    launched_all+=("$pid")
    trap kill_launched EXIT
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$d/api.log"; die "the API exited at start"; }
        code="$(http_status "$port" /api/health 2>/dev/null || true)"
        [[ -n "$code" ]] && break
        sleep 0.5
    done
    if [[ -z "$code" ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        tail -n 30 "$d/api.log"
        die "the API did not answer on 127.0.0.1:$port within 30 s"
    fi
    echo "GET /api/health -> $code"
    sleep 2 # an embedded worker would have written its first heartbeat by now
    hb="$(sqlite3 -readonly "$db" ".timeout 2000" "SELECT count(*) FROM worker_heartbeats;" 2>/dev/null || echo 0)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        die "the idle API did not stop within 30 s of SIGTERM"
    fi
    wait "$pid" || rc=$?
    ((rc == 0)) || { tail -n 20 "$d/api.log"; die "the API exited with status $rc after SIGTERM"; }
    [[ "$hb" == 0 ]] || die "the API runs embedded workers ($hb heartbeat rows) despite EMBEDDED_WORKERS=0"
    echo "no embedded worker; SIGTERM: exit 0"
}

# Launch helpers for the end-to-end round trip: the processes as their units start them.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
service_env() { # DATA_DIR -> NUL-free lines KEY=VALUE: unit defaults, env example, test overrides
    sed -n 's/^Environment=//p' "$deploy/magic-master.service"
    grep -E '^[A-Z_]+=' "$deploy/magic-master.env.example" |
        grep -v '^MAGIC_MASTER_\(DATA_DIR\|DB_PATH\|TEMP_DIR\|PORT\|JWT_SECRET\|ADMIN_PASSWORD\)='
    echo "MAGIC_MASTER_DATA_DIR=$1"
    echo "MAGIC_MASTER_DB_PATH=$1/magic_master.db"
    echo "MAGIC_MASTER_TEMP_DIR=$1/tmp"
    echo "MAGIC_MASTER_JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    echo "MAGIC_MASTER_ADMIN_PASSWORD=check-admin-password-$$"
}
launch() { # LOG DATA_DIR PORT CMD... ; sets launched_pid
    local log="$1" data="$2" port="$3"
    shift 3
    mapfile -t lenv < <(service_env "$data")
    env -i -C "$(dirname "$data")" PATH="$PATH" HOME="$data" "${lenv[@]}" MAGIC_MASTER_PORT="$port" \
        "$@" >>"$log" 2>&1 &
    launched_pid=$!
    launched_all+=("$launched_pid")
}
launched_all=()
# EXIT trap for checks that start processes: nothing they started outlives them.
kill_launched() {
    local p
    for p in "${launched_all[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
stop_pid() { # PID: SIGTERM, wait up to 60 s, then SIGKILL and fail
    local rc=0
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 1 120); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1"
        die "process $1 ignored SIGTERM for 60 s"
    fi
    wait "$1" || rc=$?
    ((rc == 0)) || die "process $1 exited with $rc after SIGTERM"
}
# write_wav FILE SECONDS: 44.1 kHz 16-bit stereo noise (decodable audio, generated here)
write_wav() {
    local bytes=$((44100 * 4 * $2))
    le32() { # little-endian 32-bit integer, as bytes
        printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) \
            $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
    }
    {
        printf 'RIFF'
        le32 $((36 + bytes))
        printf 'WAVEfmt '
        le32 16
        printf '\x01\x00\x02\x00' # PCM, 2 channels
        le32 44100
        le32 $((44100 * 4))
        printf '\x04\x00\x10\x00' # block align 4, 16 bits
        printf 'data'
        le32 "$bytes"
        head -c "$bytes" /dev/urandom
    } >"$1"
}
job_field() { # PORT JOB FIELD -> value of a top-level string field of the status JSON ("" if none)
    curl -s -H "X-Guest-Token: $guest_token" "http://127.0.0.1:$1/api/master/status/$2" | sed -n "s/.*\"$3\":\"\([^\"]*\)\".*/\1/p"
}

# Real binaries, real data: a job is mastered, a backup is taken while API and worker run,
# a second job comes after it; after a restore in place the first job is back (done, result
# downloadable) and the second is unknown (404).
check_restore_round_trip_real() {
    local d="$work/e2e" data port api wk j1 j2 st snap code
    data="$d/var/magic-master"
    mkdir -p "$data" "$d/backups"
    trap kill_launched EXIT
    port="$(free_port)" || die "no free port"
    launch "$d/api.log" "$data" "$port" "$api_bin"
    api=$launched_pid
    launch "$d/worker.log" "$data" "$port" "$worker_bin" run --name worker-1
    wk=$launched_pid
    for _ in $(seq 1 60); do
        code="$(http_status "$port" /api/health 2>/dev/null || true)"
        [[ "$code" == 200 ]] && break
        sleep 0.5
    done
    [[ "$code" == 200 ]] || { tail -n 20 "$d/api.log"; die "API not healthy"; }
    write_wav "$d/in.wav" 3
    j1="$(curl -s -H "X-Guest-Token: $guest_token" -F file=@"$d/in.wav" -F style=standard \
        "http://127.0.0.1:$port/api/v2/master" |
        sed -n 's/.*"job_id":"\([^"]*\)".*/\1/p')"
    [[ -n "$j1" ]] || die "upload failed"
    for _ in $(seq 1 240); do
        st="$(job_field "$port" "$j1" status)"
        [[ "$st" == "done" || "$st" == "failed" ]] && break
        sleep 0.5
    done
    [[ "$st" == "done" ]] || { tail -n 20 "$d/worker.log"; die "job $j1 ended '$st'"; }
    echo "job 1 $j1: done"
    snap="$(MAGIC_MASTER_DATA_DIR="$data" BACKUP_DIR="$d/backups" bash "$backup")"
    echo "backup while running: ${snap##*/}"
    j2="$(curl -s -H "X-Guest-Token: $guest_token" -F file=@"$d/in.wav" -F style=edm \
        "http://127.0.0.1:$port/api/v2/master" |
        sed -n 's/.*"job_id":"\([^"]*\)".*/\1/p')"
    [[ -n "$j2" ]] || die "second upload failed"
    sleep 1
    stop_pid "$wk"
    stop_pid "$api"
    MAGIC_MASTER_DATA_DIR="$data" MAGIC_MASTER_OWNER="$me" bash "$restore" --no-systemd --yes "$snap"
    launch "$d/api.log" "$data" "$port" "$api_bin"
    api=$launched_pid
    for _ in $(seq 1 60); do
        code="$(http_status "$port" /api/health 2>/dev/null || true)"
        [[ "$code" == 200 ]] && break
        sleep 0.5
    done
    [[ "$code" == 200 ]] || { stop_pid "$api"; die "API not healthy after the restore"; }
    st="$(job_field "$port" "$j1" status)"
    code="$(http_status "$port" "/api/master/result/$j1")"
    local code2
    code2="$(http_status "$port" "/api/master/status/$j2")"
    stop_pid "$api"
    [[ "$st" == "done" ]] || die "after restore job 1 is '$st'"
    [[ "$code" == 200 ]] || die "after restore the result of job 1 answers $code"
    [[ "$code2" == 404 ]] || die "after restore job 2 (made after the snapshot) answers $code2, expected 404"
    echo "after restore: job 1 done and its result downloads (200); job 2 unknown (404)"
}

# ---------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------
check_promtool_config() { promtool check config "$ops/prometheus.yml"; }
check_promtool_rules() { promtool check rules "$ops/alerts.yml"; }
check_promtool_test() { promtool test rules "$ops/alerts_test.yml"; }

# Every alert has a firing case and a silent case in the tests; every metric the rules
# use is in the METRICS.md contract.
check_alert_coverage() {
    local a m missing=0
    mapfile -t alerts < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$ops/alerts.yml")
    ((${#alerts[@]} > 0)) || die "no alerts found in alerts.yml"
    awk '
        /alertname:/ { name = $2; next }
        /exp_alerts:/ && name != "" { if ($0 ~ /\[\]/) silent[name]++; else firing[name]++; name = "" }
        END { for (n in firing) print "firing", n; for (n in silent) print "silent", n }
    ' "$ops/alerts_test.yml" >"$work/coverage"
    for a in "${alerts[@]}"; do
        grep -qx "firing $a" "$work/coverage" || { echo "no firing test for $a"; missing=1; }
        grep -qx "silent $a" "$work/coverage" || { echo "no not-firing test for $a"; missing=1; }
    done
    mapfile -t metrics < <(grep -o 'magic_master_[a-z_]*' "$ops/alerts.yml" | sort -u)
    for m in "${metrics[@]}"; do
        grep -q "\`$m\`" "$ops/METRICS.md" || { echo "$m used in alerts.yml but not in METRICS.md"; missing=1; }
    done
    ((missing == 0))
    echo "${#alerts[@]} alerts, each with firing and silent cases; ${#metrics[@]} metrics, all in METRICS.md"
}

# The sample exposition (what /metrics must look like) passes promtool's linter and
# names exactly the metrics of the METRICS.md contract.
check_metrics_example() {
    local m
    promtool check metrics <"$ops/metrics_example.prom"
    # shellcheck disable=SC2016 # backquotes are Markdown here
    mapfile -t documented < <(grep -o '^| `magic_master_[a-z_]*`' "$ops/METRICS.md" | tr -d '|` ' | sort -u)
    mapfile -t exposed < <(sed -n 's/^# TYPE \(magic_master_[a-z_]*\) .*/\1/p' "$ops/metrics_example.prom" | sort -u)
    ((${#documented[@]} > 0)) || die "no metrics found in METRICS.md"
    [[ "${documented[*]}" == "${exposed[*]}" ]] ||
        die "METRICS.md and metrics_example.prom differ: $(diff <(printf '%s\n' "${documented[@]}") <(printf '%s\n' "${exposed[@]}") | tr '\n' ' ')"
    echo "${#exposed[@]} metrics, lint clean, same set as METRICS.md"
}

# A real Prometheus server with ops/prometheus.yml and alerts.yml scrapes a stand-in
# /metrics serving metrics_example.prom; the metric is read back through its HTTP API.
check_prometheus_scrape() {
    local d="$work/stub" port="" p py
    mkdir -p "$d"
    cp "$ops/metrics_example.prom" "$d/metrics"
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port="$p" && break; fi
    done
    [[ -n "$port" ]] || die "no free port"
    # the real interpreter, not a wrapper script (pyenv shims) whose child would outlive a kill
    py="$(python3 -c 'import sys; print(sys.executable)')"
    "$py" -m http.server --bind 127.0.0.1 "$port" --directory "$d" >"$d/server.log" 2>&1 &
    stub_pid=$! # not local: the EXIT trap of this subshell reads it
    trap 'kill "$stub_pid" 2>/dev/null || true' EXIT
    bash "$ops/prometheus_smoke.sh" "127.0.0.1:$port" magic_master_queue_jobs
}

# ---------------------------------------------------------------------------
# shell scripts
# ---------------------------------------------------------------------------
shell_scripts=("$deploy"/*.sh "$ops"/*.sh)
check_bash_syntax() {
    local s
    for s in "${shell_scripts[@]}"; do bash -n "$s"; done
    echo "${#shell_scripts[@]} scripts"
}
check_shellcheck() { shellcheck -x "${shell_scripts[@]}"; }

# ---------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------
nginx_test() { # CONF_FILE
    local d="$work/nginx"
    mkdir -p "$d/tmp"
    if [[ ! -f "$d/cert.pem" ]]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
            -days 1 -subj /CN=check >/dev/null 2>&1
    fi
    sed -e "s#/etc/letsencrypt/live/master.example.com/fullchain.pem#$d/cert.pem#" \
        -e "s#/etc/letsencrypt/live/master.example.com/privkey.pem#$d/key.pem#" "$1" >"$d/site.conf"
    cat >"$d/nginx.conf" <<EOF
pid $d/nginx.pid;
error_log $d/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    include $d/site.conf;
}
EOF
    nginx -t -q -p "$d" -c "$d/nginx.conf"
}
check_nginx() {
    local conf="$deploy/nginx.conf.example" upload_mb body_mb
    nginx_test "$conf"
    sed 's/proxy_buffering off;/proxy_bufering off;/' "$conf" >"$work/broken-nginx.conf"
    if nginx_test "$work/broken-nginx.conf" 2>/dev/null; then die "nginx -t accepted a broken config"; fi
    # upload limit in nginx must be at least the API's
    upload_mb="$(sed -n 's/^MAGIC_MASTER_MAX_UPLOAD_MB=\([0-9]*\)$/\1/p' "$deploy/magic-master.env.example")"
    body_mb="$(sed -n 's/^ *client_max_body_size \([0-9]*\)m;.*/\1/p' "$conf")"
    [[ -n "$upload_mb" && -n "$body_mb" ]] || die "cannot read the upload limits"
    ((body_mb >= upload_mb)) || die "client_max_body_size ${body_mb}m < MAX_UPLOAD_MB $upload_mb"
    # SSE must not be buffered
    awk '/location \/api\/master\/progress\//,/}/' "$conf" | grep -q 'proxy_buffering off;' ||
        die "SSE location does not turn proxy_buffering off"
    echo "nginx -t ok; broken config rejected; client_max_body_size ${body_mb}m >= MAX_UPLOAD_MB ${upload_mb}"
}

# ---------------------------------------------------------------------------
# backup / restore
# ---------------------------------------------------------------------------
backup="$deploy/backup_db.sh"
restore="$deploy/restore_db.sh"
me="$(id -un):$(id -gn)"

# make_db PATH ROWS: a WAL-mode database shaped like the app's (users, jobs, payments,
# and a queue table), ROWS jobs.
make_db() {
    sqlite3 -bail "$1" >/dev/null <<EOF
PRAGMA journal_mode=WAL;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, tier TEXT NOT NULL);
CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id), status TEXT NOT NULL,
                   progress INTEGER NOT NULL, error TEXT, created_at TEXT NOT NULL);
CREATE TABLE payments (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id), amount INTEGER);
CREATE TABLE queue_jobs (id INTEGER PRIMARY KEY, payload BLOB, status TEXT, lock_by TEXT);
CREATE INDEX jobs_status ON jobs(status);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
  INSERT INTO users(email, tier) SELECT 'user' || i || '@example.com', 'free' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
  INSERT INTO jobs SELECT printf('job-%06d', i), 1 + i % 50, CASE i % 4 WHEN 0 THEN 'failed' ELSE 'done' END,
                          100, NULL, datetime('now') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
  INSERT INTO payments SELECT 'pay-' || i, i, 49900 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
  INSERT INTO queue_jobs(payload, status) SELECT randomblob(200), 'Done' FROM n;
EOF
}
row_counts() { # DB -> "table count" lines for every table
    local t
    for t in $(sqlite3 -bail "$1" "SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name;"); do
        echo "$t $(sqlite3 -bail "$1" "SELECT count(*) FROM \"$t\";")"
    done
}
snapshot_sql() { # SNAPSHOT(.gz) SQL -> result, on a scratch copy
    local f="$work/peek.db"
    rm -f "$f"
    case "$1" in *.gz) gzip -dc -- "$1" >"$f" ;; *) cp -- "$1" "$f" ;; esac
    sqlite3 -bail "$f" "$2"
}

check_backup_rotation_restore() {
    local d="$work/rt" i out outs=() n
    mkdir -p "$d/data" "$d/backups" "$d/fresh"
    make_db "$d/data/magic_master.db" 3000
    for i in 1 2 3 4 5; do
        sqlite3 "$d/data/magic_master.db" "INSERT INTO users(email, tier) VALUES ('round$i@example.com', 'pro');"
        out="$(MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" BACKUP_KEEP=3 bash "$backup")"
        [[ -f "$out" && "$out" == "$d/backups/magic_master_backup_"*.sqlite3.gz ]] || die "bad output path: $out"
        outs+=("$out")
    done
    mapfile -t kept < <(find "$d/backups" -maxdepth 1 -name 'magic_master_backup_*' | sort)
    ((${#kept[@]} == 3)) || die "rotation kept ${#kept[@]} snapshots, expected 3: ${kept[*]}"
    [[ "${kept[*]}" == "${outs[2]} ${outs[3]} ${outs[4]}" ]] || die "rotation kept the wrong snapshots: ${kept[*]}"
    # each kept snapshot holds the state at its own time (user roundN present, roundN+1 not)
    for i in 3 4 5; do
        n="$(snapshot_sql "${outs[i - 1]}" "SELECT count(*) FROM users WHERE email LIKE 'round%';")"
        [[ "$n" == "$i" ]] || die "snapshot $i has $n round users, expected $i"
        [[ "$(snapshot_sql "${outs[i - 1]}" "PRAGMA journal_mode;")" == delete ]] ||
            die "snapshot $i is not a self-contained rollback-journal database"
    done
    # restore the newest into a fresh path; compare every table's row count
    MAGIC_MASTER_DB_PATH="$d/fresh/magic_master.db" MAGIC_MASTER_OWNER="$me" \
        bash "$restore" --no-systemd --yes "${outs[4]}"
    row_counts "$d/data/magic_master.db" >"$d/counts.src"
    row_counts "$d/fresh/magic_master.db" >"$d/counts.restored"
    diff -u "$d/counts.src" "$d/counts.restored" || die "row counts differ after restore"
    [[ "$(sqlite3 "$d/fresh/magic_master.db" 'PRAGMA integrity_check;')" == ok ]] || die "restored db not ok"
    [[ "$(stat -c %a "$d/fresh/magic_master.db")" == 640 ]] || die "restored db mode is not 0640"
    echo "5 backups, 3 kept (newest); restored row counts: $(tr '\n' ' ' <"$d/counts.restored")"
    # uncompressed mode
    out="$(MAGIC_MASTER_DB_PATH="$d/data/magic_master.db" BACKUP_DIR="$d/backups" BACKUP_GZIP=0 bash "$backup")"
    [[ "$out" == *.sqlite3 && "$(sqlite3 "$out" 'PRAGMA integrity_check;')" == ok ]] || die "BACKUP_GZIP=0 snapshot bad: $out"
}

# Rotation never deletes the snapshot just made: five snapshots within one second (names
# get a counter), then one stamped earlier than all of them (clock set back), with a
# stand-in `date` so the timing is deterministic.
check_backup_same_second_and_clock_back() {
    local d="$work/ss" fake="$work/fakedate" i out outs=()
    mkdir -p "$d/data" "$d/backups" "$fake"
    make_db "$d/data/magic_master.db" 50
    # shellcheck disable=SC2016 # $FAKE_STAMP is expanded by the stand-in, not here
    printf '#!/bin/sh\necho "$FAKE_STAMP"\n' >"$fake/date"
    chmod 0755 "$fake/date"
    for i in 1 2 3 4 5; do
        out="$(PATH="$fake:$PATH" FAKE_STAMP=20300101_120000 MAGIC_MASTER_DATA_DIR="$d/data" \
            BACKUP_DIR="$d/backups" BACKUP_KEEP=3 bash "$backup")"
        [[ -f "$out" ]] || die "snapshot $i was rotated away at once: $out"
        outs+=("${out##*/}")
    done
    echo "same-second names: ${outs[*]}"
    [[ "${outs[4]}" == magic_master_backup_20300101_120000_004.sqlite3.gz ]] || die "unexpected 5th name ${outs[4]}"
    mapfile -t kept < <(find "$d/backups" -maxdepth 1 -name 'magic_master_backup_*' -printf '%f\n' | sort)
    [[ "${kept[*]}" == "${outs[2]} ${outs[3]} ${outs[4]}" ]] || die "kept: ${kept[*]}"
    out="$(PATH="$fake:$PATH" FAKE_STAMP=20291231_235959 MAGIC_MASTER_DATA_DIR="$d/data" \
        BACKUP_DIR="$d/backups" BACKUP_KEEP=3 bash "$backup")"
    [[ -f "$out" ]] || die "a snapshot made after the clock went back was rotated away"
    i="$(find "$d/backups" -maxdepth 1 -name 'magic_master_backup_*' | wc -l)"
    ((i == 3)) || die "expected 3 snapshots after clock-back, found $i"
    echo "after clock-back: new snapshot ${out##*/} kept, 3 in total"
}

# Snapshots taken while a writer commits continuously are consistent.
check_backup_under_writes() {
    local d="$work/live" i out writer before after n
    mkdir -p "$d/data" "$d/backups"
    make_db "$d/data/magic_master.db" 2000
    before="$(sqlite3 "$d/data/magic_master.db" 'SELECT count(*) FROM jobs;')"
    (
        for i in $(seq 1 400); do
            sqlite3 "$d/data/magic_master.db" ".timeout 10000" "BEGIN IMMEDIATE;
              WITH RECURSIVE k(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM k WHERE v < 50)
                INSERT INTO jobs SELECT 'live-$i-' || v, 1, 'queued', 0, NULL, datetime('now') FROM k;
              UPDATE jobs SET progress = $i % 100 WHERE id = 'job-000001';
              INSERT INTO queue_jobs(payload, status) VALUES (randomblob(4000), 'Pending');
              COMMIT;" >/dev/null || exit 1
        done
    ) &
    writer=$!
    bg_pids+=("$writer")
    for i in 1 2 3 4; do
        out="$(MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" BACKUP_KEEP=10 bash "$backup")"
        n="$(snapshot_sql "$out" "SELECT count(*) FROM jobs;")"
        # a committed transaction adds 50 jobs: a consistent snapshot sees whole transactions
        (((n - before) % 50 == 0)) || die "snapshot $i saw a partial transaction ($n jobs)"
        [[ "$(snapshot_sql "$out" 'PRAGMA integrity_check;')" == ok ]] || die "snapshot $i not ok"
        echo "snapshot $i during writes: $n jobs, integrity ok"
    done
    wait "$writer" || die "the writer failed"
    after="$(sqlite3 "$d/data/magic_master.db" 'SELECT count(*) FROM jobs;')"
    ((after == before + 400 * 50)) || die "writer lost rows: $after"
    if ((n == after)); then echo "note: the writer had finished before the last snapshot"; fi
}

check_backup_failures() {
    local d="$work/bf" good
    mkdir -p "$d/data" "$d/backups"
    # no database: clear error, no file created, sqlite3 must not create an empty db
    if MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" bash "$backup" 2>"$d/err"; then
        die "backup of a missing database succeeded"
    fi
    grep -q 'database not found' "$d/err" || die "unclear message: $(cat "$d/err")"
    [[ ! -e "$d/data/magic_master.db" ]] || die "backup created an empty database"
    # bad settings
    make_db "$d/data/magic_master.db" 100
    if BACKUP_KEEP=0 MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" bash "$backup" 2>/dev/null; then
        die "BACKUP_KEEP=0 accepted"
    fi
    if MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/missing" bash "$backup" 2>/dev/null; then
        die "missing backup dir accepted"
    fi
    # a good snapshot first, then corrupt the database: the backup must fail, leave no
    # partial file and not rotate the good snapshot away
    good="$(MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" BACKUP_KEEP=1 bash "$backup")"
    sqlite3 "$d/data/magic_master.db" 'PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;' >/dev/null
    corrupt_db "$d/data/magic_master.db"
    if MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" BACKUP_KEEP=1 bash "$backup" 2>"$d/err"; then
        die "backup of a corrupt database succeeded"
    fi
    grep -qi 'integrity_check\|malformed\|failed' "$d/err" || die "unclear message: $(cat "$d/err")"
    mapfile -t left < <(find "$d/backups" -maxdepth 1 -type f ! -name .backup.lock)
    [[ "${left[*]}" == "$good" ]] || die "after a failed backup the directory holds: ${left[*]}"
    echo "missing db, BACKUP_KEEP=0, missing dir, corrupt db: all refused; good snapshot kept"
}

# Overwrite the jobs table's root b-tree page (header included) with garbage.
corrupt_db() {
    local root_page size
    size="$(sqlite3 "$1" 'PRAGMA page_size;')"
    root_page="$(sqlite3 "$1" "SELECT rootpage FROM sqlite_schema WHERE name='jobs';")"
    [[ "$root_page" =~ ^[0-9]+$ ]] || die "no jobs table in $1"
    head -c "$size" /dev/urandom | dd of="$1" bs="$size" seek=$((root_page - 1)) conv=notrunc status=none
    if [[ "$(sqlite3 "$1" 'PRAGMA integrity_check;' 2>&1)" == ok ]]; then
        die "corrupt_db did not corrupt $1"
    fi
}

check_restore_over_live_db() {
    local d="$work/ro" snap live_sum
    mkdir -p "$d/data" "$d/backups"
    make_db "$d/data/magic_master.db" 500
    snap="$(MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" bash "$backup")"
    sqlite3 "$d/data/magic_master.db" "DELETE FROM jobs; DELETE FROM users WHERE id > 10;"
    # leave a -wal and -shm behind as after a crash
    printf 'stale wal' >"$d/data/magic_master.db-wal"
    printf 'stale shm' >"$d/data/magic_master.db-shm"
    # a corrupt snapshot is refused and nothing changes
    live_sum="$(cksum <"$d/data/magic_master.db")"
    cp "$d/data/magic_master.db" "$d/corrupt.sqlite3"
    sqlite3 "$d/corrupt.sqlite3" 'PRAGMA journal_mode=DELETE;' >/dev/null
    corrupt_db "$d/corrupt.sqlite3"
    if MAGIC_MASTER_DATA_DIR="$d/data" MAGIC_MASTER_OWNER="$me" bash "$restore" --no-systemd --yes \
        "$d/corrupt.sqlite3" 2>"$d/err"; then
        die "restore accepted a corrupt snapshot"
    fi
    grep -q 'integrity_check' "$d/err" || die "unclear message: $(cat "$d/err")"
    [[ "$(cksum <"$d/data/magic_master.db")" == "$live_sum" && -e "$d/data/magic_master.db-wal" ]] ||
        die "a refused restore changed the live database"
    # without --yes and without a terminal it refuses
    if MAGIC_MASTER_DATA_DIR="$d/data" bash "$restore" --no-systemd "$snap" </dev/null 2>/dev/null; then
        die "restore ran without confirmation"
    fi
    # the real restore
    MAGIC_MASTER_DATA_DIR="$d/data" MAGIC_MASTER_OWNER="$me" bash "$restore" --no-systemd --yes "$snap"
    [[ "$(sqlite3 "$d/data/magic_master.db" 'SELECT count(*) FROM jobs;')" == 500 ]] || die "jobs not restored"
    [[ "$(sqlite3 "$d/data/magic_master.db" 'SELECT count(*) FROM users;')" == 50 ]] || die "users not restored"
    [[ ! -e "$d/data/magic_master.db-shm" ]] || die "stale -shm left next to the restored database"
    mapfile -t aside < <(find "$d/data" -maxdepth 1 -name 'magic_master.db.pre-restore-*' ! -name '*-wal')
    ((${#aside[@]} == 1)) || die "expected one moved-aside database, found: ${aside[*]}"
    [[ "$(cat "${aside[0]}-wal")" == 'stale wal' ]] || die "the old -wal did not move aside with its database"
    [[ "$(sqlite3 "${aside[0]}" 'SELECT count(*) FROM jobs;' 2>/dev/null)" == 0 ]] ||
        echo "(the aside copy reads with the fake -wal ignored or rejected; its main file is intact)"
    [[ "$(stat -c '%U:%G' "$d/data/magic_master.db")" == "$me" ]] || die "owner not set"
    echo "corrupt snapshot refused; restored 500 jobs/50 users; old db + wal kept at ${aside[0]##*/}"
}

# The systemd path of restore_db.sh, against a recording systemctl stand-in: units stop
# before the swap (workers first), the ones that ran start again after it (API first).
check_restore_with_units() {
    local d="$work/ru" snap fake="$work/fakebin"
    mkdir -p "$d/data" "$d/backups" "$fake"
    make_db "$d/data/magic_master.db" 300
    snap="$(MAGIC_MASTER_DATA_DIR="$d/data" BACKUP_DIR="$d/backups" bash "$backup")"
    sqlite3 "$d/data/magic_master.db" "DELETE FROM jobs;"
    cat >"$fake/systemctl" <<'EOF'
#!/usr/bin/env bash
# records "command args | jobs-in-db" and models which units are active
jobs="$(sqlite3 "$FAKE_DB" 'SELECT count(*) FROM jobs;' 2>/dev/null || echo none)"
echo "$* | $jobs" >>"$FAKE_LOG"
case "$1" in
list-units)
    [[ -e "$FAKE_STATE/stopped" ]] && exit 0
    printf '%s loaded active running Magic Master\n' magic-master.service \
        magic-master-worker@1.service magic-master-worker@3.service
    ;;
stop) [[ "$*" == *"magic-master.service"* ]] && touch "$FAKE_STATE/stopped" ;;
is-active) [[ ! -e "$FAKE_STATE/stopped" ]] ;;
is-enabled) exit 0 ;;
start) rm -f "$FAKE_STATE/stopped" ;;
esac
exit 0
EOF
    chmod 0755 "$fake/systemctl"
    mkdir -p "$d/state"
    PATH="$fake:$PATH" FAKE_DB="$d/data/magic_master.db" FAKE_LOG="$d/calls" FAKE_STATE="$d/state" \
        MAGIC_MASTER_DATA_DIR="$d/data" MAGIC_MASTER_OWNER="$me" bash "$restore" --yes "$snap"
    cat "$d/calls"
    # expected order of effects (list-units queries omitted)
    grep -v '^list-units' "$d/calls" >"$d/effects"
    cat >"$d/expected" <<'EOF'
stop magic-master-backup.timer magic-master-backup.service | 0
stop magic-master-worker@*.service | 0
stop magic-master.service | 0
start magic-master.service | 300
start magic-master-worker@1.service | 300
start magic-master-worker@3.service | 300
is-enabled --quiet magic-master-backup.timer | 300
start magic-master-backup.timer | 300
EOF
    diff -u "$d/expected" "$d/effects" || die "restore_db.sh drove systemd in the wrong order"
}

# ---------------------------------------------------------------------------
main() {
    echo "Magic Master ops checks (repo: $repo)"
    local t missing=0
    for t in systemd-analyze systemd-sysusers systemd-tmpfiles promtool sqlite3 gzip; do
        if ! have "$t"; then
            echo "FAIL  required tool missing: $t"
            failed=$((failed + 1))
            missing=1
        fi
    done
    if ((missing)); then
        echo "$passed passed, $failed failed"
        return 1
    fi

    run_check "install.sh stages user, directories, binaries, units" check_install_stage
    run_check "systemd-analyze verify (strict: no diagnostics) on all units" check_units_verify
    run_check "systemd-analyze verify rejects 6 deliberately broken units" check_verify_rejects_broken
    run_check "systemd-analyze security exposure <= 2.0 for each service" check_units_security
    run_check "units carry the required user, hardening, restart, timeouts" check_units_policy
    if [[ -x "$worker_bin" ]]; then
        run_check "the worker binary accepts the unit's ExecStart arguments" check_worker_cli
        run_check "worker started like its unit (env example) heartbeats, stops cleanly on SIGTERM" check_worker_runs_like_unit
    else
        skip "worker CLI vs unit, worker start/stop (no $worker_bin; build it or set MAGIC_MASTER_BIN_DIR)"
    fi
    if [[ -x "$api_bin" ]]; then
        run_check "API started like its unit (env example) answers HTTP, no embedded workers, stops on SIGTERM" check_api_runs_like_unit
    else
        skip "API start/stop like its unit (no $api_bin; build it or set MAGIC_MASTER_BIN_DIR)"
    fi
    if [[ -x "$api_bin" && -x "$worker_bin" ]] && have curl; then
        run_check "real API + worker: job done, backup while running, restore in place, job back" check_restore_round_trip_real
    else
        skip "backup/restore round trip with the real binaries (needs both binaries and curl)"
    fi
    run_check "promtool check config ops/prometheus.yml" check_promtool_config
    run_check "promtool check rules ops/alerts.yml" check_promtool_rules
    run_check "promtool test rules ops/alerts_test.yml" check_promtool_test
    run_check "every alert tested firing and silent; metrics in METRICS.md" check_alert_coverage
    run_check "metrics_example.prom: promtool check metrics, same names as METRICS.md" check_metrics_example
    if have prometheus && have python3; then
        run_check "real Prometheus scrapes a stand-in /metrics, rules load (prometheus_smoke.sh)" check_prometheus_scrape
    else
        skip "Prometheus scrape smoke test (needs prometheus and python3)"
    fi
    run_check "bash -n on deploy/*.sh ops/*.sh" check_bash_syntax
    if have shellcheck; then
        run_check "shellcheck deploy/*.sh ops/*.sh" check_shellcheck
    else
        skip "shellcheck (not installed)"
    fi
    if have nginx && have openssl; then
        run_check "nginx -t on nginx.conf.example (and a broken copy rejected)" check_nginx
    else
        skip "nginx -t (nginx or openssl not installed)"
    fi
    run_check "backup x5 with rotation (keep 3), restore into a fresh path, row counts equal" check_backup_rotation_restore
    run_check "rotation keeps the new snapshot: same-second names, clock set back" check_backup_same_second_and_clock_back
    run_check "backups during continuous writes are consistent" check_backup_under_writes
    run_check "backup refuses missing/corrupt database and bad settings" check_backup_failures
    run_check "restore over a live database: corrupt refused, old db+wal aside, no stale shm" check_restore_over_live_db
    run_check "restore drives systemd: stop workers, API; swap; start API, workers" check_restore_with_units

    echo "$passed passed, $failed failed"
    ((failed == 0))
}
main
