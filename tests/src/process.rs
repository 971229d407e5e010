//! Locating the workspace and the built binaries, picking free ports, and child processes that die with the test.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the workspace that contains this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary of this workspace, built next to the test executable: `target/<profile>/deps/<test>` ->
/// `target/<profile>/<name>`. The test command (`scripts/test.sh`) runs `cargo build --workspace --bins` before
/// `cargo test`, so a missing binary is an error that says so, never a skipped test.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent().context("test executable has no directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps/ has no parent")?;
    }
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} does not exist: build the binaries first (cargo build --workspace --bins)",
            path.display()
        );
    }
    Ok(path)
}

/// A system binary (Debian packages: prometheus, prometheus-alertmanager, promtool).
pub fn system_binary(name: &str) -> Result<PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{name} is not installed (scripts/test.sh installs the Debian package that provides it)")
}

/// A port that was free a moment ago on 127.0.0.1 (for processes that cannot report the port they bound).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A child process with its output in a log file; killed (by its own pid) when dropped.
pub struct ChildProcess {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Starts `program args` in `dir`, stdout and stderr to `<log_dir>/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(log_dir);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        Ok(ChildProcess {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The process's output so far (for failure messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Last `n` lines of the output.
    pub fn tail(&self, n: usize) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Fails if the process has exited (with its output).
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}:\n{}", self.name, self.tail(40));
        }
        Ok(())
    }

    /// Waits for a JSON log line whose message contains `message` and returns its string field `field`, failing
    /// early if the process exits.
    pub async fn wait_for_log_field(
        &mut self,
        message: &str,
        field: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            let found = self.output().lines().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["message"]
                    .as_str()?
                    .contains(message)
                    .then(|| v[field].as_str().map(str::to_string))?
            });
            if let Some(v) = found {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} logged no {message:?} with {field} within {timeout:?}:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `url` answers 2xx, failing early if the process exits.
    pub async fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready at {url} after {timeout:?}:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
