//! Helpers for end-to-end tests across the Vantage binaries, Prometheus and Alertmanager.
//!
//! # Layout
//! - [`process`]: the workspace root, the built binaries, free ports, child processes killed on drop, readiness.
//! - [`promql`]: metric names referenced by a PromQL expression (for the "every metric exists" test).
//! - [`monitoring`]: the repo's rule files and dashboards as data, and the documented duration scaling that lets
//!   the end-to-end test run the real rules in seconds instead of minutes.
//! - [`compose`]: `docker-compose.yml` as data (services, commands, environments, mounts).
//! - [`exposition`]: sample names in a Prometheus/OpenMetrics text exposition.
//! - [`servers`]: a local HTTP target that can be taken down and brought back, and an Alertmanager webhook sink.
//! - [`wait`]: polling a condition on live processes with a deadline.
//! - [`stack`]: starting Prometheus, Alertmanager, agents and the ingest on 127.0.0.1, and querying Prometheus.

pub mod compose;
pub mod exposition;
pub mod monitoring;
pub mod process;
pub mod promql;
pub mod servers;
pub mod stack;
pub mod wait;
