#!/usr/bin/env bash
# The whole test suite: what README.md documents and .ci/run calls.
# Installs what is missing (Debian packages, npm packages into js-sdk/), starts its own servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
install_debs() {
    local missing=()
    for spec in "$@"; do
        local cmd=${spec%%:*} pkg=${spec##*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    step "installing Debian packages: ${missing[*]}"
    if [ -z "$apt_updated" ]; then need_root apt-get update -qq; apt_updated=1; fi
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres): use the running one, else install and start one.
ensure_postgres() {
    if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return 0; fi
    install_debs pg_isready:postgresql-client psql:postgresql
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        install_debs pg_ctlcluster:postgresql
        need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local ver; ver=$(ls /etc/postgresql | sort -n | tail -1)
    local hba=/etc/postgresql/$ver/main/pg_hba.conf
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        need_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    need_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || need_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return 0; sleep 1; done
    echo "PostgreSQL did not start" >&2; return 1
}

# The ingest's outage tests run PostgreSQL clusters of their own (initdb, pg_ctl from /usr/lib/postgresql/*/bin)
# and mount small file systems (tmpfs; ext2 on a loop device).
ensure_postgres_server() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
    step "installing Debian package: postgresql (server binaries for the outage tests)"
    if [ -z "$apt_updated" ]; then need_root apt-get update -qq; apt_updated=1; fi
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

step "prerequisites"
install_debs pg_isready:postgresql-client promtool:prometheus prometheus:prometheus \
    prometheus-alertmanager:prometheus-alertmanager chromium:chromium node:nodejs npm:npm curl:curl jq:jq
install_debs chattr:e2fsprogs mkfs.ext2:e2fsprogs losetup:mount pgrep:procps runuser:util-linux
# ICMP probe tests: network namespaces (iproute2), packet loss (nftables), per-namespace sysctls (procps).
install_debs ip:iproute2 nft:nftables sysctl:procps
# `vantage-agent blackbox` is tested against the real blackbox_exporter (agent/tests/blackbox_differential.rs), which
# the tests start themselves on 127.0.0.1:<free port>. When this script installs the package, the service its
# postinst may start (on :9115) is stopped and disabled again.
if ! command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
    install_debs prometheus-blackbox-exporter:prometheus-blackbox-exporter
    if [ -d /run/systemd/system ]; then
        need_root systemctl disable --now prometheus-blackbox-exporter >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/prometheus-blackbox-exporter ]; then
        need_root /etc/init.d/prometheus-blackbox-exporter stop >/dev/null 2>&1 || true
        need_root update-rc.d prometheus-blackbox-exporter disable >/dev/null 2>&1 || true
    fi
fi
ensure_postgres
ensure_postgres_server
export VANTAGE_TEST_POSTGRES_URL=${VANTAGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

# The build (~15 GB with release binaries) and the tests' temporary files (PostgreSQL clusters, promtool's TSDB
# blocks with 512 MiB preallocated chunk files, SQLite stores) need room: a full disk fails tests far from here
# with "no space left on device", so say it up front.
for dir in "${CARGO_TARGET_DIR:-$ROOT/target}" "${TMPDIR:-/tmp}"; do
    mkdir -p "$dir"
    free_gib=$(( $(df -Pk "$dir" | awk 'NR==2 {print $4}') / 1048576 ))
    if [ "$free_gib" -lt 8 ]; then
        echo "warning: only ${free_gib} GiB free for $dir; the tests need about 8 GiB (build and temporary files)" >&2
    fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (binaries used by end-to-end tests)"
cargo build --workspace --bins --locked

# ingest/tests/sourcemaps.rs bundles a fixture with js-sdk's esbuild and runs it under node.
step "npm ci (js-sdk/: esbuild for the ingest's source map test)"
(cd js-sdk && npm ci --no-audit --no-fund --loglevel=error)

step "cargo test --workspace"
cargo test --workspace --locked

for extra in "$ROOT"/scripts/test.d/*.sh; do
    [ -e "$extra" ] || continue
    step "$(basename "$extra")"
    bash "$extra"
done

step "all tests passed"
