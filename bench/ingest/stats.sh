#!/usr/bin/env bash
# Stats API latency against store size: for each size and backend, fills a fresh store in bulk with SDK-shaped
# events spread over the last 7 days (bench/ingest/stats.rs), starts the release server on it, times
# GET /v1/stats/{pages,api,errors,vitals} for the dominant site over 24h and 7d, and deletes the store.
# It also times the one raw-event query the stats still make (each error group's sample, 7d window) and prints
# the slowest one's plan.
# Usage: bench/ingest/stats.sh   (SIZES="1000000 10000000 50000000" BACKENDS="sqlite pg" REPS=7 BUDGET=90s
#                                 BYTES_PER_EVENT=950 MIN_FREE_GB=15 SKIP_BUILD=1)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SIZES=${SIZES:-1000000 10000000}
BACKENDS=${BACKENDS:-sqlite pg}
REPS=${REPS:-7}
# A pair (endpoint, window) stops after this long once it has 3 timed runs (big stores on a shared machine).
BUDGET=${BUDGET:-90s}
# Disk estimate per event (table and indexes, raw JSON included; ~925 measured on both backends, 2026-12-04)
# and the free space a fill must leave.
BYTES_PER_EVENT=${BYTES_PER_EVENT:-950}
MIN_FREE_GB=${MIN_FREE_GB:-15}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG=${VANTAGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=$((19500 + $$ % 400))
SECRET=bench-stats-admin-secret-0123456789abcdef
# On the disk the stores go to (the PostgreSQL data directory is assumed to be on the same one).
WORK=$(mktemp -d /var/tmp/vantage-stats.XXXXXX)
PGDB=
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PGDB" ]; then psql "$PG" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -q -p vantage-ingest --bin vantage-ingest --example bench-ingest-stats
fi
BIN=${INGEST_BIN:-$TARGET/release/vantage-ingest}
TOOL=$TARGET/release/examples/bench-ingest-stats
source bench/lib.sh

free_gb() { df -P --block-size=1G "$WORK" | awk 'NR == 2 {print $4}'; }

write_config() {
    cat > "$WORK/ingest.yaml" <<YAML
listen: 127.0.0.1:$PORT
storage:
  url: $1
  retention_days: 0
sites:
  - id: shop
    api_key: bench-key-shop-0123456789
  - id: blog
    api_key: bench-key-blog-0123456789
  - id: docs
    api_key: bench-key-docs-0123456789
admin:
  algorithm: HS256
  secret: $SECRET
YAML
}

# run BACKEND URL SIZE: fill, measure, explain; the caller deletes the store.
run() {
    local backend=$1 url=$2 size=$3
    "$TOOL" fill --url "$url" --events "$size" | sed "s/^/# $backend: /"
    local bytes
    if [ "$backend" = sqlite ]; then
        bytes=$(du -cb "$WORK"/data/rum.db* | tail -1 | cut -f1)
    else
        bytes=$(psql "$PG" -Atc "SELECT pg_database_size('$PGDB')")
    fi
    echo "# $backend: $size events on disk: $((bytes / 1000000)) MB, $((bytes / size)) bytes/event; $(free_gb) GB free"
    write_config "$url"
    "$BIN" run -c "$WORK/ingest.yaml" --log-format json >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "http://127.0.0.1:$PORT/readyz"
    echo "# $backend: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$TOOL" measure --base "http://127.0.0.1:$PORT" --secret "$SECRET" --backend "$backend" --events "$size" \
        --reps "$REPS" --budget "$BUDGET" | tee -a "$WORK/table"
    echo "# $backend: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
    "$TOOL" explain --url "$url" --window 7d | sed "s/^/# $backend $size explain: /"
}

echo "# $(date -u +%FT%TZ), $(nproc) CPUs, sizes: $SIZES, backends: $BACKENDS, $REPS runs per pair (budget $BUDGET)"
echo "# columns: backend | events stored | endpoint | window | runs | p50 ms | slowest or p95 ms | rows | load1"
for size in $SIZES; do
    for backend in $BACKENDS; do
        need=$(( (size * BYTES_PER_EVENT + 999999999) / 1000000000 ))
        have=$(free_gb)
        if [ $((have - need)) -lt "$MIN_FREE_GB" ]; then
            echo "# $backend $size: SKIPPED, needs ~${need} GB and $have GB are free (must leave ${MIN_FREE_GB} GB)"
            continue
        fi
        case $backend in
        sqlite)
            run sqlite "sqlite://$WORK/data/rum.db" "$size"
            rm -rf "$WORK/data"
            ;;
        pg)
            PGDB=vantage_stats_bench_$$
            psql "$PG" -qc "CREATE DATABASE $PGDB" >/dev/null
            run pg "${PG%/*}/$PGDB" "$size"
            psql "$PG" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null
            PGDB=
            ;;
        *) echo "unknown backend $backend (sqlite, pg)" >&2; exit 1 ;;
        esac
    done
done
echo
echo "| backend | events stored | endpoint | window | runs | p50 ms | slowest (or p95) ms | rows | load1 |"
echo "|---|---|---|---|---|---|---|---|---|"
cat "$WORK/table" 2>/dev/null || true
