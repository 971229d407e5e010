//! `ProbeResult`: the one shape every probe (http, tcp, dns, tls, grpc, icmp, workflow) returns.

use std::time::{Duration, SystemTime};

/// The closed set of failure classes; they become the `error_type` label, so never add free-form values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// Name resolution failed or returned no usable address.
    Dns,
    /// TCP connect refused, unreachable or reset before a response.
    Connect,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The check's timeout elapsed.
    Timeout,
    /// The response status was not one of the expected codes.
    HttpStatus,
    /// An assertion on the response (header, body, JSON, latency, certificate days) failed.
    Assertion,
    /// The body exceeded the configured maximum size.
    BodyTooLarge,
    /// Too many redirects, or a redirect loop.
    Redirect,
    /// The peer broke the protocol (malformed HTTP, unexpected close while reading the body...).
    Protocol,
    /// A workflow template or variable could not be resolved at run time.
    Template,
}

impl ErrorType {
    pub const ALL: [ErrorType; 10] = [
        ErrorType::Dns,
        ErrorType::Connect,
        ErrorType::Tls,
        ErrorType::Timeout,
        ErrorType::HttpStatus,
        ErrorType::Assertion,
        ErrorType::BodyTooLarge,
        ErrorType::Redirect,
        ErrorType::Protocol,
        ErrorType::Template,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Dns => "dns",
            ErrorType::Connect => "connect",
            ErrorType::Tls => "tls",
            ErrorType::Timeout => "timeout",
            ErrorType::HttpStatus => "http_status",
            ErrorType::Assertion => "assertion",
            ErrorType::BodyTooLarge => "body_too_large",
            ErrorType::Redirect => "redirect",
            ErrorType::Protocol => "protocol",
            ErrorType::Template => "template",
        }
    }
}

/// Why a run failed: a class for metrics and a human message naming what was expected and what came back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeError {
    pub error_type: ErrorType,
    pub message: String,
    /// Set when the agent itself could not carry the run out: the target was never tried, so the run is not a
    /// failure of the check (it counts in `vantage_agent_errors_total{reason}` instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_fault: Option<AgentFault>,
}

/// Why the agent could not carry a run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentFault {
    /// No file descriptor left for a socket (EMFILE/ENFILE).
    FdExhausted,
}

impl AgentFault {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentFault::FdExhausted => "fd_exhausted",
        }
    }
}

impl ProbeError {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            agent_fault: None,
        }
    }

    /// An error of the agent's own (`error_type` says where it happened).
    pub fn agent(error_type: ErrorType, fault: AgentFault, message: impl Into<String>) -> Self {
        Self {
            agent_fault: Some(fault),
            ..Self::new(error_type, message)
        }
    }
}

/// Whether an I/O error means the process (EMFILE) or the system (ENFILE) ran out of file descriptors.
pub fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type.as_str(), self.message)
    }
}

/// Phases of one HTTP round trip, in order. A phase that did not happen (no DNS for an IP literal, no TLS for
/// plain HTTP, a reused connection) is absent from [`Phases`], not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
        Phase::Transfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }
}

/// Phase durations summed over every round trip of a run (redirects included), as blackbox_exporter does.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Phases(pub Vec<(Phase, Duration)>);

impl Phases {
    pub fn add(&mut self, phase: Phase, d: Duration) {
        match self.0.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += d,
            None => {
                self.0.push((phase, d));
                self.0.sort_by_key(|(p, _)| *p);
            }
        }
    }

    pub fn get(&self, phase: Phase) -> Option<Duration> {
        self.0.iter().find(|(p, _)| *p == phase).map(|(_, d)| *d)
    }

    pub fn merge(&mut self, other: &Phases) {
        for (p, d) in &other.0 {
            self.add(*p, *d);
        }
    }
}

/// Facts about the last HTTP response of a run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HttpFacts {
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2`, `HTTP/3` (every check keeps its last result: no allocation for it).
    pub version: &'static str,
    pub redirects: u32,
    /// Bytes of body read (after any redirects, of the final response).
    pub content_length: u64,
}

/// Facts from a TLS handshake.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TlsFacts {
    /// `TLS 1.2`, `TLS 1.3`.
    pub version: String,
    /// The earliest `notAfter` of the presented chain.
    pub earliest_cert_expiry: Option<SystemTime>,
}

/// The serving status a `grpc.health.v1` answer carries (`SERVICE_UNKNOWN` comes from `Watch`, but servers may
/// send it from `Check` too). Values outside the protocol's enum count as `UNKNOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServingStatus {
    Unknown,
    Serving,
    NotServing,
    ServiceUnknown,
}

impl ServingStatus {
    pub const ALL: [ServingStatus; 4] = [
        ServingStatus::Unknown,
        ServingStatus::Serving,
        ServingStatus::NotServing,
        ServingStatus::ServiceUnknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }
}

/// What a gRPC server answered to a health check. Absent when no gRPC answer came (connect, TLS or HTTP/2
/// failure, a server that is not gRPC).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrpcFacts {
    /// The call's gRPC status code (0 = OK, 5 = NOT_FOUND, 12 = UNIMPLEMENTED, ...).
    pub status_code: u8,
    /// The serving status of the answer; `None` when the call failed (status code not 0).
    pub serving_status: Option<ServingStatus>,
}

/// What an ICMP check's echo exchange measured (`type: icmp`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IcmpFacts {
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received in time (each request's reply within `reply_timeout`).
    pub received: u32,
    /// Opening and configuring the socket (blackbox's `setup` phase).
    pub setup: Duration,
    /// Round trips of the replies; `None` when none came back.
    pub rtt: Option<RttStats>,
    /// TTL (IPv4) or hop limit (IPv6) of the last reply.
    pub hop_limit: Option<u8>,
}

impl IcmpFacts {
    /// Share of the requests sent that got no reply (0 when none was sent).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        f64::from(self.sent - self.received) / f64::from(self.sent)
    }
}

/// Round-trip statistics over the replies of one run (population standard deviation, as ping's `mdev`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RttStats {
    pub min: Duration,
    pub avg: Duration,
    pub max: Duration,
    pub stddev: Duration,
}

impl RttStats {
    /// `None` for no round trips.
    pub fn of(rtts: &[Duration]) -> Option<RttStats> {
        let n = rtts.len() as f64;
        let min = *rtts.iter().min()?;
        let max = *rtts.iter().max()?;
        let mean = rtts.iter().map(Duration::as_secs_f64).sum::<f64>() / n;
        let var = rtts
            .iter()
            .map(|d| (d.as_secs_f64() - mean).powi(2))
            .sum::<f64>()
            / n;
        Some(RttStats {
            min,
            avg: Duration::from_secs_f64(mean),
            max,
            stddev: Duration::from_secs_f64(var.sqrt()),
        })
    }
}

/// One workflow step's outcome (empty for simple checks).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepResult {
    pub name: String,
    /// True for teardown / `always: true` steps.
    pub teardown: bool,
    pub success: bool,
    /// Not run because an earlier step failed.
    pub skipped: bool,
    pub duration: Duration,
    pub phases: Phases,
    pub status: Option<u16>,
    pub error: Option<ProbeError>,
    /// Names (never values) of the variables this step extracted.
    pub extracted: Vec<String>,
}

/// The outcome of one run of a check. Built by the probe; the scheduler fills `attempts` and applies timeouts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProbeResult {
    /// `None` when the run succeeded.
    pub error: Option<ProbeError>,
    /// Wall time of the run (of the last attempt).
    pub duration: Duration,
    pub phases: Phases,
    pub http: Option<HttpFacts>,
    pub tls: Option<TlsFacts>,
    /// The answer of a gRPC health check.
    pub grpc: Option<GrpcFacts>,
    /// Packets and round trips of an ICMP check. Boxed: every check keeps its last result, and only ICMP checks
    /// fill this (~100 bytes).
    pub icmp: Option<Box<IcmpFacts>>,
    /// Time spent resolving names (DNS checks and the resolve phase of HTTP).
    pub dns_lookup: Option<Duration>,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    pub steps: Vec<StepResult>,
    /// A teardown failure, reported apart so it never hides the original failure.
    pub teardown_error: Option<ProbeError>,
    /// The W3C trace id the run's requests carried in `traceparent`; `None` when no request carried the
    /// agent's (not an HTTP probe, `trace_context: false`, or a `traceparent` set in `headers`).
    pub trace_id: Option<crate::trace::TraceId>,
}

impl ProbeResult {
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// Set when the run failed on the agent's side (see [`ProbeError::agent_fault`]).
    pub fn agent_fault(&self) -> Option<AgentFault> {
        self.error.as_ref().and_then(|e| e.agent_fault)
    }

    pub fn failed(error: ProbeError, duration: Duration) -> Self {
        Self {
            error: Some(error),
            duration,
            attempts: 1,
            ..Default::default()
        }
    }
}
