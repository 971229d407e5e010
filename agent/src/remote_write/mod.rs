//! Pushing results to Prometheus by remote write (1.0), for agents that no Prometheus can scrape (behind NAT or a
//! firewall). `/metrics` keeps working alongside.
//!
//! Each finished run of a check becomes the samples of that check's series, the same families and labels that
//! `/metrics` shows (histograms as `_bucket`/`_sum`/`_count`), stamped with the time the run finished; the
//! agent's own metrics follow on an interval, with a `region` label added. A series that ends (a check removed by
//! a reload, a step that no longer runs) gets a staleness marker at once, as a scrape would give it. Every
//! endpoint has its own bounded queue and sender, so a slow or broken one never holds up the others.
//!
//! # Layout
//! - [`config`]: the `remote_write:` section.
//! - [`samples`]: samples taken from the text exposition, with interned label sets and staleness markers.
//! - [`queue`]: an endpoint's bounded queue (oldest dropped when full) and its batching by size and age.
//! - [`sender`]: requests in order, retries with backoff and jitter, failures logged without flooding.
//! - [`wire`]: the protobuf `WriteRequest`, snappy-compressed.

pub mod config;
pub mod queue;
pub mod samples;
pub mod sender;
pub mod wire;

pub use config::{validate, QueueConfig, RawRemoteWrite, RemoteWriteConfig};

use crate::metrics::{CheckSeries, Metrics};
use samples::{Sample, SeriesCache};
use sender::Sender;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Fans finished runs out to every configured endpoint. Cheap to clone; does nothing when no endpoint is
/// configured.
#[derive(Clone)]
pub struct Pusher {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    endpoints: RwLock<Vec<Arc<Endpoint>>>,
    /// Each check's series as last pushed, by check name.
    checks: Mutex<HashMap<String, SeriesCache>>,
}

/// A running endpoint: its sender, the agent's own metrics on an interval, and the signal that stops both.
struct Endpoint {
    sender: Arc<Sender>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Pusher {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Pusher {
            inner: Arc::new(Inner {
                metrics,
                endpoints: RwLock::new(Vec::new()),
                checks: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.inner.endpoints.read().unwrap().is_empty()
    }

    /// Starts the endpoints of `configs` that are not running and stops the others (they flush what they hold
    /// first). Must be called from within a tokio runtime.
    pub fn apply(&self, configs: &[RemoteWriteConfig], region: &str) {
        let mut endpoints = self.inner.endpoints.write().unwrap();
        let mut kept = Vec::new();
        for ep in endpoints.drain(..) {
            if configs.contains(&ep.sender.config) {
                kept.push(ep);
            } else {
                ep.stop();
                self.inner
                    .metrics
                    .remote_write
                    .forget(&ep.sender.config.name);
            }
        }
        for cfg in configs {
            if kept.iter().any(|ep| ep.sender.config == *cfg) {
                continue;
            }
            match self.start(cfg.clone(), region) {
                Ok(ep) => kept.push(ep),
                Err(e) => {
                    tracing::error!(remote = %cfg.name, error = %e, "cannot start remote write")
                }
            }
        }
        *endpoints = kept;
        if endpoints.is_empty() {
            self.inner.checks.lock().unwrap().clear();
        }
    }

    fn start(&self, cfg: RemoteWriteConfig, region: &str) -> Result<Arc<Endpoint>, String> {
        let metrics = self.inner.metrics.remote_write.endpoint(&cfg.name);
        let sender = Arc::new(Sender::new(cfg, metrics)?);
        let (stop, stop_rx) = watch::channel(false);
        let send_task = tokio::spawn(sender.clone().run(stop_rx.clone()));
        let own_task = tokio::spawn(push_own_metrics(
            self.inner.metrics.clone(),
            sender.clone(),
            region.to_string(),
            stop_rx,
        ));
        tracing::info!(remote = %sender.config.name, "remote write started");
        Ok(Arc::new(Endpoint {
            sender,
            stop,
            tasks: Mutex::new(vec![send_task, own_task]),
        }))
    }

    /// Pushes the series of a check whose run was just recorded.
    pub fn recorded(&self, check: &str, series: &Arc<CheckSeries>, at: SystemTime) {
        if !self.is_enabled() {
            return;
        }
        let text = self.inner.metrics.encode_check(series);
        let mut cache = self
            .inner
            .checks
            .lock()
            .unwrap()
            .remove(check)
            .unwrap_or_default();
        match cache.parse(&text, millis(at), &[]) {
            Ok(samples) => self.push(samples),
            // Our own exposition always parses; should it not, say so instead of pushing half of it.
            Err(e) => tracing::error!(check, error = %e, "cannot read the check's own exposition"),
        }
        self.inner
            .checks
            .lock()
            .unwrap()
            .insert(check.to_string(), cache);
    }

    /// Ends every series of a check that no longer runs here.
    pub fn removed(&self, check: &str, at: SystemTime) {
        let cache = self.inner.checks.lock().unwrap().remove(check);
        if let Some(mut cache) = cache {
            self.push(cache.end(millis(at)));
        }
    }

    fn push(&self, samples: Vec<Sample>) {
        let endpoints = self.inner.endpoints.read().unwrap().clone();
        for ep in &endpoints {
            let dropped = ep.sender.queue.push(samples.iter().cloned());
            ep.sender.metrics().dropped(dropped);
            ep.sender.metrics().queue_length(ep.sender.queue.len());
        }
    }

    /// Stops every endpoint and waits (a few seconds at most) for them to flush what they hold.
    pub async fn shutdown(&self) {
        let endpoints: Vec<Arc<Endpoint>> =
            std::mem::take(&mut *self.inner.endpoints.write().unwrap());
        for ep in &endpoints {
            ep.stop();
        }
        for ep in endpoints {
            let tasks = std::mem::take(&mut *ep.tasks.lock().unwrap());
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

impl Endpoint {
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// The agent's own metrics, every `self_metrics_interval`, with this agent's `region` (pushed series have no
/// scrape target to tell agents apart).
async fn push_own_metrics(
    metrics: Arc<Metrics>,
    sender: Arc<Sender>,
    region: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut cache = SeriesCache::default();
    let mut tick = tokio::time::interval(sender.config.self_metrics_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let text = metrics.encode_own();
        match cache.parse(&text, millis(SystemTime::now()), &[("region", &region)]) {
            Ok(samples) => {
                let dropped = sender.queue.push(samples);
                sender.metrics().dropped(dropped);
            }
            Err(e) => tracing::error!(error = %e, "cannot read the agent's own exposition"),
        }
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}
