//! Starting the agent: config -> metrics -> scheduler -> HTTP server -> reload watcher; and one-shot runs.

use crate::config::{self, AgentConfig, CheckConfig};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::result::ProbeResult;
use crate::schedule::Clock;
use crate::scheduler::{run_check, Scheduler};
use crate::server::{self, AppState};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use vantage_common::{Redactor, Shutdown};

/// A running agent.
pub struct Agent {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    pub scheduler: Scheduler,
    pub metrics: Arc<Metrics>,
    pub reloader: Reloader,
}

/// Starts the agent on an already validated config; `listen` overrides the config's address (port 0 works).
pub async fn start(
    path: &Path,
    config: AgentConfig,
    redactor: Redactor,
    listen: Option<SocketAddr>,
    shutdown: Shutdown,
) -> std::io::Result<Agent> {
    let listener = TcpListener::bind(listen.unwrap_or(config.listen)).await?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let scheduler = Scheduler::new(metrics.clone(), Clock::system(), shutdown.clone());
    let applied = scheduler.apply(&config, redactor);
    tracing::info!(
        file = %path.display(),
        listen = %addr,
        region = %config.region,
        checks = applied.added,
        "agent started"
    );
    let state = AppState {
        metrics: metrics.clone(),
        scheduler: scheduler.clone(),
    };
    tokio::spawn(server::serve(listener, state, shutdown.clone()));
    let reloader = Reloader::new(path, scheduler.clone(), metrics.clone(), config.listen);
    tokio::spawn(reloader.clone().watch(shutdown));
    Ok(Agent {
        addr,
        scheduler,
        metrics,
        reloader,
    })
}

/// Runs the selected checks once each (all enabled ones, or the one named, enabled or not), at most
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
        None => config.enabled_checks().cloned().collect(),
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

/// Loads a config file for the CLI (re-exported for main).
pub fn load(path: &Path) -> Result<(AgentConfig, Redactor), vantage_common::ConfigError> {
    config::load(path)
}
