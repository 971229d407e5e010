//! The `vantage-ingest` binary: check-config messages, and SIGTERM draining the store before exit.

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

#[tokio::test]
async fn sigterm_drains_and_keeps_acknowledged_events() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ingest.yaml");
    std::fs::write(&cfg, config_text(&db.url, &Opts::default())).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "--log-format", "text", "-c"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server became ready");
    let mut acked = 0;
    for b in 0..5 {
        let events: Vec<_> = (0..20)
            .map(|i| page_load(&format!("{b}-{i}"), "/", 10.0))
            .collect();
        let r = client
            .post(format!("{base}/v1/events"))
            .header("x-api-key", KEY)
            .body(json!({ "events": events }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        acked += r.json::<serde_json::Value>().await.unwrap()["accepted"]
            .as_u64()
            .unwrap();
    }
    let pid = child.id().unwrap() as i32;
    // SIGTERM, as an orchestrator sends it.
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let conn = rusqlite::Connection::open(db.sqlite_path.as_ref().unwrap()).unwrap();
    let n: u64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, acked);
}
