#!/usr/bin/env bash
# Ingest soak, CI-sized (issue #17): 2,000 stalled or trickling connections, opened again as soon as the server
# closes them, plus 100 normal POSTs/s for 20 s against the release binary: normal POST p99 must stay under 50 ms
# and the server's RSS under 200 MB. (A debug build is too slow for the latency bound; bench/README.md has the
# same run at 20,000 connections.)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -q -p vantage-ingest --bin vantage-ingest --example bench-ingest-soak
TARGET=${CARGO_TARGET_DIR:-target}
"$TARGET/release/examples/bench-ingest-soak" --server "$TARGET/release/vantage-ingest" \
    --connections 2000 --secs 20 --rate 100 --max-p99-ms 50 --max-rss-mb 200
