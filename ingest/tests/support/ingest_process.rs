//! The real `vantage-ingest` binary as a child process (its JSON log lines, SIGKILL, SIGTERM, restarts), and a
//! load of concurrent senders that records every answer, for the outage and several-node tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::KEY;

const BIN: &str = env!("CARGO_BIN_EXE_vantage-ingest");
/// The line the binary logs once it is bound, with its address in `listen`.
const LISTENING: &str = "vantage-ingest listening";

/// Generous: the machine may be small and busy.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub struct IngestProcess {
    pub base: String,
    pub client: reqwest::Client,
    child: Option<tokio::process::Child>,
    config: PathBuf,
    log: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
}

impl IngestProcess {
    /// Writes `config` (its `listen:` is overridden) into `dir` and runs the binary until `/healthz` answers.
    pub async fn start(dir: &Path, config: &str) -> IngestProcess {
        Self::start_with_env(dir, config, &[]).await
    }

    /// [`Self::start`] with these environment variables (for `${VAR}` in the config).
    pub async fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> IngestProcess {
        let path = dir.join("ingest.yaml");
        std::fs::write(&path, config).unwrap();
        let mut p = IngestProcess {
            base: String::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            child: None,
            config: path,
            log: dir.join("ingest.log"),
            // The first start binds port 0 and reports the port it got: no other process can take it
            // between our choosing and its binding.
            port: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        p.spawn().await;
        p
    }

    /// Runs the binary on `self.port` (0: any port, the one it got is kept for restarts) until it has logged
    /// its address and `/healthz` answers. A restart whose port something else took meanwhile (`Address
    /// already in use`) is tried again until the port is free.
    async fn spawn(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let bound = loop {
            match self.launch(deadline).await {
                Some(addr) => break addr,
                None => {
                    assert!(
                        Instant::now() < deadline,
                        "port {} stayed in use:\n{}",
                        self.port,
                        self.output()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        self.port = bound.port();
        self.base = format!("http://{bound}");
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("vantage-ingest exited with {status}:\n{}", self.output());
            }
            let up = self
                .client
                .get(self.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "vantage-ingest did not answer /healthz:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the binary once: the address it logged as bound, or `None` when it exited because the port
    /// was in use (only when asking for a given port).
    async fn launch(&mut self, deadline: Instant) -> Option<std::net::SocketAddr> {
        let listening_before = self.logged(LISTENING).len();
        let output_before = self.output().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = tokio::process::Command::new(BIN)
            .args(["run", "--log-format", "json", "-c"])
            .arg(&self.config)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        loop {
            // This run's line comes after those of the earlier runs.
            if let Some(line) = self.logged(LISTENING).get(listening_before) {
                return Some(line["listen"].as_str().unwrap().parse().unwrap());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let output = self.output();
                if self.port != 0 && output[output_before..].contains("Address already in use") {
                    self.child = None;
                    return None;
                }
                panic!("vantage-ingest exited with {status}:\n{output}");
            }
            assert!(
                Instant::now() < deadline,
                "vantage-ingest did not log its address:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the binary again on the same config and port (after [`Self::kill9`] or [`Self::wait_exit`]).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn().await;
    }

    /// SIGKILL, and wait until it is gone.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// Sends `signal` (`libc::SIGTERM`, ...) to the running process.
    pub fn signal(&self, signal: i32) {
        let pid = self
            .child
            .as_ref()
            .expect("running")
            .id()
            .expect("not reaped");
        // SAFETY: kill(2) on our own child, not reaped yet (the `Child` reaps it), so the pid is still its.
        assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    }

    /// Waits up to `limit` for the process to exit: its status, or `None` while it still runs (then it is
    /// left running). After an exit, [`Self::restart`] starts it again.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().expect("running");
        let status = tokio::time::timeout(limit, child.wait())
            .await
            .ok()?
            .unwrap();
        self.child = None;
        Some(status)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the process wrote (JSON log lines and anything else).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.output()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Log lines whose message is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["message"].as_str() == Some(message))
            .collect()
    }

    pub async fn readyz(&self) -> u16 {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    }

    /// An unlabelled sample of `/metrics` (`None` when absent).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Polls `cond` every 100 ms until it holds; fails with `what` and the log after [`PATIENCE`].
    pub async fn wait_for<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + PATIENCE;
        while !cond().await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Posts `body` to `/v1/events` with the shop key.
    pub async fn send(&self, body: &Value) -> Answer {
        send(&self.client, &self.base, body).await
    }

    /// Posts one batch of `n` fresh events of `session`: the answer and the event ids sent.
    pub async fn post(&self, session: &str, n: usize) -> Sent {
        post(&self.client, &self.base, session, n).await
    }
}

/// What one request got.
#[derive(Debug, Clone)]
pub struct Answer {
    /// 0: no HTTP answer at all.
    pub status: u16,
    pub retry_after: Option<String>,
    /// `accepted` of a 202 (or of a 200 for a batch recognised by its `batch_id`).
    pub accepted: u64,
    /// The JSON body (`Null` when there was none, or it was not JSON).
    pub body: Value,
    pub at: Instant,
}

/// `n` page loads with fresh ids (UUIDv4) in `session`.
pub fn batch(session: &str, n: usize) -> (Value, Vec<uuid::Uuid>) {
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "type": "page_load", "session_id": session, "timestamp": super::now_ms(),
                "event_id": id.to_string(),
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                "page": {"url": "https://shop.example.com/products/42", "referrer": ""},
                "metrics": {"ttfb": 100, "total": 480}
            })
        })
        .collect();
    (json!({ "events": events }), ids)
}

pub async fn post(client: &reqwest::Client, base: &str, session: &str, n: usize) -> Sent {
    let (body, ids) = batch(session, n);
    (send(client, base, &body).await, ids)
}

/// Posts `body` to `/v1/events` with the shop key; what came back (status 0: no HTTP answer).
pub async fn send(client: &reqwest::Client, base: &str, body: &Value) -> Answer {
    let sent = client
        .post(format!("{base}/v1/events"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Err(_) => Answer {
            status: 0,
            retry_after: None,
            accepted: 0,
            body: Value::Null,
            at: Instant::now(),
        },
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Answer {
                status,
                retry_after,
                accepted: body["accepted"].as_u64().unwrap_or(0),
                body,
                at: Instant::now(),
            }
        }
    }
}

/// One request's answer and the ids of the events it carried.
pub type Sent = (Answer, Vec<uuid::Uuid>);

/// Concurrent senders, each posting `batch`-event batches in a closed loop with `pause` between requests,
/// recording every answer with the ids it carried.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sent>>>,
}

impl Load {
    pub fn start(base: &str, senders: usize, batch: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..senders)
            .map(|t| {
                let (stop, base) = (stop.clone(), base.to_string());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(60))
                        .build()
                        .unwrap();
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        answers.push(post(&client, &base, &format!("load-{t}"), batch).await);
                        tokio::time::sleep(pause).await;
                    }
                    answers
                })
            })
            .collect();
        Load { stop, tasks }
    }

    pub async fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all
    }
}
