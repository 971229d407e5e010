//! The agent's Prometheus metrics: per-check series (request counters and histograms, blackbox-compatible gauges
//! for the last run, per-step series for workflows) and the agent's own metrics, encoded as OpenMetrics text.
//!
//! Every per-check family carries the same identifying labels – `region`, `endpoint` (the check's name),
//! `check_type`, then the agent's default labels and the check's static labels – so one selector works across
//! all of them. Per-check series live in one [`CheckSeries`] per check, created when the check starts and dropped
//! when it is removed; a collector encodes them at scrape time, so a removed check leaves no stale series.
//!
//! In the OpenMetrics format, `synthetic_request_duration_seconds` carries one exemplar per check: the last run's
//! trace id (`# {trace_id="..."} <duration> <time>`) on the bucket that run fell into, so a dashboard jumps from a
//! slow or failed probe to the backend trace. The classic text format has no exemplars.

use crate::config::CheckConfig;
use crate::config::DEFAULT_SLO_OBJECTIVE;
use crate::result::{ErrorType, ProbeResult, ServingStatus};
use crate::trace::TraceId;
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An ordered label set whose names come from the config.
pub type Labels = Vec<(String, String)>;

const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];
/// `metrics: basic`: enough for the latency alert (p95 above 2 s) and a coarse heatmap in 5 series per check.
const BASIC_DURATION_BUCKETS: [f64; 2] = [0.5, 2.5];
const SEND_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const LATENESS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// All metrics of one agent process.
#[derive(Debug)]
pub struct Metrics {
    /// The agent's own metrics.
    own: Registry,
    /// The per-check series, written by [`Metrics::write`].
    checks: CheckSet,
    agent_errors: Arc<AgentErrors>,
    /// How long after its due time a run started (waiting for the concurrency limit included).
    pub lateness: Histogram,
    pub checks_configured: Gauge,
    reloads: Family<Vec<(&'static str, &'static str)>, Counter>,
    reload_failures: Family<Vec<(&'static str, &'static str)>, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
    last_reload_successful: Gauge,
    config_info: Family<Vec<(&'static str, String)>, Gauge>,
    /// Runs asked for outside the schedule (the page's "Run now"), by check and result; never in the check's series.
    run_now: Family<Vec<(&'static str, String)>, Counter>,
    /// Remote write, per endpoint.
    pub remote_write: Arc<RemoteWriteFamilies>,
}

/// Why a config reload failed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadFailure {
    /// The config URL could not be fetched (network, timeout).
    Fetch,
    /// The config URL answered with an error status.
    HttpStatus,
    /// The new config is not valid (or the file cannot be read).
    Invalid,
}

impl ReloadFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadFailure::Fetch => "fetch",
            ReloadFailure::HttpStatus => "http_status",
            ReloadFailure::Invalid => "invalid",
        }
    }
}

type RemoteLabels = Vec<(&'static str, String)>;

/// Why samples were given up on (the `reason` of `..._samples_failed_total`).
const FAILURE_REASONS: [&str; 2] = ["http_4xx", "shutdown"];

/// The remote-write metric families, one label set per endpoint (`remote`).
#[derive(Debug)]
pub struct RemoteWriteFamilies {
    sent: Family<RemoteLabels, Counter>,
    failed: Family<RemoteLabels, Counter>,
    dropped: Family<RemoteLabels, Counter>,
    queue: Family<RemoteLabels, Gauge>,
    last_success: Family<RemoteLabels, Gauge<f64, AtomicU64>>,
    duration: Family<RemoteLabels, Histogram, fn() -> Histogram>,
}

impl RemoteWriteFamilies {
    fn new() -> Self {
        RemoteWriteFamilies {
            sent: Family::default(),
            failed: Family::default(),
            dropped: Family::default(),
            queue: Family::default(),
            last_success: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(SEND_BUCKETS)),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "vantage_agent_remote_write_samples_sent",
            "Samples the remote-write endpoint accepted",
            self.sent.clone(),
        );
        r.register(
            "vantage_agent_remote_write_samples_failed",
            "Samples given up on, by reason (http_4xx: refused by the receiver; shutdown: still failing at exit)",
            self.failed.clone(),
        );
        r.register(
            "vantage_agent_remote_write_samples_dropped",
            "Samples dropped because the queue was full (the oldest go first)",
            self.dropped.clone(),
        );
        r.register(
            "vantage_agent_remote_write_queue_samples",
            "Samples waiting to be sent",
            self.queue.clone(),
        );
        r.register(
            "vantage_agent_remote_write_last_send_success_timestamp_seconds",
            "When a request to the endpoint last succeeded, Unix seconds",
            self.last_success.clone(),
        );
        r.register(
            "vantage_agent_remote_write_send_duration_seconds",
            "Duration of remote-write requests (each attempt)",
            self.duration.clone(),
        );
    }

    /// The handle an endpoint's sender records through.
    pub fn endpoint(self: &Arc<Self>, remote: &str) -> RemoteWriteMetrics {
        let labels = vec![("remote", remote.to_string())];
        // Present from the start, so a rate over them is defined before the first send.
        let _ = self.sent.get_or_create(&labels);
        let _ = self.dropped.get_or_create(&labels);
        let _ = self.queue.get_or_create(&labels);
        for reason in FAILURE_REASONS {
            let _ = self.failed.get_or_create(&vec![
                ("remote", remote.to_string()),
                ("reason", reason.to_string()),
            ]);
        }
        RemoteWriteMetrics {
            families: self.clone(),
            labels,
        }
    }

    /// Drops the series of an endpoint that is no longer configured.
    pub fn forget(&self, remote: &str) {
        let labels = vec![("remote", remote.to_string())];
        self.sent.remove(&labels);
        self.dropped.remove(&labels);
        self.queue.remove(&labels);
        self.last_success.remove(&labels);
        self.duration.remove(&labels);
        for reason in FAILURE_REASONS {
            self.failed.remove(&vec![
                ("remote", remote.to_string()),
                ("reason", reason.to_string()),
            ]);
        }
    }
}

/// One endpoint's view of [`RemoteWriteFamilies`].
#[derive(Debug, Clone)]
pub struct RemoteWriteMetrics {
    families: Arc<RemoteWriteFamilies>,
    labels: RemoteLabels,
}

impl RemoteWriteMetrics {
    pub fn sent(&self, samples: usize, now_secs: f64) {
        self.families
            .sent
            .get_or_create(&self.labels)
            .inc_by(samples as u64);
        self.families
            .last_success
            .get_or_create(&self.labels)
            .set(now_secs);
    }

    /// `reason`: `http_4xx` or `shutdown`.
    pub fn failed(&self, reason: &'static str, samples: usize) {
        let mut labels = self.labels.clone();
        labels.push(("reason", reason.to_string()));
        self.families
            .failed
            .get_or_create(&labels)
            .inc_by(samples as u64);
    }

    pub fn dropped(&self, samples: usize) {
        if samples > 0 {
            self.families
                .dropped
                .get_or_create(&self.labels)
                .inc_by(samples as u64);
        }
    }

    pub fn queue_length(&self, samples: usize) {
        self.families
            .queue
            .get_or_create(&self.labels)
            .set(samples as i64);
    }

    pub fn send_duration(&self, d: Duration) {
        self.families
            .duration
            .get_or_create(&self.labels)
            .observe(d.as_secs_f64());
    }
}

#[derive(Debug, Default)]
struct CheckSet(RwLock<BTreeMap<String, Arc<CheckSeries>>>);

/// How much a check exports (`metrics: basic | full`, agent-wide and per check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// What the shipped rules and the dashboards' overview need: runs by outcome, a coarse duration histogram,
    /// `probe_success`, certificate expiry and workflow step outcomes. Skipped runs and a non-default SLO
    /// objective appear only when there is something to say (see docs/metrics.md).
    Basic,
    /// Everything: the last run's blackbox-style gauges (phases, status, redirects, ...) and step histograms.
    #[default]
    Full,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Basic => "basic",
            Level::Full => "full",
        }
    }

    /// The duration buckets of a check that sets none.
    pub fn default_buckets(self) -> &'static [f64] {
        match self {
            Level::Basic => &BASIC_DURATION_BUCKETS,
            Level::Full => &DURATION_BUCKETS,
        }
    }
}

/// What one check exports: its level and the upper bounds of its duration histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub level: Level,
    /// Shared by every check with the same bounds.
    pub buckets: Arc<[f64]>,
}

impl Default for Detail {
    fn default() -> Self {
        Detail {
            level: Level::Full,
            buckets: Arc::from(&DURATION_BUCKETS[..]),
        }
    }
}

/// The most bucket boundaries a duration histogram may have (each is one series per check).
pub const MAX_BUCKETS: usize = 30;

/// `duration_buckets:` must be 1 to [`MAX_BUCKETS`] positive, finite, strictly increasing seconds.
pub fn validate_buckets(bounds: &[f64]) -> Result<(), String> {
    if bounds.is_empty() || bounds.len() > MAX_BUCKETS {
        return Err(format!(
            "{} bucket boundaries; give 1 to {MAX_BUCKETS} (seconds, e.g. [0.5, 2.5])",
            bounds.len()
        ));
    }
    for (i, b) in bounds.iter().enumerate() {
        if !b.is_finite() || *b <= 0.0 {
            return Err(format!(
                "[{i}] = {b}: a boundary is a positive, finite number of seconds"
            ));
        }
        if i > 0 && *b <= bounds[i - 1] {
            return Err(format!(
                "[{i}] = {b} is not above [{}] = {}: boundaries go in increasing order, without repeats",
                i - 1,
                bounds[i - 1]
            ));
        }
    }
    Ok(())
}

/// A duration histogram with shared bounds: one atomic per bucket, the sum as `f64` bits.
#[derive(Debug)]
struct DurationHistogram {
    bounds: Arc<[f64]>,
    /// Per bucket (not cumulative), the last one above every bound (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl DurationHistogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        DurationHistogram {
            bounds,
            counts,
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Relaxed);
        let mut cur = self.sum.load(Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.sum.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
    }
}

/// The series of one check. Recording touches only atomics and one uncontended lock.
#[derive(Debug)]
pub struct CheckSeries {
    /// The identifying labels, rendered once: `region="..",endpoint="..",check_type="..",...`.
    labels: Box<str>,
    check_type: &'static str,
    level: Level,
    duration: DurationHistogram,
    success: AtomicU64,
    failures: [AtomicU64; ErrorType::ALL.len()],
    skipped: AtomicU64,
    /// The check's availability objective, a ratio.
    slo_objective: f64,
    last: Mutex<Option<Arc<ProbeResult>>>,
    /// When `last` was recorded (milliseconds since the epoch): the timestamp of its exemplar.
    last_at_ms: AtomicU64,
    /// Workflow steps by name: duration histograms (the last result gives the gauges). Full level only.
    steps: Mutex<BTreeMap<String, DurationHistogram>>,
    /// Workflow step failures by (step, error type).
    step_failures: Mutex<BTreeMap<(String, ErrorType), u64>>,
    /// `vantage_agent_errors_total{reason}`: runs that failed on the agent's side, not the target's.
    agent_errors: Arc<AgentErrors>,
}

/// Runs the agent could not carry out, by reason (`vantage_agent_errors_total`).
#[derive(Debug)]
pub struct AgentErrors {
    fd_exhausted: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let checks = CheckSet::default();
        // A gauge rather than an OpenMetrics `info`: promtool and the Prometheus text parser reject that type.
        let build = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register(
            "vantage_agent_build_info",
            "Build information of the running agent (always 1)",
            build,
        );
        let checks_configured = Gauge::default();
        registry.register(
            "vantage_agent_checks_configured",
            "Enabled checks in the running config",
            checks_configured.clone(),
        );
        let lateness = Histogram::new(LATENESS_BUCKETS);
        registry.register(
            "vantage_agent_scheduler_lateness_seconds",
            "Delay between a run's due time and its start",
            lateness.clone(),
        );
        let reloads = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "vantage_agent_config_reloads",
            "Config reloads by result (success, failure)",
            reloads.clone(),
        );
        let reload_failures = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "vantage_agent_config_reload_failures",
            "Config reloads that failed, by reason (fetch, http_status, invalid); the running config stays",
            reload_failures.clone(),
        );
        for reason in [
            ReloadFailure::Fetch,
            ReloadFailure::HttpStatus,
            ReloadFailure::Invalid,
        ] {
            // Present from the start at 0, so increase() sees the first failure.
            let _ = reload_failures.get_or_create(&vec![("reason", reason.as_str())]);
        }
        let last_reload_successful = Gauge::default();
        registry.register(
            "vantage_agent_config_last_reload_successful",
            "Whether the last attempt to load a config succeeded (1) or was rejected (0)",
            last_reload_successful.clone(),
        );
        let last_reload_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "vantage_agent_config_last_reload_success_timestamp_seconds",
            "When a config was last loaded and applied, Unix seconds",
            last_reload_success.clone(),
        );
        let config_info = Family::<Vec<(&'static str, String)>, Gauge>::default();
        registry.register(
            "vantage_agent_config_info",
            "The running config: hash of its text before ${ENV} expansion (always 1)",
            config_info.clone(),
        );
        let errors = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        // The checks count through clones of these counters; present at 0 from the start.
        let agent_errors = Arc::new(AgentErrors {
            fd_exhausted: errors
                .get_or_create(&vec![("reason", "fd_exhausted")])
                .clone(),
        });
        registry.register(
            "vantage_agent_errors",
            "Runs the agent could not carry out, by reason (fd_exhausted: no file descriptor left to open a \
             connection); not counted as failures of the check",
            errors,
        );
        let run_now = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register(
            "vantage_agent_run_now",
            "Runs asked for outside the schedule (POST /api/v1/checks/{name}/run), by check and result; not in the check's rates",
            run_now.clone(),
        );
        let remote_write = Arc::new(RemoteWriteFamilies::new());
        remote_write.register(&mut registry);
        Metrics {
            own: registry,
            checks,
            agent_errors,
            lateness,
            checks_configured,
            reloads,
            reload_failures,
            last_reload_success,
            last_reload_successful,
            config_info,
            run_now,
            remote_write,
        }
    }

    /// A run-now of `check` finished.
    pub fn run_now(&self, check: &str, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.run_now
            .get_or_create(&vec![
                ("endpoint", check.to_string()),
                ("result", result.into()),
            ])
            .inc();
    }

    /// The series for `check`, created (or replaced) with the labels and detail of this config.
    pub fn add_check(&self, region: &str, check: &CheckConfig) -> Arc<CheckSeries> {
        let mut labels = String::new();
        for (k, v) in [
            ("region", region),
            ("endpoint", check.name.as_str()),
            ("check_type", check.check_type),
        ]
        .into_iter()
        .chain(check.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            if !labels.is_empty() {
                labels.push(',');
            }
            push_label(&mut labels, k, v);
        }
        let series = Arc::new(CheckSeries {
            labels: labels.into_boxed_str(),
            check_type: check.check_type,
            level: check.detail.level,
            duration: DurationHistogram::new(check.detail.buckets.clone()),
            success: AtomicU64::new(0),
            failures: Default::default(),
            skipped: AtomicU64::new(0),
            slo_objective: check.slo_objective,
            last: Mutex::new(None),
            last_at_ms: AtomicU64::new(0),
            steps: Mutex::new(BTreeMap::new()),
            step_failures: Mutex::new(BTreeMap::new()),
            agent_errors: self.agent_errors.clone(),
        });
        self.checks
            .0
            .write()
            .unwrap()
            .insert(check.name.to_string(), series.clone());
        series
    }

    /// Every check's series, by check name.
    pub fn check_series(&self) -> Vec<(String, Arc<CheckSeries>)> {
        self.checks
            .0
            .read()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Whether `series` is still the check's (it was not removed or replaced since).
    pub fn is_current(&self, name: &str, series: &Arc<CheckSeries>) -> bool {
        self.checks
            .0
            .read()
            .unwrap()
            .get(name)
            .is_some_and(|s| Arc::ptr_eq(s, series))
    }

    /// Drops every series of the check.
    pub fn remove_check(&self, name: &str) {
        self.checks.0.write().unwrap().remove(name);
    }

    /// A config (the first one included) was loaded and applied.
    pub fn config_applied(&self, hash: &str, at: SystemTime) {
        self.last_reload_successful.set(1);
        self.config_info.clear();
        self.config_info
            .get_or_create(&vec![("hash", hash.to_string())])
            .set(1);
        self.last_reload_success.set(
            at.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
    }

    /// The source serves the running config again (after a rejected one, say).
    pub fn config_unchanged(&self) {
        self.last_reload_successful.set(1);
    }

    /// A reload applied a new config.
    pub fn config_reloaded(&self) {
        self.reloads
            .get_or_create(&vec![("result", "success")])
            .inc();
    }

    /// A new config was rejected; the running one stays.
    pub fn config_rejected(&self, reason: ReloadFailure) {
        self.last_reload_successful.set(0);
        self.reloads
            .get_or_create(&vec![("result", "failure")])
            .inc();
        self.reload_failures
            .get_or_create(&vec![("reason", reason.as_str())])
            .inc();
    }

    /// OpenMetrics text of everything (what Prometheus asks for with `Accept: application/openmetrics-text`).
    pub fn encode(&self) -> String {
        self.encode_as(Format::OpenMetrics)
    }

    /// The classic Prometheus text format (0.0.4), for scrapers and tools (`promtool check metrics`) that do not
    /// speak OpenMetrics: counter families take their `_total` name, `# EOF` and `# UNIT` go.
    pub fn encode_prometheus(&self) -> String {
        self.encode_as(Format::Prometheus)
    }

    fn encode_as(&self, format: Format) -> String {
        let mut out = Vec::new();
        self.write(format, &mut out)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the exposition is UTF-8")
    }

    /// Writes the whole exposition to `out` in pieces of about [`CHUNK`] bytes, so a 50,000-check scrape never
    /// sits in memory whole when `out` compresses or sends as it goes. CPU-heavy at that size: call it off the
    /// scheduler's threads (the server uses `spawn_blocking`).
    pub fn write(&self, format: Format, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut own = encode_registry(&self.own);
        own.truncate(own.len() - EOF.len());
        let own = match format {
            Format::OpenMetrics => own,
            Format::Prometheus => openmetrics_to_prometheus(&own),
        };
        out.write_all(own.as_bytes())?;
        let rows = self.checks.rows();
        let mut w = Writer {
            format,
            buf: String::with_capacity(CHUNK + 4096),
            out,
        };
        write_checks(&mut w, &rows)?;
        if format == Format::OpenMetrics {
            w.buf.push_str(EOF);
        }
        w.flush()
    }

    /// The exposition as a body handed over in pieces while it is written: encoded (and gzip-compressed when
    /// `gzip`) on a thread of its own at a lower priority, never on the runtime threads that run the probes, and
    /// at most a few [`CHUNK`]-sized pieces held at once, however large the scrape (a 50,000-check one is ~150 MB
    /// of text). The thread stops when the scraper goes away.
    pub fn encode_streaming(
        self: Arc<Self>,
        format: Format,
        gzip: bool,
    ) -> std::io::Result<MetricsBody> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::thread::Builder::new()
            .name("metrics-encode".into())
            .spawn(move || {
                lower_this_threads_priority();
                let mut sink = ChunkSender {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(CHUNK),
                };
                let written = if gzip {
                    let mut z =
                        flate2::write::GzEncoder::new(&mut sink, flate2::Compression::fast());
                    self.write(format, &mut z)
                        .and_then(|_| z.finish().map(|_| ()))
                } else {
                    self.write(format, &mut sink)
                };
                if let Err(e) = written.and_then(|_| sink.send()) {
                    let _ = tx.blocking_send(Err(e));
                }
            })?;
        Ok(MetricsBody(rx))
    }

    /// OpenMetrics text of the agent's own metrics only.
    pub fn encode_own(&self) -> String {
        encode_registry(&self.own)
    }

    /// OpenMetrics text of one check's series, exactly as [`Metrics::encode`] writes them.
    pub fn encode_check(&self, series: &Arc<CheckSeries>) -> String {
        let mut out = Vec::new();
        let mut w = Writer {
            format: Format::OpenMetrics,
            buf: String::new(),
            out: &mut out,
        };
        write_checks(&mut w, &[Row::of(series)]).expect("writing to a Vec cannot fail");
        w.buf.push_str(EOF);
        w.flush().expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CheckSeries {
    /// Records one finished run. A run the agent could not carry out (no file descriptor left) counts as an
    /// agent error, not as a run of the check: the target was never tried, so no failure and no alert.
    pub fn record(&self, result: &Arc<ProbeResult>) {
        if result.agent_fault().is_some() {
            self.agent_errors.fd_exhausted.inc();
            return;
        }
        self.duration.observe(result.duration.as_secs_f64());
        match &result.error {
            None => self.success.fetch_add(1, Relaxed),
            Some(e) => self.failures[error_index(e.error_type)].fetch_add(1, Relaxed),
        };
        if !result.steps.is_empty() {
            if self.level == Level::Full {
                let mut steps = self.steps.lock().unwrap();
                for step in result.steps.iter().filter(|s| !s.skipped) {
                    steps
                        .entry(step.name.clone())
                        .or_insert_with(|| DurationHistogram::new(self.duration.bounds.clone()))
                        .observe(step.duration.as_secs_f64());
                }
            }
            let mut failures = self.step_failures.lock().unwrap();
            for step in result.steps.iter().filter(|s| !s.skipped) {
                if let Some(e) = &step.error {
                    *failures
                        .entry((step.name.clone(), e.error_type))
                        .or_default() += 1;
                }
            }
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut last = self.last.lock().unwrap();
        self.last_at_ms.store(now_ms, Relaxed);
        *last = Some(result.clone());
    }

    /// A due run did not start because the previous one was still going.
    pub fn skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Relaxed);
    }

    /// The identifying labels as they appear in the exposition.
    pub fn labels(&self) -> &str {
        &self.labels
    }
}

/// Nice +10 for the calling thread (on Linux the nice value is per thread): the scheduler preempts it. Best
/// effort; failing leaves it at the process's priority.
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

const EOF: &str = "# EOF\n";

/// How much the writer buffers before handing a piece to its output.
pub const CHUNK: usize = 64 * 1024;

/// Hands what is written to a [`MetricsBody`] in pieces of about [`CHUNK`] bytes, waiting while the body holds
/// as many as it takes.
struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the scraper went away")
        })
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `/metrics` response body of [`Metrics::encode_streaming`].
pub struct MetricsBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for MetricsBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// The text format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 (what Prometheus asks for).
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Prometheus,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

fn encode_registry(r: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, r)
        .expect("writing to a String cannot fail");
    debug_assert!(out.ends_with(EOF));
    out
}

fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn error_index(t: ErrorType) -> usize {
    ErrorType::ALL.iter().position(|e| *e == t).unwrap_or(0)
}

/// `name="value"` with the value escaped as both text formats require.
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One check as seen by a scrape.
struct Row {
    series: Arc<CheckSeries>,
    last: Option<Arc<ProbeResult>>,
    /// When `last` was recorded, in milliseconds since the epoch.
    last_at_ms: u64,
}

/// The trace of one run on the duration histogram: the bucket the run's duration fell into gets
/// `# {trace_id="..."} <duration> <time>`.
struct Exemplar {
    trace: TraceId,
    value: f64,
    at_ms: u64,
}

impl Row {
    fn of(series: &Arc<CheckSeries>) -> Row {
        let last = series.last.lock().unwrap();
        Row {
            series: series.clone(),
            last: last.clone(),
            last_at_ms: series.last_at_ms.load(Relaxed),
        }
    }

    /// The last run's trace as an exemplar, when it had one.
    fn exemplar(&self) -> Option<Exemplar> {
        let last = self.last.as_ref()?;
        Some(Exemplar {
            trace: last.trace_id?,
            value: last.duration.as_secs_f64(),
            at_ms: self.last_at_ms,
        })
    }

    fn full(&self) -> bool {
        self.series.level == Level::Full
    }
}

impl CheckSet {
    /// A snapshot of every check (by name), so a scrape holds the set's lock only while copying pointers.
    fn rows(&self) -> Vec<Row> {
        self.0.read().unwrap().values().map(Row::of).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Writes per-check families as text, handing `out` a piece whenever [`CHUNK`] bytes are buffered.
struct Writer<'a, W: std::io::Write> {
    format: Format,
    buf: String,
    out: &'a mut W,
}

impl<W: std::io::Write> Writer<'_, W> {
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.write_all(self.buf.as_bytes())?;
        self.buf.clear();
        Ok(())
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// `# HELP` and `# TYPE`; a Prometheus-format counter family is named with its `_total`.
    fn header(&mut self, name: &str, help: &str, kind: Kind) {
        let total = if kind == Kind::Counter && self.format == Format::Prometheus {
            "_total"
        } else {
            ""
        };
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = write!(
            self.buf,
            "# HELP {name}{total} {help}\n# TYPE {name}{total} {kind}\n"
        );
    }

    /// `name{labels,extra...} ` – the value follows.
    fn start(&mut self, name: &str, labels: &str, extra: &[(&str, &str)]) {
        self.buf.push_str(name);
        self.buf.push('{');
        self.label_rest(labels, extra);
    }

    /// The labels after `{` (and any labels already written), then `} `.
    fn label_rest(&mut self, labels: &str, extra: &[(&str, &str)]) {
        self.buf.push_str(labels);
        for (k, v) in extra {
            self.buf.push(',');
            push_label(&mut self.buf, k, v);
        }
        self.buf.push_str("} ");
    }

    fn int(&mut self, name: &str, labels: &str, extra: &[(&str, &str)], v: u64) {
        self.start(name, labels, extra);
        let _ = writeln!(self.buf, "{v}");
    }

    fn float(&mut self, name: &str, labels: &str, extra: &[(&str, &str)], v: f64) {
        self.start(name, labels, extra);
        let _ = writeln!(self.buf, "{v:?}");
    }

    /// A histogram's buckets, sum and count; `exemplar` goes on the bucket its value fell into (OpenMetrics only).
    fn histogram(
        &mut self,
        name: &str,
        labels: &str,
        extra: &[(&str, &str)],
        h: &DurationHistogram,
        exemplar: Option<Exemplar>,
    ) {
        let exemplar = exemplar
            .filter(|_| self.format == Format::OpenMetrics)
            .map(|e| (h.bounds.partition_point(|b| *b < e.value), e));
        let mut cumulative = 0;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            // `le` first, as prometheus_client wrote it.
            let _ = match h.bounds.get(i) {
                Some(b) => write!(self.buf, "{name}_bucket{{le=\"{b:?}\","),
                None => write!(self.buf, "{name}_bucket{{le=\"+Inf\","),
            };
            self.label_rest(labels, extra);
            let _ = write!(self.buf, "{cumulative}");
            if let Some((_, e)) = exemplar.as_ref().filter(|(at, _)| *at == i) {
                let _ = write!(
                    self.buf,
                    " # {{trace_id=\"{}\"}} {:?} {}.{:03}",
                    e.trace,
                    e.value,
                    e.at_ms / 1000,
                    e.at_ms % 1000
                );
            }
            self.buf.push('\n');
        }
        self.buf.push_str(name);
        self.float("_sum", labels, extra, f64::from_bits(h.sum.load(Relaxed)));
        self.buf.push_str(name);
        self.int("_count", labels, extra, cumulative);
    }

    /// One family: its header, then what `f` writes for each row (flushing between rows).
    fn family<'r>(
        &mut self,
        (name, help, kind): (&str, &str, Kind),
        rows: &'r [Row],
        mut f: impl FnMut(&mut Self, &'r Row),
    ) -> std::io::Result<()> {
        self.header(name, help, kind);
        for row in rows {
            f(self, row);
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// A gauge family over the rows that have a last result: `f` gives (extra label, value) pairs.
    fn last_run<'r>(
        &mut self,
        (name, help): (&str, &str),
        rows: &'r [Row],
        level: Level,
        f: impl Fn(&'r CheckSeries, &'r ProbeResult) -> Vec<(Option<(&'static str, &'r str)>, f64)>,
    ) -> std::io::Result<()> {
        self.family((name, help, Kind::Gauge), rows, |w, row| {
            if level == Level::Full && !row.full() {
                return;
            }
            let Some(r) = &row.last else { return };
            for (extra, v) in f(&row.series, r) {
                let extra: &[(&str, &str)] = match &extra {
                    Some(e) => std::slice::from_ref(e),
                    None => &[],
                };
                w.float(name, &row.series.labels, extra, v);
            }
        })
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn one<'a>(v: f64) -> Vec<(Option<(&'static str, &'a str)>, f64)> {
    vec![(None, v)]
}

/// Every per-check family, in a fixed order. Families a level leaves out still get their header.
fn write_checks<W: std::io::Write>(w: &mut Writer<'_, W>, rows: &[Row]) -> std::io::Result<()> {
    use Kind::{Counter as C, Gauge as G, Histogram as H};
    // Counter samples end in `_total` in both formats (only the family name differs).
    let total = |name: &str| format!("{name}_total");
    w.family(
        (
            "synthetic_request_duration_seconds",
            "Duration of check runs",
            H,
        ),
        rows,
        |w, r| {
            w.histogram(
                "synthetic_request_duration_seconds",
                &r.series.labels,
                &[],
                &r.series.duration,
                r.exemplar(),
            )
        },
    )?;
    let name = total("synthetic_request_success");
    w.family(
        ("synthetic_request_success", "Successful check runs", C),
        rows,
        |w, r| w.int(&name, &r.series.labels, &[], r.series.success.load(Relaxed)),
    )?;
    let name = total("synthetic_request_failure");
    w.family(
        (
            "synthetic_request_failure",
            "Failed check runs by error type",
            C,
        ),
        rows,
        |w, r| {
            for (t, n) in ErrorType::ALL.iter().zip(&r.series.failures) {
                let n = n.load(Relaxed);
                if n > 0 {
                    w.int(&name, &r.series.labels, &[("error_type", t.as_str())], n);
                }
            }
        },
    )?;
    let name = total("synthetic_runs_skipped");
    w.family(
        (
            "synthetic_runs_skipped",
            "Due runs skipped because the previous run was still going",
            C,
        ),
        rows,
        |w, r| {
            let n = r.series.skipped.load(Relaxed);
            // Basic: only once a run was skipped (the alert on it needs no zero).
            if r.full() || n > 0 {
                w.int(&name, &r.series.labels, &[], n);
            }
        },
    )?;
    w.family(
        (
            "vantage_check_slo_objective_ratio",
            "Availability objective of the check (the share of runs that should succeed)",
            G,
        ),
        rows,
        |w, r| {
            let o = r.series.slo_objective;
            // Basic: the SLO rules fall back to the default objective, so only another one needs a series.
            if r.full() || o != DEFAULT_SLO_OBJECTIVE {
                w.float(
                    "vantage_check_slo_objective_ratio",
                    &r.series.labels,
                    &[],
                    o,
                );
            }
        },
    )?;
    // blackbox_exporter-compatible gauges for the last run.
    let (basic, full) = (Level::Basic, Level::Full);
    w.last_run(
        ("probe_success", "Whether the last run succeeded"),
        rows,
        basic,
        |_, r| one(if r.success() { 1.0 } else { 0.0 }),
    )?;
    w.last_run(
        ("probe_duration_seconds", "Duration of the last run"),
        rows,
        full,
        |_, r| one(secs(r.duration)),
    )?;
    w.last_run(
        ("synthetic_probe_attempts", "Attempts made by the last run"),
        rows,
        full,
        |_, r| one(f64::from(r.attempts)),
    )?;
    w.last_run(
        (
            "probe_http_status_code",
            "HTTP status of the last response (0: none)",
        ),
        rows,
        full,
        |s, r| match (&r.http, s.check_type) {
            (Some(h), _) => one(f64::from(h.status)),
            (None, "http") => one(0.0),
            _ => vec![],
        },
    )?;
    w.last_run(
        (
            "probe_http_version",
            "HTTP version of the last response (1.1, 2, 3), as blackbox_exporter reports it",
        ),
        rows,
        full,
        |_, r| {
            r.http
                .as_ref()
                .and_then(|h| h.version.strip_prefix("HTTP/")?.parse::<f64>().ok())
                .map(one)
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_http_duration_seconds",
            "Duration of each phase of the last run",
        ),
        rows,
        full,
        // gRPC checks report their phases as probe_grpc_duration_seconds, as blackbox_exporter does.
        |s, r| match s.check_type {
            GRPC => vec![],
            _ => phase_values(r),
        },
    )?;
    w.last_run(
        ("probe_http_redirects", "Redirects followed by the last run"),
        rows,
        full,
        |_, r| {
            r.http
                .as_ref()
                .map(|h| one(f64::from(h.redirects)))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_http_content_length",
            "Body bytes of the last response",
        ),
        rows,
        full,
        |_, r| {
            r.http
                .as_ref()
                .map(|h| one(h.content_length as f64))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_ssl_earliest_cert_expiry",
            "Earliest certificate expiry, Unix seconds",
        ),
        rows,
        basic,
        |_, r| {
            r.tls
                .as_ref()
                .and_then(|t| t.earliest_cert_expiry)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| one(d.as_secs_f64()))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_tls_version_info",
            "TLS version of the last handshake",
        ),
        rows,
        full,
        |_, r| {
            r.tls
                .as_ref()
                .map(|t| vec![(Some(("version", t.version.as_str())), 1.0)])
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_dns_lookup_time_seconds",
            "Name resolution time of the last run",
        ),
        rows,
        full,
        |_, r| r.dns_lookup.map(|d| one(secs(d))).unwrap_or_default(),
    )?;
    // ICMP checks: the packet counts (basic: what a loss alert needs), then blackbox's phases and hop limit and
    // the run's round-trip statistics.
    w.last_run(
        (
            "probe_icmp_packets_sent",
            "Echo requests sent by the last run",
        ),
        rows,
        basic,
        |_, r| {
            r.icmp
                .as_ref()
                .map(|i| one(f64::from(i.sent)))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_icmp_packets_received",
            "Echo replies received in time by the last run",
        ),
        rows,
        basic,
        |_, r| {
            r.icmp
                .as_ref()
                .map(|i| one(f64::from(i.received)))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_icmp_duration_seconds",
            "Duration of each phase of the last ICMP run (rtt: the mean round trip)",
        ),
        rows,
        full,
        |_, r| {
            let Some(i) = &r.icmp else { return vec![] };
            [
                r.dns_lookup.map(|d| ("resolve", d)),
                Some(("setup", i.setup)),
                i.rtt.map(|s| ("rtt", s.avg)),
            ]
            .into_iter()
            .flatten()
            .map(|(phase, d)| (Some(("phase", phase)), secs(d)))
            .collect()
        },
    )?;
    w.last_run(
        (
            "probe_icmp_rtt_seconds",
            "Round-trip statistics over the replies of the last run",
        ),
        rows,
        full,
        |_, r| {
            let Some(s) = r.icmp.as_ref().and_then(|i| i.rtt) else {
                return vec![];
            };
            [
                ("min", s.min),
                ("avg", s.avg),
                ("max", s.max),
                ("stddev", s.stddev),
            ]
            .into_iter()
            .map(|(stat, d)| (Some(("stat", stat)), secs(d)))
            .collect()
        },
    )?;
    w.last_run(
        (
            "probe_icmp_reply_hop_limit",
            "TTL (IPv4) or hop limit (IPv6) of the last echo reply",
        ),
        rows,
        full,
        |_, r| {
            r.icmp
                .as_ref()
                .and_then(|i| i.hop_limit)
                .map(|h| one(f64::from(h)))
                .unwrap_or_default()
        },
    )?;
    write_grpc(w, rows)?;
    // Workflow steps.
    w.family(
        (
            "synthetic_step_duration_seconds",
            "Duration of workflow steps",
            H,
        ),
        rows,
        |w, r| {
            for (step, h) in r.series.steps.lock().unwrap().iter() {
                w.histogram(
                    "synthetic_step_duration_seconds",
                    &r.series.labels,
                    &[("step", step)],
                    h,
                    None,
                );
            }
        },
    )?;
    w.last_run(
        (
            "synthetic_step_success",
            "Whether each workflow step of the last run succeeded",
        ),
        rows,
        basic,
        |_, r| {
            r.steps
                .iter()
                .filter(|s| !s.skipped)
                .map(|s| {
                    (
                        Some(("step", s.name.as_str())),
                        if s.success { 1.0 } else { 0.0 },
                    )
                })
                .collect()
        },
    )?;
    let name = total("synthetic_step_failure");
    w.family(
        (
            "synthetic_step_failure",
            "Failed workflow steps by error type",
            C,
        ),
        rows,
        |w, r| {
            for ((step, t), n) in r.series.step_failures.lock().unwrap().iter() {
                w.int(
                    &name,
                    &r.series.labels,
                    &[("step", step), ("error_type", t.as_str())],
                    *n,
                );
            }
        },
    )?;
    Ok(())
}

const GRPC: &str = "grpc";

/// `phase` label and seconds of each phase of the last run.
fn phase_values(r: &ProbeResult) -> Vec<(Option<(&'static str, &str)>, f64)> {
    r.phases
        .0
        .iter()
        .map(|(p, d)| (Some(("phase", p.as_str())), secs(*d)))
        .collect()
}

/// blackbox_exporter's gRPC families, on full only: a failing health check already shows in `probe_success` and
/// `synthetic_request_failure_total{error_type}`, which is what the rules read; these say why.
fn write_grpc<W: std::io::Write>(w: &mut Writer<'_, W>, rows: &[Row]) -> std::io::Result<()> {
    w.last_run(
        (
            "probe_grpc_healthcheck_response",
            "Serving status of the last health check answer (1 for the one received, 0 for the others)",
        ),
        rows,
        Level::Full,
        |s, r| {
            if s.check_type != GRPC {
                return vec![];
            }
            let got = r.grpc.as_ref().and_then(|g| g.serving_status);
            ServingStatus::ALL
                .iter()
                .map(|st| {
                    let v = if got == Some(*st) { 1.0 } else { 0.0 };
                    (Some(("serving_status", st.as_str())), v)
                })
                .collect()
        },
    )?;
    w.last_run(
        (
            "probe_grpc_status_code",
            "gRPC status code of the last health check answer (0: OK; absent when no gRPC answer came)",
        ),
        rows,
        Level::Full,
        |_, r| {
            r.grpc
                .as_ref()
                .map(|g| one(f64::from(g.status_code)))
                .unwrap_or_default()
        },
    )?;
    w.last_run(
        (
            "probe_grpc_duration_seconds",
            "Duration of each phase of the last gRPC health check",
        ),
        rows,
        Level::Full,
        |s, r| match s.check_type {
            GRPC => phase_values(r),
            _ => vec![],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Runner;
    use crate::result::{HttpFacts, Phase, Phases, ProbeError};
    use crate::schedule::Schedule;

    fn check(name: &str) -> CheckConfig {
        let mut c = CheckConfig::new(
            name,
            "http",
            Schedule::Every(Duration::from_secs(10)),
            Runner::new(|| Box::pin(async { ProbeResult::default() })),
        );
        c.labels.insert("team".into(), "sre".into());
        c
    }

    #[test]
    fn records_counters_and_last_run_gauges() {
        let m = Metrics::new();
        let s = m.add_check("eu", &check("api"));
        let mut phases = Phases::default();
        phases.add(Phase::Connect, Duration::from_millis(3));
        phases.add(Phase::Processing, Duration::from_millis(200));
        s.record(&Arc::new(ProbeResult {
            duration: Duration::from_millis(210),
            phases,
            http: Some(HttpFacts {
                status: 200,
                version: "HTTP/1.1",
                redirects: 1,
                content_length: 42,
            }),
            attempts: 1,
            ..Default::default()
        }));
        s.record(&Arc::new(ProbeResult::failed(
            ProbeError::new(ErrorType::Connect, "refused"),
            Duration::from_millis(1),
        )));
        s.skipped(2);
        let text = m.encode();
        let l = r#"region="eu",endpoint="api",check_type="http",team="sre""#;
        for line in [
            format!("synthetic_request_success_total{{{l}}} 1"),
            format!("synthetic_request_failure_total{{{l},error_type=\"connect\"}} 1"),
            format!("synthetic_request_duration_seconds_count{{{l}}} 2"),
            format!("synthetic_runs_skipped_total{{{l}}} 2"),
            format!("probe_success{{{l}}} 0.0"),
            format!("probe_http_status_code{{{l}}} 0.0"),
            format!("synthetic_probe_attempts{{{l}}} 1.0"),
            "vantage_agent_build_info{version=".to_string(),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("error_type=\"dns\""));
        let classic = m.encode_prometheus();
        assert!(
            classic.contains("# TYPE synthetic_request_success_total counter\n"),
            "{classic}"
        );
        assert!(
            classic.contains("# HELP synthetic_request_success_total Successful check runs\n"),
            "{classic}"
        );
        assert!(!classic.contains("# EOF"));
        m.remove_check("api");
        assert!(!m.encode().contains("endpoint=\"api\""));
    }

    #[test]
    fn the_last_runs_trace_is_an_exemplar_on_its_bucket_in_openmetrics_only() {
        let m = Metrics::new();
        let s = m.add_check("eu", &check("api"));
        let trace = TraceId::from_bytes([0x4b; 16]);
        s.record(&Arc::new(ProbeResult {
            duration: Duration::from_millis(70),
            trace_id: Some(trace),
            attempts: 1,
            ..Default::default()
        }));
        let text = m.encode();
        let with: Vec<&str> = text.lines().filter(|l| l.contains(" # {")).collect();
        assert_eq!(with.len(), 1, "{text}");
        // 70 ms falls into le="0.1" (the first bound at or above it), and only there.
        let line = with[0];
        assert!(
            line.starts_with("synthetic_request_duration_seconds_bucket{le=\"0.1\","),
            "{line}"
        );
        let (sample, exemplar) = line.split_once(" # ").unwrap();
        assert!(sample.ends_with("} 1"), "{line}");
        let parts: Vec<&str> = exemplar.split(' ').collect();
        assert_eq!(parts[0], format!("{{trace_id=\"{trace}\"}}"));
        assert_eq!(parts[1], "0.07");
        let ts: f64 = parts[2].parse().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - ts).abs() < 60.0, "{ts} vs {now}");
        assert!(!m.encode_prometheus().contains(" # {"));
        // A run without a trace (tcp, trace_context: false) leaves no exemplar behind.
        s.record(&Arc::new(ProbeResult {
            duration: Duration::from_millis(70),
            attempts: 1,
            ..Default::default()
        }));
        assert!(!m.encode().contains(" # {"));
    }

    /// The series of check `name` in `text` (sample lines only).
    fn series_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!("endpoint=\"{name}\"");
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(&needle))
            .collect()
    }

    fn https_result(ok: bool) -> Arc<ProbeResult> {
        let mut phases = Phases::default();
        for p in [
            Phase::Connect,
            Phase::Tls,
            Phase::Processing,
            Phase::Transfer,
        ] {
            phases.add(p, Duration::from_millis(5));
        }
        Arc::new(ProbeResult {
            error: (!ok).then(|| ProbeError::new(ErrorType::HttpStatus, "503")),
            duration: Duration::from_millis(30),
            phases,
            http: Some(HttpFacts {
                status: if ok { 200 } else { 503 },
                version: "HTTP/1.1",
                redirects: 0,
                content_length: 2,
            }),
            tls: Some(crate::result::TlsFacts {
                version: "TLS 1.3".into(),
                earliest_cert_expiry: Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            }),
            attempts: 1,
            ..Default::default()
        })
    }

    #[test]
    fn basic_keeps_what_the_rules_need_in_at_most_ten_series_per_http_check() {
        let m = Metrics::new();
        let mut basic = check("basic");
        basic.detail = Detail {
            level: Level::Basic,
            buckets: Arc::from(Level::Basic.default_buckets()),
        };
        let b = m.add_check("eu", &basic);
        let f = m.add_check("eu", &check("full"));
        for s in [&b, &f] {
            s.record(&https_result(true));
            s.record(&https_result(false));
        }
        let text = m.encode();
        let basic_series = series_of(&text, "basic");
        let l = r#"region="eu",endpoint="basic",check_type="http",team="sre""#;
        for line in [
            format!("synthetic_request_duration_seconds_bucket{{le=\"0.5\",{l}}} 2"),
            format!("synthetic_request_duration_seconds_bucket{{le=\"2.5\",{l}}} 2"),
            format!("synthetic_request_duration_seconds_bucket{{le=\"+Inf\",{l}}} 2"),
            format!("synthetic_request_duration_seconds_count{{{l}}} 2"),
            format!("synthetic_request_success_total{{{l}}} 1"),
            format!("synthetic_request_failure_total{{{l},error_type=\"http_status\"}} 1"),
            format!("probe_success{{{l}}} 0.0"),
            format!("probe_ssl_earliest_cert_expiry{{{l}}} 2000000000.0"),
        ] {
            assert!(
                basic_series.iter().any(|s| s.starts_with(&line)),
                "missing {line} in {basic_series:#?}"
            );
        }
        // Failing, over TLS, default objective, nothing skipped: 9 series; an objective of its own makes 10.
        assert_eq!(basic_series.len(), 9, "{basic_series:#?}");
        assert!(!text.contains(&format!("probe_http_status_code{{{l}}}")));
        assert!(!text.contains(&format!("synthetic_runs_skipped_total{{{l}}}")));
        assert!(!text.contains(&format!("vantage_check_slo_objective_ratio{{{l}}}")));
        // Today's set on full: 17 histogram series, 4 phases, and the rest (probe_http_version included).
        let full_series = series_of(&text, "full");
        assert_eq!(full_series.len(), 34, "{full_series:#?}");
        assert!(full_series
            .iter()
            .any(|s| s.starts_with("probe_http_version{") && s.ends_with("} 1.1")));
        // The skip counter shows up on basic once a run was skipped.
        b.skipped(1);
        assert!(m
            .encode()
            .contains(&format!("synthetic_runs_skipped_total{{{l}}} 1\n")));
    }

    #[test]
    fn grpc_checks_write_blackbox_grpc_families_on_full() {
        let m = Metrics::new();
        let mut c = check("health");
        c.check_type = "grpc";
        let s = m.add_check("eu", &c);
        let mut phases = Phases::default();
        phases.add(Phase::Connect, Duration::from_millis(2));
        phases.add(Phase::Processing, Duration::from_millis(4));
        s.record(&Arc::new(ProbeResult {
            error: Some(ProbeError::new(ErrorType::Assertion, "NOT_SERVING")),
            phases,
            grpc: Some(crate::result::GrpcFacts {
                status_code: 0,
                serving_status: Some(ServingStatus::NotServing),
            }),
            attempts: 1,
            ..Default::default()
        }));
        let text = m.encode();
        let l = r#"region="eu",endpoint="health",check_type="grpc",team="sre""#;
        for line in [
            format!("probe_grpc_healthcheck_response{{{l},serving_status=\"NOT_SERVING\"}} 1.0"),
            format!("probe_grpc_healthcheck_response{{{l},serving_status=\"SERVING\"}} 0.0"),
            format!("probe_grpc_healthcheck_response{{{l},serving_status=\"UNKNOWN\"}} 0.0"),
            format!(
                "probe_grpc_healthcheck_response{{{l},serving_status=\"SERVICE_UNKNOWN\"}} 0.0"
            ),
            format!("probe_grpc_status_code{{{l}}} 0.0"),
            format!("probe_grpc_duration_seconds{{{l},phase=\"connect\"}} 0.002"),
            format!("probe_grpc_duration_seconds{{{l},phase=\"processing\"}} 0.004"),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert!(!text.contains(&format!("probe_http_duration_seconds{{{l}")));
        assert!(!text.contains(&format!("probe_http_status_code{{{l}")));
        // No gRPC answer (refused): the serving statuses are all 0 and no status code is made up.
        s.record(&Arc::new(ProbeResult::failed(
            ProbeError::new(ErrorType::Connect, "refused"),
            Duration::from_millis(1),
        )));
        let text = m.encode();
        assert!(!text.contains("probe_grpc_status_code{"), "{text}");
        assert_eq!(
            text.lines()
                .filter(|x| x.starts_with("probe_grpc_healthcheck_response{") && x.ends_with(" 0.0"))
                .count(),
            4
        );
        // Basic leaves the gRPC families out.
        let m = Metrics::new();
        c.detail.level = Level::Basic;
        m.add_check("eu", &c)
            .record(&Arc::new(ProbeResult::default()));
        assert!(!m.encode().contains("probe_grpc_healthcheck_response{"));
    }

    #[test]
    fn icmp_checks_export_packets_on_basic_and_phases_round_trips_hop_limit_on_full() {
        use crate::result::{IcmpFacts, RttStats};
        let m = Metrics::new();
        let icmp_check = |name: &str, level: Level| {
            let mut c = check(name);
            c.check_type = "icmp";
            c.detail = Detail {
                level,
                buckets: Arc::from(level.default_buckets()),
            };
            c
        };
        let ms = Duration::from_millis;
        let result = Arc::new(ProbeResult {
            error: Some(ProbeError::new(ErrorType::Timeout, "1 of 4 unanswered")),
            dns_lookup: Some(ms(2)),
            icmp: Some(Box::new(IcmpFacts {
                sent: 4,
                received: 3,
                setup: ms(1),
                rtt: RttStats::of(&[ms(10), ms(20), ms(30)]),
                hop_limit: Some(64),
            })),
            attempts: 1,
            ..Default::default()
        });
        for level in [Level::Basic, Level::Full] {
            m.add_check("eu", &icmp_check(level.as_str(), level))
                .record(&result);
        }
        let text = m.encode();
        let l =
            |name: &str| format!(r#"region="eu",endpoint="{name}",check_type="icmp",team="sre""#);
        let (b, f) = (l("basic"), l("full"));
        for line in [
            format!("probe_icmp_packets_sent{{{b}}} 4.0"),
            format!("probe_icmp_packets_received{{{b}}} 3.0"),
            format!("probe_icmp_packets_received{{{f}}} 3.0"),
            format!("probe_icmp_duration_seconds{{{f},phase=\"resolve\"}} 0.002"),
            format!("probe_icmp_duration_seconds{{{f},phase=\"setup\"}} 0.001"),
            format!("probe_icmp_duration_seconds{{{f},phase=\"rtt\"}} 0.02"),
            format!("probe_icmp_rtt_seconds{{{f},stat=\"min\"}} 0.01"),
            format!("probe_icmp_rtt_seconds{{{f},stat=\"max\"}} 0.03"),
            format!("probe_icmp_rtt_seconds{{{f},stat=\"stddev\"}} 0.008164"),
            format!("probe_icmp_reply_hop_limit{{{f}}} 64.0"),
            format!("probe_dns_lookup_time_seconds{{{f}}} 0.002"),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        let basic = series_of(&text, "basic");
        assert!(
            !basic.iter().any(|s| s.starts_with("probe_icmp_rtt")
                || s.starts_with("probe_icmp_duration")
                || s.starts_with("probe_icmp_reply")),
            "{basic:#?}"
        );
        // The histogram (3 buckets, sum, count), success and failure counters, probe_success, the two packet
        // counts: 10, as many as an HTTP check's basic at most.
        assert_eq!(basic.len(), 10, "{basic:#?}");
        // Full, failing, to a name: docs/metrics.md's 34 for a host name, + the failure counter.
        assert_eq!(series_of(&text, "full").len(), 35);
    }

    #[test]
    fn buckets_are_configurable_and_validated() {
        let m = Metrics::new();
        let mut c = check("api");
        c.detail.buckets = Arc::from(&[0.1, 1.0, 10.0][..]);
        let s = m.add_check("eu", &c);
        for ms in [50, 100, 150, 20_000] {
            s.record(&Arc::new(ProbeResult {
                duration: Duration::from_millis(ms),
                ..Default::default()
            }));
        }
        let text = m.encode();
        let l = r#"region="eu",endpoint="api",check_type="http",team="sre""#;
        for line in [
            format!("synthetic_request_duration_seconds_bucket{{le=\"0.1\",{l}}} 2\n"),
            format!("synthetic_request_duration_seconds_bucket{{le=\"1.0\",{l}}} 3\n"),
            format!("synthetic_request_duration_seconds_bucket{{le=\"10.0\",{l}}} 3\n"),
            format!("synthetic_request_duration_seconds_bucket{{le=\"+Inf\",{l}}} 4\n"),
            format!("synthetic_request_duration_seconds_sum{{{l}}} 20.3"),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert!(validate_buckets(&[0.5, 2.5]).is_ok());
        for (bad, why) in [
            (vec![], "0 bucket boundaries"),
            (vec![1.0, 0.5], "[1] = 0.5 is not above [0] = 1"),
            (vec![1.0, 1.0], "not above"),
            (vec![0.0], "positive"),
            (vec![f64::INFINITY], "finite"),
            (vec![f64::NAN], "finite"),
            ((1..=31).map(f64::from).collect(), "31 bucket boundaries"),
        ] {
            let e = validate_buckets(&bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        let mut c = check("api");
        c.labels.insert("note".into(), "say \"hi\"\\\nbye".into());
        m.add_check("eu", &c);
        assert!(
            m.encode()
                .contains(r#"note="say \"hi\"\\\nbye",team="sre"} 0"#),
            "{}",
            m.encode()
        );
    }

    #[test]
    fn a_run_without_file_descriptors_is_an_agent_error_not_a_failure() {
        let m = Metrics::new();
        let s = m.add_check("eu", &check("api"));
        s.record(&https_result(true));
        s.record(&Arc::new(ProbeResult::failed(
            ProbeError::agent(
                ErrorType::Connect,
                crate::result::AgentFault::FdExhausted,
                "Too many open files (os error 24)",
            ),
            Duration::from_millis(1),
        )));
        let text = m.encode();
        let l = r#"region="eu",endpoint="api",check_type="http",team="sre""#;
        assert!(
            text.contains("vantage_agent_errors_total{reason=\"fd_exhausted\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("synthetic_request_failure_total{"), "{text}");
        assert!(
            text.contains(&format!("probe_success{{{l}}} 1.0")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "synthetic_request_duration_seconds_count{{{l}}} 1\n"
        )));
    }

    #[test]
    fn written_in_pieces_the_same_as_whole() {
        let m = Metrics::new();
        for i in 0..2_000 {
            m.add_check("eu", &check(&format!("c{i}")))
                .record(&https_result(i % 3 == 0));
        }
        /// Counts the pieces it is handed.
        struct Pieces(Vec<u8>, usize);
        impl std::io::Write for Pieces {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.extend_from_slice(b);
                self.1 += 1;
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut p = Pieces(Vec::new(), 0);
        m.write(Format::OpenMetrics, &mut p).unwrap();
        let whole = m.encode();
        assert_eq!(String::from_utf8(p.0).unwrap(), whole);
        assert!(p.1 > whole.len() / CHUNK, "{} pieces", p.1);
        assert!(whole.ends_with("# EOF\n"));
        let classic = m.encode_prometheus();
        assert!(!classic.contains("# EOF"));
        assert!(classic.contains("# TYPE synthetic_request_failure_total counter\n"));
    }
}
