//! Test support for the ingest tests: test databases (real SQLite, real PostgreSQL) and a real server on
//! 127.0.0.1:0 over them. For the outage tests: [`pg_cluster`] (a PostgreSQL cluster of the test's own, to
//! stop and start), [`mounts`] (file systems that fill up or fail), [`ingest_process`] (the binary, its logs,
//! SIGKILL, and a recording load).
#![allow(dead_code, unused_macros)]

/// `both!(case, ...)`: each `async fn case(backend: Backend)` as a test on SQLite and one on PostgreSQL.
macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(super::Backend::Postgres).await } )*
        }
    };
}

pub mod ingest_process;
pub mod mounts;
pub mod pg_cluster;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use vantage_common::ShutdownTrigger;
use vantage_ingest::config;
use vantage_ingest::startup::Application;

pub const KEY: &str = "test-key-shop-123";
pub const OTHER_KEY: &str = "test-key-blog-456";
pub const ADMIN_SECRET: &str = "admin-secret-for-tests-0123456789abcdef";
pub const ORIGIN: &str = "https://shop.example.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in a tempdir, or a fresh PostgreSQL database on the server
/// `VANTAGE_TEST_POSTGRES_URL` names (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the end.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub sqlite_path: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    /// Admin URL and database name, to drop it.
    pg: Option<(String, String)>,
}

fn pg_server() -> String {
    std::env::var("VANTAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `server` with its database name replaced by `db` (query string kept).
pub fn with_db(server: &str, db: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    format!("{}/{db}{query}", &base[..end])
}

/// Event id -> rows holding it in the PostgreSQL store at `url`: one site's, or (`None`) every site's.
pub async fn stored_ids(url: &str, site: Option<&str>) -> HashMap<uuid::Uuid, i64> {
    pg_client(url)
        .await
        .query(
            "SELECT event_id::text, COUNT(*) FROM events WHERE ($1::text IS NULL OR site = $1) \
             GROUP BY event_id",
            &[&site],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, &str>(0).parse().unwrap(), r.get(1)))
        .collect()
}

/// Every id in `acked` stored exactly once in the PostgreSQL store at `url` (`site` as for [`stored_ids`]);
/// `context` leads the failure message.
pub async fn assert_stored_once(
    url: &str,
    site: Option<&str>,
    acked: &HashSet<uuid::Uuid>,
    context: &str,
) {
    let rows = stored_ids(url, site).await;
    let missing = acked.iter().filter(|id| !rows.contains_key(id)).count();
    let doubled = rows.values().filter(|n| **n > 1).count();
    assert_eq!(
        (missing, doubled),
        (0, 0),
        "{context}of {} acknowledged events: missing, stored twice",
        acked.len()
    );
}

pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL must be reachable at {url} ({e}); scripts/test.sh starts it, or set \
                 VANTAGE_TEST_POSTGRES_URL"
            )
        });
    tokio::spawn(conn);
    c
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // A nested path: opening must create the parent directories.
                let path = dir.path().join("data/nested/rum.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let name = format!("vantage_test_{}", uuid::Uuid::new_v4().simple());
                let admin = with_db(&pg_server(), "postgres");
                pg_client(&admin)
                    .await
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                TestDb {
                    backend,
                    url: with_db(&pg_server(), &name),
                    sqlite_path: None,
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop may run inside a runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Knobs tests turn; everything else is the default config.
#[derive(Clone)]
pub struct Opts {
    pub rate: f64,
    pub burst: f64,
    pub label_budget: usize,
    pub queue_capacity: usize,
    pub max_events: usize,
    /// Lines added to the `storage:` section (indented two spaces).
    pub storage_extra: String,
    pub extra: String,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            rate: 1_000_000.0,
            burst: 1_000_000.0,
            label_budget: 200,
            queue_capacity: 50_000,
            max_events: 500,
            storage_extra: String::new(),
            extra: String::new(),
        }
    }
}

pub fn config_text(db_url: &str, o: &Opts) -> String {
    format!(
        r#"listen: 127.0.0.1:0
storage:
  url: {db_url}
  queue_capacity: {qc}
  busy_retry_after_secs: 2
{storage_extra}sites:
  - id: shop
    api_key: {KEY}
    allowed_origins: ["{ORIGIN}", "https://*.shop.example.com"]
    rate_limit: {{ events_per_second: {rate}, burst: {burst} }}
    routes: ["/blog/:slug"]
    label_budget: {budget}
  - id: blog
    api_key: {OTHER_KEY}
    allowed_origins: ["https://blog.example.org"]
admin:
  algorithm: HS256
  secret: {ADMIN_SECRET}
limits:
  max_events_per_batch: {me}
{extra}"#,
        qc = o.queue_capacity,
        rate = o.rate,
        burst = o.burst,
        budget = o.label_budget,
        me = o.max_events,
        storage_extra = o.storage_extra,
        extra = o.extra,
    )
}

/// A running server. `stop()` triggers graceful shutdown and waits for the store to drain.
pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    trigger: Option<ShutdownTrigger>,
    join: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(db: &TestDb, o: &Opts) -> TestApp {
    let text = config_text(&db.url, o);
    let settings = config::parse(std::path::Path::new("test.yaml"), &text, |_| None)
        .unwrap_or_else(|e| panic!("test config: {e}"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(settings, listener)
        .await
        .expect("app builds");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let (trigger, shutdown) = vantage_common::shutdown::channel();
    let join = tokio::spawn(app.run(shutdown));
    TestApp {
        addr,
        client: reqwest::Client::builder().no_gzip().build().unwrap(),
        trigger: Some(trigger),
        join: Some(join),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub fn events(&self) -> reqwest::RequestBuilder {
        self.client
            .post(self.url("/v1/events"))
            .header("content-type", "application/json")
    }

    /// POST a JSON body with the shop key.
    pub async fn send(&self, body: &serde_json::Value) -> reqwest::Response {
        self.events()
            .header("x-api-key", KEY)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.trigger.take().unwrap().trigger();
        self.join.take().unwrap().await.unwrap().unwrap();
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stats(&self, kind: &str) -> serde_json::Value {
        let r = self
            .client
            .get(self.url(&format!("/v1/stats/{kind}?site=shop&window=24h")))
            .bearer_auth(admin_token("read"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub use vantage_ingest::clock::now_ms;

pub fn exp(offset_secs: i64) -> i64 {
    now_ms() / 1000 + offset_secs
}

pub fn admin_token(scope: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"scope": scope, "exp": exp(600)}),
        &jsonwebtoken::EncodingKey::from_secret(ADMIN_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The seed SDK's batch, byte for byte except that its timestamps are moved to now.
pub fn seed_batch() -> String {
    let seed = r#"{"events":[{"type":"page_load","session_id":"s-1","timestamp":1732350000000,"user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","viewport":{"width":1280,"height":720},"page":{"url":"https://shop.example.com/products/123?ref=x#top","referrer":""},"metrics":{"dns_lookup":12,"tcp_connection":20,"tls_negotiation":15,"ttfb":120,"content_download":30,"dom_processing":200,"dom_complete":450,"onload":-1732350000000,"total":-1732349999000}},{"type":"api_call","session_id":"s-1","timestamp":1732350000500,"user_agent":"...","viewport":{"width":1280,"height":720},"api":{"method":"GET","endpoint":{},"duration":85,"status":200}},{"type":"long_task","session_id":"s-1","timestamp":1732350001000,"user_agent":"...","viewport":{"width":1280,"height":720},"duration":120,"attribution":[{"name":"self","entryType":"taskattribution","startTime":0,"duration":0}]}]}"#;
    let shift = now_ms() - 1_732_350_001_000;
    seed.replace(
        "1732350000000,\"user",
        &format!("{},\"user", 1_732_350_000_000 + shift),
    )
    .replace("1732350000500", &(1_732_350_000_500 + shift).to_string())
    .replace("1732350001000", &(1_732_350_001_000 + shift).to_string())
}

/// One event of each common type on a page.
pub fn page_load(session: &str, url: &str, total: f64) -> serde_json::Value {
    serde_json::json!({
        "type": "page_load", "session_id": session, "timestamp": now_ms(),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "viewport": {"width": 1280, "height": 720},
        "page": {"url": url, "referrer": ""},
        "metrics": {"ttfb": 100, "dom_complete": total - 10.0, "total": total}
    })
}

/// A `vantage-ingest run` process on 127.0.0.1:0 (the port read from its first log line), JSON logs kept.
/// Killed when dropped.
pub struct Process {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Woken by the log reader after each line it keeps.
    logged: std::sync::Arc<tokio::sync::Notify>,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl Process {
    pub async fn start(db: TestDb, o: &Opts) -> Process {
        Self::start_with(db, o, |_| {}).await
    }

    /// `setup` adjusts the command (environment, limits) before it is spawned.
    pub async fn start_with(
        db: TestDb,
        o: &Opts,
        setup: impl FnOnce(&mut std::process::Command),
    ) -> Process {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ingest.yaml");
        std::fs::write(&cfg, config_text(&db.url, o)).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vantage-ingest"));
        cmd.args(["run", "--log-format", "json", "-c"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped());
        setup(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let kept = logs.clone();
        let logged = std::sync::Arc::new(tokio::sync::Notify::new());
        let wake = logged.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if line.contains("vantage-ingest listening") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let _ = tx.send(v["listen"].as_str().unwrap().parse().unwrap());
                }
                kept.lock().unwrap().push(line);
                wake.notify_waiters();
            }
        });
        let addr = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(std::time::Duration::from_secs(60))
        })
        .await
        .unwrap()
        .expect("the server logs its address");
        Process {
            child,
            addr,
            logs,
            logged,
            _dir: dir,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The first log line that satisfies `found`, waiting for it up to `limit` (woken by each new line).
    pub async fn wait_log(
        &self,
        found: impl Fn(&str) -> bool,
        limit: std::time::Duration,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before looking, so a line kept meanwhile wakes this wait.
            let appended = self.logged.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            if let Some(l) = self.logs().into_iter().find(|l| found(l)) {
                return Some(l);
            }
            tokio::time::timeout_at(deadline, appended).await.ok()?;
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits for the process to exit; how long that took, or None after `limit`.
    pub async fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::time::Duration> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the series `name` in a /metrics text: an unlabelled one, or `name{labels}` with the labels
/// exactly as the server writes them.
/// A percentile the stats API read from the rollups' sketches: within 1 % of the exact nearest-rank value
/// (ingest/src/store/sketch.rs, `RELATIVE_ACCURACY`).
#[allow(dead_code)] // not every test binary reads percentiles
#[track_caller]
pub fn assert_percentile(actual: &serde_json::Value, exact: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("percentile {actual} is not a number"));
    assert!(
        (a - exact).abs() <= exact.abs() * 0.01 + 1e-9,
        "percentile {a} is not within 1 % of the exact {exact}"
    );
}

pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Polls `/metrics` at `base` until `name` satisfies `ok` (the server tells when it got there; no guessing
/// with sleeps). Panics with the last value after `limit`.
pub async fn wait_for_metric(
    base: &str,
    name: &str,
    ok: impl Fn(f64) -> bool,
    limit: std::time::Duration,
) -> f64 {
    let client = reqwest::Client::new();
    let start = std::time::Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        if let Ok(r) = client.get(format!("{base}/metrics")).send().await {
            if let Ok(text) = r.text().await {
                last = metric_value(&text, name);
                if last.is_some_and(&ok) {
                    return last.unwrap();
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{name} never got where it should: last value {last:?}");
}

/// A raw connection that sent the head of `POST /v1/events` with `headers` (each `Name: value`) and `body`.
pub async fn raw_post(
    addr: impl tokio::net::ToSocketAddrs,
    headers: &[&str],
    body: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = String::from("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s
}

/// Reads until the server closes the connection (or `limit` passes: then `None`); what it sent.
pub async fn read_to_close(
    s: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// One stored event as the store takes it (for seeding a store directly), received 5 ms after its client
/// time.
pub fn event_record(
    site: &str,
    session: &str,
    event_type: &str,
    client_ts_ms: i64,
) -> vantage_ingest::store::EventRecord {
    vantage_ingest::store::EventRecord {
        event_id: uuid::Uuid::new_v4(),
        site: site.into(),
        session_id: session.into(),
        event_type: event_type.to_string().into(),
        client_ts_ms,
        received_ms: client_ts_ms + 5,
        route: "/".into(),
        url: "https://shop.example.com/".into(),
        browser: "Chrome".into(),
        os: "Linux".into(),
        device: "desktop".into(),
        value: None,
        name: None,
        endpoint: None,
        status: None,
        rating: None,
        raw: format!(r#"{{"type":"{event_type}","session_id":"{session}"}}"#).into(),
        release: None,
        fingerprint: None,
        stack: None,
    }
}
