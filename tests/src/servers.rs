//! Servers the end-to-end tests run in-process: a probe target that can be taken down (its port closed, so
//! probes see `connect` failures) and brought back on the same port, and the webhook Alertmanager notifies.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

/// Serves `handler` on `listener` (HTTP/1.1) until the returned set is dropped or aborted; each connection is a
/// task of the set, so aborting it closes open keep-alive connections too.
fn serve<F, Fut>(listener: TcpListener, handler: F) -> JoinSet<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut set = JoinSet::new();
    set.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    set
}

/// A target answering `200 ok` on every path, which can be stopped and restarted on the same port.
pub struct SwitchableTarget {
    pub addr: SocketAddr,
    server: Option<JoinSet<()>>,
}

impl SwitchableTarget {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(SwitchableTarget {
            addr,
            server: Some(serve(listener, ok_handler)),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Closes the port and every open connection: probes now fail to connect.
    pub async fn stop(&mut self) {
        if let Some(mut set) = self.server.take() {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }

    /// Listens on the same port again.
    pub async fn restart(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            let socket = TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            match socket.bind(self.addr).and_then(|()| socket.listen(128)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("rebind {}", self.addr)),
            }
        };
        self.server = Some(serve(listener, ok_handler));
        Ok(())
    }
}

async fn ok_handler(_req: Request<Incoming>) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// A target answering `200 ok`, or `503` on the paths that start with a prefix set to fail: one path per region
/// (`/health/eu-west-1`) makes a fault that only one region's agent sees.
pub struct FaultyPaths {
    pub addr: SocketAddr,
    failing: Arc<Mutex<Vec<String>>>,
    _server: JoinSet<()>,
}

impl FaultyPaths {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let failing: Arc<Mutex<Vec<String>>> = Arc::default();
        let f = failing.clone();
        let server = serve(listener, move |req: Request<Incoming>| {
            let f = f.clone();
            async move {
                let path = req.uri().path();
                let fails = f
                    .lock()
                    .expect("paths")
                    .iter()
                    .any(|p| path.starts_with(p.as_str()));
                status(if fails { 503 } else { 200 })
            }
        });
        Ok(FaultyPaths {
            addr,
            failing,
            _server: server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Paths starting with `prefix` answer 503 from now on (`/` for all).
    pub fn fail(&self, prefix: &str) {
        self.failing.lock().expect("paths").push(prefix.to_string());
    }

    /// Every path answers 200 again.
    pub fn heal(&self) {
        self.failing.lock().expect("paths").clear();
    }
}

/// One Alertmanager webhook notification (the fields the tests look at; see Alertmanager's webhook_config).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Notification {
    pub status: String,
    pub alerts: Vec<NotifiedAlert>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct NotifiedAlert {
    pub status: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl NotifiedAlert {
    /// True when this is `alertname` in `status` (`firing` / `resolved`) with every label in `labels`.
    pub fn is(&self, alertname: &str, status: &str, labels: &[(&str, &str)]) -> bool {
        self.status == status
            && self.labels.get("alertname").map(String::as_str) == Some(alertname)
            && labels
                .iter()
                .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// Collects the JSON bodies Alertmanager posts.
pub struct WebhookSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Notification>>>,
    _server: JoinSet<()>,
}

impl WebhookSink {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received: Arc<Mutex<Vec<Notification>>> = Arc::default();
        let store = received.clone();
        let server = serve(listener, move |req: Request<Incoming>| {
            let store = store.clone();
            async move {
                let body = match req.into_body().collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => return status(400),
                };
                match serde_json::from_slice::<Notification>(&body) {
                    Ok(n) => {
                        store.lock().expect("webhook store").push(n);
                        status(200)
                    }
                    Err(_) => status(400),
                }
            }
        });
        Ok(WebhookSink {
            addr,
            received,
            _server: server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    /// Every notification so far.
    pub fn notifications(&self) -> Vec<Notification> {
        self.received.lock().expect("webhook store").clone()
    }

    /// Polls until some notified alert satisfies `pred`, or fails after `timeout` listing what arrived.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&NotifiedAlert) -> bool,
    ) -> Result<NotifiedAlert> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self
                .notifications()
                .iter()
                .flat_map(|n| n.alerts.iter())
                .find(|a| pred(a))
            {
                return Ok(a.clone());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "no {what} within {timeout:?}; notifications received: {:#?}",
                    self.notifications()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = http::StatusCode::from_u16(code).expect("status");
    r
}
