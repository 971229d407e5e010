//! A PostgreSQL cluster of the test's own (initdb + pg_ctl on a free port, data in a temp dir), which the test
//! may stop, start, hang or restart as a standby. Never the machine's shared server.
//!
//! The server binaries come from `/usr/lib/postgresql/<newest>/bin` (Debian's `postgresql` package, which
//! scripts/test.sh installs when missing). Run as root, they run as the `postgres` user (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest installed server version's binaries.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install the Debian package \
             postgresql (scripts/test.sh does)"
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    /// initdb and start a fresh cluster on a free port of 127.0.0.1 (no Unix socket).
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("vantage-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {} to postgres failed", dir.path().display());
        }
        let mut cluster = PgCluster {
            port: 0,
            bin,
            data,
            _dir: dir,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                cluster.data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.configure(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = 16MB\nmax_connections = 30\n\
             logging_collector = off\n",
        );
        // PostgreSQL cannot bind port 0 and report it: a free port is chosen here, and another one if
        // something takes it before the server binds it.
        for _ in 0..10 {
            cluster.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            // A later line wins in postgresql.conf.
            cluster.configure(&format!("port = {}\n", cluster.port));
            let log_before = cluster.server_log().len();
            match cluster.try_pg_ctl("start", "") {
                Ok(()) => return cluster,
                Err(_) if cluster.server_log()[log_before..].contains("Address already in use") => {
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port for PostgreSQL after 10 tries");
    }

    /// Appends settings to postgresql.conf.
    fn configure(&self, settings: &str) {
        let path = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(settings);
        std::fs::write(&path, text).unwrap();
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `bin/<tool> args` as the postgres user (when we are root); panics with its output on failure.
    fn run(&self, tool: &str, args: &[&str]) {
        self.try_run(tool, args).unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`Self::run`], its failure with the tool's output as an error.
    fn try_run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{tool} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    fn pg_ctl(&self, action: &str, options: &str) {
        self.try_pg_ctl(action, options)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_pg_ctl(&self, action: &str, options: &str) -> Result<(), String> {
        let log = self.data.join("server.log");
        let mut args = vec![
            "-D",
            self.data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "120",
        ];
        if !options.is_empty() {
            args.extend(["-o", options]);
        }
        args.push(action);
        self.try_run("pg_ctl", &args)
    }

    /// Starts the (stopped) cluster and waits until it takes connections.
    pub fn start_again(&self) {
        let _ = std::fs::remove_file(self.data.join("standby.signal"));
        self.pg_ctl("start", "");
    }

    /// `pg_ctl stop -m fast`: connections are cut, then nothing listens on the port.
    pub fn stop(&self) {
        self.pg_ctl("stop", "-m fast");
    }

    /// Restarts the cluster as a standby: with `hot`, it takes read-only connections (a write gets
    /// SQLSTATE 25006, as on a former primary after a failover); without, every connection is refused with
    /// 57P03 ("the database system is not accepting connections").
    pub fn restart_as_standby(&self, hot: bool) {
        self.stop();
        std::fs::write(self.data.join("standby.signal"), "").unwrap();
        if is_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(self.data.join("standby.signal"))
                .status()
                .unwrap();
        }
        self.pg_ctl(
            "start",
            if hot {
                "-c hot_standby=on"
            } else {
                "-c hot_standby=off"
            },
        );
    }

    fn postmaster(&self) -> String {
        let pidfile = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        pidfile.lines().next().unwrap().trim().to_string()
    }

    /// SIGSTOP every process of the cluster: connections hang, as with a server that stopped answering
    /// (the returned guard SIGCONTs them). The postmaster first: stopped, it forks no new backend, so the
    /// children listed after it are all there are; one of them may still exit before its signal (a backend
    /// whose client just left, an autovacuum worker), which is not an error (CI once failed on that).
    pub fn freeze(&self) -> Frozen {
        let postmaster = self.postmaster();
        assert!(
            signal_if_alive("-STOP", &postmaster),
            "the postmaster {postmaster} is gone"
        );
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .unwrap();
        let children: Vec<String> = String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .filter(|pid| signal_if_alive("-STOP", pid))
            .map(str::to_string)
            .collect();
        Frozen(std::iter::once(postmaster).chain(children).collect())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

/// Signals one process; false when it failed (as it does for a process that has exited). Never panics: the
/// guard's drop calls it.
fn kill(sig: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([sig, pid])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Signals one process; false when it had already exited (a failure for a process still there panics).
fn signal_if_alive(sig: &str, pid: &str) -> bool {
    let ok = kill(sig, pid);
    assert!(
        ok || !Path::new("/proc").join(pid).exists(),
        "kill {sig} {pid}"
    );
    ok
}

/// Processes stopped by [`PgCluster::freeze`]; continued when dropped.
pub struct Frozen(Vec<String>);

impl Drop for Frozen {
    fn drop(&mut self) {
        // (a stopped process cannot exit, but the cluster may have been killed meanwhile: not a panic in drop)
        for pid in &self.0 {
            kill("-CONT", pid);
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway. Ignore a cluster a failed test left stopped.
        let exe = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap().to_string();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
