//! The one HTTP exchange function: resolve, connect, TLS, request, response, each step timed, redirects followed.
//!
//! Built on hyper's connection API over a socket we open ourselves, so every phase has its own clock:
//! `resolve` (absent for IP literals), `connect`, `tls` (from its own start), `processing` (request sent ->
//! response head) and `transfer` (head -> body fully read). Phases are summed over redirects.
//!
//! `http_version` picks the protocol: by default HTTP/1.1, or HTTP/2 when TLS ALPN agrees on `h2`; `"1.1"` offers
//! only HTTP/1.1; `"2"` speaks HTTP/2 only (prior knowledge over cleartext, ALPN `h2` alone over TLS) and fails with
//! `protocol` when the server does not; `"3"` speaks HTTP/3 over QUIC (quinn + h3), where the QUIC handshake
//! (transport and TLS 1.3 at once) is timed as one `connect` phase and `tls` is absent.
//!
//! Every request sent (redirects included) carries the client's `User-Agent` and, when the request has a trace
//! id, a `traceparent` with a fresh span id; the same headers set by the caller win.

use crate::probe::tls_config::{self, TlsOptions};

use crate::probe::nameserver::ResolverSpec;
use crate::probe::net::{self, IpVersion, ResolveTo, Resolver};
use crate::probe::SpecError;
use crate::result::{ErrorType, Phase, Phases, ProbeError, TlsFacts};
use crate::trace::{self, SpanId, TraceId};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

pub use url;

/// `http_version:` of an HTTP check or a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// HTTP/1.1, or HTTP/2 when TLS ALPN agrees on it (unset).
    #[default]
    Auto,
    /// `"1.1"`: HTTP/1.1 only.
    Http1,
    /// `"2"`: HTTP/2 only: prior knowledge over cleartext, ALPN `h2` alone over TLS.
    Http2,
    /// `"3"`: HTTP/3 over QUIC (https only, no proxy).
    Http3,
}

impl<'de> serde::Deserialize<'de> for HttpVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML reads `2` and `1.1` unquoted as numbers: take the text whatever the scalar type.
        let v = serde_norway::Value::deserialize(d)?;
        let text = match &v {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match text.as_str() {
            "1.1" => Ok(HttpVersion::Http1),
            "2" | "2.0" => Ok(HttpVersion::Http2),
            "3" | "3.0" => Ok(HttpVersion::Http3),
            _ => Err(serde::de::Error::custom(format!(
                "unknown HTTP version {v:?}; use \"1.1\", \"2\" or \"3\""
            ))),
        }
    }
}

impl HttpVersion {
    /// The ALPN protocols offered over TLS.
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1 => &[b"http/1.1"],
            HttpVersion::Http2 => &[b"h2"],
            HttpVersion::Http3 => &[b"h3"],
        }
    }
}

/// Connection-level options of an HTTP check (and of every workflow step).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    pub http_version: HttpVersion,
    pub tls: TlsOptions,
    pub ip_version: IpVersion,
    /// Addresses to use for hosts instead of asking DNS (curl's `--resolve`).
    pub resolve_to: ResolveTo,
    /// DNS server to ask instead of the system's.
    pub resolver: Option<ResolverSpec>,
    /// `http://host:port` of an HTTP proxy (CONNECT tunnel for https, absolute-form requests for http).
    pub proxy_url: Option<String>,
    /// Hosts that bypass the proxy: exact names, `.suffix` / `suffix` domain matches, IP literals, or `*`.
    pub no_proxy: Vec<String>,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
    /// Sent as `User-Agent` unless the request sets one; `None` sends none.
    pub user_agent: Option<HeaderValue>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            http_version: HttpVersion::Auto,
            tls: TlsOptions::default(),
            ip_version: IpVersion::Auto,
            resolve_to: ResolveTo::new(),
            resolver: None,
            proxy_url: None,
            no_proxy: Vec::new(),
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: Some(trace::default_user_agent(Default::default())),
        }
    }
}

pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// An HTTP client prepared once per check (TLS config built, proxy parsed). Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http_version: HttpVersion,
    tls: Arc<rustls::ClientConfig>,
    /// The QUIC client config (ALPN `h3`) when `http_version` is 3.
    quic: Option<quinn::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    ip_version: IpVersion,
    resolver: Resolver,
    proxy: Option<Proxy>,
    follow_redirects: bool,
    max_redirects: u32,
    max_body_bytes: u64,
    user_agent: Option<HeaderValue>,
}

struct Proxy {
    host: String,
    port: u16,
    authorization: Option<HeaderValue>,
    no_proxy: Vec<String>,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct ExchangeRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The run's trace: every request of the exchange carries it in `traceparent`, each with its own span id.
    pub trace: Option<TraceId>,
}

impl ExchangeRequest {
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            trace: None,
        }
    }
}

/// The final response of an exchange (after redirects).
#[derive(Debug, Clone)]
pub struct ExchangeResponse {
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2`, `HTTP/3`.
    pub version: &'static str,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Summed over every round trip of the exchange.
    pub phases: Phases,
    /// TLS facts of the connection that carried the final response.
    pub tls: Option<TlsFacts>,
    pub redirects: u32,
    pub final_url: Url,
    /// Wall time of the whole exchange.
    pub elapsed: Duration,
    /// The address of the connection that carried the final response.
    pub peer: Option<SocketAddr>,
    /// The certificate chain that connection presented, when the session asked for it ([`Dial::keep_chain`]).
    pub chain: Option<Vec<CertificateDer<'static>>>,
}

/// What a blackbox-exporter-compatible probe asks of an exchange beyond a check's needs: the exporter picks the
/// target's address itself (by its IP protocol preference) before any request, and reports on the presented
/// certificate chain.
#[derive(Debug, Clone, Default)]
pub struct Dial {
    /// Connect to this address for this host (not through a proxy) instead of resolving it.
    pub pin: Option<(String, IpAddr)>,
    /// Keep the peer's certificate chain in [`ExchangeResponse::chain`].
    pub keep_chain: bool,
}

/// Per-run state for workflows: a cookie jar and one reusable connection per origin and HTTP version (steps may
/// speak different versions to the same origin).
#[derive(Default)]
pub struct Session {
    cookies: Vec<Cookie>,
    conns: HashMap<(String, HttpVersion), Conn>,
    dial: Dial,
}

struct Cookie {
    host: String,
    name: String,
    value: String,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// A session whose connections are dialled as `dial` says.
    pub fn with_dial(dial: Dial) -> Self {
        Self {
            dial,
            ..Self::default()
        }
    }

    fn cookie_header(&self, host: &str) -> Option<HeaderValue> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| c.host == host)
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    fn store_cookies(&mut self, host: &str, headers: &HeaderMap) {
        for v in headers.get_all(http::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut attrs = v.split(';');
            let Some((name, value)) = attrs.next().and_then(|kv| kv.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            let expired = attrs.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.cookies.retain(|c| !(c.host == host && c.name == name));
            if !expired {
                self.cookies.push(Cookie {
                    host: host.to_string(),
                    name,
                    value,
                });
            }
        }
    }
}

/// An open HTTP connection; its driver task is aborted when this is dropped.
struct Conn {
    sender: Sender,
    tls: Option<TlsFacts>,
    /// Plain-HTTP request through a proxy: the request line carries the absolute URL.
    absolute_form: bool,
    peer: Option<SocketAddr>,
    /// Kept only when the session asks ([`Dial::keep_chain`]).
    chain: Option<Vec<CertificateDer<'static>>>,
    _driver: AbortOnDrop,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
    /// HTTP/3 over a connection of the agent's shared QUIC endpoint, closed when the run is done with it.
    H3 {
        send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
        _close: CloseQuic,
    },
}

/// Closes a QUIC connection when the run is done with it. Dropping it silently would leave both ends holding the
/// connection until the idle timeout, so memory would follow the probe rate times that timeout.
struct CloseQuic(quinn::Connection);

impl Drop for CloseQuic {
    fn drop(&mut self) {
        self.0.close(0u32.into(), b"done");
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn err(t: ErrorType, msg: impl Into<String>) -> ProbeError {
    ProbeError::new(t, msg)
}

impl HttpClient {
    /// Build the client. Errors are config errors naming the field, e.g. `tls.ca_file: cannot read ...`.
    pub fn new(opts: &ClientOptions) -> Result<HttpClient, SpecError> {
        let tls = opts
            .tls
            .client_config(opts.http_version.alpn())
            .map_err(|e| e.within("tls"))?;
        let server_name = match &opts.tls.server_name {
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                SpecError::new("tls.server_name", format!("invalid server name {n:?}"))
            })?),
            None => None,
        };
        let quic = match opts.http_version {
            HttpVersion::Http3 => {
                if opts.proxy_url.is_some() {
                    return Err(SpecError::new(
                        "proxy_url",
                        "an HTTP proxy cannot carry HTTP/3 (QUIC is UDP); remove proxy_url or the http_version",
                    ));
                }
                let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.clone())
                    .map_err(|e| {
                        SpecError::new(
                            "http_version",
                            format!("no QUIC with these TLS options: {e}"),
                        )
                    })?;
                Some(quinn::ClientConfig::new(Arc::new(crypto)))
            }
            _ => None,
        };
        let proxy = match &opts.proxy_url {
            None => None,
            Some(p) => {
                Some(parse_proxy(p, &opts.no_proxy).map_err(|m| SpecError::new("proxy_url", m))?)
            }
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http_version: opts.http_version,
                tls,
                quic,
                server_name,
                ip_version: opts.ip_version,
                resolver: net::Resolver::new(&opts.resolve_to, opts.resolver.as_ref())?,
                proxy,
                follow_redirects: opts.follow_redirects,
                max_redirects: opts.max_redirects,
                max_body_bytes: opts.max_body_bytes,
                user_agent: opts.user_agent.clone(),
            }),
        })
    }

    /// Send `req`, following redirects as configured. No timeout here: the caller wraps it; dropping the
    /// future cancels everything (connection tasks are aborted).
    pub async fn exchange(
        &self,
        req: ExchangeRequest,
        mut session: Option<&mut Session>,
    ) -> Result<ExchangeResponse, ProbeError> {
        let start = Instant::now();
        let mut phases = Phases::default();
        let ExchangeRequest {
            mut method,
            mut url,
            mut headers,
            mut body,
            trace,
        } = req;
        let mut visited: Vec<(Method, Url)> = vec![(method.clone(), url.clone())];
        let mut redirects = 0u32;
        // A caller's own `traceparent` is sent as written; else each request is a new span of the trace.
        let trace = trace.filter(|_| !headers.contains_key(trace::TRACEPARENT));
        loop {
            if let Some(trace) = trace {
                headers.insert(
                    trace::TRACEPARENT,
                    trace::traceparent(trace, SpanId::random()),
                );
            }
            let rt = self
                .round_trip(
                    &method,
                    &url,
                    &headers,
                    body.clone(),
                    session.as_deref_mut(),
                    &mut phases,
                )
                .await?;
            let location = rt
                .headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok());
            let is_redirect = matches!(rt.status, 301 | 302 | 303 | 307 | 308);
            if let (true, true, Some(location)) =
                (self.inner.follow_redirects, is_redirect, location)
            {
                let next = url.join(location).map_err(|e| {
                    err(
                        ErrorType::Redirect,
                        format!("invalid Location {location:?} from {url}: {e}"),
                    )
                })?;
                if redirects >= self.inner.max_redirects {
                    return Err(err(
                        ErrorType::Redirect,
                        format!("too many redirects: stopped after {redirects} (max_redirects {}) at {url} -> {next}", self.inner.max_redirects),
                    ));
                }
                // 303 always, and 301/302 for non-GET (as browsers do), turn into a body-less GET.
                if rt.status == 303 || (matches!(rt.status, 301 | 302) && method != Method::HEAD) {
                    if method != Method::GET && method != Method::HEAD {
                        body = Bytes::new();
                        headers.remove(http::header::CONTENT_TYPE);
                        headers.remove(http::header::CONTENT_LENGTH);
                    }
                    if method != Method::HEAD {
                        method = Method::GET;
                    }
                }
                if next.origin() != url.origin() {
                    // Credentials are for the origin they were configured for.
                    headers.remove(http::header::AUTHORIZATION);
                    headers.remove(http::header::COOKIE);
                }
                redirects += 1;
                if visited.iter().any(|(m, u)| *m == method && *u == next) {
                    return Err(err(
                        ErrorType::Redirect,
                        format!("redirect loop after {redirects} redirects: {url} -> {next} (already visited)"),
                    ));
                }
                visited.push((method.clone(), next.clone()));
                url = next;
                continue;
            }
            return Ok(ExchangeResponse {
                status: rt.status,
                version: rt.version,
                headers: rt.headers,
                body: rt.body,
                phases,
                tls: rt.tls,
                redirects,
                final_url: url,
                elapsed: start.elapsed(),
                peer: rt.peer,
                chain: rt.chain,
            });
        }
    }

    async fn round_trip(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        mut session: Option<&mut Session>,
        phases: &mut Phases,
    ) -> Result<RoundTrip, ProbeError> {
        let host = url
            .host_str()
            .ok_or_else(|| err(ErrorType::Protocol, format!("URL {url} has no host")))?
            .to_string();
        let origin = (url.origin().ascii_serialization(), self.inner.http_version);
        let mut conn = None;
        if let Some(s) = session.as_deref_mut() {
            if let Some(mut c) = s.conns.remove(&origin) {
                if c.sender.ready().await {
                    conn = Some(c);
                }
            }
        }
        let mut conn = match conn {
            Some(c) => c,
            None => {
                let dial = session.as_deref().map(|s| &s.dial);
                self.connect(url, phases, dial).await?
            }
        };

        let mut builder = http::Request::builder().method(method.clone());
        let host_header = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let uri: http::Uri = match (&conn.sender, conn.absolute_form) {
            (Sender::H2(_) | Sender::H3 { .. }, _) | (_, true) => url.as_str().parse(),
            (Sender::H1(_), false) => {
                let mut path = url.path().to_string();
                if let Some(q) = url.query() {
                    path.push('?');
                    path.push_str(q);
                }
                path.parse()
            }
        }
        .map_err(|e| {
            err(
                ErrorType::Protocol,
                format!("invalid request URL {url}: {e}"),
            )
        })?;
        builder = builder.uri(uri);
        let mut req = builder
            .body(Full::new(body))
            .map_err(|e| err(ErrorType::Protocol, format!("invalid request: {e}")))?;
        let h = req.headers_mut();
        for (k, v) in headers {
            h.append(k, v.clone());
        }
        if let Sender::H1(_) = conn.sender {
            if let Ok(v) = HeaderValue::from_str(&host_header) {
                h.entry(http::header::HOST).or_insert(v);
            }
        }
        if let Some(ua) = &self.inner.user_agent {
            h.entry(http::header::USER_AGENT).or_insert(ua.clone());
        }
        h.entry(http::header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        if let Some(cookie) = session.as_deref().and_then(|s| s.cookie_header(&host)) {
            h.entry(http::header::COOKIE).or_insert(cookie);
        }
        if let (true, Some(proxy)) = (conn.absolute_form, &self.inner.proxy) {
            if let Some(auth) = &proxy.authorization {
                h.insert(http::header::PROXY_AUTHORIZATION, auth.clone());
            }
        }

        let max = self.inner.max_body_bytes;
        if let Sender::H3 { send: s, .. } = &mut conn.sender {
            let (status, headers, body) = send_h3(s, req, &host, max, phases).await?;
            // An HTTP/3 connection is not kept for the next step: each request gets its own.
            if let Some(s) = session {
                s.store_cookies(&host, &headers);
            }
            return Ok(RoundTrip {
                status,
                version: "HTTP/3",
                headers,
                body,
                tls: conn.tls.clone(),
                peer: conn.peer,
                chain: conn.chain.take(),
            });
        }
        let sent = Instant::now();
        let resp = match &mut conn.sender {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
            // Sent above; never here.
            Sender::H3 { .. } => {
                return Err(err(ErrorType::Protocol, "HTTP/3 request on the TCP path"))
            }
        }
        .map_err(|e| {
            let hint = match (self.inner.http_version, &conn.tls) {
                (HttpVersion::Http2, None) => {
                    " (http_version 2 over cleartext: does it speak h2c?)"
                }
                _ => "",
            };
            err(
                ErrorType::Protocol,
                format!("no response from {host}{hint}: {}", hyper_error(&e)),
            )
        })?;
        let head = Instant::now();
        phases.add(Phase::Processing, head - sent);

        let status = resp.status().as_u16();
        let version = match resp.version() {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_09 => "HTTP/0.9",
            _ => "HTTP/1.1",
        };
        let (parts, mut incoming) = resp.into_parts();
        check_content_length(&parts.headers, max)?;
        let mut body = BodyChunks::default();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| {
                err(
                    ErrorType::Protocol,
                    format!(
                        "error reading response body from {host}: {}",
                        hyper_error(&e)
                    ),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                body.push(data, max)?;
            }
        }
        phases.add(Phase::Transfer, head.elapsed());

        let tls = conn.tls.clone();
        let (peer, chain) = (conn.peer, conn.chain.clone());
        if let Some(s) = session {
            s.store_cookies(&host, &parts.headers);
            s.conns.insert(origin, conn);
        }
        Ok(RoundTrip {
            status,
            version,
            headers: parts.headers,
            body: body.join(),
            tls,
            peer,
            chain,
        })
    }

    /// Resolve, connect (through the proxy if any), TLS, HTTP handshake.
    async fn connect(
        &self,
        url: &Url,
        phases: &mut Phases,
        dial: Option<&Dial>,
    ) -> Result<Conn, ProbeError> {
        let inner = &self.inner;
        let keep_chain = dial.is_some_and(|d| d.keep_chain);
        if let Some(quic) = &inner.quic {
            return self.connect_h3(quic, url, phases, keep_chain).await;
        }
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(err(
                    ErrorType::Protocol,
                    format!("unsupported URL scheme {other:?}"),
                ))
            }
        };
        let host = url.host_str().unwrap_or_default();
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let proxy = inner.proxy.as_ref().filter(|p| !p.bypass(host));
        let (dial_host, dial_port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (host, port),
        };
        let pinned = match (proxy, dial.and_then(|d| d.pin.as_ref())) {
            (None, Some((h, ip))) if h.eq_ignore_ascii_case(host) => {
                Some(SocketAddr::new(*ip, port))
            }
            _ => None,
        };
        let addrs = match pinned {
            Some(a) => vec![a],
            None => {
                let resolved = inner
                    .resolver
                    .resolve(dial_host, dial_port, inner.ip_version)
                    .await?;
                if let Some(d) = resolved.lookup {
                    phases.add(Phase::Resolve, d);
                }
                resolved.addrs
            }
        };

        let t = Instant::now();
        let mut stream = net::connect(&addrs).await?;
        let peer = stream.peer_addr().ok();
        let _ = stream.set_nodelay(true);
        if let (Some(p), true) = (proxy, https) {
            p.tunnel(&mut stream, host, port).await?;
        }
        phases.add(Phase::Connect, t.elapsed());

        let mut chain = None;
        let (io, tls, h2): (Box<dyn Io>, Option<TlsFacts>, bool) = if https {
            let name = match &inner.server_name {
                Some(n) => n.clone(),
                None => server_name(host)?,
            };
            let tls = tls_config::handshake(&inner.tls, name, stream, host, phases).await?;
            let (_, conn) = tls.get_ref();
            let facts = tls_config::facts(conn);
            if keep_chain {
                chain = conn.peer_certificates().map(|c| c.to_vec());
            }
            let h2 = conn.alpn_protocol() == Some(b"h2");
            if inner.http_version == HttpVersion::Http2 && !h2 {
                return Err(err(
                    ErrorType::Protocol,
                    format!("http_version 2: {host} did not agree to HTTP/2 (no ALPN h2 in the TLS handshake)"),
                ));
            }
            (Box::new(tls), Some(facts), h2)
        } else {
            // Cleartext HTTP/2 only by prior knowledge (no upgrade dance): the client simply starts speaking it.
            let h2 = inner.http_version == HttpVersion::Http2;
            (Box::new(stream), None, h2)
        };
        let io = TokioIo::new(io);
        let (sender, driver) = if h2 {
            let (s, c) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| {
                    err(
                        ErrorType::Protocol,
                        format!("HTTP/2 handshake with {host} failed: {e}"),
                    )
                })?;
            (
                Sender::H2(s),
                tokio::spawn(async move {
                    let _ = c.await;
                }),
            )
        } else {
            let (s, c) = http1::handshake(io).await.map_err(|e| {
                err(
                    ErrorType::Protocol,
                    format!("HTTP/1.1 handshake with {host} failed: {e}"),
                )
            })?;
            (
                Sender::H1(s),
                tokio::spawn(async move {
                    let _ = c.await;
                }),
            )
        };
        Ok(Conn {
            sender,
            tls,
            absolute_form: proxy.is_some() && !https,
            peer,
            chain,
            _driver: AbortOnDrop(driver),
        })
    }
}

impl HttpClient {
    /// Resolve, then the QUIC handshake (transport and TLS 1.3 together: one `connect` phase), then HTTP/3.
    async fn connect_h3(
        &self,
        quic: &quinn::ClientConfig,
        url: &Url,
        phases: &mut Phases,
        keep_chain: bool,
    ) -> Result<Conn, ProbeError> {
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "https" {
            return Err(err(
                ErrorType::Protocol,
                format!("HTTP/3 needs an https:// URL, got {url}"),
            ));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let resolved = self
            .inner
            .resolver
            .resolve(host, port, self.inner.ip_version)
            .await?;
        if let Some(d) = resolved.lookup {
            phases.add(Phase::Resolve, d);
        }
        // The first address only: no fallback to the next one yet (a silent UDP port gives no quick refusal).
        let addr = *resolved
            .addrs
            .first()
            .ok_or_else(|| err(ErrorType::Dns, format!("no address for {host}")))?;
        let t = Instant::now();
        let endpoint = super::quic::endpoint_for(addr).map_err(|e| {
            let msg = format!("cannot open a UDP socket for QUIC: {e}");
            match crate::result::is_fd_exhaustion(&e) {
                true => ProbeError::agent(
                    ErrorType::Connect,
                    crate::result::AgentFault::FdExhausted,
                    msg,
                ),
                false => err(ErrorType::Connect, msg),
            }
        })?;
        let name = match &self.inner.server_name {
            Some(n) => n.to_str().into_owned(),
            None => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        };
        let connection = endpoint
            .connect_with(quic.clone(), addr, &name)
            .map_err(|e| err(ErrorType::Connect, format!("QUIC to {addr}: {e}")))?
            .await
            .map_err(|e| quic_error(&e, host))?;
        phases.add(Phase::Connect, t.elapsed());
        let chain = connection.peer_identity().and_then(|id| {
            id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        });
        let facts = TlsFacts {
            // QUIC always runs TLS 1.3 (RFC 9001).
            version: "TLS 1.3".into(),
            earliest_cert_expiry: chain.as_ref().and_then(|c| tls_config::earliest_expiry(c)),
        };
        let chain = chain.filter(|_| keep_chain).map(|c| *c);
        let close = CloseQuic(connection.clone());
        let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(connection))
            .await
            .map_err(|e| {
                err(
                    ErrorType::Protocol,
                    format!("HTTP/3 handshake with {host} failed: {e}"),
                )
            })?;
        let driver = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(Conn {
            sender: Sender::H3 {
                send: sender,
                _close: close,
            },
            tls: Some(facts),
            absolute_form: false,
            peer: Some(addr),
            chain,
            _driver: AbortOnDrop(driver),
        })
    }
}

/// Why a QUIC handshake failed, classed as the TCP+TLS path classes it: certificate and TLS alerts are `tls`,
/// the rest (no answer, refused) `connect`.
fn quic_error(e: &quinn::ConnectionError, host: &str) -> ProbeError {
    match e {
        // CRYPTO_ERROR codes (0x100-0x1ff, RFC 9000 20.1) carry the TLS alert.
        quinn::ConnectionError::TransportError(t) if u64::from(t.code) >> 8 == 1 => err(
            ErrorType::Tls,
            format!("QUIC handshake with {host} failed: {}", t.reason),
        ),
        quinn::ConnectionError::TimedOut => err(
            ErrorType::Connect,
            format!("no QUIC answer from {host} (UDP): handshake timed out"),
        ),
        quinn::ConnectionError::ConnectionClosed(c) if u64::from(c.error_code) >> 8 == 1 => err(
            ErrorType::Tls,
            format!("{host} refused the QUIC handshake: {c}"),
        ),
        other => err(
            ErrorType::Connect,
            format!("QUIC handshake with {host} failed: {other}"),
        ),
    }
}

/// One HTTP/3 request on its own stream: head, body, then the response read to the end (bounded by `max`).
async fn send_h3(
    sender: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    req: http::Request<Full<Bytes>>,
    host: &str,
    max: u64,
    phases: &mut Phases,
) -> Result<(u16, HeaderMap, Bytes), ProbeError> {
    let failed = |e: &dyn std::fmt::Display| {
        err(
            ErrorType::Protocol,
            format!("no response from {host} (HTTP/3): {e}"),
        )
    };
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let sent = Instant::now();
    let mut stream = sender
        .send_request(http::Request::from_parts(parts, ()))
        .await
        .map_err(|e| failed(&e))?;
    // A server may answer before it has read the whole request and stop the client's sending side; the client
    // must not discard that response (RFC 9114, 4.1.1). So a failed send counts only when no response comes.
    let sending = async {
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await
    }
    .await;
    let resp = match stream.recv_response().await {
        Ok(resp) => resp,
        Err(e) => return Err(sending.err().map_or_else(|| failed(&e), |s| failed(&s))),
    };
    let head = Instant::now();
    phases.add(Phase::Processing, head - sent);
    check_content_length(resp.headers(), max)?;
    let mut chunks = BodyChunks::default();
    while let Some(mut data) = stream.recv_data().await.map_err(|e| {
        err(
            ErrorType::Protocol,
            format!("error reading response body from {host} (HTTP/3): {e}"),
        )
    })? {
        use bytes::Buf;
        let bytes = data.copy_to_bytes(data.remaining());
        chunks.push(bytes, max)?;
    }
    phases.add(Phase::Transfer, head.elapsed());
    let (parts, ()) = resp.into_parts();
    Ok((parts.status.as_u16(), parts.headers, chunks.join()))
}

/// A declared body larger than `max_body_bytes` fails before reading it.
fn check_content_length(headers: &HeaderMap, max: u64) -> Result<(), ProbeError> {
    match headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        Some(len) if len > max => Err(err(
            ErrorType::BodyTooLarge,
            format!("response body of {len} bytes (Content-Length) exceeds max_body_bytes {max}"),
        )),
        _ => Ok(()),
    }
}

/// A response body as received: the chunks hyper read, joined once at the end into a buffer of exactly the
/// body's size. Growing one buffer instead doubled it up to 16 MiB for a 10 MiB body, copying as it went, and
/// left the allocator with ever larger blocks that it kept (issue #17).
#[derive(Default)]
struct BodyChunks {
    chunks: Vec<Bytes>,
    len: usize,
}

impl BodyChunks {
    /// Adds a chunk; more than `max` bytes in all fails (reading stops there).
    fn push(&mut self, data: Bytes, max: u64) -> Result<(), ProbeError> {
        if self.len as u64 + data.len() as u64 > max {
            return Err(err(
                ErrorType::BodyTooLarge,
                format!("response body exceeds max_body_bytes {max} (stopped reading)"),
            ));
        }
        self.len += data.len();
        self.chunks.push(data);
        Ok(())
    }

    fn join(mut self) -> Bytes {
        if self.chunks.len() <= 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out.freeze()
    }
}

struct RoundTrip {
    status: u16,
    version: &'static str,
    headers: HeaderMap,
    body: Bytes,
    tls: Option<TlsFacts>,
    peer: Option<SocketAddr>,
    chain: Option<Vec<CertificateDer<'static>>>,
}

impl Sender {
    /// Wait until a kept connection can take another request; false if it closed meanwhile.
    async fn ready(&mut self) -> bool {
        match self {
            Sender::H1(s) => s.ready().await.is_ok(),
            Sender::H2(s) => s.ready().await.is_ok(),
            Sender::H3 { .. } => false,
        }
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, ProbeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| {
        err(
            ErrorType::Tls,
            format!("{host} is not a valid TLS server name"),
        )
    })
}

/// The innermost cause of a hyper error, which is what tells a human what happened.
fn hyper_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

fn parse_proxy(raw: &str, no_proxy: &[String]) -> Result<Proxy, String> {
    let url = Url::parse(raw).map_err(|e| format!("invalid proxy URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "unsupported proxy scheme {:?}; only http:// proxies are supported",
            url.scheme()
        ));
    }
    let host = url.host_str().ok_or("proxy URL has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let authorization = if url.username().is_empty() {
        None
    } else {
        use base64::Engine;
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut v = HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| e.to_string())?;
        v.set_sensitive(true);
        Some(v)
    };
    let no_proxy = no_proxy
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    Ok(Proxy {
        host,
        port,
        authorization,
        no_proxy,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Proxy {
    fn bypass(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim_start_matches("*.");
            entry == "*"
                || host == entry.trim_start_matches('.')
                || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
        })
    }

    /// HTTP CONNECT through the proxy to host:port; reads the proxy's answer head (bounded).
    async fn tunnel(
        &self,
        stream: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> Result<(), ProbeError> {
        let mut req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
        if let Some(auth) = &self.authorization {
            req.push_str("Proxy-Authorization: ");
            req.push_str(auth.to_str().unwrap_or_default());
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let io_err = |e: std::io::Error| {
            err(
                ErrorType::Connect,
                format!("proxy {}:{}: {e}", self.host, self.port),
            )
        };
        stream.write_all(req.as_bytes()).await.map_err(io_err)?;
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 {
                return Err(err(
                    ErrorType::Protocol,
                    "proxy CONNECT answer head larger than 8 KiB",
                ));
            }
            let n = stream.read(&mut byte).await.map_err(io_err)?;
            if n == 0 {
                return Err(err(
                    ErrorType::Connect,
                    "proxy closed the connection during CONNECT",
                ));
            }
            head.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&head);
        let status_line = line.lines().next().unwrap_or_default();
        let code = status_line.split_whitespace().nth(1).unwrap_or_default();
        if code != "200" {
            return Err(err(
                ErrorType::Connect,
                format!("proxy refused CONNECT {host}:{port}: {status_line}"),
            ));
        }
        Ok(())
    }
}
