# syntax=docker/dockerfile:1
# Vantage: one image with both binaries (vantage-agent, vantage-ingest). docker-compose.yml runs it as the agents
# (one per region) and as the ingest server.
#
#   docker build -t vantage .
#   docker run -p 9480:9480 -v vantage-data:/var/lib/vantage vantage                       # ingest (default)
#   docker run -p 9470:9470 -e VANTAGE_HEALTH_URL=http://127.0.0.1:9470/healthz vantage \
#       vantage-agent run -c /etc/vantage/agent.yaml --listen 0.0.0.0:9470               # agent
#
# Ports:   9470 agent (/metrics, /healthz, /readyz, /api/v1/checks)
#          9480 ingest (/v1/events, /v1/stats/*, /rum-sdk.js, /metrics, /healthz, /readyz)
# Volume:  /var/lib/vantage  working directory and data: the ingest's SQLite store (storage.url sqlite://data/rum.db
#          resolves to /var/lib/vantage/data/rum.db). Use PostgreSQL (postgres://...) for more than one ingest node.
# Config:  /etc/vantage/agent.yaml, /etc/vantage/ingest.yaml, /etc/vantage/blackbox.yml (the examples from config/;
#          mount your own over them; `vantage-agent blackbox --config.file /etc/vantage/blackbox.yml`).
#          Secrets come from the environment: ${VAR} in the config files is expanded at load. The default command
#          (the ingest on 0.0.0.0) needs RUM_ADMIN_SECRET: the example's published fallback is refused off loopback.

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (every member must exist for cargo to load it). The browser SDK is embedded in the ingest
# binary (include_bytes! of js-sdk/dist/rum-sdk.min.js), so the built SDK is part of the build context.
COPY Cargo.toml Cargo.lock ./
COPY common common
COPY agent agent
COPY ingest ingest
COPY testkit testkit
COPY tests tests
COPY js-sdk/dist js-sdk/dist
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin vantage-agent --bin vantage-ingest \
    && install -D -m 0755 target/release/vantage-agent /out/vantage-agent \
    && install -D -m 0755 target/release/vantage-ingest /out/vantage-ingest

FROM debian:bookworm-slim AS runtime
# ca-certificates: the agent probes HTTPS targets with the system roots; curl: HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vantage \
    && useradd --system --uid 10001 --gid vantage --home-dir /var/lib/vantage --shell /usr/sbin/nologin vantage \
    && install -d -o vantage -g vantage -m 0750 /var/lib/vantage /var/lib/vantage/data \
    && install -d -m 0755 /etc/vantage
COPY --from=build /out/vantage-agent /out/vantage-ingest /usr/local/bin/
COPY config/agent.yaml config/ingest.yaml config/blackbox.yml /etc/vantage/
USER vantage:vantage
WORKDIR /var/lib/vantage
VOLUME ["/var/lib/vantage"]
EXPOSE 9470 9480
ENV VANTAGE_HEALTH_URL=http://127.0.0.1:9480/healthz
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "$VANTAGE_HEALTH_URL" >/dev/null || exit 1
CMD ["vantage-ingest", "run", "-c", "/etc/vantage/ingest.yaml", "--listen", "0.0.0.0:9480"]
