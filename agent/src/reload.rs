//! Applying configs to the running agent: the first one, and new ones from the config source. A file is
//! reloaded on SIGHUP and when it changes; a URL is polled (and fetched at once on SIGHUP). A valid config
//! replaces the running one in place (unchanged checks keep their phase and state); an invalid one, or one
//! that cannot be fetched, is rejected with its reason logged and counted, and the running config stays.

use crate::config::{self, AgentConfig};
use crate::metrics::{Metrics, ReloadFailure};
use crate::remote_write::Pusher;
use crate::scheduler::{Applied, Scheduler};
use crate::source::{ConfigSource, FetchError, Fetched, UrlSource};
use notify::{EventKind, RecursiveMode, Watcher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use vantage_common::{ConfigError, Shutdown};

/// Editors write a file in several steps; wait for the writes to settle before reading it.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why a config could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    Fetch(FetchError),
    Invalid(ConfigError),
}

impl LoadError {
    pub fn reason(&self) -> ReloadFailure {
        match self {
            LoadError::Fetch(FetchError::Status(_)) => ReloadFailure::HttpStatus,
            LoadError::Fetch(FetchError::Network(_)) => ReloadFailure::Fetch,
            LoadError::Invalid(_) => ReloadFailure::Invalid,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Fetch(e) => write!(f, "cannot fetch the config: {e}"),
            LoadError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A config as loaded, with what polling needs next time.
pub struct Loaded {
    pub config: AgentConfig,
    /// The URL's ETag for this text.
    pub etag: Option<String>,
    /// A URL's text, to keep as the last good copy once applied.
    text: Option<String>,
}

/// Loads the config once (the CLI's `check-config` and `once`, and the agent's boot). A URL that cannot be
/// fetched, or serves an invalid config, falls back to the last good copy when `fallback` allows and one was
/// kept; the reason is returned beside it so it can be logged and counted.
pub async fn load(
    source: &ConfigSource,
    region: Option<&str>,
    fallback: bool,
) -> Result<(Loaded, Option<LoadError>), LoadError> {
    match source {
        ConfigSource::File(path) => {
            let config = load_file(path, region).await.map_err(LoadError::Invalid)?;
            Ok((
                Loaded {
                    config,
                    etag: None,
                    text: None,
                },
                None,
            ))
        }
        ConfigSource::Url(url) => {
            let fresh = match url.fetch(None).await {
                Ok(Fetched::Text { text, etag }) => parse_url_text(url, &text, region)
                    .map(|config| Loaded {
                        config,
                        etag,
                        text: Some(text),
                    })
                    .map_err(LoadError::Invalid),
                // Only an If-None-Match gets a 304; without one it is not an answer we can use.
                Ok(Fetched::NotModified) => Err(LoadError::Fetch(FetchError::Status(304))),
                Err(e) => Err(LoadError::Fetch(e)),
            };
            let err = match fresh {
                Ok(loaded) => return Ok((loaded, None)),
                Err(e) => e,
            };
            let saved = fallback.then(|| url.load_saved()).flatten();
            let Some((text, etag)) = saved else {
                return Err(err);
            };
            let config = parse_url_text(url, &text, region).map_err(LoadError::Invalid)?;
            Ok((
                Loaded {
                    config,
                    etag,
                    text: None,
                },
                Some(err),
            ))
        }
    }
}

async fn load_file(path: &Path, region: Option<&str>) -> Result<AgentConfig, ConfigError> {
    let path = path.to_path_buf();
    let region = region.map(str::to_string);
    tokio::task::spawn_blocking(move || config::load(&path, region.as_deref()))
        .await
        .expect("config loading does not panic")
}

fn parse_url_text(
    url: &UrlSource,
    text: &str,
    region: Option<&str>,
) -> Result<AgentConfig, ConfigError> {
    config::parse(
        Path::new(&url.display()),
        text,
        |name| std::env::var(name).ok(),
        region,
    )
}

/// Applies configs from one source to the running scheduler and pusher.
#[derive(Clone)]
pub struct Reloader {
    source: Arc<ConfigSource>,
    /// `--region`, applied to every config loaded.
    region: Option<String>,
    scheduler: Scheduler,
    pusher: Pusher,
    metrics: Arc<Metrics>,
    /// The first config's `listen`: a new one takes a restart.
    listen: SocketAddr,
    /// How often a URL is polled.
    poll: Duration,
    state: Arc<tokio::sync::Mutex<State>>,
}

#[derive(Default)]
struct State {
    etag: Option<String>,
    hash: String,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    Applied(Applied),
    /// The source has not changed.
    Unchanged,
}

impl Reloader {
    pub fn new(
        source: ConfigSource,
        region: Option<String>,
        scheduler: Scheduler,
        pusher: Pusher,
        metrics: Arc<Metrics>,
        poll: Duration,
    ) -> Self {
        Reloader {
            source: Arc::new(source),
            region,
            scheduler,
            pusher,
            metrics,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            poll,
            state: Arc::default(),
        }
    }

    /// Applies the first config.
    pub async fn start(&mut self, loaded: Loaded) -> Applied {
        self.listen = loaded.config.listen;
        let mut st = self.state.lock().await;
        self.apply(&mut st, loaded)
    }

    fn apply(&self, st: &mut State, loaded: Loaded) -> Applied {
        let cfg = &loaded.config;
        // The first config's address is the one bound (unless --listen overrode it).
        if !st.hash.is_empty() && cfg.listen != self.listen {
            tracing::warn!(listen = %cfg.listen, "a new listen address takes effect at the next restart");
        }
        for w in cfg.overrun_warnings() {
            tracing::warn!("{w}");
        }
        let applied = self.scheduler.apply(cfg);
        self.pusher.apply(&cfg.remote_write, &cfg.region);
        self.metrics.config_applied(&cfg.hash, SystemTime::now());
        if let (ConfigSource::Url(url), Some(text)) = (&*self.source, &loaded.text) {
            if let Err(e) = url.save(text, loaded.etag.as_deref()) {
                tracing::warn!(
                    file = %url.saved_path().display(),
                    error = %e,
                    "cannot keep the last good copy of the config"
                );
            }
        }
        st.etag = loaded.etag;
        st.hash = cfg.hash.clone();
        applied
    }

    fn reject(&self, e: &LoadError) {
        self.metrics.config_rejected(e.reason());
        tracing::error!(
            source = %self.source.display(),
            reason = e.reason().as_str(),
            error = %e,
            "config reload rejected; the running config stays"
        );
    }

    /// Loads the source again and applies it when valid and changed (what SIGHUP does).
    pub async fn reload(&self) -> Result<Reloaded, LoadError> {
        let mut st = self.state.lock().await;
        let region = self.region.as_deref();
        let loaded = match &*self.source {
            ConfigSource::File(path) => load_file(path, region).await.map(|config| Loaded {
                config,
                etag: None,
                text: None,
            }),
            ConfigSource::Url(url) => match url.fetch(st.etag.as_deref()).await {
                Ok(Fetched::NotModified) => {
                    self.metrics.config_unchanged();
                    return Ok(Reloaded::Unchanged);
                }
                Ok(Fetched::Text { text, etag }) => {
                    if config::config_hash(&text) == st.hash {
                        st.etag = etag;
                        self.metrics.config_unchanged();
                        return Ok(Reloaded::Unchanged);
                    }
                    parse_url_text(url, &text, region).map(|config| Loaded {
                        config,
                        etag,
                        text: Some(text),
                    })
                }
                Err(e) => {
                    let e = LoadError::Fetch(e);
                    self.reject(&e);
                    return Err(e);
                }
            },
        };
        match loaded {
            Ok(loaded) => {
                let a = self.apply(&mut st, loaded);
                self.metrics.config_reloaded();
                tracing::info!(
                    source = %self.source.display(),
                    hash = %st.hash,
                    added = a.added,
                    changed = a.changed,
                    unchanged = a.unchanged,
                    removed = a.removed,
                    "config reloaded"
                );
                Ok(Reloaded::Applied(a))
            }
            Err(e) => {
                let e = LoadError::Invalid(e);
                self.reject(&e);
                Err(e)
            }
        }
    }

    /// Reloads on SIGHUP, and when the file changes or at every poll of the URL, until shutdown.
    pub async fn watch(self, mut shutdown: Shutdown) {
        let (tx, mut changes) = mpsc::channel::<()>(8);
        let _watcher = match &*self.source {
            ConfigSource::File(path) => watch_file(path, tx),
            ConfigSource::Url(_) => {
                tokio::spawn(poll(self.poll, tx, shutdown.clone()));
                None
            }
        };
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let is_file = matches!(&*self.source, ConfigSource::File(_));
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
                    if is_file {
                        tokio::time::sleep(DEBOUNCE).await;
                        while changes.try_recv().is_ok() {}
                        tracing::info!(file = %self.source.display(), "config file changed: reloading");
                    }
                }
                _ = shutdown.recv() => return,
            }
            let _ = self.reload().await;
        }
    }
}

/// Ticks every `every` (the first after one period: the config was just loaded).
async fn poll(every: Duration, tx: mpsc::Sender<()>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => return,
        }
        if tx.send(()).await.is_err() {
            return;
        }
    }
}

/// Watches the file's directory: editors and config managers replace the file by renaming a new one over it.
fn watch_file(path: &Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let file_name = path.file_name().map(|n| n.to_os_string());
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
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
    match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config file; reload with SIGHUP");
            None
        }
    }
}
