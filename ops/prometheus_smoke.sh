#!/usr/bin/env bash
# Start a real Prometheus server (Debian's `prometheus` package) with ops/prometheus.yml and
# ops/alerts.yml, point it at a running Magic Master API, and read a scraped metric back
# through Prometheus's HTTP API.
#
#   ops/prometheus_smoke.sh [TARGET] [METRIC]
#     TARGET  host:port serving /metrics          [127.0.0.1:8000]
#     METRIC  metric that must have been scraped  [magic_master_build_info]
#
# Checks, with a 1 s scrape interval and a 60 s deadline:
#   - up{job="magic-master"} == 1 (the target was scraped successfully);
#   - METRIC has at least one sample in Prometheus;
#   - every alert of alerts.yml is loaded and evaluated without error.
# Prints what it read; exits non-zero with a message on failure. Needs no curl (bash /dev/tcp).
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-127.0.0.1:8000}"
metric="${2:-magic_master_build_info}"
deadline=60

die() {
    echo "prometheus_smoke: ERROR: $*" >&2
    exit 1
}
command -v prometheus >/dev/null 2>&1 || die "prometheus is not installed (Debian package: prometheus)"
[[ "$target" =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]] || die "TARGET must be host:port, got '$target'"
[[ "$metric" =~ ^[a-zA-Z_:][a-zA-Z0-9_:]*$ ]] || die "not a metric name: '$metric'"

work="$(mktemp -d "${TMPDIR:-/tmp}/magic-master-prom.XXXXXX")"
prom_pid=""
cleanup() {
    if [[ -n "$prom_pid" ]]; then
        kill "$prom_pid" 2>/dev/null || true
        wait "$prom_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then
        port="$p"
        break
    fi
done
[[ -n "$port" ]] || die "no free port found"

# The shipped config, with the target, a 1 s interval and our own listen address.
sed -e "s/\"127.0.0.1:8000\"/\"$target\"/" -e "s/\"127.0.0.1:9090\"/\"127.0.0.1:$port\"/" \
    -e 's/\(scrape_interval\|evaluation_interval\): *15s/\1: 1s/' \
    -e 's/scrape_timeout: *10s/scrape_timeout: 1s/' \
    "$here/prometheus.yml" >"$work/prometheus.yml"
cp "$here/alerts.yml" "$work/alerts.yml"
grep -q "\"$target\"" "$work/prometheus.yml" || die "could not set the target in the config"

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!

urlencode() {
    local s="$1" out="" c h i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [a-zA-Z0-9._~-]) out+="$c" ;;
        *)
            printf -v h '%%%02X' "'$c"
            out+="$h"
            ;;
        esac
    done
    printf '%s' "$out"
}
# GET PATH from Prometheus; prints the body.
http_get() {
    local body
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    body="$(sed '1,/^\r$/d' <&3)"
    exec 3<&-
    printf '%s' "$body"
}
query() { http_get "/api/v1/query?query=$(urlencode "$1")"; }

up=""
for ((t = 0; t < deadline; t++)); do
    kill -0 "$prom_pid" 2>/dev/null || die "prometheus exited: $(tail -n 20 "$work/prometheus.log")"
    up="$(query "up{job=\"magic-master\"}" 2>/dev/null || true)"
    if [[ "$up" == *'"value":['*',"1"]'* ]]; then break; fi
    sleep 1
done
[[ "$up" == *'"value":['*',"1"]'* ]] ||
    die "target $target not scraped successfully within ${deadline}s; last answer: $up; targets: $(http_get /api/v1/targets)"
echo "up{job=\"magic-master\"} = 1 (target $target)"

res="$(query "$metric{job=\"magic-master\"}")"
[[ "$res" == *'"status":"success"'* && "$res" == *'"result":[{'* ]] ||
    die "no sample of $metric scraped from $target: $res"
echo "$metric: $(grep -o '"result":\[.*\]' <<<"$res" | head -c 400)"

want="$(grep -c '^ *- alert:' "$here/alerts.yml")"
for ((t = 0; t < 10; t++)); do
    rules="$(http_get /api/v1/rules)"
    loaded="$(grep -o '"type":"alerting"' <<<"$rules" | wc -l)"
    evaluated="$(grep -o '"health":"ok"' <<<"$rules" | wc -l)"
    if ((loaded == want && evaluated >= want)); then break; fi
    sleep 1
done
((loaded == want)) || die "$loaded alert rules loaded, alerts.yml has $want"
((evaluated >= want)) || die "alert rules not evaluated cleanly: $rules"
echo "$loaded alert rules loaded and evaluated (health ok)"
firing="$({ grep -o '"alertname":"[A-Za-z]*"' <<<"$(http_get /api/v1/alerts)" || true; } | sort -u | tr '\n' ' ')"
echo "alerts pending/firing now: ${firing:-none}"
