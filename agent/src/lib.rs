//! The Vantage probe agent.
//!
//! # Layout
//! One straight pipeline: config -> scheduler -> probe -> `ProbeResult` -> metrics (+ a log line on failure).
//! - [`source`]: where the config comes from (a file, or a URL polled with ETags, its last good copy kept).
//! - [`config`]: the config, validated once (`CheckName`, schedules, timeouts, labels, regions, SLOs,
//!   type-specific specs), and which of its fields are credentials.
//! - [`schedule`]: when a check is due (interval with a stable per-check phase, or cron) and the clock mapping.
//! - [`scheduler`]: one task per check; no self-overlap, global concurrency limit, timeout, retries, reload apply.
//! - [`probe`]: the probes (http, tcp, dns, tls, workflow) behind one `ProbeSpec` / `Probe`, and what they share:
//!   the HTTP exchange and response assertions (`probe::http`), TLS client options (`probe::tls_config`),
//!   multi-step API workflows (`probe::workflow`).
//! - [`result`]: `ProbeResult`, the one shape every probe returns, and the closed set of error types.
//! - [`trace`]: trace context on probe requests (W3C `traceparent`, `User-Agent`) and the run's trace id.
//! - [`history`]: the last runs of each check, a bounded ring of compact records (the page and its JSON).
//! - [`metrics`]: per-check Prometheus series and the agent's own metrics (OpenMetrics text).
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/checks`, a check's history and run-now, the page.
//! - [`ui`]: the agent's own page (`/`, `/checks/{name}`): server-rendered HTML and its embedded assets.
//! - [`reload`]: loading and applying configs: at boot, on SIGHUP, on file change, at every poll of a URL.
//! - [`remote_write`]: pushing every run's samples to Prometheus (remote write 1.0), per endpoint queues.
//! - [`client`]: the reqwest client for what is not a probe (config URLs, remote write).
//! - [`report`]: the table `vantage-agent once` prints.
//! - [`blackbox`]: a drop-in for blackbox_exporter (its module file, `/probe`, its flags) and `convert-blackbox`.
//! - [`app`]: wiring the parts into a running agent, and one-shot runs.
pub mod app;
pub mod blackbox;
pub mod client;
pub mod config;
pub mod history;
pub mod metrics;
pub mod probe;
pub mod reload;
pub mod remote_write;
pub mod report;
pub mod result;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod source;
pub mod trace;
pub mod ui;
