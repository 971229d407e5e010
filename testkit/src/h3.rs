//! An HTTP/3 target: QUIC (quinn) + HTTP/3 (h3) on 127.0.0.1 UDP port 0 with a test-PKI certificate, ALPN `h3`.
//! Routes: `/ok` -> 200 `ok`; `/status/N` -> N; `/redirect/N` -> 302 chain ending at `/ok`; `/early` -> 200
//! `early` sent without reading the request body, whose sending the server stops (`H3_NO_ERROR`, RFC 9114 4.1.1).
//! Request paths and headers are recorded in arrival order, and the distinct client addresses (UDP source address
//! and port) seen. Stops when dropped.

use crate::servers::RecordedRequest;
use crate::tls::Leaf;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct H3Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    clients: Arc<Mutex<BTreeSet<SocketAddr>>>,
    task: JoinHandle<()>,
}

impl Drop for H3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H3Server {
    /// Serves HTTP/3 with `leaf`'s certificate.
    pub async fn start(leaf: &Leaf) -> H3Server {
        let tls = leaf.server_config_alpn(&[b"h3"]);
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("a TLS 1.3 config");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint =
            quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).expect("bind UDP");
        let addr = endpoint.local_addr().expect("local addr");
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let log = requests.clone();
        let clients: Arc<Mutex<BTreeSet<SocketAddr>>> = Arc::default();
        let seen = clients.clone();
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                seen.lock().unwrap().insert(incoming.remote_address());
                let log = log.clone();
                tokio::spawn(async move {
                    // Failed handshakes are what some tests provoke; just drop them.
                    let Ok(conn) = incoming.await else { return };
                    let Ok(mut h3) =
                        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn))
                            .await
                    else {
                        return;
                    };
                    while let Ok(Some(resolver)) = h3.accept().await {
                        let log = log.clone();
                        tokio::spawn(async move {
                            let Ok((req, mut stream)) = resolver.resolve_request().await else {
                                return;
                            };
                            log.lock().unwrap().push(RecordedRequest {
                                path: req.uri().path().to_string(),
                                headers: req.headers().clone(),
                            });
                            if req.uri().path() == "/early" {
                                stream.stop_sending(h3::error::Code::H3_NO_ERROR);
                            }
                            let (status, body, location) = route(req.uri().path());
                            let mut resp = http::Response::builder().status(status);
                            if let Some(l) = location {
                                resp = resp.header(http::header::LOCATION, l);
                            }
                            let _ = stream.send_response(resp.body(()).unwrap()).await;
                            let _ = stream.send_data(Bytes::from(body)).await;
                            let _ = stream.finish().await;
                        });
                    }
                });
            }
        });
        H3Server {
            addr,
            requests,
            clients,
            task,
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `https://localhost:PORT{path}`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The distinct addresses connections came from: one per client UDP socket.
    pub fn client_addrs(&self) -> BTreeSet<SocketAddr> {
        self.clients.lock().unwrap().clone()
    }
}

/// (status, body, Location).
fn route(path: &str) -> (u16, String, Option<String>) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let head = parts.next().unwrap_or("");
    let arg = parts
        .next()
        .and_then(|a| a.parse::<u16>().ok())
        .unwrap_or(0);
    match head {
        "ok" | "" => (200, "ok".into(), None),
        "early" => (200, "early".into(), None),
        "status" => (arg, format!("status {arg}"), None),
        "redirect" if arg <= 1 => (302, String::new(), Some("/ok".into())),
        "redirect" => (302, String::new(), Some(format!("/redirect/{}", arg - 1))),
        _ => (404, "not found".into(), None),
    }
}
