#!/usr/bin/env bash
# Starts the whole system on the example configs: the probe agent, the RUM ingest server (SQLite under data/)
# and the demo API that the (commented) workflow example in config/agent.yaml exercises. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p vantage-agent -p vantage-ingest -p vantage-testkit --bins
bin=${CARGO_TARGET_DIR:-target}/release
mkdir -p data

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

"$bin/vantage-demo-api" --listen 127.0.0.1:9490 & pids+=($!)
"$bin/vantage-ingest" run -c config/ingest.yaml & pids+=($!)
"$bin/vantage-agent" run -c config/agent.yaml & pids+=($!)

cat <<MSG
Vantage is running:
  agent   http://127.0.0.1:9470/          (every check's state)   /metrics   /api/v1/checks
  ingest  http://127.0.0.1:9480/ui/       (the RUM explorer)      /metrics   /rum-sdk.js   (events: POST /v1/events)
          sign in with: $bin/vantage-ingest token -c config/ingest.yaml
  demo    http://127.0.0.1:9490           (the demo API for the workflow example at the end of config/agent.yaml)
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
