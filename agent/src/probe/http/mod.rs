//! HTTP check: one exchange (redirects followed) plus the expected status and assertions.
//!
//! - [`exchange`]: the one HTTP exchange function (hyper + rustls), timed by phase; used by HTTP checks and
//!   every workflow step.
//! - `quic`: the QUIC endpoints HTTP/3 runs share.
//! - [`assertion`]: assertions on an HTTP response (status, header, body, JSON path, latency, certificate days).

pub mod assertion;
pub mod exchange;
mod quic;

use self::assertion::{Assertion, AssertionSpec, ExpectedStatus};
use self::exchange::{ClientOptions, ExchangeRequest, HttpClient, HttpVersion};
use super::nameserver::ResolverSpec;
use super::net::{IpVersion, ResolveTo};
use super::SpecError;
use crate::probe::tls_config::TlsOptions;
use crate::result::{HttpFacts, Phase, ProbeResult};
use crate::trace::{CheckIdentity, TraceId, UserAgent, TRACEPARENT};
use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use std::collections::BTreeMap;

fn default_method() -> String {
    "GET".into()
}
fn default_true() -> bool {
    true
}
fn default_max_redirects() -> u32 {
    exchange::DEFAULT_MAX_REDIRECTS
}
fn default_max_body() -> u64 {
    exchange::DEFAULT_MAX_BODY_BYTES
}

/// `type: http` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The URL to request (`http://` or `https://`).
    pub target: String,
    /// Request method. Default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body (sent as is; set `content-type` in `headers`).
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses: a code, a class (`2xx`) or a list. Default `2xx`.
    #[serde(default)]
    pub expected_status: ExpectedStatus,
    /// Follow 3xx redirects. Default true.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Most redirects to follow before failing with `redirect`. Default 10.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// Most body bytes to read; more fails with `body_too_large`. Default 10 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// `ip4`, `ip6` or `auto` (default: both families raced, Happy Eyeballs).
    #[serde(default)]
    pub ip_version: IpVersion,
    /// Addresses to use for a host instead of asking DNS, like curl's `--resolve`: `{"host[:port]": ip or
    /// [ips]}`. The URL, Host header, SNI and certificate check keep the original name.
    #[serde(default)]
    pub resolve_to: ResolveTo,
    /// DNS server to resolve hosts with instead of the system's: `ip[:port]`, or `{server, transport, tls}` as
    /// on a DNS check (DNS over TLS or HTTPS).
    #[serde(default, deserialize_with = "ResolverSpec::deserialize_opt")]
    pub resolver: Option<ResolverSpec>,
    /// `"1.1"`, `"2"` (HTTP/2 only: prior knowledge over cleartext, ALPN `h2` over TLS) or `"3"` (HTTP/3 over
    /// QUIC, https only). Unset: HTTP/1.1, or HTTP/2 when TLS ALPN agrees on it.
    #[serde(default)]
    pub http_version: HttpVersion,
    /// `http://[user:pass@]host:port` of an HTTP proxy.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Hosts that bypass `proxy_url` (names, `.domain` suffixes, `*`).
    #[serde(default)]
    pub no_proxy: Vec<String>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// TLS options (CA file, skip verify, client certificate, server name).
    #[serde(default)]
    pub tls: TlsOptions,
    /// Assertions on the response, all of which must pass.
    #[serde(default)]
    pub assert: Vec<AssertionSpec>,
    /// Send a W3C `traceparent` (a trace per run, a span per request). Default true.
    #[serde(default = "default_true")]
    pub trace_context: bool,
    /// `true` (default): `Vantage/<version> (+check=<name>; region=<region>)`; `false`: no `User-Agent`; a
    /// string: that string.
    #[serde(default)]
    pub user_agent: UserAgent,
}

/// `basic_auth: {username, password}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: String,
}

impl HttpSpec {
    /// `user:password` in base64, as sent in `Authorization: Basic ...`.
    pub fn basic_auth_token(&self) -> Option<String> {
        use base64::Engine;
        self.basic_auth.as_ref().map(|auth| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", auth.username, auth.password))
        })
    }

    /// The connection options for [`HttpClient::new`]; `id` names the check in the default `User-Agent`.
    pub fn client_options(&self, id: CheckIdentity<'_>) -> Result<ClientOptions, SpecError> {
        Ok(ClientOptions {
            http_version: self.http_version,
            tls: self.tls.clone(),
            ip_version: self.ip_version,
            resolve_to: self.resolve_to.clone(),
            resolver: self.resolver.clone(),
            proxy_url: self.proxy_url.clone(),
            no_proxy: self.no_proxy.clone(),
            follow_redirects: self.follow_redirects,
            max_redirects: self.max_redirects,
            max_body_bytes: self.max_body_bytes,
            user_agent: self
                .user_agent
                .header(id)
                .map_err(|m| SpecError::new("user_agent", m))?,
        })
    }
}

/// Compile a list of assertions; errors name `assert[i].field`.
pub fn compile_assertions(list: &[AssertionSpec]) -> Result<Vec<Assertion>, SpecError> {
    list.iter()
        .enumerate()
        .map(|(i, a)| a.compile().map_err(|e| e.within(format!("assert[{i}]"))))
        .collect()
}

pub struct HttpProbe {
    client: HttpClient,
    request: ExchangeRequest,
    /// Whether requests carry the run's `traceparent`.
    traced: bool,
    expected_status: ExpectedStatus,
    assertions: Vec<Assertion>,
}

impl HttpProbe {
    pub fn new(spec: &HttpSpec, id: CheckIdentity<'_>) -> Result<HttpProbe, SpecError> {
        let url = url::Url::parse(spec.target.trim())
            .map_err(|e| SpecError::new("target", format!("invalid URL {:?}: {e}", spec.target)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SpecError::new(
                "target",
                "the URL must be http:// or https:// with a host",
            ));
        }
        if spec.http_version == HttpVersion::Http3 && url.scheme() != "https" {
            return Err(SpecError::new(
                "http_version",
                "HTTP/3 runs over QUIC, which is always TLS: use an https:// target",
            ));
        }
        let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| SpecError::new("method", format!("invalid method {:?}", spec.method)))?;
        let mut headers = http::HeaderMap::new();
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SpecError::new(format!("headers.{k}"), "invalid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| SpecError::new(format!("headers.{k}"), "invalid header value"))?;
            headers.append(name, value);
        }
        if let Some(token) = spec.basic_auth_token() {
            headers.insert(
                http::header::AUTHORIZATION,
                sensitive(&format!("Basic {token}"), "basic_auth")?,
            );
        }
        if let Some(token) = &spec.bearer_token {
            if spec.basic_auth.is_some() {
                return Err(SpecError::new(
                    "bearer_token",
                    "use either basic_auth or bearer_token, not both",
                ));
            }
            headers.insert(
                http::header::AUTHORIZATION,
                sensitive(&format!("Bearer {token}"), "bearer_token")?,
            );
        }
        let client = HttpClient::new(&spec.client_options(id)?)?;
        let request = ExchangeRequest {
            method,
            url,
            headers,
            body: spec
                .body
                .clone()
                .map(bytes::Bytes::from)
                .unwrap_or_default(),
            trace: None,
        };
        // A `traceparent` in `headers` is sent as written: the run then has no trace of the agent's own.
        let traced = spec.trace_context && !request.headers.contains_key(TRACEPARENT);
        Ok(HttpProbe {
            client,
            request,
            traced,
            expected_status: spec.expected_status.clone(),
            assertions: compile_assertions(&spec.assert)?,
        })
    }

    /// Whether the run's requests carry its trace id (see [`ProbeResult::trace_id`]).
    pub fn traced(&self) -> bool {
        self.traced
    }

    pub async fn run(&self, trace: TraceId) -> ProbeResult {
        let trace_id = self.traced.then_some(trace);
        let request = ExchangeRequest {
            trace: trace_id,
            ..self.request.clone()
        };
        let resp = match self.client.exchange(request, None).await {
            Ok(r) => r,
            Err(e) => {
                return ProbeResult {
                    error: Some(e),
                    trace_id,
                    ..Default::default()
                }
            }
        };
        let error = self
            .expected_status
            .check(resp.status)
            .err()
            .or_else(|| self.assertions.iter().find_map(|a| a.check(&resp).err()));
        ProbeResult {
            error,
            dns_lookup: resp.phases.get(Phase::Resolve),
            http: Some(HttpFacts {
                status: resp.status,
                version: resp.version,
                redirects: resp.redirects,
                content_length: resp.body.len() as u64,
            }),
            tls: resp.tls.clone(),
            phases: resp.phases,
            trace_id,
            ..Default::default()
        }
    }
}

fn sensitive(v: &str, field: &str) -> Result<HeaderValue, SpecError> {
    let mut v = HeaderValue::from_str(v)
        .map_err(|_| SpecError::new(field, "contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}
