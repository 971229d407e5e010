//! Starting the agent: config -> metrics -> scheduler (+ remote write) -> HTTP server -> reloads; and one-shot
//! runs.

use crate::config::{AgentConfig, CheckConfig};
use crate::metrics::Metrics;
use crate::reload::{LoadError, Loaded, Reloader};
use crate::remote_write::Pusher;
use crate::result::ProbeResult;
use crate::schedule::Clock;
use crate::scheduler::{run_check, Scheduler};
use crate::server::{self, AppState};
use crate::source::ConfigSource;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use vantage_common::Shutdown;

/// How the agent was started: where its config comes from and what the command line overrides.
pub struct Options {
    pub source: ConfigSource,
    /// `--region` (or VANTAGE_REGION).
    pub region: Option<String>,
    /// `--listen`: overrides the config's address (port 0 works).
    pub listen: Option<SocketAddr>,
    /// How often a config URL is polled.
    pub poll: Duration,
}

/// Seconds `/probe` takes off the scrape's timeout, as blackbox_exporter's default `--timeout-offset`.
const BLACKBOX_TIMEOUT_OFFSET: f64 = 0.5;

/// A running agent.
pub struct Agent {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    pub scheduler: Scheduler,
    pub metrics: Arc<Metrics>,
    pub pusher: Pusher,
    pub reloader: Reloader,
}

/// Starts the agent on a loaded config. `boot_error` is why a URL's last good copy stands in for it (logged and
/// counted as a failed reload).
pub async fn start(
    options: Options,
    loaded: Loaded,
    boot_error: Option<LoadError>,
    shutdown: Shutdown,
) -> std::io::Result<Agent> {
    let config = &loaded.config;
    let listener = TcpListener::bind(options.listen.unwrap_or(config.listen)).await?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let pusher = Pusher::new(metrics.clone());
    let scheduler = Scheduler::new(
        metrics.clone(),
        pusher.clone(),
        Clock::system(),
        shutdown.clone(),
    );
    let (region, hash) = (config.region.clone(), config.hash.clone());
    let blackbox_modules = config.blackbox_modules.clone();
    let mut reloader = Reloader::new(
        options.source,
        options.region,
        scheduler.clone(),
        pusher.clone(),
        metrics.clone(),
        options.poll,
    );
    let applied = reloader.start(loaded).await;
    return_freed_memory();
    if let Some(e) = &boot_error {
        metrics.config_rejected(e.reason());
        tracing::warn!(error = %e, "started from the last good copy of the config");
    }
    tracing::info!(
        listen = %addr,
        region = %region,
        config_hash = %hash,
        checks = applied.added,
        "agent started"
    );
    // The modules read and validated with the config: not read a second time here.
    let blackbox = blackbox_modules.map(|(path, modules)| {
        tracing::info!(file = %path.display(), modules = modules.modules.len(), "serving /probe for blackbox modules");
        let e = crate::blackbox::server::Exporter::with(path, modules, BLACKBOX_TIMEOUT_OFFSET);
        crate::blackbox::server::reload_on_sighup(e.clone());
        e
    });
    let state = AppState {
        metrics: metrics.clone(),
        scheduler: scheduler.clone(),
        blackbox,
    };
    tokio::spawn(server::serve(listener, state, shutdown.clone()));
    tokio::spawn(reloader.clone().watch(shutdown));
    Ok(Agent {
        addr,
        scheduler,
        metrics,
        pusher,
        reloader,
    })
}

/// Hands the memory freed after loading the config back to the system. Parsing a large config (YAML events and
/// trees, ~4 KB per check at 50,000 checks) happens on a blocking-pool thread whose malloc arena the probe threads
/// never reuse, so without this the parse peak stays resident under everything allocated later (measured: 326 MB
/// peak with 50,000 checks, see bench/README.md).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The open-file limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go programs (blackbox_exporter among them) do: every
/// probe holds a socket, and the usual soft default of 1,024 is far below what thousands of checks need.
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let soft_before = l.rlim_cur;
    if l.rlim_cur < l.rlim_max {
        l.rlim_cur = l.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(FdLimit {
        soft_before,
        soft: l.rlim_cur,
        hard: l.rlim_max,
    })
}

/// Runs the selected checks once each (all active ones, or the one named, active or not), at most
/// `max_concurrency` at a time; results in config order. `Err` names an unknown check.
pub async fn once(
    config: &AgentConfig,
    only: Option<&str>,
) -> Result<Vec<(Arc<CheckConfig>, ProbeResult)>, String> {
    let selected: Vec<Arc<CheckConfig>> = match only {
        Some(name) => {
            let c = config
                .checks
                .iter()
                .find(|c| c.name.as_str() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = config.checks.iter().map(|c| c.name.as_str()).collect();
                    format!("no check named {name:?}; checks: {}", names.join(", "))
                })?;
            vec![c.clone()]
        }
        None => config.active_checks().cloned().collect(),
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(config.max_concurrency));
    let runs = selected.into_iter().map(|c| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await.expect("never closed");
            let r = run_check(&c).await;
            (c, r)
        }
    });
    Ok(futures::future::join_all(runs).await)
}
