//! Misbehaving-on-purpose targets on 127.0.0.1 port 0: an HTTP(S) server with fault routes, a TCP banner/echo
//! server and an HTTP proxy. Each stops when dropped. (The DNS server lives in [`crate::dns`].)
//!
//! HTTP routes (any method):
//! - `/ok` -> 200 `ok`; `/status/N` -> status N
//! - `/slow-headers/MS` -> sleeps MS before the response head; `/slow-body/MS` -> head at once, body after MS
//! - `/hang` -> never answers
//! - `/redirect/N` -> 302 chain of N hops ending at `/ok`; `/loop` -> 302 to itself (`/loop-a` <-> `/loop-b`)
//! - `/large/BYTES` -> a body of BYTES bytes (`/large-chunked/BYTES`: without Content-Length)
//! - `/json` -> `{"status":"up","id":42,"items":[1,2,3],"name":"vantage"}`
//! - `/headers` -> 200 with `x-id: abc123`, `content-type: text/plain; charset=utf-8`, `cache-control: no-store`
//! - `/echo` -> JSON `{method, path, headers:{name:value}, body}` of the request
//! - `/set-cookie` -> sets `session=s3cr3t; Path=/`
//!
//! Every request's path and headers are recorded, in arrival order ([`TestServer::requests`]).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::dns::DnsServer;

type Body = BoxBody<Bytes, Infallible>;

/// A running HTTP(S) target; aborts its tasks on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    tls: bool,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub headers: http::HeaderMap,
}

impl RecordedRequest {
    /// A header's value as text (`None` when absent or not text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Plain HTTP (HTTP/1.1, and h2 with prior knowledge).
    pub async fn http() -> TestServer {
        Self::start(None, false).await
    }

    /// Plain HTTP/1.1 only: an HTTP/2 client's preface is answered the way an HTTP/1 server does.
    pub async fn http1_only() -> TestServer {
        Self::start(None, true).await
    }

    /// HTTPS with the given rustls config (see [`crate::tls::Leaf::server_config`]).
    pub async fn https(config: Arc<rustls::ServerConfig>) -> TestServer {
        Self::start(Some(config), false).await
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, http1_only: bool) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let log = requests.clone();
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        log.lock().unwrap().push(RecordedRequest {
                            path: req.uri().path().to_string(),
                            headers: req.headers().clone(),
                        });
                        route(req)
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    if http1_only {
                        builder = builder.http1_only();
                    }
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
        TestServer {
            addr,
            tls: is_tls,
            connections,
            requests,
            task,
        }
    }

    /// `http(s)://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `https://localhost:PORT{path}` (a name, so the client resolves it and checks the DNS SAN).
    pub fn localhost_url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

fn redirect(to: String) -> Response<Body> {
    let mut resp = full(302, "");
    resp.headers_mut()
        .insert(http::header::LOCATION, to.parse().expect("location"));
    resp
}

async fn route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let head = parts.next().unwrap_or("");
    let arg = parts
        .next()
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let resp = match head {
        "ok" | "" => full(200, "ok"),
        "status" => full(arg as u16, format!("status {arg}")),
        "slow-headers" => {
            tokio::time::sleep(Duration::from_millis(arg)).await;
            full(200, "slow headers")
        }
        "slow-body" => {
            let stream = futures::stream::once(async move {
                tokio::time::sleep(Duration::from_millis(arg)).await;
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"slow body")))
            });
            Response::new(BodyExt::boxed(StreamBody::new(stream)))
        }
        "hang" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        "redirect" if arg <= 1 => redirect("/ok".into()),
        "redirect" => redirect(format!("/redirect/{}", arg - 1)),
        "loop" | "loop-a" => redirect("/loop-b".into()),
        "loop-b" => redirect("/loop-a".into()),
        "large" | "large-chunked" => {
            // Streamed in 64 KiB chunks so a huge size does not allocate on the server side.
            let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
            let n = arg;
            let stream = futures::stream::iter((0..n.div_ceil(64 * 1024)).map(move |i| {
                let len = (n - i * 64 * 1024).min(64 * 1024) as usize;
                Ok::<_, Infallible>(Frame::data(chunk.slice(..len)))
            }));
            let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            if head == "large" {
                resp.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, n.into());
            }
            resp
        }
        "json" => {
            let mut resp = full(
                200,
                r#"{"status":"up","id":42,"items":[1,2,3],"name":"vantage"}"#,
            );
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                "application/json".parse().unwrap(),
            );
            resp
        }
        "gzip" => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(br#"{"status":"up"}"#).expect("in memory");
            let mut resp = full(200, enc.finish().expect("in memory"));
            resp.headers_mut()
                .insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
            resp
        }
        "headers" => {
            let mut resp = full(200, "headers");
            let h = resp.headers_mut();
            h.insert("x-id", "abc123".parse().unwrap());
            h.insert(
                http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8".parse().unwrap(),
            );
            h.insert(http::header::CACHE_CONTROL, "no-store".parse().unwrap());
            resp
        }
        "set-cookie" => {
            let mut resp = full(200, "cookie set");
            resp.headers_mut().insert(
                http::header::SET_COOKIE,
                "session=s3cr3t; Path=/".parse().unwrap(),
            );
            resp
        }
        "echo" => {
            let method = req.method().to_string();
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
                    )
                })
                .collect();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let json = serde_json::json!({
                "method": method, "path": path, "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut resp = full(200, json.to_string());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                "application/json".parse().unwrap(),
            );
            resp
        }
        _ => full(404, "not found"),
    };
    Ok(resp)
}

/// A TCP server: writes `banner` (if any) on connect, then echoes each line back prefixed by `echo: `.
pub struct TcpServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TcpServer {
    pub async fn start(banner: Option<&str>) -> TcpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let banner = banner.map(|b| b.to_string());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let banner = banner.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    if let Some(b) = banner {
                        if w.write_all(format!("{b}\r\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("echo: {line}\r\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        TcpServer { addr, task }
    }
}

/// A minimal HTTP proxy: `CONNECT host:port` tunnels, and absolute-form requests (`GET http://host:port/...`)
/// forwarded to their origin as they are. Counts the requests it handled.
pub struct ProxyServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProxyServer {
    pub async fn start() -> ProxyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match client.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut words = text.split_whitespace();
                    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let authority = if method == "CONNECT" {
                        target.to_string()
                    } else {
                        let rest = target.strip_prefix("http://").unwrap_or("");
                        rest.split('/').next().unwrap_or("").to_string()
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&authority).await else {
                        let _ = client
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    };
                    if method == "CONNECT" {
                        if client
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    } else if upstream.write_all(&head).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        ProxyServer {
            addr,
            requests,
            task,
        }
    }

    /// Requests (CONNECTs and forwarded requests) handled so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// An SMTP-like line server that upgrades to TLS on request: it greets `220 ready`; a `STARTTLS` line is answered
/// `220 go ahead` and the TLS handshake follows (with `config`); over TLS each line is answered `250 <line>`, and
/// before it `500 <line>`.
pub struct StartTlsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for StartTlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StartTlsServer {
    pub async fn start(config: Arc<rustls::ServerConfig>) -> StartTlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if stream.write_all(b"220 ready\r\n").await.is_err() {
                        return;
                    }
                    // Byte by byte, so nothing past the STARTTLS line is buffered away from the handshake.
                    let mut line = Vec::new();
                    let mut byte = [0u8; 1];
                    loop {
                        match tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await {
                            Ok(1) if byte[0] == b'\n' => {
                                let text = String::from_utf8_lossy(&line).trim().to_string();
                                line.clear();
                                if text.eq_ignore_ascii_case("STARTTLS") {
                                    if stream.write_all(b"220 go ahead\r\n").await.is_err() {
                                        return;
                                    }
                                    break;
                                }
                                if stream
                                    .write_all(format!("500 {text}\r\n").as_bytes())
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Ok(1) => line.push(byte[0]),
                            _ => return,
                        }
                    }
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let (r, mut w) = tokio::io::split(tls);
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("250 {line}\r\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        StartTlsServer { addr, task }
    }
}
