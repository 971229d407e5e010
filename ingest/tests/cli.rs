//! The `vantage-ingest` binary: check-config messages, SIGTERM draining the store before exit, and SIGKILL
//! under load keeping every acknowledged event.

mod support;

use serde_json::json;
use std::process::Command;
use std::time::Duration;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_vantage-ingest");

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ingest.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&path)
        .env("RUM_TEST_SECRET_KEY", "very-secret-key-value")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.success(),
        text.replace(&path.display().to_string(), "FILE"),
    )
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let out = Command::new(BIN)
        .args([
            "check-config",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../config/ingest.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_errors_name_file_line_column_and_field() {
    let base = "storage:\n  url: sqlite://x.db\nsites:\n  - id: shop\n    api_key: ${RUM_TEST_SECRET_KEY}\n";
    let (ok, msg) = check(base);
    assert!(ok, "{msg}");
    let (ok, msg) = check(&format!("{base}    alowed_origins: []\n"));
    assert!(!ok);
    assert!(
        msg.starts_with("FILE:6:5: sites[0].alowed_origins: unknown field"),
        "{msg}"
    );
    let (ok, msg) = check(&format!(
        "{base}    allowed_origins: [\"shop.example.com\"]\n"
    ));
    assert!(!ok);
    assert!(msg.contains("sites[0].allowed_origins[0]"), "{msg}");
    let (ok, msg) = check(&base.replace("sqlite://", "mongodb://"));
    assert!(!ok);
    assert!(msg.starts_with("FILE:2:3: storage.url"), "{msg}");
    let (ok, msg) = check(&format!("{base}limits:\n  max_past: soon\n"));
    assert!(!ok);
    assert!(msg.contains("limits.max_past"), "{msg}");
    let (ok, msg) = check(&format!("{base}admin:\n  algorithm: none\n"));
    assert!(!ok);
    assert!(msg.contains("not supported"), "{msg}");
    // The key came from the environment: it must never be echoed.
    let (ok, msg) = check(&format!("{base}    label_budget: 0\n"));
    assert!(!ok);
    assert!(!msg.contains("very-secret-key-value"), "{msg}");
}

/// A running `vantage-ingest run` on a fresh SQLite store (killed when dropped).
struct Server {
    db: TestDb,
    _dir: tempfile::TempDir,
    child: tokio::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start() -> Self {
        let db = TestDb::new(Backend::Sqlite).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ingest.yaml");
        std::fs::write(&cfg, config_text(&db.url, &Opts::default())).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(BIN)
            .args(["run", "--log-format", "text", "-c"])
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Self {
                    db,
                    _dir: dir,
                    child,
                    base,
                    client,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not become ready");
    }

    /// Posts 20 page loads with the given session; the number accepted, or None when the post failed.
    async fn post(&self, session: &str) -> Option<u64> {
        let events: Vec<_> = (0..20).map(|_| page_load(session, "/", 10.0)).collect();
        let r = self
            .client
            .post(format!("{}/v1/events", self.base))
            .header("x-api-key", KEY)
            .body(json!({ "events": events }).to_string())
            .send()
            .await
            .ok()?;
        if r.status() != 202 {
            return None;
        }
        r.json::<serde_json::Value>().await.ok()?["accepted"].as_u64()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits after the signal")
            .unwrap()
    }

    /// Sessions stored and how many events each has, read with a fresh connection.
    fn stored(&self) -> std::collections::HashMap<String, u64> {
        let conn = rusqlite::Connection::open(self.db.sqlite_path.as_ref().unwrap()).unwrap();
        let mut stmt = conn
            .prepare("SELECT session_id, COUNT(*) FROM events GROUP BY session_id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

#[tokio::test]
async fn sigterm_drains_and_keeps_acknowledged_events() {
    let mut server = Server::start().await;
    let mut acked = 0;
    for b in 0..5 {
        acked += server.post(&format!("s{b}")).await.expect("accepted");
    }
    // SIGTERM, as an orchestrator sends it.
    server.signal("-TERM");
    let status = server.wait_exit().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(server.stored().values().sum::<u64>(), acked);
}

/// The writer commits without waiting for the disk and a second thread fsyncs before answering: whatever
/// was answered 202 must be in the database after the process is killed mid-load.
#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let mut server = Server::start().await;
    let server_ref = &server;
    let senders = (0..8).map(|t| async move {
        let mut acked = Vec::new();
        for b in 0.. {
            let session = format!("t{t}-b{b}");
            match server_ref.post(&session).await {
                Some(n) => acked.push((session, n)),
                None => return acked,
            }
        }
        acked
    });
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server_ref.signal("-KILL");
    };
    let (acked, ()) = tokio::join!(futures::future::join_all(senders), killer);
    server.wait_exit().await;
    let stored = server.stored();
    let acked: Vec<_> = acked.into_iter().flatten().collect();
    assert!(acked.len() > 20, "load ran: {} batches", acked.len());
    for (session, n) in acked {
        assert_eq!(
            stored.get(&session),
            Some(&n),
            "acknowledged batch {session}"
        );
    }
}
