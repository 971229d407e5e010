//! The `vantage-ingest` binary: check-config messages, `token` minting admin tokens the server takes, SIGTERM
//! draining the store before exit, and SIGKILL under load keeping every acknowledged event.

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
    dir: tempfile::TempDir,
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
                    dir,
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

    /// The config file the server runs with.
    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("ingest.yaml")
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

/// `vantage-ingest token [-c FILE] [--scope S] [--ttl D]`: exit code, standard output, standard error.
fn token(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["token", "-c"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// An operator mints tokens with the binary from the config the server runs with: a `read` one opens the stats
/// API (what the explorer reads) but not the admin endpoints, an `admin` one opens both, and one whose life is
/// over is refused. Only the token is printed on standard output; no message holds the secret.
#[tokio::test]
async fn token_mints_admin_tokens_the_running_server_takes() {
    let server = Server::start().await;
    let cfg = server.config();
    let get = |path: &str, token: &str| {
        let req = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let (code, read, err) = token(&cfg, &[]);
    assert_eq!(code, Some(0), "{err}");
    let read = read.strip_suffix('\n').expect("one line");
    assert_eq!(read.split('.').count(), 3, "a JWT alone on stdout: {read}");
    assert!(err.starts_with("scope read, valid for 8h (until "), "{err}");
    let stats = "/v1/stats/timeline?site=shop&window=1h";
    let maps = "/v1/admin/sourcemaps?site=shop";
    assert_eq!(get(stats, read).await, 200);
    assert_eq!(get(maps, read).await, 403);

    let (code, admin, err) = token(&cfg, &["--scope", "admin", "--ttl", "10m"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.starts_with("scope admin, valid for 10m"), "{err}");
    assert_eq!(get(maps, admin.trim()).await, 200);
    assert_eq!(get(stats, admin.trim()).await, 200);

    // A token for one second is refused once the second (and the server's 30 s of clock leeway) has passed:
    // checked by its claims here rather than by waiting.
    let (_, short, _) = token(&cfg, &["--ttl", "1s"]);
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            short.trim().split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["scope"], "read");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1
    );

    // What cannot be minted: a clear reason, exit 1 (2 for a config that does not load), nothing on stdout.
    for (args, code, want) in [
        (
            &["--ttl", "91d"][..],
            1,
            "--ttl must be more than 0 and at most 90 days",
        ),
        (&["--ttl", "0s"][..], 1, "--ttl must be more than 0"),
        (
            &["--ttl", "soon"][..],
            2,
            "invalid value 'soon' for '--ttl <TTL>'",
        ),
        (
            &["--scope", "write"][..],
            2,
            "invalid value 'write' for '--scope <SCOPE>'",
        ),
    ] {
        let (c, out, err) = token(&cfg, args);
        assert_eq!((c, out.as_str()), (Some(code), ""), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains(ADMIN_SECRET), "{err}");
    }
    let text = std::fs::read_to_string(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("ingest.yaml");
    let without_admin: String = text
        .split_inclusive('\n')
        .filter(|l| {
            !l.starts_with("admin:")
                && !l.starts_with("  algorithm: HS256")
                && !l.starts_with("  secret:")
        })
        .collect();
    std::fs::write(&other, &without_admin).unwrap();
    let (c, out, err) = token(&other, &[]);
    assert_eq!((c, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("the config has no `admin` section"), "{err}");
    std::fs::write(&other, text.replace(ADMIN_SECRET, "too-short")).unwrap();
    let (c, out, err) = token(&other, &[]);
    assert_eq!((c, out.as_str()), (Some(2), ""), "{err}");
    assert!(
        err.ends_with("admin: HS256 secret must be at least 32 bytes\n"),
        "{err}"
    );
    assert!(!err.contains("too-short"), "{err}");
}

/// The shipped example on an address others can reach, without a secret of one's own (as `docker run` with the
/// image's default command and no RUM_ADMIN_SECRET): refused before it listens, by `run` and by `check-config`.
#[test]
fn the_examples_published_admin_secret_is_refused_off_loopback() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/ingest.yaml");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c", example, "--listen", "0.0.0.0:0"])
        .current_dir(dir.path())
        .env_remove("RUM_ADMIN_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("vantage-ingest: admin.secret is the example config's published default"),
        "{err}"
    );
    assert!(err.contains("0.0.0.0:0 is not a loopback address"), "{err}");
    assert!(!err.contains("dev-admin-secret"), "{err}");
    // Refused before the store was opened: nothing written where it runs.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("listen: 127.0.0.1:9480", "listen: 0.0.0.0:9480");
    let path = dir.path().join("ingest.yaml");
    std::fs::write(&path, &text).unwrap();
    let check = |secret: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["check-config", "-c"]).arg(&path);
        match secret {
            Some(s) => cmd.env("RUM_ADMIN_SECRET", s),
            None => cmd.env_remove("RUM_ADMIN_SECRET"),
        };
        cmd.output().unwrap()
    };
    let out = check(None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("published default"), "{err}");
    let out = check(Some("a-secret-of-our-own-at-least-32-bytes-long"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
