//! Fixtures shared by all Vantage tests and benchmarks. Everything listens on 127.0.0.1 port 0.
//!
//! # Layout
//! - [`tls`]: certificate authorities and leaf certificates made with rcgen (valid, expired, wrong host).
//! - [`blackhole`]: a local address whose connects hang (a full accept queue), for connect-racing tests.
//! - [`dns`]: an authoritative DNS server over UDP/TCP, TLS (DoT) and HTTPS (DoH).
//! - [`servers`]: HTTP/TCP targets that misbehave on purpose (slow headers, slow body, redirect loops, large bodies).
//! - [`h3`]: an HTTP/3 (QUIC) target with a test-PKI certificate.
//! - [`grpc`]: a real gRPC health server (tonic-health), plaintext or TLS, per-service statuses, slow answers.
//! - [`demo_api`]: a small real API (token auth, assignments CRUD) with fault switches, for workflow tests.
//! - [`fleet`]: a config server for a fleet of agents (ETags, bearer token, faults) and a fault-injecting
//!   forwarder for remote-write receivers.
//! - [`promtool`]: promtool on an exposition (classic and OpenMetrics), required where a test uses it.
//! - [`netns`]: throwaway network namespaces (packet loss with nftables, per-namespace sysctls).

pub mod blackhole;
pub mod demo_api;
pub mod dns;
pub mod fleet;
pub mod grpc;
pub mod h3;
pub mod netns;
pub mod promtool;
pub mod servers;
pub mod tls;
