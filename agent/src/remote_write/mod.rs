//! Pushing results to Prometheus by remote write (1.0), for agents that no Prometheus can scrape (behind NAT or a
//! firewall). `/metrics` keeps working alongside.
//!
//! Each finished run of a check becomes the samples of that check's series, the same families and labels that
//! `/metrics` shows (histograms as `_bucket`/`_sum`/`_count`), stamped with the time the run finished. Between
//! runs, every `refresh_interval`, the agent pushes what a scrape would see: its own metrics (with a `region`
//! label added, since pushed series have no scrape target to tell agents apart) and the current values of the
//! checks not pushed since. A series that ends (a check removed by a reload, a step that no longer runs, the
//! agent shutting down) gets a staleness marker at once, as a scrape would give it. Every endpoint has its own
//! bounded queue and sender, so a slow or broken one never holds up the others.
//!
//! None of it runs on the probes' threads: a finished run only marks its check as due (the latest run of each
//! check, so what waits is bounded by the number of checks), and a thread of its own, at a lower CPU priority
//! (nice 10), turns due checks into samples, encodes and sends them. When CPU is short, probes keep their
//! schedule and remote write lags behind (a check that ran twice meanwhile is pushed at its latest run; a full
//! queue drops its oldest samples, counted).
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
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
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
    /// Each check's series as last pushed, by check name; one lock per check, so runs of different checks never
    /// wait for each other.
    checks: Mutex<HashMap<String, Arc<Mutex<Tracked>>>>,
    /// The agent's own series as last pushed.
    own: Mutex<SeriesCache>,
    region: RwLock<String>,
    /// The refresh task and its interval.
    refresh: Mutex<Option<(Duration, JoinHandle<()>)>>,
    /// Checks whose latest run is not pushed yet, with when it was recorded.
    due: Mutex<HashMap<String, (Arc<CheckSeries>, SystemTime)>>,
    /// Wakes the task that pushes due checks.
    wake: Arc<Notify>,
    /// That task, started with the first endpoint.
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The worker wakes, finds the pusher gone and ends.
        self.wake.notify_one();
    }
}

/// Due checks pushed between two yields to the endpoints' senders on the remote-write thread.
const PUSHES_PER_YIELD: usize = 64;

/// The runtime of the remote-write thread (every pusher's work and every endpoint's sender), started on first
/// use at nice 10, so that the probes' threads get the CPU first.
fn runtime() -> Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build the remote-write runtime");
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("remote-write".into())
                .spawn(move || {
                    lower_priority();
                    runtime.block_on(std::future::pending::<()>())
                })
                .expect("start the remote-write thread");
            handle
        })
        .clone()
}

/// Nice 10 for the calling thread (Linux keeps a nice value per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their arguments; failure leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "remote write keeps the normal priority");
        }
    }
}

struct Tracked {
    cache: SeriesCache,
    pushed_at: Instant,
    /// The timestamp of the last samples pushed, ms.
    last_ms: i64,
    /// The check was removed and its series ended: nothing more is pushed for it.
    ended: bool,
}

impl Tracked {
    /// Staleness markers for every series, and nothing after them.
    fn end(&mut self, at_ms: i64) -> Vec<Sample> {
        self.ended = true;
        self.cache.end(at_ms.max(self.last_ms + 1))
    }
}

/// A running endpoint: its sender and the signal that stops it.
struct Endpoint {
    sender: Arc<Sender>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Pusher {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Pusher {
            inner: Arc::new(Inner {
                metrics,
                endpoints: RwLock::new(Vec::new()),
                checks: Mutex::new(HashMap::new()),
                own: Mutex::new(SeriesCache::default()),
                region: RwLock::new(String::new()),
                refresh: Mutex::new(None),
                due: Mutex::new(HashMap::new()),
                wake: Arc::new(Notify::new()),
                worker: Mutex::new(None),
            }),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.inner.endpoints.read().unwrap().is_empty()
    }

    /// Starts the endpoints of `configs` that are not running and stops the others (they flush what they hold
    /// first). Must be called from within a tokio runtime.
    pub fn apply(&self, configs: &[RemoteWriteConfig], region: &str) {
        let old_region =
            std::mem::replace(&mut *self.inner.region.write().unwrap(), region.to_string());
        if old_region != region {
            // The agent's own series carry the region: those under the old one end.
            let ended = self
                .inner
                .own
                .lock()
                .unwrap()
                .end(millis(SystemTime::now()));
            self.inner.push(ended);
        }
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
            match Self::start(&self.inner.metrics, cfg.clone()) {
                Ok(ep) => kept.push(ep),
                Err(e) => {
                    tracing::error!(remote = %cfg.name, error = %e, "cannot start remote write")
                }
            }
        }
        let interval = kept
            .iter()
            .map(|ep| ep.sender.config.refresh_interval)
            .min();
        *endpoints = kept;
        drop(endpoints);
        let mut refresh = self.inner.refresh.lock().unwrap();
        if refresh.as_ref().map(|(d, _)| *d) != interval {
            if let Some((_, task)) = refresh.take() {
                task.abort();
            }
            *refresh = interval.map(|d| {
                (
                    d,
                    runtime().spawn(refresh_loop(Arc::downgrade(&self.inner), d)),
                )
            });
        }
        let mut worker = self.inner.worker.lock().unwrap();
        if interval.is_some() && worker.is_none() {
            *worker = Some(runtime().spawn(push_due(
                Arc::downgrade(&self.inner),
                self.inner.wake.clone(),
            )));
        }
        drop(worker);
        if interval.is_none() {
            self.inner.checks.lock().unwrap().clear();
            self.inner.due.lock().unwrap().clear();
            *self.inner.own.lock().unwrap() = SeriesCache::default();
        }
    }

    fn start(metrics: &Metrics, cfg: RemoteWriteConfig) -> Result<Arc<Endpoint>, String> {
        let endpoint_metrics = metrics.remote_write.endpoint(&cfg.name);
        let sender = Arc::new(Sender::new(cfg, endpoint_metrics)?);
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime().spawn(sender.clone().run(stop_rx));
        tracing::info!(remote = %sender.config.name, "remote write started");
        Ok(Arc::new(Endpoint {
            sender,
            stop,
            task: Mutex::new(Some(task)),
        }))
    }

    /// Marks a check whose run was just recorded as due (its series are pushed from the remote-write thread).
    pub fn recorded(&self, check: &str, series: &Arc<CheckSeries>, at: SystemTime) {
        if self.is_enabled() {
            let mut due = self.inner.due.lock().unwrap();
            match due.get_mut(check) {
                // The series too: a check changed by a reload has new ones.
                Some(entry) => *entry = (series.clone(), at),
                None => {
                    due.insert(check.to_string(), (series.clone(), at));
                }
            }
            drop(due);
            self.inner.wake.notify_one();
        }
    }

    /// Ends every series of a check that no longer runs here.
    pub fn removed(&self, check: &str, at: SystemTime) {
        self.inner.due.lock().unwrap().remove(check);
        let tracked = self.inner.checks.lock().unwrap().remove(check);
        if let Some(t) = tracked {
            let ended = t.lock().unwrap().end(millis(at));
            self.inner.push(ended);
        }
    }

    /// Ends every series (the agent is going away, as a failed scrape would mark them), then stops every
    /// endpoint and waits (a few seconds at most) for them to flush what they hold.
    pub async fn shutdown(&self) {
        if let Some((_, task)) = self.inner.refresh.lock().unwrap().take() {
            task.abort();
        }
        if let Some(task) = self.inner.worker.lock().unwrap().take() {
            task.abort();
        }
        // The last runs, then the end of every series.
        for (check, (series, at)) in self.inner.take_due() {
            self.inner.push_check(&check, &series, at);
        }
        let now = millis(SystemTime::now());
        let mut ended = self.inner.own.lock().unwrap().end(now);
        let checks: Vec<Arc<Mutex<Tracked>>> = self
            .inner
            .checks
            .lock()
            .unwrap()
            .drain()
            .map(|(_, t)| t)
            .collect();
        for t in checks {
            ended.extend(t.lock().unwrap().end(now));
        }
        self.inner.push(ended);
        let endpoints: Vec<Arc<Endpoint>> =
            std::mem::take(&mut *self.inner.endpoints.write().unwrap());
        for ep in &endpoints {
            ep.stop();
        }
        for ep in endpoints {
            let task = ep.task.lock().unwrap().take();
            if let Some(t) = task {
                let _ = t.await;
            }
        }
    }
}

impl Inner {
    fn take_due(&self) -> HashMap<String, (Arc<CheckSeries>, SystemTime)> {
        std::mem::take(&mut *self.due.lock().unwrap())
    }

    /// Encodes and queues a check's series. Under the check's lock, so a run and a refresh of the same check
    /// never interleave, and each check's timestamps strictly increase (a receiver refuses a sample older than,
    /// or as old as, one it has).
    fn push_check(&self, check: &str, series: &Arc<CheckSeries>, at: SystemTime) {
        let mut checks = self.checks.lock().unwrap();
        // A run that waited while its check was removed (or replaced) must not bring its series back: checked
        // under the lock `removed` takes after the metrics forget the check.
        if !self.metrics.is_current(check, series) {
            return;
        }
        let tracked = checks
            .entry(check.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Tracked {
                    cache: SeriesCache::default(),
                    pushed_at: Instant::now(),
                    last_ms: 0,
                    ended: false,
                }))
            })
            .clone();
        drop(checks);
        self.push_tracked(check, &mut tracked.lock().unwrap(), series, at);
    }

    /// A refresh: the check's current values when it has been pushed before (it has run; a removed check is no
    /// longer tracked) and not for `interval`.
    fn refresh_check(&self, check: &str, series: &Arc<CheckSeries>, interval: Duration) {
        let tracked = self.checks.lock().unwrap().get(check).cloned();
        if let Some(t) = tracked {
            let mut t = t.lock().unwrap();
            if t.pushed_at.elapsed() >= interval {
                self.push_tracked(check, &mut t, series, SystemTime::now());
            }
        }
    }

    fn push_tracked(
        &self,
        check: &str,
        tracked: &mut Tracked,
        series: &Arc<CheckSeries>,
        at: SystemTime,
    ) {
        if tracked.ended {
            return;
        }
        let ts = millis(at).max(tracked.last_ms + 1);
        let text = self.metrics.encode_check(series);
        match tracked.cache.parse(&text, ts, &[]) {
            Ok(samples) => self.push(samples),
            // Our own exposition always parses; should it not, say so instead of pushing half of it.
            Err(e) => tracing::error!(check, error = %e, "cannot read the check's own exposition"),
        }
        tracked.pushed_at = Instant::now();
        tracked.last_ms = ts;
    }

    fn push(&self, samples: Vec<Sample>) {
        if samples.is_empty() {
            return;
        }
        let endpoints = self.endpoints.read().unwrap().clone();
        for ep in &endpoints {
            let dropped = ep.sender.queue.push(samples.iter().cloned());
            ep.sender.metrics().dropped(dropped);
            ep.sender.metrics().queue_length(ep.sender.queue.len());
        }
    }

    /// What a scrape every `interval` would record between runs: the agent's own metrics, and the current
    /// values of every check that ran before but has not been pushed for `interval` (a check running every 5
    /// minutes still has a sample in every 5-minute window, as `rate()` needs).
    fn refresh(&self, interval: Duration) {
        let now = SystemTime::now();
        let region = self.region.read().unwrap().clone();
        let own = self.metrics.encode_own();
        let samples = self
            .own
            .lock()
            .unwrap()
            .parse(&own, millis(now), &[("region", &region)]);
        match samples {
            Ok(s) => self.push(s),
            Err(e) => tracing::error!(error = %e, "cannot read the agent's own exposition"),
        }
        for (name, series) in self.metrics.check_series() {
            self.refresh_check(&name, &series, interval);
        }
    }
}

impl Endpoint {
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Pushes the due checks whenever woken, yielding to the senders now and then; ends with the pusher.
async fn push_due(inner: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let due = strong.take_due();
        drop(strong);
        for (i, (check, (series, at))) in due.into_iter().enumerate() {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            strong.push_check(&check, &series, at);
            drop(strong);
            if (i + 1) % PUSHES_PER_YIELD == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn refresh_loop(inner: std::sync::Weak<Inner>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.refresh(interval);
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

#[cfg(test)]
mod tests {
    /// The remote-write thread runs at nice 10, below the probes' threads.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_remote_write_thread_runs_at_a_lower_priority() {
        let handle = super::runtime();
        // Its first task runs after the priority was set.
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            tx.send(tid).unwrap();
        });
        let tid = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        assert_eq!(comm.trim(), "remote-write");
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the command name's closing parenthesis: state is field 3, nice field 19.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        assert_eq!(fields[19 - 3], "10", "{stat}");
    }
}
