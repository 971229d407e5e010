//! Probes: the type-specific part of a check (`ProbeSpec`), prepared once per config load (`Probe`), run per
//! schedule tick. One file per kind; all return the same `ProbeResult`. No timeouts or retries here: the
//! scheduler owns both.
//!
//! # Layout
//! - [`http`]: the HTTP check, the one HTTP exchange function ([`http::exchange`]) it shares with workflow
//!   steps, and the response assertions ([`http::assertion`]).
//! - [`tcp`], [`dns`], [`tls`], [`grpc`]: the other single-target checks.
//! - [`icmp`]: echo requests over datagram or raw ICMP sockets (packet loss, round trips).
//! - [`workflow`]: multi-step API workflows (variables, extraction, assertions, teardown, JWT auth).
//! - [`net`]: resolving a target (`resolve_to`, `resolver`) and connecting to it (Happy Eyeballs), for every
//!   probe that dials.
//! - [`nameserver`]: the DNS server a check asks and its transport (UDP, TCP, DoT, DoH).
//! - [`tls_config`]: TLS client options and the rustls config built from them (HTTP, TLS, gRPC, workflows).

pub mod dns;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod nameserver;
pub mod net;
pub mod tcp;
pub mod tls;
pub mod tls_config;
pub mod workflow;

use crate::result::ProbeResult;
use crate::trace::{CheckIdentity, TraceId};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;

/// The type-specific part of a check (everything except name/type/schedule/timeout/retries/labels/enabled/
/// when_failing).
// Built once per config load, so the size difference between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    Http(http::HttpSpec),
    Tcp(tcp::TcpSpec),
    Dns(dns::DnsSpec),
    Tls(tls::TlsSpec),
    /// `type: grpc`: the standard gRPC health check.
    Grpc(grpc::GrpcSpec),
    Icmp(icmp::IcmpSpec),
    /// `type: api_workflow` (or `workflow`): multi-step API journeys (owned by [`workflow`]).
    Workflow(crate::probe::workflow::WorkflowSpec),
}

/// A config error in a check's type-specific keys (and in the parts they are built from: TLS options,
/// assertions, workflow steps, remote write endpoints): the field path relative to what was validated
/// (`assert[1].matches`, empty for the whole thing) and what is wrong. Callers that validate a part of a larger
/// config put the part's own path in front with [`SpecError::within`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error seen from the enclosing config: `tls` + `ca_file` -> `tls.ca_file`, `assert[2]` + `` ->
    /// `assert[2]`, `steps` + `[1].url` -> `steps[1].url`.
    pub fn within(mut self, prefix: impl AsRef<str>) -> Self {
        let prefix = prefix.as_ref();
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if prefix.is_empty() || self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }

    /// The top-level key of the field (`tls` for `tls.ca_file`, `assert` for `assert[1].json`), where a
    /// file:line:col is looked up; `None` when the error is about the whole thing.
    pub fn key(&self) -> Option<&str> {
        self.field
            .split(['.', '['])
            .next()
            .filter(|k| !k.is_empty())
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

/// Deserialize `value` into `T`, reporting the path of the failing field.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_norway::Value,
) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        SpecError::new(field, e.into_inner().to_string())
    })
}

impl ProbeSpec {
    /// Deserialize the type-specific keys of one check. `fields` holds the check's YAML mapping with the common
    /// keys removed. Unknown keys are errors.
    pub fn from_yaml(
        check_type: &str,
        fields: serde_norway::Value,
    ) -> Result<ProbeSpec, SpecError> {
        match check_type {
            "http" => Ok(ProbeSpec::Http(from_value(fields)?)),
            "tcp" => Ok(ProbeSpec::Tcp(from_value(fields)?)),
            "dns" => Ok(ProbeSpec::Dns(from_value(fields)?)),
            "tls" => Ok(ProbeSpec::Tls(from_value(fields)?)),
            "grpc" => Ok(ProbeSpec::Grpc(from_value(fields)?)),
            "icmp" => Ok(ProbeSpec::Icmp(from_value(fields)?)),
            "api_workflow" | "workflow" => Ok(ProbeSpec::Workflow(
                crate::probe::workflow::WorkflowSpec::from_yaml(fields)?,
            )),
            other => Err(SpecError::new(
                "type",
                format!(
                    "unknown check type {other:?}; expected http, tcp, dns, tls, grpc, icmp or api_workflow"
                ),
            )),
        }
    }

    /// For kinds bounded by their own per-step timeouts (workflows): the longest a run can take. The check's
    /// timeout must be at least this, so the scheduler never cuts a run (and its teardown) short.
    pub fn longest_run(&self) -> Option<std::time::Duration> {
        match self {
            ProbeSpec::Workflow(w) => Some(w.longest_run()),
            _ => None,
        }
    }

    /// Credentials that are not written as such in one config field: a workflow's secret variables (by name or
    /// `secret: true`), an HTTP check's encoded basic-auth token. The fields themselves are found by
    /// [`crate::config::classify_field`].
    pub fn secret_values(&self) -> Vec<String> {
        match self {
            ProbeSpec::Workflow(w) => w.secret_values().map(str::to_string).collect(),
            ProbeSpec::Http(h) => h.basic_auth_token().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// `http` | `tcp` | `dns` | `tls` | `grpc` | `icmp` | `api_workflow`: the `check_type` metric label.
    pub fn check_type(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Tls(_) => "tls",
            ProbeSpec::Grpc(_) => "grpc",
            ProbeSpec::Icmp(_) => "icmp",
            ProbeSpec::Workflow(_) => crate::probe::workflow::CHECK_TYPE,
        }
    }
}

/// A check prepared once per config load: URL parsed, regexes compiled, TLS config built, CA files read.
pub struct Probe {
    kind: Kind,
}

/// Every check keeps its probe for its lifetime, so the enum is as large as its largest variant in each one:
/// the variants much larger than an HTTP probe (DNS with its resolver, gRPC with its channel settings; ~470 and
/// ~310 bytes) are boxed.
enum Kind {
    Http(http::HttpProbe),
    Tcp(tcp::TcpProbe),
    Dns(Box<dns::DnsProbe>),
    Tls(tls::TlsProbe),
    Grpc(Box<grpc::GrpcProbe>),
    Icmp(icmp::IcmpProbe),
    Workflow(crate::probe::workflow::Workflow),
}

impl Probe {
    /// A probe whose `User-Agent` names no check (tests, benchmarks); checks use [`Probe::for_check`].
    pub fn new(spec: &ProbeSpec) -> Result<Probe, SpecError> {
        Self::for_check(spec, CheckIdentity::default())
    }

    /// A check's probe; `id` names it in the default `User-Agent` of HTTP requests.
    pub fn for_check(spec: &ProbeSpec, id: CheckIdentity<'_>) -> Result<Probe, SpecError> {
        let kind = match spec {
            ProbeSpec::Http(s) => Kind::Http(http::HttpProbe::new(s, id)?),
            ProbeSpec::Tcp(s) => Kind::Tcp(tcp::TcpProbe::new(s)?),
            ProbeSpec::Dns(s) => Kind::Dns(Box::new(dns::DnsProbe::new(s)?)),
            ProbeSpec::Tls(s) => Kind::Tls(tls::TlsProbe::new(s)?),
            ProbeSpec::Grpc(s) => Kind::Grpc(Box::new(grpc::GrpcProbe::new(s)?)),
            ProbeSpec::Icmp(s) => Kind::Icmp(icmp::IcmpProbe::new(s)?),
            ProbeSpec::Workflow(s) => Kind::Workflow(workflow::Workflow::for_check(s, id)?),
        };
        Ok(Probe { kind })
    }

    /// One attempt in a trace of its own. No timeout inside (the scheduler wraps it), no retries. Never panics.
    pub async fn run(&self) -> ProbeResult {
        self.run_in(TraceId::random()).await
    }

    /// Whether the probe's requests carry the run's trace id (HTTP checks and workflows with `trace_context`).
    pub fn traced(&self) -> bool {
        match &self.kind {
            Kind::Http(p) => p.traced(),
            Kind::Workflow(p) => p.traced(),
            _ => false,
        }
    }

    /// One attempt whose requests belong to trace `trace` (the scheduler keeps one trace across retries).
    pub async fn run_in(&self, trace: TraceId) -> ProbeResult {
        let start = Instant::now();
        let mut result = match &self.kind {
            Kind::Http(p) => p.run(trace).await,
            Kind::Tcp(p) => p.run().await,
            Kind::Dns(p) => p.run().await,
            Kind::Tls(p) => p.run().await,
            Kind::Grpc(p) => p.run().await,
            Kind::Icmp(p) => p.run().await,
            Kind::Workflow(p) => p.run_in(trace).await,
        };
        result.duration = start.elapsed();
        result.attempts = 1;
        result
    }
}

/// Runs one attempt of a check's probe (no timeout, no retries: the scheduler applies those). What a
/// [`crate::config::CheckConfig`] holds; tests and benchmarks make their own with [`Runner::new`].
#[derive(Clone)]
pub struct Runner {
    run: Arc<RunFn>,
    /// Whether runs carry their trace id (so a run cut by the timeout still reports it).
    traced: bool,
}

type RunFn = dyn Fn(TraceId) -> BoxFuture<'static, ProbeResult> + Send + Sync;

impl Runner {
    /// A runner that sends no trace context.
    pub fn new(f: impl Fn() -> BoxFuture<'static, ProbeResult> + Send + Sync + 'static) -> Self {
        Runner {
            run: Arc::new(move |_| f()),
            traced: false,
        }
    }

    /// A runner whose runs belong to the trace they are given.
    pub fn traced(
        f: impl Fn(TraceId) -> BoxFuture<'static, ProbeResult> + Send + Sync + 'static,
    ) -> Self {
        Runner {
            run: Arc::new(f),
            traced: true,
        }
    }

    /// Whether runs carry the trace id they are given.
    pub fn is_traced(&self) -> bool {
        self.traced
    }

    pub fn run(&self, trace: TraceId) -> BoxFuture<'static, ProbeResult> {
        (self.run)(trace)
    }
}

impl From<Probe> for Runner {
    fn from(probe: Probe) -> Self {
        let traced = probe.traced();
        let probe = Arc::new(probe);
        let run = move |trace| {
            let probe = probe.clone();
            Box::pin(async move { probe.run_in(trace).await }) as BoxFuture<'static, ProbeResult>
        };
        Runner {
            run: Arc::new(run),
            traced,
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner")
    }
}

/// Prepares a check's probe from its validated spec, once per config load: the one place config turns into
/// something that runs.
pub fn runner(spec: &ProbeSpec, id: CheckIdentity<'_>) -> Result<Runner, SpecError> {
    Probe::for_check(spec, id).map(Runner::from)
}

/// Split `host:port` (IPv6 as `[::1]:443`); `default_port` when the port is absent.
pub(crate) fn split_host_port(
    target: &str,
    default_port: Option<u16>,
) -> Result<(String, u16), String> {
    let t = target.trim();
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            _ => (t.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{target:?} has no host; use host:port"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port in {target:?}"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("{target:?} has no port; use host:port")),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::SpecError;

    #[test]
    fn spec_errors_take_the_enclosing_path() {
        let e = SpecError::new("ca_file", "cannot read ca.pem").within("tls");
        assert_eq!(e.to_string(), "tls.ca_file: cannot read ca.pem");
        assert_eq!(e.key(), Some("tls"));
        let whole = SpecError::new("", "needs exactly one of status, header").within("assert[2]");
        assert_eq!(
            whole.to_string(),
            "assert[2]: needs exactly one of status, header"
        );
        assert_eq!(whole.key(), Some("assert"));
        let indexed = SpecError::new("[1].url", "not a URL").within("steps");
        assert_eq!(indexed.field, "steps[1].url");
        assert_eq!(SpecError::new("", "bad").key(), None);
        assert_eq!(SpecError::new("", "bad").to_string(), "bad");
    }
}
