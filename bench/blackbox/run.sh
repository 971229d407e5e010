#!/usr/bin/env bash
# blackbox_exporter drop-in: CPU per /probe request of `vantage-agent blackbox` against Debian's
# prometheus-blackbox-exporter, in the same run, on the same module file and target. wrk drives
# `GET /probe?module=M&target=T` closed-loop (-t1, CONNS connections); the exporter's utime+stime comes from
# /proc/PID/stat before and after each run. The two exporters alternate (A B A B ...) over ROUNDS rounds; the
# summary gives the medians and the CPU ratio vantage/blackbox per module, and refuses a ratio when probes failed.
# The target is bench-agent's `--serve-target http` (testkit's HTTP server, `/ok` answers 200 "ok") in a process of
# its own; http_2xx probes http://127.0.0.1:PORT/ok, tcp_connect connects to 127.0.0.1:PORT.
#
# Usage: bench/blackbox/run.sh   (DUR=10 CONNS=8 ROUNDS=3 MODULES="http_2xx tcp_connect"
#                                 VANTAGE_BIN=... BLACKBOX_BIN=/usr/bin/prometheus-blackbox-exporter)
# Builds what is missing with
#   cargo build --release -p vantage-agent --bin vantage-agent --example bench-agent
# into ${CARGO_TARGET_DIR:-target}.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DUR=${DUR:-10}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-3}
MODULES=${MODULES:-http_2xx tcp_connect}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VANTAGE=${VANTAGE_BIN:-$TARGET_DIR/release/vantage-agent}
SERVE=$TARGET_DIR/release/examples/bench-agent
BLACKBOX=${BLACKBOX_BIN:-/usr/bin/prometheus-blackbox-exporter}
TICKS=$(getconf CLK_TCK)
# cpu_ticks PID, rss_kb PID, wait_ready URL
source bench/lib.sh

command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 1; }
[ -x "$BLACKBOX" ] || { echo "no blackbox_exporter at $BLACKBOX (apt-get install -y prometheus-blackbox-exporter)" >&2; exit 1; }
if [ ! -x "$VANTAGE" ] || [ ! -x "$SERVE" ]; then
    if [ -n "${VANTAGE_BIN:-}" ] && [ ! -x "$VANTAGE" ]; then echo "no binary at VANTAGE_BIN=$VANTAGE" >&2; exit 1; fi
    echo "building the release vantage-agent and bench-agent into $TARGET_DIR ..." >&2
    CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -q -p vantage-agent --bin vantage-agent --example bench-agent
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The target, in its own process: it prints its URL (http://127.0.0.1:PORT/ok) on its first line.
"$SERVE" --serve-target http >"$WORK/target.out" 2>"$WORK/target.err" &
TARGET_PID=$!
PIDS+=("$TARGET_PID")
for _ in $(seq 1 100); do [ -s "$WORK/target.out" ] && break; sleep 0.1; done
TARGET_URL=$(head -n1 "$WORK/target.out")
[ -n "$TARGET_URL" ] || { echo "the target did not print its URL" >&2; cat "$WORK/target.err" >&2; exit 1; }
wait_ready "$TARGET_URL"
HOSTPORT=${TARGET_URL#http://}
HOSTPORT=${HOSTPORT%%/*}

cat >"$WORK/blackbox.yml" <<'YAML'
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
YAML

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
target_of() {
    case $1 in
    http_2xx) echo "$TARGET_URL" ;;
    tcp_connect) echo "$HOSTPORT" ;;
    *) echo "unknown module $1" >&2; exit 1 ;;
    esac
}

# Both exporters run for the whole bench (the one not driven is idle); each is measured from outside.
declare -A PORT PID
start_exporter() {
    local name=$1 port; port=$(free_port)
    case $name in
    vantage) "$VANTAGE" blackbox --config.file "$WORK/blackbox.yml" --web.listen-address "127.0.0.1:$port" \
        --log.level warn 2>"$WORK/$name.log" & ;;
    blackbox) "$BLACKBOX" --config.file "$WORK/blackbox.yml" --web.listen-address "127.0.0.1:$port" \
        --log.level warn 2>"$WORK/$name.log" & ;;
    esac
    PID[$name]=$!
    PIDS+=("$!")
    PORT[$name]=$port
    wait_ready "http://127.0.0.1:$port/-/healthy"
}
start_exporter vantage
start_exporter blackbox

probe_url() { echo "http://127.0.0.1:${PORT[$1]}/probe?module=$2&target=$(urlencode "$(target_of "$2")")"; }

read -r l1 l5 l15 _ </proc/loadavg
echo "blackbox_exporter drop-in, CPU per /probe: wrk -t1 -c$CONNS -d${DUR}s per run, $ROUNDS rounds alternating vantage / blackbox"
echo "machine: $(nproc) CPUs shared by the exporter, the target and wrk; load average at start $l1 $l5 $l15"
echo "vantage:  $VANTAGE ($("$VANTAGE" --version 2>/dev/null | head -n1))"
echo "blackbox: $BLACKBOX ($("$BLACKBOX" --version 2>&1 | head -n1))"
echo "target:   $TARGET_URL (http_2xx), $HOSTPORT (tcp_connect); both ip4"

# Each exporter must answer probe_success 1 for each module before anything is measured.
declare -A VALID
for m in $MODULES; do
    for e in vantage blackbox; do
        if curl -fsS "$(probe_url "$e" "$m")" | grep -qx 'probe_success 1'; then
            VALID[$e.$m]=1
        else
            VALID[$e.$m]=0
            echo "CHECK FAILED: $e /probe?module=$m does not answer probe_success 1; its figures below are NOT valid"
        fi
    done
done
[ "${VALID[*]}" = "$(printf '1 %.0s' "${VALID[@]}" | sed 's/ $//')" ] &&
    echo "checked with curl: both exporters answer probe_success 1 for: $MODULES"

RESULTS=$WORK/results
: >"$RESULTS"
# measure ROUND EXPORTER MODULE: one wrk run; prints a row and appends it to $RESULTS (round, exporter, module,
# probes/s, CPU ms per 1,000 probes, p50 ms, p99 ms, non-2xx, socket errors, failed probes, target CPU ms/1,000).
measure() {
    local round=$1 e=$2 m=$3 url line; url=$(probe_url "$e" "$m")
    wrk -t1 -c"$CONNS" -d2s -s bench/blackbox/probe.lua "$url" >/dev/null   # warm-up
    local c0 t0; c0=$(cpu_ticks "${PID[$e]}"); t0=$(cpu_ticks "$TARGET_PID")
    line=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 5s -s bench/blackbox/probe.lua "$url" | grep '^RESULT')
    local c1 t1; c1=$(cpu_ticks "${PID[$e]}"); t1=$(cpu_ticks "$TARGET_PID")
    field() { sed -nE "s/.*[ ]$1=([0-9]+).*/\1/p" <<<"$line"; }
    awk -v r="$round" -v e="$e" -v m="$m" -v req="$(field requests)" -v dur="$(field duration_us)" \
        -v p50="$(field p50_us)" -v p99="$(field p99_us)" -v non2xx="$(field non2xx)" -v err="$(field socket_errors)" \
        -v failed="$(field failed)" -v cpu=$((c1 - c0)) -v tcpu=$((t1 - t0)) -v tck="$TICKS" -v out="$RESULTS" 'BEGIN {
        rps = req / (dur / 1e6)
        ms = req > 0 ? cpu / tck * 1e6 / req : 0
        tms = req > 0 ? tcpu / tck * 1e6 / req : 0
        printf "%d %s %s %.1f %.1f %.2f %.2f %d %d %d %.1f\n", r, e, m, rps, ms, p50 / 1000, p99 / 1000, non2xx, err, failed, tms >> out
        printf "  round %d  %-11s %-8s %7.1f probes/s  CPU %6.1f ms/1000 probes  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  socket errors %d  probe_success!=1 %d  (target CPU %.1f ms/1000)\n",
            r, m, e, rps, ms, p50 / 1000, p99 / 1000, non2xx, err, failed, tms
    }'
}

for r in $(seq 1 "$ROUNDS"); do
    for m in $MODULES; do
        for e in vantage blackbox; do
            measure "$r" "$e" "$m"
        done
    done
done
read -r l1 l5 l15 _ </proc/loadavg
echo "load average at end $l1 $l5 $l15; peak RSS vantage $(( $(rss_kb "${PID[vantage]}") / 1024 )) MiB, blackbox $(( $(rss_kb "${PID[blackbox]}") / 1024 )) MiB"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# col MODULE EXPORTER N: the medians of column N of $RESULTS over the rounds.
col() { awk -v m="$1" -v e="$2" -v n="$3" '$2 == e && $3 == m { print $n }' "$RESULTS" | median; }
echo
echo "medians over $ROUNDS rounds"
echo "| module      | exporter | probes/s | CPU ms / 1,000 probes | p50 ms | p99 ms | non-2xx + errors + failed probes |"
echo "|-------------|----------|----------|-----------------------|--------|--------|----------------------------------|"
for m in $MODULES; do
    for e in vantage blackbox; do
        bad=$(awk -v m="$m" -v e="$e" '$2 == e && $3 == m { s += $8 + $9 + $10 } END { print s + 0 }' "$RESULTS")
        printf "| %-11s | %-8s | %8.1f | %21.1f | %6.2f | %6.2f | %32d |\n" "$m" "$e" "$(col "$m" "$e" 4)" \
            "$(col "$m" "$e" 5)" "$(col "$m" "$e" 6)" "$(col "$m" "$e" 7)" "$bad"
        [ "$bad" -eq 0 ] || VALID[$e.$m]=0
    done
done
echo
for m in $MODULES; do
    if [ "${VALID[vantage.$m]}" = 1 ] && [ "${VALID[blackbox.$m]}" = 1 ]; then
        awk -v m="$m" -v va="$(col "$m" vantage 5)" -v bb="$(col "$m" blackbox 5)" \
            -v vr="$(col "$m" vantage 4)" -v br="$(col "$m" blackbox 4)" 'BEGIN {
            printf "%-11s CPU per probe vantage/blackbox %.2f (median of each); probes/s vantage/blackbox %.2f\n", m, va / bb, vr / br }'
    else
        echo "$m: NOT VALID (probes failed, non-2xx answers or socket errors above): no ratio"
    fi
done
