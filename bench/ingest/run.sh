#!/usr/bin/env bash
# Ingest benchmark: drives the release server over loopback with realistic 20-event batches (a fixed corpus,
# stamped per request), against SQLite, PostgreSQL and a plain actix hello-world handler; prints events/s,
# p50/p99 latency, server CPU per 1M events, PostgreSQL's own CPU per 1M events (its processes for the bench
# database and its background writers, when it runs on this machine), the load generator's CPU per 1M events,
# peak RSS, and how much the store grew per 1M events stored (SQLite: file + WAL; PostgreSQL:
# pg_database_size).
# Usage: bench/ingest/run.sh   (DUR=20 CONNS=32 IDS=sdk|event|v7|v4|none LOAD=rust|wrk TARGETS="sqlite pg hello")
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DUR=${DUR:-20}
CONNS=${CONNS:-32}
IDS=${IDS:-sdk}
# rust: bench/ingest/load.rs (one thread, like wrk -t1, ~2 us of CPU per event); wrk: wrk -t1 with bench.lua
# (~6 us per event building bodies in Lua), kept for comparison with the earlier runs.
LOAD=${LOAD:-rust}
TARGETS=${TARGETS:-sqlite pg hello}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG=${VANTAGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# SKIP_BUILD=1 reuses the binaries already built.
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -q -p vantage-ingest --bin vantage-ingest --example hello --example bench-ingest-load
fi
# INGEST_BIN=path benchmarks another build (e.g. a saved copy of the previous one, for before/after).
BIN=${INGEST_BIN:-$TARGET/release/vantage-ingest}
HELLO=$TARGET/release/examples/hello
LOADGEN=$TARGET/release/examples/bench-ingest-load
if [ "$LOAD" = wrk ] && ! command -v wrk >/dev/null; then echo "LOAD=wrk needs wrk (apt-get install wrk)" >&2; exit 1; fi
if [ "$LOAD" = rust ] && [ ! -x "$LOADGEN" ]; then echo "no load generator at $LOADGEN (drop SKIP_BUILD)" >&2; exit 1; fi
if [ ! -x "$BIN" ]; then
    echo "no server binary at $BIN (build it, drop SKIP_BUILD, or set CARGO_TARGET_DIR / INGEST_BIN)" >&2
    exit 1
fi
now_ms=$(( $(date +%s) * 1000 - 3600000 ))
python3 bench/ingest/make_corpus.py 500 "$now_ms" > "$WORK/corpus.jsonl"
export CORPUS=$WORK/corpus.jsonl
TICKS=$(getconf CLK_TCK)

# cpu_ticks PID, rss_kb PID, wait_ready URL
source bench/lib.sh

# load SCRIPT URL SECS: one closed-loop run of the chosen load generator; prints its RESULT line.
load() {
    local script=$1 url=$2 secs=$3
    if [ "$LOAD" = wrk ]; then
        IDS=$IDS wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$script" "$url" | grep '^RESULT'
    else
        local key=bench-key-0123456789
        [ "$script" = bench/ingest/hello.lua ] && key=
        "$LOADGEN" --corpus "$CORPUS" --url "$url" --connections "$CONNS" --duration "${secs}s" \
            --ids "$IDS" --api-key "$key" | grep '^RESULT'
    fi
}

# The store of the server being measured: STORE_KIND sqlite (STORE at its file) or pg (STORE its URL), else none.
STORE_KIND=
STORE=
# store_bytes: the store's size now (SQLite: file + WAL; PostgreSQL: pg_database_size), or -1 without a store.
store_bytes() {
    case $STORE_KIND in
    sqlite) echo $(( $(stat -c %s "$STORE") + $(stat -c %s "$STORE-wal" 2>/dev/null || echo 0) )) ;;
    pg) psql "$STORE" -Atqc "SELECT pg_database_size(current_database())" ;;
    *) echo -1 ;;
    esac
}
# store_events: the events stored (all of them: warm-up included), or -1 without a store.
store_events() {
    case $STORE_KIND in
    sqlite) sqlite3 "$STORE" "SELECT COUNT(*) FROM events" ;;
    pg) psql "$STORE" -Atqc "SELECT COUNT(*) FROM events" ;;
    *) echo -1 ;;
    esac
}
# pg_pids: PostgreSQL's processes working for the bench: the backends connected to its database and the
# checkpointer, background writer and WAL writer (shared with anything else the server runs at the same time),
# when they are on this machine; nothing for other targets. Autovacuum workers come and go, and are not counted.
pg_pids() {
    [ "$STORE_KIND" = pg ] || return 0
    local pid
    for pid in $(psql "$STORE" -Atqc "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
            AND pid <> pg_backend_pid() OR backend_type IN ('checkpointer', 'background writer', 'walwriter')"); do
        [ -r "/proc/$pid/stat" ] && echo "$pid"
    done
    return 0
}
# sum_ticks PID...: their CPU ticks together (a process gone meanwhile counts 0).
sum_ticks() {
    local t=0 pid
    for pid in "$@"; do t=$(( t + $(cpu_ticks "$pid" 2>/dev/null || echo 0) )); done
    echo "$t"
}

# measure NAME SCRIPT URL: a load run against an already started $SERVER_PID; prints one result row.
measure() {
    local name=$1 script=$2 url=$3
    local size0; size0=$(store_bytes)
    load "$script" "$url" 2 >/dev/null   # warm-up
    local pids; pids=$(pg_pids)
    local c0; c0=$(cpu_ticks "$SERVER_PID")
    # shellcheck disable=SC2086
    local p0; p0=$(sum_ticks $pids)
    local line; line=$(load "$script" "$url" "$DUR")
    local c1; c1=$(cpu_ticks "$SERVER_PID")
    # shellcheck disable=SC2086
    local p1; p1=$(sum_ticks $pids)
    local size1; size1=$(store_bytes)
    local stored; stored=$(store_events)
    field() { sed -nE "s/.*[ ]$1=([0-9]+).*/\1/p" <<<"$line"; }
    local req dur err p50 p99 events gen
    req=$(field requests); dur=$(field duration_us); err=$(field errors)
    p50=$(field p50_us); p99=$(field p99_us)
    # wrk's script reports no event count (every request carries 20) nor its own CPU time.
    events=$(field events); events=${events:-$((req * 20))}
    gen=$(field cpu_us); gen=${gen:--1}
    awk -v n="$name" -v req="$req" -v dur="$dur" -v err="$err" -v p50="$p50" -v p99="$p99" -v ev="$events" \
        -v gen="$gen" -v cpu=$((c1 - c0)) -v tck="$TICKS" -v rss="$(rss_kb "$SERVER_PID")" \
        -v pg="${pids:+$((p1 - p0))}" -v grew=$((size1 - size0)) -v stored="$stored" 'BEGIN {
        secs = dur / 1e6;
        g = gen < 0 ? "     -" : sprintf("%6.2f", (gen / 1e6) / (ev / 1e6));
        p = pg == "" ? "-" : sprintf("%.2f", (pg / tck) / (ev / 1e6));
        s = stored <= 0 ? "-" : sprintf("%.0f", (grew / 1e6) / (stored / 1e6));
        printf "| %-22s | %9.0f | %8.0f | %7.1f | %7.1f | %14.2f | %11s | %11s | %7.0f | %6d | %9s |\n",
            n, ev / secs, req / secs, p50 / 1000, p99 / 1000, (cpu / tck) / (ev / 1e6), p, g, rss / 1024, err, s }'
}

write_config() {
    cat > "$WORK/ingest.yaml" <<YAML
listen: 127.0.0.1:19480
storage:
  url: $1
  retention_days: 0
sites:
  - id: shop
    api_key: bench-key-0123456789
    allowed_origins: ["https://shop.example.com"]
    rate_limit: { events_per_second: 100000000, burst: 100000000 }
YAML
}

run_ingest() {
    local name=$1 url=$2
    write_config "$url"
    "$BIN" run -c "$WORK/ingest.yaml" --log-format json >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    wait_ready http://127.0.0.1:19480/readyz
    case $url in
    sqlite://*) STORE_KIND=sqlite STORE=${url#sqlite://} ;;
    *) STORE_KIND=pg STORE=$url ;;
    esac
    measure "$name" bench/ingest/bench.lua http://127.0.0.1:19480/v1/events
    STORE_KIND= STORE=
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
}

echo "load: $LOAD, $CONNS connections, IDS=$IDS, ${DUR}s per run, 20 events per request, $(nproc) CPUs shared by server and load"
echo "| target                 |  events/s |  req/s   | p50 ms  | p99 ms  | CPU s / 1M ev  | PG CPU s    | load CPU s  | RSS MiB | errors | MB / 1M ev |"
echo "|------------------------|-----------|----------|---------|---------|----------------|-------------|-------------|---------|--------|-----------|"
for t in $TARGETS; do
    case $t in
    sqlite) run_ingest "ingest + SQLite" "sqlite://$WORK/data/rum.db" ;;
    pg)
        PGDB=vantage_bench_$$
        psql "$PG" -qc "CREATE DATABASE $PGDB" >/dev/null
        run_ingest "ingest + PostgreSQL" "${PG%/*}/$PGDB"
        psql "$PG" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null
        ;;
    hello)
        if [ ! -x "$HELLO" ]; then echo "(no $HELLO: hello-world baseline skipped)"; continue; fi
        "$HELLO" 127.0.0.1:19481 >/dev/null 2>&1 &
        SERVER_PID=$!
        wait_ready http://127.0.0.1:19481/
        measure "actix hello-world" bench/ingest/hello.lua http://127.0.0.1:19481/v1/events
        kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
        ;;
    *) echo "unknown target $t (sqlite, pg, hello)" >&2; exit 1 ;;
    esac
done
