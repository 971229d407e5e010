//! The agent's config file (`config/agent.yaml`): agent settings and the list of checks, validated once here.
//!
//! Parsing takes two passes so that unknown fields are still rejected everywhere: serde reads the agent level and
//! each check as a plain mapping; each check's common keys (below) are then split off and the rest goes to
//! [`ProbeSpec::from_yaml`] for the type-specific keys. Every error reads `file:line:col: checks[3].field: why`.
//!
//! ```yaml
//! region: ${VANTAGE_REGION}    # the `region` label on every series; `--region` / VANTAGE_REGION override it
//! listen: 127.0.0.1:9470       # /metrics, /healthz, /readyz, /api/v1/checks (`--listen` overrides)
//! labels: {team: sre}          # default labels added to every series
//! max_concurrency: 512         # probes running at once, across all checks
//! log_format: json             # json | text
//! slo: {objective: 99.9%}      # default availability objective of every check
//! metrics: full                # basic | full (default): series per check, see docs/metrics.md
//! duration_buckets: [0.5, 2.5] # duration histogram bounds, seconds (default by level)
//! remote_write: [...]          # push results to Prometheus (see crate::remote_write)
//! blackbox_modules: blackbox.yml # a blackbox_exporter module file: also serve its /probe on `listen`
//! history: {runs: 100}         # runs kept in memory per check for the page and /api/v1/checks/{name}/history
//! ui:                          # the agent's page (`GET /` on `listen`)
//!   allow_run_now: false       # the "Run now" button and POST /api/v1/checks/{name}/run, without a token
//!   admin_token: ${VANTAGE_ADMIN_TOKEN}  # when set, run-now is on and needs `Authorization: Bearer <token>`
//! checks:
//!   - name: api-health         # unique; letters, digits, `-`, `_`, `.`, `:`, `/`
//!     type: http               # http | tcp | dns | tls | icmp | api_workflow
//!     target: https://api.example.com/health
//!     every: 30s               # or: schedule: "*/5 * * * *" (5 fields, or 6/7 with seconds)
//!     timeout: 5s              # default: 10s, or 90% of the interval when that is shorter; for workflows
//!                              # the step timeouts added up (a shorter one is an error: it could cut teardown)
//!     retries: 2               # extra attempts after a failure, with exponential backoff
//!     labels: {tier: "1"}      # static labels on this check's series
//!     enabled: true
//!     when_failing: {every: 10s}   # run faster while the last run failed
//!     regions: [eu-west-1, "us-*"] # run only on agents whose region matches one of these globs (default: all)
//!     slo: {objective: 99.95%}     # this check's availability objective (or a ratio: 0.9995)
//!     metrics: basic               # this check's level and buckets (default: the agent-wide ones)
//!     duration_buckets: [1, 5]
//! ```
//!
//! Credentials are found by the field that holds them ([`classify_field`]): header and gRPC `metadata` values (but
//! for a few descriptive headers such as `Accept`), raw bodies, the values of `json:` body keys that name a
//! credential (`password`, `token`, ...; the whole rendered body at run time), basic and bearer auth, JWT keys, TCP
//! `send` payloads, step `query` values, workflow variables whose name names a credential or that say `secret: true`,
//! and the userinfo and query of URLs. Those values are scrubbed from messages, logs and the status API; everything
//! else (names, regions, labels, hosts, paths) is identity and shown as it is, wherever it came from.

use crate::metrics::{validate_buckets, Detail, Level};
use crate::probe::{ProbeSpec, Runner, SpecError};
use crate::schedule::{CronExpr, Schedule};
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vantage_common::secrets::{self, FieldKind};
use vantage_common::{ConfigError, Loaded, Redactor};

/// Keys every check understands; everything else belongs to the check's type.
const COMMON_KEYS: [&str; 13] = [
    "name",
    "type",
    "every",
    "schedule",
    "timeout",
    "retries",
    "labels",
    "enabled",
    "when_failing",
    "regions",
    "slo",
    "metrics",
    "duration_buckets",
];

/// The environment variable that names the agent's region (what `--region` reads).
pub const REGION_ENV: &str = "VANTAGE_REGION";

/// The availability objective of a check that sets none (and no agent-wide `slo`).
pub const DEFAULT_SLO_OBJECTIVE: f64 = 0.999;

/// Label names the agent sets itself; static labels may not use them.
const RESERVED_LABELS: [&str; 8] = [
    "region",
    "endpoint",
    "check_type",
    "error_type",
    "phase",
    "version",
    "step",
    "le",
];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_RETRIES: u32 = 10;

/// The validated agent config.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The `region` label on every series.
    pub region: String,
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Default labels for every series (a check's own labels win on a clash).
    pub labels: BTreeMap<String, String>,
    /// At most this many probes run at once.
    pub max_concurrency: usize,
    /// `json` (default) or `text`.
    pub log_format: String,
    /// Every check in file order, enabled or not, in this region or not.
    pub checks: Vec<Arc<CheckConfig>>,
    /// Where results are pushed, besides being served at `/metrics` (only the entries for this region).
    pub remote_write: Vec<crate::remote_write::RemoteWriteConfig>,
    /// The agent page: run-now access and history length.
    pub ui: UiConfig,
    /// A blackbox_exporter module file whose `/probe` the agent also answers, and its modules as validated with
    /// the config (read again on SIGHUP).
    pub blackbox_modules: Option<(std::path::PathBuf, Arc<crate::blackbox::modules::Modules>)>,
    /// Every credential of the config, found by field: scrubbed from messages and the status API.
    pub secrets: Redactor,
    /// SHA-256 of the config text as written (before `${ENV}` expansion, so every region of a fleet that runs
    /// the same file shows the same hash), first 16 hex digits.
    pub hash: String,
}

impl AgentConfig {
    /// The checks this agent runs: enabled, and meant for its region.
    pub fn active_checks(&self) -> impl Iterator<Item = &Arc<CheckConfig>> {
        self.checks
            .iter()
            .filter(|c| c.enabled && c.runs_in(&self.region))
    }

    /// One warning per check this agent runs whose worst-case run (every attempt timing out, plus the backoffs
    /// between them) is longer than its shortest interval: most of its runs would be skipped, since a check
    /// never overlaps itself. Not an error: a check that usually succeeds at once still runs on time.
    pub fn overrun_warnings(&self) -> Vec<String> {
        self.active_checks()
            .filter_map(|c| {
                let worst = c.worst_case_run();
                let interval = c.schedule.min_interval();
                (worst > interval).then(|| {
                    format!(
                        "check {:?}: {} attempts of up to {} each plus backoff can take {}, longer than its \
                         interval ({}): a failing target makes most runs skip; lower timeout or retries, or \
                         run less often",
                        c.name.as_str(),
                        c.retries + 1,
                        humantime::format_duration(c.timeout),
                        humantime::format_duration(worst),
                        humantime::format_duration(interval)
                    )
                })
            })
            .collect()
    }
}

/// A `regions:` entry: a region name or a glob (`eu-*`, `us-?-1`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionPattern(glob::Pattern);

impl RegionPattern {
    pub fn parse(s: &str) -> Result<RegionPattern, String> {
        if s.trim().is_empty() {
            return Err("a region pattern may not be empty".into());
        }
        glob::Pattern::new(s)
            .map(RegionPattern)
            .map_err(|e| format!("invalid region pattern {s:?}: {}", e.msg))
    }

    pub fn matches(&self, region: &str) -> bool {
        self.0.matches(region)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Whether `region` matches one of `patterns`; no patterns means every region.
pub fn region_matches(patterns: &[RegionPattern], region: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(region))
}

/// A check's validated name (the `endpoint` label).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct CheckName(String);

impl CheckName {
    pub fn parse(s: &str) -> Result<CheckName, String> {
        if s.is_empty() {
            return Err("a check name may not be empty".into());
        }
        if s.len() > 128 {
            return Err(format!(
                "check name is {} characters long; at most 128",
                s.len()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.:/".contains(*c)))
        {
            return Err(format!(
                "check name {s:?} contains {c:?}; use letters, digits, '-', '_', '.', ':' or '/'"
            ));
        }
        Ok(CheckName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One validated check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub name: CheckName,
    /// `http`, `tcp`, `dns`, `tls`, `icmp`, `api_workflow`.
    pub check_type: &'static str,
    pub schedule: Schedule,
    /// Per attempt; always shorter than the shortest interval.
    pub timeout: Duration,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// Static labels (the agent's defaults merged in, the check's winning).
    pub labels: BTreeMap<String, String>,
    pub enabled: bool,
    /// The faster interval used while the last run failed.
    pub when_failing: Option<Duration>,
    /// The regions this check runs in (globs); empty: every region.
    pub regions: Vec<RegionPattern>,
    /// The availability objective, a ratio (0.999 for 99.9%).
    pub slo_objective: f64,
    /// Which series the check exports (`metrics:`, `duration_buckets:`).
    pub detail: Detail,
    pub runner: Runner,
    /// What the check probes, as written (see [`CheckConfig::target`]).
    target: Box<str>,
    /// A digest of the check exactly as written (after `${ENV}` expansion), to tell an unchanged check on
    /// reload; a digest, not the YAML tree, which would cost a kilobyte or so per check.
    source: [u8; 32],
}

fn source_digest(mapping: &Mapping) -> [u8; 32] {
    use sha2::Digest;
    let text = serde_norway::to_string(mapping).unwrap_or_default();
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl CheckConfig {
    /// A check built in code (tests, benchmarks); `runner` stands in for the probe.
    pub fn new(name: &str, check_type: &'static str, schedule: Schedule, runner: Runner) -> Self {
        let timeout = default_timeout(&schedule);
        let mut source = Mapping::new();
        source.insert(Value::from("name"), Value::from(name));
        let target = target_of(&source).into_boxed_str();
        let source = source_digest(&source);
        CheckConfig {
            name: CheckName::parse(name).expect("valid check name"),
            check_type,
            schedule,
            timeout,
            retries: 0,
            labels: BTreeMap::new(),
            enabled: true,
            when_failing: None,
            regions: Vec::new(),
            slo_objective: DEFAULT_SLO_OBJECTIVE,
            detail: Detail::default(),
            runner,
            target,
            source,
        }
    }

    /// What the check probes, as written: `target:` (a URL, host:port or name), or for a workflow how many steps
    /// it has. Unredacted: show it only through the config's `Redactor` (URL userinfo and queries are secrets).
    pub fn target(&self) -> String {
        self.target.to_string()
    }
}

/// [`CheckConfig::target`] from the check as written.
fn target_of(source: &Mapping) -> String {
    if let Some(t) = source.get("target").and_then(Value::as_str) {
        return t.to_string();
    }
    let count = |key: &str| {
        source
            .get(key)
            .and_then(Value::as_sequence)
            .map_or(0, |s| s.len())
    };
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (count("steps"), count("teardown")) {
        (0, _) => String::new(),
        (steps, 0) => plural(steps, "step"),
        (steps, teardown) => format!(
            "{} + {}",
            plural(steps, "step"),
            plural(teardown, "teardown step")
        ),
    }
}

impl CheckConfig {
    /// Whether this check runs on an agent in `region`.
    pub fn runs_in(&self, region: &str) -> bool {
        region_matches(&self.regions, region)
    }

    /// The longest one run can take: every attempt timing out, with the retry backoffs between them.
    pub fn worst_case_run(&self) -> Duration {
        (1..=self.retries).fold(self.timeout * (self.retries + 1), |d, attempt| {
            d + crate::scheduler::retry_backoff(attempt)
        })
    }

    /// Same definition (and so same series labels): a reload keeps its state and phase.
    pub fn same_as(&self, other: &CheckConfig) -> bool {
        self.name == other.name
            && self.check_type == other.check_type
            && self.schedule == other.schedule
            && self.timeout == other.timeout
            && self.retries == other.retries
            && self.labels == other.labels
            && self.enabled == other.enabled
            && self.when_failing == other.when_failing
            && self.regions == other.regions
            && self.slo_objective == other.slo_objective
            && self.detail == other.detail
            && self.source == other.source
    }
}

fn default_timeout(schedule: &Schedule) -> Duration {
    DEFAULT_TIMEOUT.min(schedule.min_interval() * 9 / 10)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    region: Option<String>,
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "default_concurrency")]
    max_concurrency: usize,
    #[serde(default = "default_log_format")]
    log_format: String,
    #[serde(default)]
    slo: Option<Slo>,
    #[serde(default)]
    metrics: Option<Level>,
    #[serde(default)]
    duration_buckets: Option<Vec<f64>>,
    #[serde(default)]
    remote_write: Vec<crate::remote_write::RawRemoteWrite>,
    #[serde(default)]
    blackbox_modules: Option<std::path::PathBuf>,
    #[serde(default)]
    history: RawHistory,
    #[serde(default)]
    ui: RawUi,
    /// Taken out of the tree before the rest is typed (see [`parse`]); here only to be refused when it is not
    /// a list.
    #[serde(default, rename = "checks")]
    _checks: Vec<serde::de::IgnoredAny>,
}

/// `history: {runs: N}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    #[serde(default)]
    runs: Option<usize>,
}

/// `ui: {allow_run_now, admin_token}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    #[serde(default)]
    allow_run_now: bool,
    #[serde(default)]
    admin_token: Option<String>,
}

/// Runs kept per check when the config says nothing.
pub const DEFAULT_HISTORY_RUNS: usize = 100;
/// The most runs a check may keep (memory is bounded by checks x this x the record size).
pub const MAX_HISTORY_RUNS: usize = 10_000;
/// The shortest admin token accepted: anything shorter is guessable.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Who may trigger a run outside the schedule (`POST /api/v1/checks/{name}/run`, the page's "Run now").
#[derive(Clone, Default, PartialEq, Eq)]
pub enum RunNow {
    /// The default: the listen address may be public.
    #[default]
    Off,
    /// `ui.allow_run_now: true` and no token: anyone who reaches the listen address.
    Open,
    /// `ui.admin_token`: requests carrying `Authorization: Bearer <token>`.
    Token(String),
}

impl fmt::Debug for RunNow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunNow::Off => f.write_str("Off"),
            RunNow::Open => f.write_str("Open"),
            RunNow::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// The agent page's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    pub run_now: RunNow,
    /// Runs kept in memory per check.
    pub history_runs: usize,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            run_now: RunNow::Off,
            history_runs: DEFAULT_HISTORY_RUNS,
        }
    }
}

/// `slo: {objective: 99.95%}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Slo {
    objective: Objective,
}

/// A share written as a percentage (`99.95%`) or a ratio (`0.9995`); `None` when it is neither. Range checks are
/// the caller's (an SLO objective, an ICMP check's `max_packet_loss`).
pub(crate) fn ratio_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) if s.trim().ends_with('%') => s
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok()
            .map(|p| p / 100.0),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// An availability objective: `99.95%` or a ratio `0.9995`, strictly between 0 and 1.
#[derive(Debug, Clone, Copy)]
struct Objective(f64);

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ratio_of(&Value::deserialize(d)?) {
            Some(r) if r > 0.0 && r < 1.0 => Ok(Objective(r)),
            Some(_) => Err(serde::de::Error::custom(
                "an objective lies strictly between 0% and 100% (100% leaves no error budget); write e.g. 99.95% or 0.9995",
            )),
            None => Err(serde::de::Error::custom(
                "an objective is a percentage (99.95%) or a ratio (0.9995)",
            )),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9470))
}

fn default_concurrency() -> usize {
    512
}

fn default_log_format() -> String {
    "json".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommon {
    name: String,
    #[serde(rename = "type")]
    check_type: String,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    every: Option<Duration>,
    #[serde(default)]
    schedule: Option<CronExpr>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    timeout: Option<Duration>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    when_failing: Option<WhenFailing>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    slo: Option<Slo>,
    #[serde(default)]
    metrics: Option<Level>,
    #[serde(default)]
    duration_buckets: Option<Vec<f64>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenFailing {
    #[serde(deserialize_with = "vantage_common::serde_duration::deserialize")]
    every: Duration,
}

/// Loads and validates the file at `path` with `${ENV}` expansion from the process environment. `region`
/// (from `--region` or VANTAGE_REGION) overrides the file's `region:` and is what `${VANTAGE_REGION}` expands to.
pub fn load(path: &Path, region: Option<&str>) -> Result<AgentConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.to_path_buf(),
        message: format!("cannot read config: {e}"),
    })?;
    parse(path, &text, |name| std::env::var(name).ok(), region)
}

/// Parses and validates config text; `path` (a file or a URL) is used in messages only; `env` is the
/// environment; `region` as in [`load`].
pub fn parse(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
    region: Option<&str>,
) -> Result<AgentConfig, ConfigError> {
    let lookup = |name: &str| match region {
        Some(r) if name == REGION_ENV => Some(r.to_string()),
        _ => env(name),
    };
    // One parse: the secrets are found in the whole tree, then the checks are taken out of it and built one by
    // one (each check's tree dropped once built), so a config of 50,000 checks is never held twice.
    let (loaded, (secret_values, checks)) =
        vantage_common::parse_config_split(path, text, lookup, classify_field, |tree| {
            (secrets::collect(tree, classify_field), take_checks(tree))
        })?;
    validate(loaded, checks, secret_values, region, config_hash(text))
}

/// The `checks:` list taken out of the config tree (an empty list left in its place), when it is a list; else it
/// is left for the typed parse to reject with its position.
fn take_checks(tree: &mut Value) -> Vec<Value> {
    match tree.get_mut("checks") {
        Some(Value::Sequence(checks)) => std::mem::take(checks),
        _ => Vec::new(),
    }
}

/// Which fields of the agent config hold credentials (see the module docs); `path` as serde writes it
/// (`checks[2].steps[0].headers.Authorization`).
pub fn classify_field(path: &str) -> FieldKind {
    let seg: Vec<&str> = path
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .collect();
    let n = seg.len();
    let last = seg[n - 1];
    let parent = if n >= 2 { seg[n - 2] } else { "" };
    let grandparent = if n >= 3 { seg[n - 3] } else { "" };
    // What sends requests: a check, a workflow step, a remote_write endpoint.
    let sender = |s: &str| matches!(s, "checks" | "steps" | "teardown" | "remote_write");
    // gRPC `metadata` is sent as HTTP/2 headers: the same rule.
    if matches!(parent, "headers" | "metadata") && sender(grandparent) {
        return if secrets::is_descriptive_header(last) {
            FieldKind::Plain
        } else {
            FieldKind::Secret
        };
    }
    if sender(parent)
        && matches!(
            last,
            "body" | "bearer_token" | "basic_auth" | "auth" | "send" | "query"
        )
    {
        return FieldKind::Secret;
    }
    // A `json:` body: the values of keys that name a credential, at any depth (the whole rendered body is
    // scrubbed at run time).
    let in_json_body = (1..n.saturating_sub(1)).any(|i| seg[i] == "json" && sender(seg[i - 1]));
    if in_json_body && crate::probe::workflow::looks_secret(last) {
        return FieldKind::Secret;
    }
    if parent == "variables" && crate::probe::workflow::looks_secret(last) {
        return FieldKind::Secret;
    }
    if n == 2 && parent == "ui" && last == "admin_token" {
        return FieldKind::Secret;
    }
    if sender(parent) && matches!(last, "target" | "url" | "proxy_url") {
        return FieldKind::Url;
    }
    FieldKind::Plain
}

/// First 16 hex digits of the SHA-256 of `text`.
pub fn config_hash(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn validate(
    loaded: Loaded<RawConfig>,
    raw_checks: Vec<Value>,
    mut secret_values: std::collections::BTreeSet<String>,
    region_override: Option<&str>,
    hash: String,
) -> Result<AgentConfig, ConfigError> {
    let raw = &loaded.value;
    let region = match (region_override, &raw.region) {
        (Some(r), _) => r.trim().to_string(),
        (None, Some(r)) => r.trim().to_string(),
        (None, None) => {
            return Err(loaded.error_at(
                "region",
                "region:",
                0,
                format!(
                    "no region: set `region:` in the config, pass --region, or set {REGION_ENV}"
                ),
            ))
        }
    };
    if region.is_empty() {
        return Err(loaded.error_at("region", "region:", 0, "region may not be empty"));
    }
    if let Some(c) = region.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(loaded.error_at(
            "region",
            "region:",
            0,
            format!("region {region:?} contains {c:?}; use letters, digits and punctuation"),
        ));
    }
    if raw.max_concurrency == 0 {
        return Err(loaded.error_at(
            "max_concurrency",
            "max_concurrency:",
            0,
            "must be at least 1",
        ));
    }
    if !matches!(raw.log_format.as_str(), "json" | "text") {
        return Err(loaded.error_at(
            "log_format",
            "log_format:",
            0,
            format!("unknown log format {:?}; use json or text", raw.log_format),
        ));
    }
    for name in raw.labels.keys() {
        check_label_name(name)
            .map_err(|m| loaded.error_at(&format!("labels.{name}"), &format!("{name}:"), 0, m))?;
    }
    let default_slo = raw
        .slo
        .as_ref()
        .map_or(DEFAULT_SLO_OBJECTIVE, |s| s.objective.0);
    if let Some(b) = &raw.duration_buckets {
        validate_buckets(b)
            .map_err(|m| loaded.error_at("duration_buckets", "duration_buckets:", 0, m))?;
    }
    let defaults = Defaults::new(raw);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut checks = Vec::with_capacity(raw_checks.len());
    for (i, tree) in raw_checks.into_iter().enumerate() {
        let mapping = serde_norway::from_value::<Mapping>(tree)
            .map_err(|e| loaded.error_at(&format!("checks[{i}]"), "checks:", 0, e.to_string()))?;
        let (check, spec) = validate_check(&loaded, i, mapping, default_slo, &defaults, &region)?;
        secret_values.extend(spec.secret_values());
        if let Some(first) = seen.insert(check.name.0.clone(), i) {
            return Err(loaded.error_at(
                &format!("checks[{i}].name"),
                &format!("name: {}", check.name),
                1,
                format!(
                    "duplicate check name {:?} (first used by checks[{first}])",
                    check.name.0
                ),
            ));
        }
        checks.push(Arc::new(check));
    }
    let remote_write = crate::remote_write::validate(&loaded, &raw.remote_write)?
        .into_iter()
        .filter(|r| region_matches(&r.regions, &region))
        .collect();
    let ui = validate_ui(&loaded)?;
    let blackbox_modules = match &raw.blackbox_modules {
        Some(path) => Some((
            path.clone(),
            Arc::new(crate::blackbox::modules::Modules::load(path).map_err(|e| {
                loaded.error_at("blackbox_modules", "blackbox_modules:", 0, e.to_string())
            })?),
        )),
        None => None,
    };
    Ok(AgentConfig {
        region,
        listen: raw.listen,
        labels: raw.labels.clone(),
        max_concurrency: raw.max_concurrency,
        log_format: raw.log_format.clone(),
        checks,
        remote_write,
        ui,
        blackbox_modules,
        secrets: Redactor::new(secret_values),
        hash,
    })
}

/// The agent-wide metric detail, each distinct bucket list allocated once and shared by the checks.
struct Defaults {
    level: Level,
    /// `duration_buckets:` at the top, or the level's own.
    buckets: Arc<[f64]>,
    /// The other level's default buckets, for checks that switch level without giving buckets.
    other: Arc<[f64]>,
}

impl Defaults {
    fn new(raw: &RawConfig) -> Self {
        let level = raw.metrics.unwrap_or_default();
        let other_level = match level {
            Level::Basic => Level::Full,
            Level::Full => Level::Basic,
        };
        Defaults {
            level,
            buckets: match &raw.duration_buckets {
                Some(b) => Arc::from(b.as_slice()),
                None => Arc::from(level.default_buckets()),
            },
            other: Arc::from(other_level.default_buckets()),
        }
    }

    /// A check's detail: its own level and buckets where given, else the agent-wide ones.
    fn detail(&self, level: Option<Level>, buckets: Option<Vec<f64>>, top_buckets: bool) -> Detail {
        let level = level.unwrap_or(self.level);
        let buckets = match buckets {
            Some(b) => Arc::from(b),
            None if level == self.level || top_buckets => self.buckets.clone(),
            None => self.other.clone(),
        };
        Detail { level, buckets }
    }
}

/// `history:` and `ui:`. The token's value never appears in an error (only its length).
fn validate_ui(loaded: &Loaded<RawConfig>) -> Result<UiConfig, ConfigError> {
    let raw = &loaded.value;
    let history_runs = match raw.history.runs {
        None => DEFAULT_HISTORY_RUNS,
        Some(n) if (1..=MAX_HISTORY_RUNS).contains(&n) => n,
        Some(n) => {
            return Err(loaded.error_at(
                "history.runs",
                "runs:",
                0,
                format!(
                    "{n} runs per check is out of range; keep between 1 and {MAX_HISTORY_RUNS}"
                ),
            ))
        }
    };
    let run_now = match &raw.ui.admin_token {
        Some(t) if t.trim().len() < MIN_ADMIN_TOKEN_LEN => {
            return Err(loaded.error_at(
                "ui.admin_token",
                "admin_token:",
                0,
                format!(
                    "the admin token is {} characters long (empty when its ${{VAR}} is unset); use at least \
                     {MIN_ADMIN_TOKEN_LEN} random characters, or remove admin_token",
                    t.trim().len()
                ),
            ))
        }
        Some(t) => RunNow::Token(t.trim().to_string()),
        None if raw.ui.allow_run_now => RunNow::Open,
        None => RunNow::Off,
    };
    Ok(UiConfig {
        run_now,
        history_runs,
    })
}

/// Parses `regions:` entries; errors name `regions[i]`.
pub(crate) fn region_patterns(list: &[String]) -> Result<Vec<RegionPattern>, SpecError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            RegionPattern::parse(p).map_err(|m| SpecError::new(format!("regions[{i}]"), m))
        })
        .collect()
}

fn validate_check(
    loaded: &Loaded<RawConfig>,
    i: usize,
    mapping: Mapping,
    default_slo: f64,
    defaults: &Defaults,
    region: &str,
) -> Result<(CheckConfig, ProbeSpec), ConfigError> {
    let at = |field: &str, key: &str, msg: String| {
        let path = if field.is_empty() {
            format!("checks[{i}]")
        } else {
            format!("checks[{i}].{field}")
        };
        loaded.error_at(&path, &format!("{key}:"), 0, msg)
    };
    let target = target_of(&mapping).into_boxed_str();
    let source = source_digest(&mapping);
    let mut common = Mapping::new();
    let mut rest = Mapping::new();
    for (k, v) in mapping {
        match k.as_str() {
            Some(key) if COMMON_KEYS.contains(&key) => common.insert(k, v),
            _ => rest.insert(k, v),
        };
    }
    let c: RawCommon = serde_path_to_error::deserialize(Value::Mapping(common)).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let key = field.rsplit('.').next().unwrap_or("name").to_string();
        at(&field, &key, e.inner().to_string())
    })?;
    let name = CheckName::parse(&c.name).map_err(|m| at("name", "name", m))?;
    let schedule = match (c.every, c.schedule) {
        (Some(_), Some(_)) => {
            return Err(at(
                "schedule",
                "schedule",
                "give either `every` or `schedule`, not both".into(),
            ))
        }
        (None, None) => {
            return Err(at(
                "",
                "name",
                "no schedule: add `every: 30s` or `schedule: \"*/5 * * * *\"`".into(),
            ))
        }
        (Some(every), None) => {
            if every < MIN_INTERVAL {
                return Err(at(
                    "every",
                    "every",
                    format!(
                        "interval {} is too short; at least 1s",
                        humantime::format_duration(every)
                    ),
                ));
            }
            Schedule::Every(every)
        }
        (None, Some(cron)) => Schedule::Cron(Box::new(cron)),
    };
    let mut shortest = schedule.min_interval();
    if let Some(w) = &c.when_failing {
        if w.every < MIN_INTERVAL || w.every > schedule.min_interval() {
            return Err(at(
                "when_failing.every",
                "every",
                format!(
                    "{} must be between 1s and the normal interval ({})",
                    humantime::format_duration(w.every),
                    humantime::format_duration(schedule.min_interval())
                ),
            ));
        }
        shortest = shortest.min(w.every);
    }
    let timeout = match c.timeout {
        Some(t) if t.is_zero() => {
            return Err(at("timeout", "timeout", "timeout must be above 0".into()))
        }
        Some(t) if t >= shortest => {
            return Err(at(
                "timeout",
                "timeout",
                format!(
                    "timeout {} must be shorter than the interval ({})",
                    humantime::format_duration(t),
                    humantime::format_duration(shortest)
                ),
            ))
        }
        Some(t) => t,
        None => DEFAULT_TIMEOUT.min(shortest * 9 / 10),
    };
    if c.retries > MAX_RETRIES {
        return Err(at(
            "retries",
            "retries",
            format!("{} retries is too many; at most {MAX_RETRIES}", c.retries),
        ));
    }
    for label in c.labels.keys() {
        check_label_name(label).map_err(|m| at(&format!("labels.{label}"), label, m))?;
    }
    if let Some(b) = &c.duration_buckets {
        validate_buckets(b).map_err(|m| at("duration_buckets", "duration_buckets", m))?;
    }
    let detail = defaults.detail(
        c.metrics,
        c.duration_buckets,
        loaded.value.duration_buckets.is_some(),
    );
    let regions =
        region_patterns(&c.regions).map_err(|e| at(&e.field, "regions", e.message.clone()))?;
    let spec = ProbeSpec::from_yaml(&c.check_type, Value::Mapping(rest))
        .map_err(|e| at(&e.field, e.key().unwrap_or("type"), e.message.clone()))?;
    let timeout = match (spec.longest_run(), c.timeout) {
        (Some(need), Some(t)) if t < need => {
            return Err(at(
                "timeout",
                "timeout",
                format!(
                    "timeout {} is shorter than the step timeouts added up ({}): a hung step would let the \
                     run be cut before its teardown; raise timeout or lower the steps' timeouts",
                    humantime::format_duration(t),
                    humantime::format_duration(need)
                ),
            ))
        }
        (Some(need), None) if need >= shortest => {
            return Err(at(
                "steps",
                "steps",
                format!(
                    "the step timeouts add up to {}, not shorter than the interval ({}); lower the steps' \
                     timeouts or run less often",
                    humantime::format_duration(need),
                    humantime::format_duration(shortest)
                ),
            ))
        }
        (Some(need), None) => need,
        _ => timeout,
    };
    // An ICMP run waits for its last request's reply: a timeout that cuts it would turn loss into `timeout`.
    if let ProbeSpec::Icmp(icmp) = &spec {
        let need = icmp.longest_run();
        if timeout <= need {
            let key = if c.timeout.is_some() {
                "timeout"
            } else {
                "type"
            };
            return Err(at(
                "timeout",
                key,
                format!(
                    "timeout {} is not above the longest ICMP run ({}: (packets - 1) x packet_interval + \
                     reply_timeout); raise timeout or lower packets, packet_interval or reply_timeout",
                    humantime::format_duration(timeout),
                    humantime::format_duration(need)
                ),
            ));
        }
    }
    let id = crate::trace::CheckIdentity {
        check: name.as_str(),
        region,
    };
    let runner = crate::probe::runner(&spec, id)
        .map_err(|e| at(&e.field, e.key().unwrap_or(""), e.message.clone()))?;
    let mut labels = loaded.value.labels.clone();
    labels.extend(c.labels);
    let check = CheckConfig {
        name,
        check_type: spec.check_type(),
        schedule,
        timeout,
        retries: c.retries,
        labels,
        enabled: c.enabled,
        when_failing: c.when_failing.map(|w| w.every),
        regions,
        slo_objective: c.slo.map_or(default_slo, |s| s.objective.0),
        detail,
        runner,
        target,
        source,
    };
    Ok((check, spec))
}

/// A valid Prometheus label name that is not reserved for Prometheus itself (`__name__`, ...).
pub(crate) fn check_label_name_syntax(name: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__");
    if !valid {
        return Err(format!(
            "label name {name:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        ));
    }
    Ok(())
}

fn check_label_name(name: &str) -> Result<(), String> {
    check_label_name_syntax(name)?;
    if RESERVED_LABELS.contains(&name) {
        return Err(format!(
            "label {name:?} is set by the agent itself; choose another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<AgentConfig, String> {
        parse(
            Path::new("agent.yaml"),
            text,
            |n| (n == "TOKEN").then(|| "hunter2-secret".to_string()),
            None,
        )
        .map_err(|e| e.to_string())
    }

    const MINIMAL: &str = "region: eu-west-1
listen: 127.0.0.1:9470
checks:
  - name: api-health
    type: tcp
    target: 127.0.0.1:9
    every: 30s
    timeout: 5s
";

    #[test]
    fn check_names_are_validated() {
        assert!(CheckName::parse("api-health.v2/eu:1_x").is_ok());
        assert!(CheckName::parse("").is_err());
        assert!(CheckName::parse("has space").unwrap_err().contains("' '"));
        assert!(CheckName::parse(&"x".repeat(200)).is_err());
    }

    #[test]
    fn metric_level_and_buckets_agent_wide_and_per_check() {
        let c = parse_str(MINIMAL).unwrap();
        assert_eq!(c.checks[0].detail, Detail::default());
        assert_eq!(c.checks[0].detail.level, Level::Full);
        let text = "region: eu
metrics: basic
checks:
  - {name: a, type: tcp, target: 127.0.0.1:9, every: 30s}
  - {name: b, type: tcp, target: 127.0.0.1:9, every: 30s, metrics: full}
  - {name: c, type: tcp, target: 127.0.0.1:9, every: 30s, duration_buckets: [1, 5]}
  - {name: d, type: tcp, target: 127.0.0.1:9, every: 30s}
";
        let c = parse_str(text).unwrap();
        let d: Vec<(Level, Vec<f64>)> = c
            .checks
            .iter()
            .map(|c| (c.detail.level, c.detail.buckets.to_vec()))
            .collect();
        assert_eq!(
            d,
            vec![
                (Level::Basic, vec![0.5, 2.5]),
                (Level::Full, Level::Full.default_buckets().to_vec()),
                (Level::Basic, vec![1.0, 5.0]),
                (Level::Basic, vec![0.5, 2.5]),
            ]
        );
        // Checks with the default buckets share one list.
        assert!(Arc::ptr_eq(
            &c.checks[0].detail.buckets,
            &c.checks[3].detail.buckets
        ));
        // Agent-wide buckets apply to every level that does not set its own.
        let c =
            parse_str(&text.replace("metrics: basic\n", "duration_buckets: [0.2, 2]\n")).unwrap();
        assert_eq!(c.checks[0].detail.level, Level::Full);
        assert_eq!(c.checks[0].detail.buckets.to_vec(), vec![0.2, 2.0]);
        assert_eq!(c.checks[1].detail.buckets.to_vec(), vec![0.2, 2.0]);
        // A changed level is a changed check (its series are made again).
        let mut other = (*c.checks[0]).clone();
        assert!(other.same_as(&c.checks[0]));
        other.detail.level = Level::Basic;
        assert!(!other.same_as(&c.checks[0]));
    }

    #[test]
    fn bad_metric_settings_name_the_field() {
        let e = parse_str(&MINIMAL.replace("checks:", "metrics: lean\nchecks:")).unwrap_err();
        assert!(e.contains("metrics") && e.contains("basic"), "{e}");
        let e = parse_str(&MINIMAL.replace("checks:", "duration_buckets: [2, 1]\nchecks:"))
            .unwrap_err();
        assert!(
            e.contains("duration_buckets") && e.contains("increasing"),
            "{e}"
        );
        let e =
            parse_str(&MINIMAL.replace("timeout: 5s", "timeout: 5s\n    duration_buckets: [-1]"))
                .unwrap_err();
        assert!(
            e.contains("checks[0].duration_buckets") && e.contains("positive"),
            "{e}"
        );
        let e = parse_str(&MINIMAL.replace("timeout: 5s", "timeout: 5s\n    metrics: all"))
            .unwrap_err();
        assert!(e.contains("checks[0].metrics"), "{e}");
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse_str(MINIMAL).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.checks.len(), 1);
        let check = &c.checks[0];
        assert_eq!(check.name.as_str(), "api-health");
        assert_eq!(check.check_type, "tcp");
        assert_eq!(check.schedule, Schedule::Every(Duration::from_secs(30)));
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert!(check.enabled);
    }

    #[test]
    fn defaults_and_label_merge() {
        let text = "region: r\nlabels: {team: sre, tier: '2'}\nchecks:\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n    schedule: '*/5 * * * *'\n    labels: {tier: '1'}\n    when_failing: {every: 10s}\n    retries: 2\n";
        let c = parse_str(text).unwrap();
        let a = &c.checks[0];
        assert_eq!(a.timeout, Duration::from_secs(9));
        assert_eq!(a.when_failing, Some(Duration::from_secs(10)));
        assert_eq!(a.retries, 2);
        assert_eq!(a.labels.get("team").unwrap(), "sre");
        assert_eq!(a.labels.get("tier").unwrap(), "1");
        assert_eq!(c.max_concurrency, 512);
    }

    fn err(text: &str) -> String {
        parse_str(text).unwrap_err()
    }

    #[test]
    fn ui_and_history_settings() {
        let base =
            "region: r\nchecks:\n  - {name: a, type: tcp, target: '127.0.0.1:9', every: 10s}\n";
        let c = parse_str(base).unwrap();
        assert_eq!(c.ui, UiConfig::default());
        assert_eq!(c.ui.history_runs, 100);
        assert_eq!(c.ui.run_now, RunNow::Off);
        let c = parse_str(&format!(
            "{base}ui: {{allow_run_now: true}}\nhistory: {{runs: 7}}\n"
        ))
        .unwrap();
        assert_eq!((c.ui.run_now, c.ui.history_runs), (RunNow::Open, 7));
        let e = err(&format!("{base}history: {{runs: 0}}\n"));
        assert!(
            e.contains("history.runs: 0 runs per check is out of range"),
            "{e}"
        );
        let e = err(&format!("{base}history: {{keep: 5}}\n"));
        assert!(e.contains("unknown field `keep`"), "{e}");
        // A token turns run-now on (with auth) and is a secret: redacted, never in an error.
        let token = "tok-0123456789abcdef";
        let c = parse_str(&format!("{base}ui: {{admin_token: {token}}}\n")).unwrap();
        assert_eq!(c.ui.run_now, RunNow::Token(token.into()));
        assert_eq!(c.secrets.redact(&format!("x {token}")), "x ***");
        assert!(!format!("{:?}", c.ui).contains(token));
        let e = err(&format!("{base}ui: {{admin_token: short-s3cr3t}}\n"));
        assert!(
            e.contains("ui.admin_token: the admin token is 12 characters long"),
            "{e}"
        );
        assert!(!e.contains("short-s3cr3t"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let base = "region: r\nchecks:\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n";
        let e = err(&format!("{base}    every: 10s\n    timeout: 20s\n"));
        assert!(
            e.starts_with("agent.yaml:7:5: checks[0].timeout: timeout 20s must be shorter"),
            "{e}"
        );
        let e = err(&format!("{base}    schedule: '61 * * * *'\n"));
        assert!(
            e.starts_with("agent.yaml:6:5: checks[0].schedule: invalid cron"),
            "{e}"
        );
        let e = err(&format!("{base}    every: soon\n"));
        assert!(
            e.starts_with("agent.yaml:6:5: checks[0].every: invalid duration"),
            "{e}"
        );
        let e = err(&format!(
            "{base}    every: 10s\n    labels: {{region: x}}\n"
        ));
        assert!(
            e.contains("checks[0].labels.region: label \"region\" is set by the agent"),
            "{e}"
        );
        let e = err(&format!(
            "{base}    every: 10s\n    schedule: '* * * * *'\n"
        ));
        assert!(e.contains("checks[0].schedule: give either"), "{e}");
        let e = err(base);
        assert!(
            e.starts_with("agent.yaml:3:5: checks[0]: no schedule"),
            "{e}"
        );
        let e = err(&format!("{base}    every: 10s\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n"));
        assert!(
            e.starts_with("agent.yaml:7:5: checks[1].name: duplicate check name \"a\""),
            "{e}"
        );
        let e = err("region: r\nlisten: 127.0.0.1:1\nchekcs: []\n");
        assert!(
            e.starts_with("agent.yaml:3:1: chekcs: unknown field"),
            "{e}"
        );
        let e = err(&format!("{base}    every: 10s\n    retries: 99\n"));
        assert!(e.contains("checks[0].retries: 99 retries"), "{e}");
        // A later check's field is found where it stands, not at the first key of that name in the file.
        let e = err(&format!(
            "{base}    every: 10s\n    timeout: 5s\n  - name: b\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n    timeout: 20s\n"
        ));
        assert!(
            e.starts_with("agent.yaml:12:5: checks[1].timeout: timeout 20s must be shorter"),
            "{e}"
        );
        // `checks:` must be a list of mappings.
        let e = err("region: r\nchecks: 5\n");
        assert!(
            e.starts_with("agent.yaml:2:") && e.contains("checks: invalid type: integer `5`"),
            "{e}"
        );
        let e = err("region: r\nchecks:\n  - just-a-name\n");
        assert!(
            e.starts_with("agent.yaml:3:")
                && e.contains(
                    "checks[0]: invalid type: string \"just-a-name\", expected a YAML mapping"
                ),
            "{e}"
        );
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "VANTAGE_REGION" => Some("eu-west-1".into()),
            "TEAM" => Some("api".into()),
            "TOKEN" => Some("hunter2-secret".into()),
            _ => None,
        }
    }

    #[test]
    fn region_from_the_environment_and_from_the_command_line() {
        let text = "region: ${VANTAGE_REGION}\nchecks: []\n";
        let c = parse(Path::new("a.yaml"), text, env, None).unwrap();
        assert_eq!(c.region, "eu-west-1");
        // --region wins over the file and is what ${VANTAGE_REGION} expands to.
        let c = parse(Path::new("a.yaml"), text, |_| None, Some("ap-south-1")).unwrap();
        assert_eq!(c.region, "ap-south-1");
        let c = parse(
            Path::new("a.yaml"),
            "region: x\n",
            |_| None,
            Some("us-east-1"),
        )
        .unwrap();
        assert_eq!(c.region, "us-east-1");
        let e = parse(Path::new("a.yaml"), "checks: []\n", |_| None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "no region: set `region:` in the config, pass --region, or set VANTAGE_REGION"
            ),
            "{e}"
        );
        // The hash is of the text as written, so every region of a fleet shows the same one.
        let a = parse(Path::new("a.yaml"), text, |_| None, Some("a")).unwrap();
        let b = parse(Path::new("a.yaml"), text, |_| None, Some("b")).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 16);
    }

    #[test]
    fn regions_select_the_checks_of_this_agent() {
        let text = "region: eu-west-1\nchecks:\n  - {name: all, type: tcp, target: '127.0.0.1:9', every: 10s}\n  - {name: eu, type: tcp, target: '127.0.0.1:9', every: 10s, regions: [eu-*]}\n  - {name: us, type: tcp, target: '127.0.0.1:9', every: 10s, regions: [us-east-1, us-west-?]}\n";
        let c = parse_str(text).unwrap();
        let active: Vec<&str> = c.active_checks().map(|c| c.name.as_str()).collect();
        assert_eq!(active, ["all", "eu"]);
        assert!(c.checks[2].runs_in("us-west-2"));
        let e = err(&text.replace("[eu-*]", "['[eu']"));
        assert!(
            e.contains("checks[1].regions[0]: invalid region pattern"),
            "{e}"
        );
    }

    #[test]
    fn slo_objectives() {
        let base = "checks:\n  - {name: a, type: tcp, target: '127.0.0.1:9', every: 10s, slo: {objective: 99.95%}}\n  - {name: b, type: tcp, target: '127.0.0.1:9', every: 10s, slo: {objective: 0.99}}\n  - {name: c, type: tcp, target: '127.0.0.1:9', every: 10s}\n";
        let c = parse_str(&format!("region: r\n{base}")).unwrap();
        let o: Vec<f64> = c.checks.iter().map(|c| c.slo_objective).collect();
        assert!(
            (o[0] - 0.9995).abs() < 1e-12 && o[1] == 0.99 && o[2] == 0.999,
            "{o:?}"
        );
        let c = parse_str(&format!("region: r\nslo: {{objective: 99%}}\n{base}")).unwrap();
        assert_eq!(c.checks[2].slo_objective, 0.99);
        for bad in ["100%", "99.95", "0", "soon"] {
            let e = err(&format!(
                "region: r\nchecks:\n  - {{name: a, type: tcp, target: '127.0.0.1:9', every: 10s, slo: {{objective: '{bad}'}}}}\n"
            ));
            assert!(
                e.contains("checks[0].slo.objective") || e.contains("checks[0]"),
                "{bad}: {e}"
            );
            assert!(e.contains("objective"), "{bad}: {e}");
        }
    }

    #[test]
    fn secrets_are_found_by_field_not_by_value() {
        let text = "region: ${VANTAGE_REGION}\nlabels: {team: \"${TEAM}\"}\nchecks:\n  - name: api-health\n    type: http\n    target: https://user:pa55word@api.example.com/health?key=qwerty\n    every: 10s\n    headers: {Authorization: \"Bearer ${TOKEN}\", Accept: application/json}\n  - name: journey\n    type: api_workflow\n    every: 1m\n    variables: {base: 'http://127.0.0.1:9', password: s3cr3t-pw, pin: {value: '1234', secret: true}, user: demo}\n    steps:\n      - {name: login, url: '{{base}}/login', json: {user: '{{user}}', password: '{{password}}'}}\n";
        let c = parse(Path::new("a.yaml"), text, env, None).unwrap();
        let r = &c.secrets;
        for secret in [
            "Bearer hunter2-secret",
            "pa55word",
            "qwerty",
            "s3cr3t-pw",
            "1234",
        ] {
            assert_eq!(r.redact(&format!("x {secret} y")), "x *** y", "{secret}");
        }
        for identity in [
            "eu-west-1",
            "api",
            "api-health",
            "api.example.com",
            "/health",
            "demo",
            "application/json",
        ] {
            assert_eq!(
                r.redact(identity),
                identity,
                "{identity} must not be redacted"
            );
        }
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(
            c.checks[0].labels.get("team").map(String::as_str),
            Some("api")
        );
        // A config error about an identity field keeps its value; one about a secret field does not.
        let e = parse(
            Path::new("a.yaml"),
            &text.replace("name: api-health", "name: \"${TEAM} health\""),
            env,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"api health\""), "{e}");
        let e = parse(
            Path::new("a.yaml"),
            &text.replace("Accept: application/json", "X-Key: [\"${TOKEN}\"]"),
            env,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn grpc_metadata_values_are_secrets_like_header_values() {
        let text = "region: eu-west-1\nchecks:\n  - name: grpc-api\n    type: grpc\n    target: 'api.internal:50051'\n    every: 10s\n    metadata: {authorization: \"Bearer ${TOKEN}\", x-tenant: m3ta-tenant, user-agent: probe-ua}\n";
        let c = parse(Path::new("a.yaml"), text, env, None).unwrap();
        for secret in ["Bearer hunter2-secret", "m3ta-tenant"] {
            assert_eq!(c.secrets.redact(&format!("x {secret} y")), "x *** y");
        }
        assert_eq!(c.secrets.redact("probe-ua"), "probe-ua");
        assert_eq!(c.checks[0].check_type, "grpc");
    }

    #[test]
    fn same_as_tells_unchanged_checks() {
        let a = parse_str(MINIMAL).unwrap();
        let b = parse_str(MINIMAL).unwrap();
        assert!(a.checks[0].same_as(&b.checks[0]));
        let c = parse_str(&MINIMAL.replace("timeout: 5s", "timeout: 4s")).unwrap();
        assert!(!a.checks[0].same_as(&c.checks[0]));
    }
}
