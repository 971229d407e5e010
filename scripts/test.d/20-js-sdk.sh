#!/usr/bin/env bash
# The browser SDK (js-sdk/): npm ci, unit tests (node's test runner), a check that the committed minified build
# is fresh, and the browser tests (headless Debian chromium via playwright-core) against the real vantage-ingest,
# and the agent's own page against the real vantage-agent (screenshots in js-sdk/test-output/agent-ui/).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# The browser tests read the ingest's SQLite store with the sqlite3 shell.
if ! command -v sqlite3 >/dev/null; then
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
fi
for cmd in node npm chromium; do
    command -v "$cmd" >/dev/null || { echo "$cmd missing (Debian packages: nodejs npm chromium)" >&2; exit 1; }
done
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "node $(node --version) is too old: the SDK tests need Node 20+ (playwright-core's minimum)" >&2
    exit 1
fi

cd "$ROOT/js-sdk"
echo "-- npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "-- unit tests"
node --test test/unit/

echo "-- dist/rum-sdk.min.js is fresh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node scripts/build.mjs "$tmp/rum-sdk.min.js"
if ! cmp -s dist/rum-sdk.min.js "$tmp/rum-sdk.min.js"; then
    echo "js-sdk/dist/rum-sdk.min.js is stale: run 'npm run build' in js-sdk/ and commit the result" >&2
    exit 1
fi

echo "-- browser tests against the real vantage-ingest (and the agent's page against the real vantage-agent)"
# Build (or confirm fresh) the ingest binary the tests start; it embeds the SDK, so it must match the source.
if [ -z "${VANTAGE_INGEST_BIN:-}" ]; then
    (cd "$ROOT" && cargo build -p vantage-ingest --bins --locked -q)
    VANTAGE_INGEST_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/vantage-ingest"
    export VANTAGE_INGEST_BIN
fi
# The agent page's test (agent-ui.test.mjs) starts the real vantage-agent.
if [ -z "${VANTAGE_AGENT_BIN:-}" ]; then
    (cd "$ROOT" && cargo build -p vantage-agent --bins --locked -q)
    VANTAGE_AGENT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/vantage-agent"
    export VANTAGE_AGENT_BIN
fi
# One file at a time: each starts its own ingest and browser, and the machine may be small.
for t in test/browser/*.test.mjs; do
    node --test "$t"
done
