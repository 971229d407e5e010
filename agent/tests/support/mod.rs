//! Shared helpers for the agent's runtime tests: spawn an agent on 127.0.0.1:0 from YAML text, poll it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use vantage_agent::app::{self, Agent};
use vantage_agent::reload;
use vantage_agent::source::ConfigSource;
use vantage_common::ShutdownTrigger;

pub struct TestAgent {
    pub agent: Agent,
    pub base: String,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
    _shutdown: ShutdownTrigger,
}

/// Writes `yaml` to a fresh directory and starts an agent on it, listening on 127.0.0.1:0.
pub async fn spawn_agent(yaml: &str) -> TestAgent {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(&config, yaml).unwrap();
    spawn_agent_from(ConfigSource::File(config.clone()), None, dir, config).await
}

/// Starts an agent on `source` (a file or a URL) with `--region` `region`, listening on 127.0.0.1:0; `dir` is
/// kept alive with it.
pub async fn spawn_agent_from(
    source: ConfigSource,
    region: Option<&str>,
    dir: tempfile::TempDir,
    config: PathBuf,
) -> TestAgent {
    let (loaded, boot_error) = reload::load(&source, region, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (trigger, shutdown) = vantage_common::shutdown::channel();
    let agent = app::start(
        app::Options {
            source,
            region: region.map(str::to_string),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            poll: Duration::from_secs(1),
        },
        loaded,
        boot_error,
        shutdown,
    )
    .await
    .unwrap();
    TestAgent {
        base: format!("http://{}", agent.addr),
        agent,
        config,
        dir,
        _shutdown: trigger,
    }
}

/// Loads a config file as the agent would (no region override).
pub async fn load_config(path: &Path) -> vantage_agent::config::AgentConfig {
    reload::load(&ConfigSource::File(path.to_path_buf()), None, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
        .config
}

impl TestAgent {
    pub async fn get(&self, path: &str) -> (u16, String) {
        get(&format!("{}{path}", self.base)).await
    }

    pub async fn checks(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/api/v1/checks").await.1).unwrap()
    }

    /// The check's entry in /api/v1/checks.
    pub async fn check(&self, name: &str) -> Option<serde_json::Value> {
        self.checks().await["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    }
}

pub async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent binary built by cargo for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_vantage-agent");

/// Writes `text` as `agent.yaml` in `dir`; returns the path.
pub fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("agent.yaml");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs the binary to completion with one extra environment variable (and no VANTAGE_REGION from the test's own
/// environment): (exit code, stdout, stderr).
pub fn run_bin(args: &[&str], env: (&str, &str)) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_remove("VANTAGE_REGION")
        .env(env.0, env.1)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `vantage-agent run` process listening on a port it chose itself (`--listen 127.0.0.1:0`, the address read
/// from its "agent started" log line, so no port is handed over with a race), whose log lines (stderr) are
/// collected. Killed when dropped, so a failing assertion never leaves an agent running.
pub struct AgentProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The thread that reads stderr; it ends when the process closes it (exits).
    reader: Option<std::thread::JoinHandle<()>>,
    /// Every log line received so far.
    pub logs: Vec<String>,
}

/// How long an agent may take from spawn to listening.
const STARTUP_SECS: u64 = 30;

impl AgentProcess {
    pub async fn spawn(config_path: &str, env: (&str, &str)) -> Self {
        Self::spawn_with_env(config_path, &[env]).await
    }

    /// [`AgentProcess::spawn`] with any number of environment variables (and no VANTAGE_REGION but theirs).
    /// Returns once the agent is listening.
    pub async fn spawn_with_env(config_path: &str, envs: &[(&str, &str)]) -> Self {
        Self::spawn_command(Self::command(config_path, envs)).await
    }

    /// [`AgentProcess::spawn`] with both the soft and the hard `RLIMIT_NOFILE` at `nofile` (set in the child
    /// before it runs the agent), so the agent cannot raise it.
    pub async fn spawn_with_fd_limit(config_path: &str, nofile: u64) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = Self::command(config_path, &[]);
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: nofile as libc::rlim_t,
                    rlim_max: nofile as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::spawn_command(cmd).await
    }

    fn command(config_path: &str, envs: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["run", "-c", config_path, "--listen", "127.0.0.1:0"])
            .env_remove("VANTAGE_REGION")
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// `vantage-agent blackbox --config.file <config_path> --web.listen-address 127.0.0.1:0` plus `args`, at log
    /// level info whatever the test's environment says; returns once its `"blackbox exporter started"` line gave the
    /// address it bound (`base`).
    pub async fn spawn_blackbox(config_path: &str, args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["blackbox", "--config.file", config_path])
            .args(["--web.listen-address", "127.0.0.1:0", "--log.level", "info"])
            .args(args)
            .env_remove("VANTAGE_REGION")
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped());
        Self::spawn_until(
            cmd,
            "the blackbox exporter to start listening",
            "\"blackbox exporter started\"",
        )
        .await
    }

    async fn spawn_command(cmd: std::process::Command) -> Self {
        Self::spawn_until(cmd, "the agent to start listening", "\"agent started\"").await
    }

    /// Spawns `cmd` (stderr piped) and waits for its JSON start line containing `needle`, which carries the bound
    /// address in `"listen"`.
    async fn spawn_until(mut cmd: std::process::Command, what: &str, needle: &str) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut agent = AgentProcess {
            child,
            base: String::new(),
            lines,
            reader: Some(reader),
            logs: Vec::new(),
        };
        let started = agent.wait_for_log(STARTUP_SECS, what, needle).await;
        agent.base = format!("http://{}", listen_address(&started));
        agent
    }

    /// Collects the log lines that arrived since the last call.
    pub fn collect_logs(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.logs.push(line);
        }
        &self.logs
    }

    /// Waits up to `secs` for a log line containing `needle` (one already received counts), and fails with the
    /// lines so far if the deadline passes or the process exits first.
    pub async fn wait_for_log(&mut self, secs: u64, what: &str, needle: &str) -> String {
        if let Some(l) = self.collect_logs().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.logs.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Ok(None) => panic!(
                    "the agent exited while waiting for {what}; its log:\n{}",
                    self.logs.join("\n")
                ),
                Err(_) => panic!(
                    "timed out after {secs}s waiting for {what}; the log so far:\n{}",
                    self.logs.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` (e.g. `-HUP`) to the process.
    pub fn signal(&self, signal: &str) -> bool {
        std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops the process with SIGTERM, waits for it and for the end of its log, and returns every log line it
    /// wrote.
    pub fn stop(&mut self) -> String {
        self.signal("-TERM");
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            // The process has exited, so its stderr is at EOF and the reader ends after the last line.
            let _ = reader.join();
        }
        self.collect_logs().join("\n")
    }
}

/// The address in the agent's JSON start line ("agent started", "blackbox exporter started"):
/// `"listen":"127.0.0.1:PORT"`.
fn listen_address(line: &str) -> std::net::SocketAddr {
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the agent's start line is not JSON ({e}): {line}"));
    v["listen"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listen address in the agent's start line: {line}"))
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
