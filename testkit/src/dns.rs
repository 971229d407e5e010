//! A tiny authoritative DNS server on 127.0.0.1 that answers a fixed table of records over every transport a
//! check can use: UDP and TCP on one port, DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484, POST over h2).
//!
//! Hand-built on hickory-proto's message type rather than hickory-server: one answer function and three small
//! framings (datagram, 2-byte length prefix, HTTP body) are all a test needs, with the test CA's rustls configs.

use bytes::Bytes;
use hickory_resolver::proto::op::{Message, Metadata, ResponseCode};
use hickory_resolver::proto::rr::{rdata, Name, RData, Record, RecordType};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A running DNS server; aborts its tasks on drop.
pub struct DnsServer {
    /// UDP and TCP (`start`), TLS (`start_tls`) or HTTPS (`start_https`, path `/dns-query`).
    pub addr: SocketAddr,
    zone: Arc<Zone>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `records`: (name, type, value) with type one of A, AAAA, TXT, MX (value `10 mail.example.`).
type Records<'a> = &'a [(&'a str, &'a str, &'a str)];

impl DnsServer {
    /// Plain DNS over UDP, and over TCP on the same port number (as port 53 serves both).
    pub async fn start(records: Records<'_>) -> DnsServer {
        let zone = Arc::new(Zone::new(records));
        // The TCP port must equal the UDP one; another test may hold it, so try a few.
        let (socket, listener) = loop {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
            let port = socket.local_addr().expect("local addr").port();
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
                break (socket, l);
            }
        };
        let addr = socket.local_addr().expect("local addr");
        let udp = {
            let zone = zone.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                        continue;
                    };
                    if let Some(answer) = zone.answer(&buf[..n]) {
                        let _ = socket.send_to(&answer, peer).await;
                    }
                }
            })
        };
        let tcp = serve_streams(listener, None, zone.clone());
        DnsServer {
            addr,
            zone,
            tasks: vec![udp, tcp],
        }
    }

    /// DNS over TLS: the TCP framing inside TLS with `config` (e.g. [`crate::tls::Leaf::server_config_alpn`]).
    pub async fn start_tls(records: Records<'_>, config: Arc<rustls::ServerConfig>) -> DnsServer {
        let zone = Arc::new(Zone::new(records));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = serve_streams(listener, Some(config), zone.clone());
        DnsServer {
            addr,
            zone,
            tasks: vec![task],
        }
    }

    /// DNS over HTTPS: `POST /dns-query` with an `application/dns-message` body, HTTP/2 over TLS with `config`
    /// (its ALPN must offer `h2`).
    pub async fn start_https(records: Records<'_>, config: Arc<rustls::ServerConfig>) -> DnsServer {
        let zone = Arc::new(Zone::new(records));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let served = zone.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, zone) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let zone = zone.clone();
                        async move { Ok::<_, Infallible>(doh(req, &zone).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        DnsServer {
            addr,
            zone,
            tasks: vec![task],
        }
    }

    /// `https://127.0.0.1:PORT/dns-query`, for a DoH server.
    pub fn doh_url(&self) -> String {
        format!("https://{}/dns-query", self.addr)
    }

    /// Queries answered so far.
    pub fn queries(&self) -> usize {
        self.zone.queries.load(Ordering::SeqCst)
    }
}

async fn doh(req: Request<Incoming>, zone: &Zone) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Vec<u8>| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/dns-message"),
        );
        r
    };
    if req.method() != http::Method::POST || req.uri().path() != "/dns-query" {
        return reply(StatusCode::NOT_FOUND, Vec::new());
    }
    let Ok(body) = req.into_body().collect().await else {
        return reply(StatusCode::BAD_REQUEST, Vec::new());
    };
    match zone.answer(&body.to_bytes()) {
        Some(answer) => reply(StatusCode::OK, answer),
        None => reply(StatusCode::BAD_REQUEST, Vec::new()),
    }
}

/// DNS over a byte stream (TCP, or TLS when `tls` is set): each message behind a 2-byte length.
fn serve_streams(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    zone: Arc<Zone>,
) -> JoinHandle<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, zone) = (acceptor.clone(), zone.clone());
            tokio::spawn(async move {
                match acceptor {
                    // A refused handshake (untrusted certificate) is what some tests provoke: just drop it.
                    Some(a) => {
                        if let Ok(tls) = a.accept(stream).await {
                            framed(tls, &zone).await;
                        }
                    }
                    None => framed(stream, &zone).await,
                }
            });
        }
    })
}

async fn framed(mut io: impl AsyncRead + AsyncWrite + Unpin, zone: &Zone) {
    loop {
        let Ok(len) = io.read_u16().await else { return };
        let mut msg = vec![0u8; usize::from(len)];
        if io.read_exact(&mut msg).await.is_err() {
            return;
        }
        let Some(answer) = zone.answer(&msg) else {
            return;
        };
        let mut out = (answer.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&answer);
        if io.write_all(&out).await.is_err() || io.flush().await.is_err() {
            return;
        }
    }
}

/// The records served, and the count of queries answered.
struct Zone {
    table: Vec<(Name, RecordType, RData)>,
    queries: AtomicUsize,
}

impl Zone {
    fn new(records: Records<'_>) -> Zone {
        let mut table = Vec::new();
        for (name, rtype, value) in records {
            let name =
                Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).expect("dns name");
            let (rt, data) = match *rtype {
                "A" => (
                    RecordType::A,
                    RData::A(rdata::A(value.parse().expect("ipv4"))),
                ),
                "AAAA" => (
                    RecordType::AAAA,
                    RData::AAAA(rdata::AAAA(value.parse().expect("ipv6"))),
                ),
                "TXT" => (
                    RecordType::TXT,
                    RData::TXT(rdata::TXT::new(vec![value.to_string()])),
                ),
                "MX" => {
                    let (pref, host) = value.split_once(' ').expect("MX value: 'PREF HOST'");
                    let mx = rdata::MX::new(
                        pref.parse().expect("pref"),
                        Name::from_ascii(host).expect("mx host"),
                    );
                    (RecordType::MX, RData::MX(mx))
                }
                other => panic!("unsupported record type {other}"),
            };
            table.push((name, rt, data));
        }
        Zone {
            table,
            queries: AtomicUsize::new(0),
        }
    }

    /// The wire answer to a wire query: the matching records, NXDOMAIN for unknown names; `None` if the query
    /// does not parse.
    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        self.queries.fetch_add(1, Ordering::SeqCst);
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata = Metadata::response_from_request(&req.metadata);
        resp.metadata.authoritative = true;
        let mut known = false;
        for q in &req.queries {
            resp.add_query(q.clone());
            for (name, rt, data) in &self.table {
                if name.eq_case(q.name()) || name == q.name() {
                    known = true;
                    if *rt == q.query_type() {
                        resp.add_answer(Record::from_rdata(name.clone(), 60, data.clone()));
                    }
                }
            }
        }
        if !known {
            resp.metadata.response_code = ResponseCode::NXDomain;
        }
        resp.to_vec().ok()
    }
}
