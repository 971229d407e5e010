//! Config reload on SIGHUP and on changes to the config file: a valid config replaces the running one in place;
//! an invalid one is rejected with its reason logged and the running config stays.

use crate::config;
use crate::metrics::Metrics;
use crate::scheduler::{Applied, Scheduler};
use notify::{EventKind, RecursiveMode, Watcher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vantage_common::{ConfigError, Shutdown};

/// Editors write a file in several steps; wait for the writes to settle before reading it.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Reloads one config file into a running scheduler.
#[derive(Clone)]
pub struct Reloader {
    path: PathBuf,
    scheduler: Scheduler,
    metrics: Arc<Metrics>,
    /// The address the server is bound to; a new `listen` takes a restart.
    listen: SocketAddr,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub fn new(
        path: &Path,
        scheduler: Scheduler,
        metrics: Arc<Metrics>,
        listen: SocketAddr,
    ) -> Self {
        Reloader {
            path: path.to_path_buf(),
            scheduler,
            metrics,
            listen,
            lock: Arc::default(),
        }
    }

    /// Reads the file again and applies it when valid (what SIGHUP does).
    pub async fn reload(&self) -> Result<Applied, ConfigError> {
        let _one_at_a_time = self.lock.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .expect("config loading does not panic");
        match loaded {
            Ok((cfg, redactor)) => {
                if cfg.listen != self.listen {
                    tracing::warn!(
                        listen = %cfg.listen,
                        "a new listen address takes effect at the next restart"
                    );
                }
                let a = self.scheduler.apply(&cfg, redactor);
                self.metrics.reload(true);
                tracing::info!(
                    file = %self.path.display(),
                    added = a.added,
                    changed = a.changed,
                    unchanged = a.unchanged,
                    removed = a.removed,
                    "config reloaded"
                );
                Ok(a)
            }
            Err(e) => {
                self.metrics.reload(false);
                tracing::error!(error = %e, "config reload rejected; the running config stays");
                Err(e)
            }
        }
    }

    /// Reloads on SIGHUP and whenever the file changes, until shutdown.
    pub async fn watch(self, mut shutdown: Shutdown) {
        let (tx, mut changes) = mpsc::channel::<()>(8);
        let file_name = self.path.file_name().map(|n| n.to_os_string());
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Watch the directory: editors and config managers replace the file by renaming a new one over it.
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            let ours = ev
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
            if ours && !matches!(ev.kind, EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|_| w));
        let _watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config file; reload with SIGHUP");
                None
            }
        };
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => {
                    tracing::info!("SIGHUP: reloading config");
                }
                Some(()) = changes.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while changes.try_recv().is_ok() {}
                    tracing::info!(file = %self.path.display(), "config file changed: reloading");
                }
                _ = shutdown.recv() => return,
            }
            let _ = self.reload().await;
        }
    }
}
