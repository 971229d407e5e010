//! Servers a fleet of agents talks to, on 127.0.0.1 port 0: a config server (one text for every agent, with
//! ETags, a bearer token, and fault switches) and a fault-injecting forwarder to put in front of a remote-write
//! receiver. Each stops when dropped.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Serves `handler` on a fresh 127.0.0.1 port (HTTP/1.1) until the handle is aborted, which closes the port and
/// every open connection (as a server going away does).
async fn serve<F, Fut>(handler: F) -> (SocketAddr, JoinHandle<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let handler = handler.clone();
            connections.spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// What the config server answers.
#[derive(Debug, Default)]
struct ConfigState {
    text: String,
    version: u64,
    /// Answer this status instead of the config.
    fail: Option<u16>,
    requests: usize,
    not_modified: usize,
}

/// Serves one config text at every path to clients with the right bearer token, with an ETag per version and
/// 304 for a matching `If-None-Match`.
pub struct ConfigServer {
    pub addr: SocketAddr,
    token: Option<String>,
    state: Arc<Mutex<ConfigState>>,
    task: JoinHandle<()>,
}

impl Drop for ConfigServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConfigServer {
    /// Serves `text`; with `token`, only to `Authorization: Bearer <token>` (else 401).
    pub async fn start(text: &str, token: Option<&str>) -> ConfigServer {
        let state = Arc::new(Mutex::new(ConfigState {
            text: text.to_string(),
            version: 1,
            ..Default::default()
        }));
        let s = state.clone();
        let want = token.map(|t| format!("Bearer {t}"));
        let (addr, task) = serve(move |req: Request<Incoming>| {
            let s = s.clone();
            let want = want.clone();
            async move {
                let mut st = s.lock().unwrap();
                st.requests += 1;
                if let Some(code) = st.fail {
                    return respond(StatusCode::from_u16(code).unwrap(), "failing on purpose");
                }
                let auth = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if want.is_some() && auth != want.as_deref() {
                    return respond(StatusCode::UNAUTHORIZED, "bad token");
                }
                let etag = format!("\"v{}\"", st.version);
                let matches = req
                    .headers()
                    .get(http::header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == etag.as_bytes());
                let mut r = if matches {
                    st.not_modified += 1;
                    respond(StatusCode::NOT_MODIFIED, "")
                } else {
                    respond(StatusCode::OK, st.text.clone())
                };
                r.headers_mut()
                    .insert(http::header::ETAG, etag.parse().unwrap());
                r
            }
        })
        .await;
        ConfigServer {
            addr,
            token: token.map(str::to_string),
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Serves `text` from now on (a new version, so a new ETag).
    pub fn set(&self, text: &str) {
        let mut st = self.state.lock().unwrap();
        st.text = text.to_string();
        st.version += 1;
    }

    /// Answers `status` to every request (`None`: serve the config again).
    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail = status;
    }

    /// Requests received so far, and how many of them were answered 304.
    pub fn requests(&self) -> (usize, usize) {
        let st = self.state.lock().unwrap();
        (st.requests, st.not_modified)
    }
}

/// Forwards every request to an upstream HTTP server (a remote-write receiver) unchanged, or answers a fault
/// status instead while one is set; records every request body with the status it got.
pub struct FaultyForwarder {
    pub addr: SocketAddr,
    fault: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    faulted: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<(Bytes, u16)>>>,
    task: JoinHandle<()>,
}

impl Drop for FaultyForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyForwarder {
    /// Forwards to `upstream` (`host:port`).
    pub async fn start(upstream: SocketAddr) -> FaultyForwarder {
        let fault = Arc::new(AtomicU16::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let faulted = Arc::new(AtomicUsize::new(0));
        let log: Arc<Mutex<Vec<(Bytes, u16)>>> = Arc::default();
        let (f, r, fd, l) = (
            fault.clone(),
            requests.clone(),
            faulted.clone(),
            log.clone(),
        );
        let (addr, task) = serve(move |req: Request<Incoming>| {
            let (f, r, fd, l) = (f.clone(), r.clone(), fd.clone(), l.clone());
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let status = f.load(Ordering::SeqCst);
                let resp = if status != 0 {
                    fd.fetch_add(1, Ordering::SeqCst);
                    respond(StatusCode::from_u16(status).unwrap(), "fault injected")
                } else {
                    match forward(upstream, Request::from_parts(parts, body.clone())).await {
                        Ok(r) => r,
                        Err(e) => respond(StatusCode::BAD_GATEWAY, e),
                    }
                };
                l.lock().unwrap().push((body, resp.status().as_u16()));
                resp
            }
        })
        .await;
        FaultyForwarder {
            addr,
            fault,
            requests,
            faulted,
            log,
            task,
        }
    }

    /// Every request body received so far, with the status it was answered.
    pub fn bodies(&self) -> Vec<(Bytes, u16)> {
        self.log.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` to every request from now on; `None` forwards again.
    pub fn fault(&self, status: Option<u16>) {
        self.fault.store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Requests received, and how many of them got the fault.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::SeqCst),
            self.faulted.load(Ordering::SeqCst),
        )
    }
}

async fn forward(
    upstream: SocketAddr,
    req: Request<Bytes>,
) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut out = Request::from_parts(parts, Full::new(body));
    out.headers_mut()
        .insert(http::header::HOST, upstream.to_string().parse().unwrap());
    let resp = sender.send_request(out).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
