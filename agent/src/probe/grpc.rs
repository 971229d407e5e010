//! gRPC check: the standard health protocol (`grpc.health.v1.Health/Check`) over a fresh HTTP/2 connection per
//! run, dialled here (resolve, connect, TLS timed apart) and handed to tonic's generated health client.
//!
//! Succeeds when the answer is `SERVING`. Any other serving status, and a gRPC status other than OK
//! (`NOT_FOUND` for an unknown service, `UNIMPLEMENTED` for a server without the health service), fail with
//! `assertion` naming what came back; a peer that does not speak gRPC over HTTP/2 fails with `protocol`.

use super::net::{self, IpVersion};
use super::SpecError;
use crate::probe::tls_config::{self, TlsOptions};
use crate::result::{ErrorType, GrpcFacts, Phase, Phases, ProbeError, ProbeResult, ServingStatus};
use futures::future::BoxFuture;
use http::Uri;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus as PbStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// `type: grpc` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSpec {
    /// `host:port` of the gRPC server.
    pub target: String,
    /// The service to ask about (`grpc.health.v1.HealthCheckRequest.service`). Default `""`: the whole server.
    #[serde(default)]
    pub service: String,
    /// TLS options as on HTTP checks (CA file, skip verify, client certificate, server name). Absent:
    /// plaintext HTTP/2 (prior knowledge). `tls: {}` is TLS with the default options.
    #[serde(default)]
    pub tls: Option<TlsOptions>,
    /// Request metadata (`name: value`), sent as HTTP/2 headers; values are treated as secrets like HTTP
    /// `headers` (but for descriptive names such as `user-agent`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `ip4`, `ip6` or `auto` (default).
    #[serde(default)]
    pub ip_version: IpVersion,
    /// Addresses to use for the host instead of asking DNS, as on HTTP checks.
    #[serde(default)]
    pub resolve_to: net::ResolveTo,
    /// DNS server to resolve the host with instead of the system's, as on HTTP checks.
    #[serde(
        default,
        deserialize_with = "super::nameserver::ResolverSpec::deserialize_opt"
    )]
    pub resolver: Option<super::nameserver::ResolverSpec>,
}

/// The TLS side of a check, built once per config load.
struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

pub struct GrpcProbe {
    host: String,
    port: u16,
    ip_version: IpVersion,
    resolver: net::Resolver,
    tls: Option<Tls>,
    /// `http(s)://host:port`: the `:scheme` and `:authority` of the request.
    origin: Uri,
    service: String,
    metadata: MetadataMap,
}

impl GrpcProbe {
    pub fn new(spec: &GrpcSpec) -> Result<GrpcProbe, SpecError> {
        let (host, port) =
            super::split_host_port(&spec.target, None).map_err(|m| SpecError::new("target", m))?;
        let tls = spec
            .tls
            .as_ref()
            .map(|opts| {
                let name = opts.server_name.clone().unwrap_or_else(|| host.clone());
                let server_name = ServerName::try_from(name.clone()).map_err(|_| {
                    SpecError::new(
                        "tls.server_name",
                        format!("{name:?} is not a valid TLS server name"),
                    )
                })?;
                let config = opts.client_config(&[b"h2"]).map_err(|e| e.within("tls"))?;
                Ok::<_, SpecError>(Tls {
                    config,
                    server_name,
                })
            })
            .transpose()?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{authority}")
            .parse::<Uri>()
            .map_err(|e| SpecError::new("target", format!("{:?}: {e}", spec.target)))?;
        Ok(GrpcProbe {
            host,
            port,
            ip_version: spec.ip_version,
            resolver: net::Resolver::new(&spec.resolve_to, spec.resolver.as_ref())?,
            tls,
            origin,
            service: spec.service.clone(),
            metadata: metadata(&spec.metadata)?,
        })
    }

    pub async fn run(&self) -> ProbeResult {
        let mut phases = Phases::default();
        let mut result = ProbeResult::default();
        if let Err(e) = self.check(&mut phases, &mut result).await {
            result.error = Some(e);
        }
        result.phases = phases;
        result
    }

    async fn check(&self, phases: &mut Phases, result: &mut ProbeResult) -> Result<(), ProbeError> {
        let stream = net::open_tcp(
            &self.resolver,
            &self.host,
            self.port,
            self.ip_version,
            phases,
            result,
        )
        .await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.health_check(stream, phases, result).await;
        };
        let stream = tls_config::handshake(
            &tls.config,
            tls.server_name.clone(),
            stream,
            &self.host,
            phases,
        )
        .await?;
        result.tls = Some(tls_config::facts(stream.get_ref().1));
        self.health_check(stream, phases, result).await
    }

    /// HTTP/2 handshake and the `Check` call on an established stream: the `processing` phase.
    async fn health_check<S>(
        &self,
        stream: S,
        phases: &mut Phases,
        result: &mut ProbeResult,
    ) -> Result<(), ProbeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let t = Instant::now();
        let heard = Heard::default();
        let answer = self.call(heard.wrap(stream)).await;
        phases.add(Phase::Processing, t.elapsed());
        let what = match self.service.as_str() {
            "" => format!("server {}:{}", self.host, self.port),
            s => format!("service {s:?}"),
        };
        let status = match answer {
            Ok(status) => status,
            Err(e) => {
                let Some(code) = server_code(&e) else {
                    return Err(self.transport_error(&e, &heard.first_bytes()));
                };
                result.grpc = Some(GrpcFacts {
                    status_code: code as u8,
                    serving_status: None,
                });
                let message = match e.message() {
                    "" => String::new(),
                    m => format!(": {m}"),
                };
                return Err(ProbeError::new(
                    ErrorType::Assertion,
                    format!(
                        "health check of {what} answered gRPC status {}{message}, expected OK and SERVING",
                        code_name(code)
                    ),
                ));
            }
        };
        result.grpc = Some(GrpcFacts {
            status_code: 0,
            serving_status: Some(status),
        });
        if status == ServingStatus::Serving {
            return Ok(());
        }
        Err(ProbeError::new(
            ErrorType::Assertion,
            format!("{what} is {}, expected SERVING", status.as_str()),
        ))
    }

    /// One `Check` call over its own HTTP/2 connection, driven here so nothing outlives the run.
    async fn call<S>(&self, stream: S) -> Result<ServingStatus, tonic::Status>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| tonic::Status::from_error(Box::new(e)))?;
        let mut client = HealthClient::with_origin(Channel(sender), self.origin.clone());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.service.clone(),
        });
        *request.metadata_mut() = self.metadata.clone();
        let call = client.check(request);
        let mut connection = std::pin::pin!(connection);
        let mut call = std::pin::pin!(call);
        let response = tokio::select! {
            r = &mut call => r,
            ended = &mut connection => match ended {
                Err(e) => Err(tonic::Status::from_error(Box::new(e))),
                // Closed cleanly before answering: the call sees that itself.
                Ok(()) => call.await,
            },
        }?;
        Ok(serving_status(response.into_inner().status))
    }

    /// A failure before any gRPC answer: the peer does not speak gRPC over HTTP/2 (`protocol`: it answered
    /// something else, or closed the connection without a byte, as HTTP/1 servers do on the HTTP/2 preface), or
    /// the connection broke once HTTP/2 was under way (`connect`). `first` holds the first bytes the peer sent.
    fn transport_error(&self, status: &tonic::Status, first: &[u8]) -> ProbeError {
        let target = format!("{}:{}", self.host, self.port);
        let mut cause = std::error::Error::source(status);
        let mut io = None;
        let mut text = Vec::new();
        while let Some(e) = cause {
            if let Some(not_grpc) = e.downcast_ref::<NotGrpc>() {
                return ProbeError::new(
                    ErrorType::Protocol,
                    format!("{target} is not a gRPC server: {}", not_grpc.0),
                );
            }
            if let Some(e) = e.downcast_ref::<std::io::Error>() {
                io = Some(e.to_string());
            }
            text.push(e.to_string());
            cause = e.source();
        }
        if first.starts_with(b"HTTP/") {
            return ProbeError::new(
                ErrorType::Protocol,
                format!("{target} answered in HTTP/1, not HTTP/2: not a gRPC server"),
            );
        }
        if let Some(io) = io {
            return if first.is_empty() {
                ProbeError::new(
                    ErrorType::Protocol,
                    format!("{target} closed the connection without an HTTP/2 answer: {io}"),
                )
            } else {
                ProbeError::new(
                    ErrorType::Connect,
                    format!("connection to {target} failed during the health check: {io}"),
                )
            };
        }
        let detail = if text.is_empty() {
            status.message().to_string()
        } else {
            text.join(": ")
        };
        ProbeError::new(
            ErrorType::Protocol,
            format!("{target} does not speak gRPC over HTTP/2: {detail}"),
        )
    }
}

const INVALID_METADATA_NAME: &str =
    "not a valid gRPC metadata name (ASCII letters, digits, `-_.`; no `-bin` suffix)";

/// Validates `metadata` once: lowercase-able ASCII names (not `-bin`), visible ASCII values. Errors name the
/// key, never the value (it may be a secret).
fn metadata(pairs: &BTreeMap<String, String>) -> Result<MetadataMap, SpecError> {
    let mut map = MetadataMap::new();
    for (name, value) in pairs {
        let field = format!("metadata.{name}");
        let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| SpecError::new(&field, INVALID_METADATA_NAME))?;
        let mut value = AsciiMetadataValue::try_from(value.as_str())
            .map_err(|_| SpecError::new(&field, "the value must be visible ASCII characters"))?;
        // Never indexed by HPACK compression tables on the way (as HTTP/2 does for credentials).
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

fn serving_status(raw: i32) -> ServingStatus {
    match PbStatus::try_from(raw) {
        Ok(PbStatus::Serving) => ServingStatus::Serving,
        Ok(PbStatus::NotServing) => ServingStatus::NotServing,
        Ok(PbStatus::ServiceUnknown) => ServingStatus::ServiceUnknown,
        Ok(PbStatus::Unknown) | Err(_) => ServingStatus::Unknown,
    }
}

/// The gRPC status the server sent, or `None` when the status was made on this side from a transport error.
fn server_code(status: &tonic::Status) -> Option<Code> {
    std::error::Error::source(status)
        .is_none()
        .then_some(status.code())
}

/// The protocol's name of a status code (`NOT_FOUND`), as servers and grpcurl print it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Keeps the first bytes the peer sends on a run's stream, to tell a peer that never spoke HTTP/2 from a
/// connection lost midway.
#[derive(Clone, Default)]
struct Heard(Arc<std::sync::Mutex<Vec<u8>>>);

/// How many first bytes are kept: enough for `HTTP/`.
const HEARD_BYTES: usize = 5;

impl Heard {
    fn wrap<S>(&self, inner: S) -> HeardStream<S> {
        HeardStream {
            inner,
            heard: self.clone(),
        }
    }

    fn first_bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

struct HeardStream<S> {
    inner: S,
    heard: Heard,
}

impl<S: AsyncRead + Unpin> AsyncRead for HeardStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let mut first = self.heard.0.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < HEARD_BYTES {
            let new = &buf.filled()[before..];
            let room = HEARD_BYTES - first.len();
            first.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeardStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response that is not a gRPC answer (another HTTP status or content type), e.g. an HTTP/2 web server.
#[derive(Debug)]
struct NotGrpc(String);

impl std::fmt::Display for NotGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotGrpc {}

/// The one HTTP/2 connection of a run as the tower service tonic calls; turns non-gRPC responses into
/// [`NotGrpc`] so they are told apart from a status the server sent.
#[derive(Clone)]
struct Channel(http2::SendRequest<tonic::body::Body>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let sent = self.0.send_request(request);
        Box::pin(async move {
            let response = sent.await?;
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if response.status() != http::StatusCode::OK
                || !content_type.starts_with("application/grpc")
            {
                let shown = if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type
                };
                return Err(NotGrpc(format!(
                    "HTTP/2 answer {} with {shown}",
                    response.status().as_u16()
                ))
                .into());
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<GrpcProbe, SpecError> {
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        GrpcProbe::new(&super::super::from_value::<GrpcSpec>(value)?)
    }

    #[test]
    fn config_errors_name_the_field_and_never_a_metadata_value() {
        let e = spec("target: localhost").err().unwrap();
        assert_eq!(e.field, "target");
        let e = spec("target: 'h:1'\nmetadata: {'bad key': x}")
            .err()
            .unwrap();
        assert_eq!(e.field, "metadata.bad key");
        let e = spec("target: 'h:1'\nmetadata: {token-bin: x}")
            .err()
            .unwrap();
        assert_eq!(e.field, "metadata.token-bin");
        let e = spec("target: 'h:1'\nmetadata: {authorization: \"s3cr3t\\u0001\"}")
            .err()
            .unwrap();
        assert_eq!(e.field, "metadata.authorization");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = spec("target: 'h:1'\ntls: {ca_file: /nonexistent/ca.pem}")
            .err()
            .unwrap();
        assert_eq!(e.field, "tls.ca_file");
        let e = spec("target: 'h:1'\nhttp_version: '2'").err().unwrap();
        assert!(e.message.contains("http_version"), "{e}");
    }

    #[test]
    fn the_origin_follows_tls_and_brackets_ipv6() {
        let p = spec("target: '[::1]:50051'").unwrap();
        assert_eq!(p.origin.to_string(), "http://[::1]:50051/");
        let p = spec("target: 'grpc.example.com:443'\ntls: {}\nmetadata: {X-Tenant: a}").unwrap();
        assert_eq!(p.origin.to_string(), "https://grpc.example.com:443/");
        assert_eq!(p.metadata.get("x-tenant").unwrap(), "a");
    }

    #[test]
    fn serving_statuses_outside_the_enum_are_unknown() {
        assert_eq!(serving_status(1), ServingStatus::Serving);
        assert_eq!(serving_status(2), ServingStatus::NotServing);
        assert_eq!(serving_status(3), ServingStatus::ServiceUnknown);
        assert_eq!(serving_status(0), ServingStatus::Unknown);
        assert_eq!(serving_status(42), ServingStatus::Unknown);
    }
}
