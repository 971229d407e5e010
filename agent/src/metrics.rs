//! The agent's Prometheus metrics: per-check series (request counters and histograms, blackbox-compatible gauges
//! for the last run, per-step series for workflows) and the agent's own metrics, encoded as OpenMetrics text.
//!
//! Every per-check family carries the same identifying labels – `region`, `endpoint` (the check's name),
//! `check_type`, then the agent's default labels and the check's static labels – so one selector works across
//! all of them. Per-check series live in one [`CheckSeries`] per check, created when the check starts and dropped
//! when it is removed; a collector encodes them at scrape time, so a removed check leaves no stale series.

use crate::config::CheckConfig;
use crate::result::{ErrorType, ProbeResult};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An ordered label set whose names come from the config.
pub type Labels = Vec<(String, String)>;

const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];
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
    /// The per-check series (one collector).
    checks_registry: Registry,
    checks: Arc<CheckSet>,
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

/// The series of one check. Recording touches only atomics and one uncontended lock.
#[derive(Debug)]
pub struct CheckSeries {
    labels: Labels,
    check_type: &'static str,
    duration: Histogram,
    success: Counter,
    failures: [Counter; ErrorType::ALL.len()],
    skipped: Counter,
    /// The check's availability objective, a ratio.
    slo_objective: f64,
    last: Mutex<Option<Arc<ProbeResult>>>,
    /// Workflow steps by name: duration histograms (the last result gives the gauges).
    steps: Mutex<BTreeMap<String, Histogram>>,
    /// Workflow step failures by (step, error type).
    step_failures: Mutex<BTreeMap<(String, ErrorType), Counter>>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut checks_registry = Registry::default();
        let checks = Arc::new(CheckSet::default());
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
        let run_now = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register(
            "vantage_agent_run_now",
            "Runs asked for outside the schedule (POST /api/v1/checks/{name}/run), by check and result; not in the check's rates",
            run_now.clone(),
        );
        let remote_write = Arc::new(RemoteWriteFamilies::new());
        remote_write.register(&mut registry);
        checks_registry.register_collector(Box::new(checks.clone()));
        Metrics {
            own: registry,
            checks_registry,
            checks,
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

    /// The series for `check`, created (or replaced) with the labels of this config.
    pub fn add_check(&self, region: &str, check: &CheckConfig) -> Arc<CheckSeries> {
        let mut labels: Labels = vec![
            ("region".into(), region.into()),
            ("endpoint".into(), check.name.to_string()),
            ("check_type".into(), check.check_type.into()),
        ];
        labels.extend(check.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let series = Arc::new(CheckSeries {
            labels,
            check_type: check.check_type,
            duration: Histogram::new(DURATION_BUCKETS),
            success: Counter::default(),
            failures: Default::default(),
            skipped: Counter::default(),
            slo_objective: check.slo_objective,
            last: Mutex::new(None),
            steps: Mutex::new(BTreeMap::new()),
            step_failures: Mutex::new(BTreeMap::new()),
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
        let mut out = encode_registry(&self.own);
        // One exposition: the first part's `# EOF` goes, the second part's ends it.
        out.truncate(out.len() - EOF.len());
        out.push_str(&encode_registry(&self.checks_registry));
        out
    }

    /// OpenMetrics text of the agent's own metrics only.
    pub fn encode_own(&self) -> String {
        encode_registry(&self.own)
    }

    /// OpenMetrics text of one check's series, exactly as [`Metrics::encode`] writes them.
    pub fn encode_check(&self, series: &Arc<CheckSeries>) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(CheckSet(RwLock::new(BTreeMap::from([(
            String::new(),
            series.clone(),
        )])))));
        encode_registry(&r)
    }

    /// The classic Prometheus text format (0.0.4), for scrapers and tools (`promtool check metrics`) that do not
    /// speak OpenMetrics: counter families take their `_total` name, `# EOF` and `# UNIT` go.
    pub fn encode_prometheus(&self) -> String {
        openmetrics_to_prometheus(&self.encode())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CheckSeries {
    /// Records one finished run.
    pub fn record(&self, result: &Arc<ProbeResult>) {
        self.duration.observe(result.duration.as_secs_f64());
        match &result.error {
            None => self.success.inc(),
            Some(e) => self.failures[error_index(e.error_type)].inc(),
        };
        if !result.steps.is_empty() {
            let mut steps = self.steps.lock().unwrap();
            for step in result.steps.iter().filter(|s| !s.skipped) {
                steps
                    .entry(step.name.clone())
                    .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
                    .observe(step.duration.as_secs_f64());
            }
            let mut failures = self.step_failures.lock().unwrap();
            for step in result.steps.iter().filter(|s| !s.skipped) {
                if let Some(e) = &step.error {
                    failures
                        .entry((step.name.clone(), e.error_type))
                        .or_default()
                        .inc();
                }
            }
        }
        *self.last.lock().unwrap() = Some(result.clone());
    }

    /// A due run did not start because the previous one was still going.
    pub fn skipped(&self, n: u64) {
        self.skipped.inc_by(n);
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }
}

const EOF: &str = "# EOF\n";

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

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

type Extra<'a> = [(&'static str, &'a str); 1];

/// One check as seen by a scrape.
struct Row {
    series: Arc<CheckSeries>,
    last: Option<Arc<ProbeResult>>,
    steps: BTreeMap<String, Histogram>,
    step_failures: BTreeMap<(String, ErrorType), Counter>,
}

/// Writes one family: a descriptor and, for each check, the samples `f` yields.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    descriptor: (&str, &str, MetricType),
    rows: &'a [Row],
    f: impl Fn(&'a Row) -> Vec<(Option<Extra<'a>>, M)>,
) -> Result<(), std::fmt::Error> {
    family_with(encoder, descriptor, rows, f)
}

/// [`family`] with any set of extra labels.
fn family_with<'a, M: EncodeMetric, E: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    (name, help, metric_type): (&str, &str, MetricType),
    rows: &'a [Row],
    f: impl Fn(&'a Row) -> Vec<(Option<E>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, metric_type)?;
    for row in rows {
        let labels = &row.series.labels;
        for (extra, metric) in f(row) {
            match extra {
                None => metric.encode(m.encode_family(labels)?)?,
                Some(extra) => metric.encode(m.encode_family(&(labels.as_slice(), extra))?)?,
            }
        }
    }
    Ok(())
}

/// Writes one gauge family over the checks that have a last result.
fn last_run<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &'a [Row],
    f: impl Fn(&'a CheckSeries, &'a ProbeResult) -> Vec<(Option<Extra<'a>>, f64)>,
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        (name, help, MetricType::Gauge),
        rows,
        |row| match &row.last {
            Some(r) => f(&row.series, r)
                .into_iter()
                .map(|(extra, v)| (extra, ConstGauge::new(v)))
                .collect(),
            None => vec![],
        },
    )
}

fn one(v: f64) -> Vec<(Option<Extra<'static>>, f64)> {
    vec![(None, v)]
}

impl Collector for CheckSet {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows: Vec<Row> = self
            .0
            .read()
            .unwrap()
            .values()
            .map(|s| Row {
                series: s.clone(),
                last: s.last.lock().unwrap().clone(),
                steps: s.steps.lock().unwrap().clone(),
                step_failures: s.step_failures.lock().unwrap().clone(),
            })
            .collect();
        let e = &mut e;
        use MetricType::{Counter as C, Histogram as H};
        family(
            e,
            (
                "synthetic_request_duration_seconds",
                "Duration of check runs",
                H,
            ),
            &rows,
            |r| vec![(None, r.series.duration.clone())],
        )?;
        family(
            e,
            ("synthetic_request_success", "Successful check runs", C),
            &rows,
            |r| vec![(None, r.series.success.clone())],
        )?;
        family(
            e,
            (
                "synthetic_request_failure",
                "Failed check runs by error type",
                C,
            ),
            &rows,
            |r| {
                ErrorType::ALL
                    .iter()
                    .zip(&r.series.failures)
                    .filter(|(_, n)| n.get() > 0)
                    .map(|(t, n)| (Some([("error_type", t.as_str())]), n.clone()))
                    .collect()
            },
        )?;
        family(
            e,
            (
                "synthetic_runs_skipped",
                "Due runs skipped because the previous run was still going",
                C,
            ),
            &rows,
            |r| vec![(None, r.series.skipped.clone())],
        )?;
        family(
            e,
            (
                "vantage_check_slo_objective_ratio",
                "Availability objective of the check (the share of runs that should succeed)",
                MetricType::Gauge,
            ),
            &rows,
            |r| vec![(None, ConstGauge::new(r.series.slo_objective))],
        )?;
        // blackbox_exporter-compatible gauges for the last run.
        last_run(
            e,
            "probe_success",
            "Whether the last run succeeded",
            &rows,
            |_, r| one(if r.success() { 1.0 } else { 0.0 }),
        )?;
        last_run(
            e,
            "probe_duration_seconds",
            "Duration of the last run",
            &rows,
            |_, r| one(secs(r.duration)),
        )?;
        last_run(
            e,
            "synthetic_probe_attempts",
            "Attempts made by the last run",
            &rows,
            |_, r| one(f64::from(r.attempts)),
        )?;
        last_run(
            e,
            "probe_http_status_code",
            "HTTP status of the last response (0: none)",
            &rows,
            |s, r| match (&r.http, s.check_type) {
                (Some(h), _) => one(f64::from(h.status)),
                (None, "http") => one(0.0),
                _ => vec![],
            },
        )?;
        last_run(
            e,
            "probe_http_duration_seconds",
            "Duration of each phase of the last run",
            &rows,
            |_, r| {
                r.phases
                    .0
                    .iter()
                    .map(|(p, d)| (Some([("phase", p.as_str())]), secs(*d)))
                    .collect()
            },
        )?;
        last_run(
            e,
            "probe_http_redirects",
            "Redirects followed by the last run",
            &rows,
            |_, r| {
                r.http
                    .as_ref()
                    .map(|h| one(f64::from(h.redirects)))
                    .unwrap_or_default()
            },
        )?;
        last_run(
            e,
            "probe_http_content_length",
            "Body bytes of the last response",
            &rows,
            |_, r| {
                r.http
                    .as_ref()
                    .map(|h| one(h.content_length as f64))
                    .unwrap_or_default()
            },
        )?;
        last_run(
            e,
            "probe_ssl_earliest_cert_expiry",
            "Earliest certificate expiry, Unix seconds",
            &rows,
            |_, r| {
                r.tls
                    .as_ref()
                    .and_then(|t| t.earliest_cert_expiry)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| one(d.as_secs_f64()))
                    .unwrap_or_default()
            },
        )?;
        last_run(
            e,
            "probe_tls_version_info",
            "TLS version of the last handshake",
            &rows,
            |_, r| {
                r.tls
                    .as_ref()
                    .map(|t| vec![(Some([("version", t.version.as_str())]), 1.0)])
                    .unwrap_or_default()
            },
        )?;
        last_run(
            e,
            "probe_dns_lookup_time_seconds",
            "Name resolution time of the last run",
            &rows,
            |_, r| r.dns_lookup.map(|d| one(secs(d))).unwrap_or_default(),
        )?;
        // Workflow steps.
        family(
            e,
            (
                "synthetic_step_duration_seconds",
                "Duration of workflow steps",
                H,
            ),
            &rows,
            |r| {
                r.steps
                    .iter()
                    .map(|(name, h)| (Some([("step", name.as_str())]), h.clone()))
                    .collect()
            },
        )?;
        last_run(
            e,
            "synthetic_step_success",
            "Whether each workflow step of the last run succeeded",
            &rows,
            |_, r| {
                r.steps
                    .iter()
                    .filter(|s| !s.skipped)
                    .map(|s| {
                        (
                            Some([("step", s.name.as_str())]),
                            if s.success { 1.0 } else { 0.0 },
                        )
                    })
                    .collect()
            },
        )?;
        family_with(
            e,
            (
                "synthetic_step_failure",
                "Failed workflow steps by error type",
                C,
            ),
            &rows,
            |r| {
                r.step_failures
                    .iter()
                    .map(|((step, t), n)| {
                        (
                            Some([("step", step.as_str()), ("error_type", t.as_str())]),
                            n.clone(),
                        )
                    })
                    .collect()
            },
        )?;
        Ok(())
    }
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
                version: "HTTP/1.1".into(),
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
}
