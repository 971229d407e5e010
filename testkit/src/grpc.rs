//! A real gRPC health server (tonic-health's `HealthReporter` and `HealthServer`) on 127.0.0.1 port 0, plaintext
//! (HTTP/2 prior knowledge) or TLS (ALPN h2), with per-service statuses and a switch that delays every answer;
//! and a gRPC server without the health service (answers `UNIMPLEMENTED`, as tonic's router does). Each keeps the
//! headers of the last request it received. Stops when dropped.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::codegen::Service;
pub use tonic_health::ServingStatus;

/// A running gRPC health server. The whole server (`""`) starts `SERVING`; other services are unknown until set.
pub struct GrpcHealthServer {
    pub addr: SocketAddr,
    reporter: tonic_health::server::HealthReporter,
    delay_ms: Arc<AtomicU64>,
    calls: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<http::HeaderMap>>,
    task: JoinHandle<()>,
}

impl Drop for GrpcHealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GrpcHealthServer {
    /// Plaintext HTTP/2 (what a `type: grpc` check without `tls` speaks).
    pub async fn plaintext() -> GrpcHealthServer {
        Self::start(None, true).await
    }

    /// Plaintext, answering every call `UNIMPLEMENTED`: a gRPC server that has no health service.
    pub async fn without_health_service() -> GrpcHealthServer {
        Self::start(None, false).await
    }

    /// TLS with the given rustls config; offer ALPN `h2` (see [`crate::tls::Leaf::server_config_alpn`]).
    pub async fn tls(config: Arc<rustls::ServerConfig>) -> GrpcHealthServer {
        Self::start(Some(config), true).await
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, with_health: bool) -> GrpcHealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (reporter, health) = tonic_health::server::health_reporter();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let last_headers = Arc::new(Mutex::new(http::HeaderMap::new()));
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let (delay, counter, seen) = (delay_ms.clone(), calls.clone(), last_headers.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (health, delay, counter) = (health.clone(), delay.clone(), counter.clone());
                let seen = seen.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: http::Request<Incoming>| {
                            let mut health = health.clone();
                            let delay = Duration::from_millis(delay.load(Ordering::SeqCst));
                            counter.fetch_add(1, Ordering::SeqCst);
                            *seen.lock().unwrap() = req.headers().clone();
                            async move {
                                tokio::time::sleep(delay).await;
                                if !with_health {
                                    return Ok(tonic::Status::unimplemented("").into_http());
                                }
                                health.call(req).await
                            }
                        });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            // Handshake failures are what some tests provoke; just drop the connection.
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        GrpcHealthServer {
            addr,
            reporter,
            delay_ms,
            calls,
            last_headers,
            task,
        }
    }

    /// `127.0.0.1:PORT`, a check's `target`.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// `localhost:PORT` (a name, so the client resolves it and verifies the certificate's DNS SAN).
    pub fn localhost_target(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// Sets the status the server answers for `service` (`""`: the whole server).
    pub async fn set(&self, service: &str, status: ServingStatus) {
        self.reporter.set_service_status(service, status).await;
    }

    /// Holds every later answer back by `delay` (a timeout case).
    pub fn delay_answers(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The value of header `name` in the last request received (gRPC metadata travels as headers).
    pub fn last_header(&self, name: &str) -> Option<String> {
        self.last_headers
            .lock()
            .unwrap()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// HTTP/2 requests received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
