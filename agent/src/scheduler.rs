//! Runs every enabled check on its schedule: one task per check, never overlapping itself, under a global
//! concurrency limit; applies the timeout and retries, records metrics, history and logs failures. A new config is
//! applied in place: unchanged checks keep their task, phase, last result and history. Runs asked for outside the
//! schedule ([`Scheduler::run_now`]) share the limit and the no-overlap rule but only go to the history and their
//! own counter, never to the check's series.

use crate::config::{AgentConfig, CheckConfig, UiConfig};
use crate::history::History;
use crate::metrics::{CheckSeries, Metrics};
use crate::remote_write::Pusher;
use crate::result::{ErrorType, ProbeError, ProbeResult};
use crate::schedule::{Clock, Schedule};
use crate::trace::TraceId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vantage_common::{Redactor, Shutdown};

/// First retry waits this long; each further retry twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs one check once: each attempt bounded by the check's timeout, failed attempts retried with exponential
/// backoff. `attempts` in the result says how many were made. One trace for the whole run: every attempt's
/// requests are spans of it, and a run cut by the timeout still reports it.
pub async fn run_check(check: &CheckConfig) -> ProbeResult {
    let trace = TraceId::random();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let started = Instant::now();
        let mut result = match tokio::time::timeout(check.timeout, check.runner.run(trace)).await {
            Ok(r) => r,
            Err(_) => ProbeResult::failed(
                ProbeError::new(
                    ErrorType::Timeout,
                    format!(
                        "no result within {}",
                        humantime::format_duration(check.timeout)
                    ),
                ),
                started.elapsed(),
            ),
        };
        result.attempts = attempt;
        result.trace_id = check.runner.is_traced().then_some(trace);
        if result.success() || attempt > check.retries {
            return result;
        }
        tokio::time::sleep(retry_backoff(attempt)).await;
    }
}

/// The wait after failed attempt `attempt` (1-based) before the next one.
pub fn retry_backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// The last finished run of a check.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub result: Arc<ProbeResult>,
    /// Wall-clock start of the run.
    pub started: SystemTime,
}

/// What the status API shows about a check.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last: Option<LastRun>,
    pub next_run: Option<SystemTime>,
    pub running: bool,
}

/// A check the scheduler runs, with its series and status.
#[derive(Debug)]
pub struct CheckState {
    pub config: Arc<CheckConfig>,
    pub series: Arc<CheckSeries>,
    status: Mutex<Status>,
    /// The last runs, scheduled and run-now.
    pub history: Mutex<History>,
    /// Held while the check runs, so a run-now never overlaps a scheduled run (or another run-now).
    run_lock: tokio::sync::Mutex<()>,
    /// A run-now of this check was asked for and has not finished: a second one is refused, not queued.
    run_now_pending: AtomicBool,
}

impl CheckState {
    pub fn status(&self) -> Status {
        self.status.lock().unwrap().clone()
    }

    fn last_failed(&self) -> bool {
        self.status
            .lock()
            .unwrap()
            .last
            .as_ref()
            .is_some_and(|l| !l.result.success())
    }
}

/// A check as listed by the status API: running ones with their state, disabled ones with their config only.
#[derive(Debug, Clone)]
pub struct CheckView {
    pub config: Arc<CheckConfig>,
    pub state: Option<Arc<CheckState>>,
}

/// What applying a config changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub removed: usize,
}

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    pusher: Pusher,
    clock: Clock,
    shutdown: Shutdown,
    started: AtomicBool,
    redactor: RwLock<Redactor>,
    ui: RwLock<UiConfig>,
    semaphore: RwLock<(usize, Arc<Semaphore>)>,
    state: Mutex<State>,
}

/// Why a run-now did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNowError {
    /// No check of that name runs on this agent (unknown, disabled, or for other regions).
    NotRunning,
    /// The check is running now (on schedule or asked for).
    Busy,
    /// The agent is shutting down.
    ShuttingDown,
}

#[derive(Default)]
struct State {
    region: String,
    all: Vec<Arc<CheckConfig>>,
    running: BTreeMap<String, Running>,
}

struct Running {
    check: Arc<CheckState>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// `pusher` receives every recorded run (remote write); [`Pusher::new`] without endpoints does nothing.
    pub fn new(metrics: Arc<Metrics>, pusher: Pusher, clock: Clock, shutdown: Shutdown) -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                metrics,
                pusher,
                clock,
                shutdown,
                started: AtomicBool::new(false),
                redactor: RwLock::new(Redactor::default()),
                ui: RwLock::new(UiConfig::default()),
                semaphore: RwLock::new((0, Arc::new(Semaphore::new(1)))),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Whether a config has been applied (for `/readyz`).
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::Acquire)
    }

    /// Scrubs the running config's credentials from messages.
    pub fn redactor(&self) -> Redactor {
        self.inner.redactor.read().unwrap().clone()
    }

    /// The running config's region.
    pub fn region(&self) -> String {
        self.inner.state.lock().unwrap().region.clone()
    }

    /// The scheduler's wall clock.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// The running config's page settings (run-now access, history length).
    pub fn ui(&self) -> UiConfig {
        self.inner.ui.read().unwrap().clone()
    }

    /// Runs a running check once now, outside its schedule: it waits for a slot under the concurrency limit like
    /// any run, never overlaps the check's own run, goes to the check's history marked as manual and is not
    /// counted in the check's series. Returns the run's id in the history. The run finishes and is recorded even
    /// if the caller stops waiting.
    pub async fn run_now(&self, name: &str) -> Result<u64, RunNowError> {
        let check = self.check(name).ok_or(RunNowError::NotRunning)?;
        if check.run_now_pending.swap(true, Ordering::AcqRel) {
            return Err(RunNowError::Busy);
        }
        /// Clears the pending flag however the run ends.
        struct Pending(Arc<CheckState>);
        impl Drop for Pending {
            fn drop(&mut self) {
                self.0.run_now_pending.store(false, Ordering::Release);
            }
        }
        let pending = Pending(check.clone());
        if check.run_lock.try_lock().is_err() {
            return Err(RunNowError::Busy);
        }
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let _pending = pending;
            let mut shutdown = inner.shutdown.clone();
            let semaphore = inner.semaphore();
            // The permit first, then the check's lock, in the same order as scheduled runs.
            let _permit = tokio::select! {
                p = semaphore.acquire_owned() => p,
                _ = shutdown.recv() => return Err(RunNowError::ShuttingDown),
            };
            let _running = tokio::select! {
                g = check.run_lock.lock() => g,
                _ = shutdown.recv() => return Err(RunNowError::ShuttingDown),
            };
            let started = inner.clock.now();
            check.status.lock().unwrap().running = true;
            let result = tokio::select! {
                r = run_check(&check.config) => r,
                _ = shutdown.recv() => return Err(RunNowError::ShuttingDown),
            };
            check.status.lock().unwrap().running = false;
            inner
                .metrics
                .run_now(check.config.name.as_str(), result.success());
            let redactor = inner.redactor.read().unwrap().clone();
            let mut history = check.history.lock().unwrap();
            history.record(&result, started, true, &redactor);
            Ok(history.latest().map_or(0, |r| r.id))
        });
        task.await.unwrap_or(Err(RunNowError::ShuttingDown))
    }

    /// Starts, restarts and stops check tasks so that exactly `config`'s active checks (enabled, for this region)
    /// run. Must be called from within a tokio runtime.
    pub fn apply(&self, config: &AgentConfig) -> Applied {
        *self.inner.redactor.write().unwrap() = config.secrets.clone();
        *self.inner.ui.write().unwrap() = config.ui.clone();
        {
            let mut sem = self.inner.semaphore.write().unwrap();
            if sem.0 != config.max_concurrency {
                *sem = (
                    config.max_concurrency,
                    Arc::new(Semaphore::new(config.max_concurrency)),
                );
            }
        }
        let mut applied = Applied::default();
        let mut st = self.inner.state.lock().unwrap();
        let region_changed = st.region != config.region;
        st.region = config.region.clone();
        st.all = config.checks.clone();
        let mut old = std::mem::take(&mut st.running);
        for check in config.active_checks() {
            let name = check.name.to_string();
            let running = match old.remove(&name) {
                Some(r) if !region_changed && r.check.config.same_as(check) => {
                    applied.unchanged += 1;
                    r.check
                        .history
                        .lock()
                        .unwrap()
                        .resize(config.ui.history_runs);
                    r
                }
                Some(r) => {
                    r.task.abort();
                    applied.changed += 1;
                    self.start(&config.region, check.clone())
                }
                None => {
                    applied.added += 1;
                    self.start(&config.region, check.clone())
                }
            };
            st.running.insert(name, running);
        }
        for (name, r) in old {
            r.task.abort();
            self.inner.metrics.remove_check(&name);
            self.inner.pusher.removed(&name, self.inner.clock.now());
            applied.removed += 1;
        }
        self.inner
            .metrics
            .checks_configured
            .set(st.running.len() as i64);
        self.inner.started.store(true, Ordering::Release);
        applied
    }

    /// Every configured check in config order.
    pub fn checks(&self) -> Vec<CheckView> {
        let st = self.inner.state.lock().unwrap();
        st.all
            .iter()
            .map(|c| CheckView {
                config: c.clone(),
                state: st
                    .running
                    .get(c.name.as_str())
                    .map(|r| r.check.clone())
                    .filter(|s| Arc::ptr_eq(&s.config, c) || s.config.same_as(c)),
            })
            .collect()
    }

    /// The state of a running check.
    pub fn check(&self, name: &str) -> Option<Arc<CheckState>> {
        let st = self.inner.state.lock().unwrap();
        st.running.get(name).map(|r| r.check.clone())
    }

    /// Stops every check task (shutdown does too).
    pub fn stop(&self) {
        let mut st = self.inner.state.lock().unwrap();
        for (_, r) in std::mem::take(&mut st.running) {
            r.task.abort();
        }
    }

    fn start(&self, region: &str, config: Arc<CheckConfig>) -> Running {
        let series = self.inner.metrics.add_check(region, &config);
        let check = Arc::new(CheckState {
            config,
            series,
            status: Mutex::new(Status::default()),
            history: Mutex::new(History::new(self.inner.ui.read().unwrap().history_runs)),
            run_lock: tokio::sync::Mutex::new(()),
            run_now_pending: AtomicBool::new(false),
        });
        let task = tokio::spawn(check_loop(self.inner.clone(), check.clone()));
        Running { check, task }
    }
}

impl Inner {
    fn semaphore(&self) -> Arc<Semaphore> {
        self.semaphore.read().unwrap().1.clone()
    }
}

/// The life of one check: wait for the due time, run, record, count the due times missed while running.
async fn check_loop(inner: Arc<Inner>, check: Arc<CheckState>) {
    let mut shutdown = inner.shutdown.clone();
    let cfg = check.config.clone();
    let name = cfg.name.as_str();
    let failing_schedule = cfg.when_failing.map(Schedule::Every);
    let mut after = inner.clock.now();
    loop {
        let schedule = match &failing_schedule {
            Some(s) if check.last_failed() => s,
            _ => &cfg.schedule,
        };
        let Some(due_wall) = schedule.next_after(name, after) else {
            check.status.lock().unwrap().next_run = None;
            return;
        };
        check.status.lock().unwrap().next_run = Some(due_wall);
        let due = inner.clock.instant(due_wall);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shutdown.recv() => return,
        }
        let semaphore = inner.semaphore();
        let permit = tokio::select! {
            p = semaphore.acquire_owned() => p,
            _ = shutdown.recv() => return,
        };
        // Waits out a run-now of this check, if one is going.
        let running = tokio::select! {
            g = check.run_lock.lock() => g,
            _ = shutdown.recv() => return,
        };
        let started = Instant::now();
        inner
            .metrics
            .lateness
            .observe(started.saturating_duration_since(due).as_secs_f64());
        check.status.lock().unwrap().running = true;
        // Boxed: the run's state (timeout, retries, the probe's future) is allocated while it runs, not kept in every
        // waiting check's task (~400 bytes each at 50,000 checks).
        let result = tokio::select! {
            r = Box::pin(run_check(&cfg)) => r,
            _ = shutdown.recv() => return,
        };
        drop(running);
        drop(permit);
        record(&inner, &check, result, inner.clock.wall(started));
        let now = inner.clock.now();
        let mut missed = 0u64;
        let mut t = due_wall;
        while let Some(next) = schedule.next_after(name, t) {
            if next > now || missed >= 1_000_000 {
                break;
            }
            missed += 1;
            t = next;
        }
        if missed > 0 {
            check.series.skipped(missed);
            tracing::debug!(check = name, missed, "run took longer than the interval");
        }
        after = now;
    }
}

fn record(inner: &Inner, check: &CheckState, result: ProbeResult, started: SystemTime) {
    let result = Arc::new(result);
    check.series.record(&result);
    inner
        .pusher
        .recorded(check.config.name.as_str(), &check.series, inner.clock.now());
    let redactor = inner.redactor.read().unwrap().clone();
    check
        .history
        .lock()
        .unwrap()
        .record(&result, started, false, &redactor);
    match &result.error {
        // The agent could not carry the run out (the target was never tried): say so, so no one reads it as the
        // target being down.
        Some(err) if err.agent_fault.is_some() => tracing::error!(
            check = check.config.name.as_str(),
            reason = err.agent_fault.map_or("", |f| f.as_str()),
            "agent error, not a check failure: {}",
            redactor.redact(&err.message)
        ),
        Some(err) => tracing::warn!(
            check = check.config.name.as_str(),
            error_type = err.error_type.as_str(),
            attempts = result.attempts,
            trace_id = result.trace_id.map(tracing::field::display),
            "{}",
            redactor.redact(&err.message)
        ),
        None => {}
    }
    let mut status = check.status.lock().unwrap();
    status.running = false;
    status.last = Some(LastRun { result, started });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;
    use crate::probe::Runner;
    use std::sync::atomic::AtomicU32;
    use std::time::UNIX_EPOCH;
    use vantage_common::shutdown;

    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600;

    fn clock() -> Clock {
        Clock::starting_at(UNIX_EPOCH + Duration::from_secs(T0))
    }

    /// A runner that logs the (tokio) time of each call, sleeps `busy`, and fails while `fail` says so.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<Instant>>>,
        active: Arc<AtomicU32>,
        max_active: Arc<AtomicU32>,
        fail_first: Arc<AtomicU32>,
    }

    impl Fake {
        fn runner(&self, busy: Duration) -> Runner {
            let f = self.clone();
            Runner::new(move || {
                let f = f.clone();
                Box::pin(async move {
                    f.calls.lock().unwrap().push(Instant::now());
                    let now = f.active.fetch_add(1, Ordering::SeqCst) + 1;
                    f.max_active.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(busy).await;
                    f.active.fetch_sub(1, Ordering::SeqCst);
                    let failing = f
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        ProbeResult::failed(ProbeError::new(ErrorType::Connect, "refused"), busy)
                    } else {
                        ProbeResult {
                            duration: busy,
                            attempts: 1,
                            ..Default::default()
                        }
                    }
                })
            })
        }

        fn calls(&self) -> Vec<Instant> {
            self.calls.lock().unwrap().clone()
        }
    }

    fn agent(checks: Vec<CheckConfig>, max_concurrency: usize) -> AgentConfig {
        AgentConfig {
            region: "test".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            labels: BTreeMap::new(),
            max_concurrency,
            log_format: "json".into(),
            checks: checks.into_iter().map(Arc::new).collect(),
            remote_write: Vec::new(),
            ui: crate::config::UiConfig::default(),
            blackbox_modules: None,
            secrets: Redactor::default(),
            hash: String::new(),
        }
    }

    fn scheduler() -> (Scheduler, Arc<Metrics>, vantage_common::ShutdownTrigger) {
        let (trigger, sd) = shutdown::channel();
        let metrics = Arc::new(Metrics::new());
        (
            Scheduler::new(metrics.clone(), Pusher::new(metrics.clone()), clock(), sd),
            metrics,
            trigger,
        )
    }

    fn every(name: &str, secs: u64, runner: Runner) -> CheckConfig {
        CheckConfig::new(
            name,
            "http",
            Schedule::Every(Duration::from_secs(secs)),
            runner,
        )
    }

    /// Every check's task lives as long as the check: what it holds while waiting is paid 50,000 times (issue #22).
    #[tokio::test]
    async fn a_waiting_check_holds_no_run_state() {
        let (s, _, _t) = scheduler();
        let cfg = Arc::new(every("a", 10, Fake::default().runner(Duration::ZERO)));
        let check = Arc::new(CheckState {
            config: cfg.clone(),
            series: s.inner.metrics.add_check("r", &cfg),
            status: Mutex::new(Status::default()),
            history: Mutex::new(History::new(100)),
            run_lock: tokio::sync::Mutex::new(()),
            run_now_pending: AtomicBool::new(false),
        });
        let waiting = std::mem::size_of_val(&check_loop(s.inner.clone(), check));
        let run = std::mem::size_of_val(&run_check(&cfg));
        // Without the box the loop's future held the run's (~400 bytes) on top of its own waits.
        assert!(
            waiting < 600,
            "a waiting check's task holds {waiting} bytes (a run's state: {run})"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn interval_checks_fire_at_their_phase() {
        let (s, _, _t) = scheduler();
        let fake = Fake::default();
        let start = Instant::now();
        s.apply(&agent(
            vec![every("api", 10, fake.runner(Duration::ZERO))],
            4,
        ));
        tokio::time::sleep(Duration::from_secs(35)).await;
        let calls = fake.calls();
        let offset = crate::schedule::phase_offset("api", Duration::from_secs(10));
        // T0 is a multiple of 10 s, so the first run is `offset` after the start.
        // tokio timers have millisecond resolution.
        let first = calls[0] - start;
        assert!(
            first >= offset && first - offset < Duration::from_millis(2),
            "{calls:?}"
        );
        for w in calls.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_secs(10));
        }
        assert_eq!(
            calls.len(),
            if offset < Duration::from_secs(5) {
                4
            } else {
                3
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cron_checks_fire_at_cron_times() {
        let (s, _, _t) = scheduler();
        let fake = Fake::default();
        let start = Instant::now();
        let cron = Schedule::Cron(Box::new("*/2 * * * *".parse().unwrap()));
        s.apply(&agent(
            vec![CheckConfig::new(
                "c",
                "tcp",
                cron,
                fake.runner(Duration::ZERO),
            )],
            4,
        ));
        tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
        let offsets: Vec<u64> = fake
            .calls()
            .iter()
            .map(|c| (*c - start).as_secs())
            .collect();
        // T0 is 00:00:00: due at 00:02, 00:04 (strictly after the start).
        assert_eq!(offsets, vec![120, 240]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_never_overlaps_and_skips_are_counted() {
        let (s, m, _t) = scheduler();
        let fake = Fake::default();
        let mut c = every("slow", 10, fake.runner(Duration::from_secs(25)));
        c.timeout = Duration::from_secs(30);
        s.apply(&agent(vec![c], 4));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(fake.max_active.load(Ordering::SeqCst), 1);
        let runs = fake.calls().len();
        assert!((3..=4).contains(&runs), "{runs}");
        let text = m.encode();
        let skipped = text
            .lines()
            .find(|l| l.starts_with("synthetic_runs_skipped_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap();
        // Each 25 s run covers two further due times.
        assert!(skipped >= 4, "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn runs_go_to_the_history_which_a_reload_resizes_in_place() {
        let (s, _, _t) = scheduler();
        let fake = Fake::default();
        fake.fail_first.store(2, Ordering::SeqCst);
        let mut cfg = agent(vec![every("h", 10, fake.runner(Duration::ZERO))], 4);
        cfg.ui.history_runs = 5;
        s.apply(&cfg);
        tokio::time::sleep(Duration::from_secs(61)).await;
        let state = s.check("h").unwrap();
        {
            let h = state.history.lock().unwrap();
            assert_eq!(h.capacity(), 5);
            assert_eq!(h.summary().runs, 5);
            // Six or seven runs (by the check's phase), the first two failed; ids count every run.
            let latest = h.latest().unwrap().id;
            assert!((6..=7).contains(&latest), "{latest}");
            let ids: Vec<u64> = h.newest_first().map(|r| r.id).collect();
            assert_eq!(ids, (latest - 4..=latest).rev().collect::<Vec<_>>());
            for r in h.newest_first() {
                assert_eq!(r.success(), r.id > 2, "run {}", r.id);
                assert!(!r.manual());
            }
        }
        cfg.ui.history_runs = 2;
        assert_eq!(s.apply(&cfg).unchanged, 1);
        let h = state.history.lock().unwrap();
        assert_eq!((h.capacity(), h.summary().runs), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_concurrency_limit_holds() {
        let (s, _, _t) = scheduler();
        let fake = Fake::default();
        let checks = (0..20)
            .map(|i| every(&format!("c{i}"), 10, fake.runner(Duration::from_secs(5))))
            .collect();
        s.apply(&agent(checks, 3));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(fake.max_active.load(Ordering::SeqCst), 3);
        assert!(fake.calls().len() >= 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_probe_times_out() {
        let fake = Fake::default();
        let mut c = every("hang", 60, fake.runner(Duration::from_secs(3600)));
        c.timeout = Duration::from_secs(5);
        let started = Instant::now();
        let r = run_check(&c).await;
        let e = r.error.unwrap();
        assert_eq!(e.error_type, ErrorType::Timeout);
        assert_eq!(e.message, "no result within 5s");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_and_count_attempts() {
        let fake = Fake::default();
        fake.fail_first.store(2, Ordering::SeqCst);
        let mut c = every("flaky", 60, fake.runner(Duration::ZERO));
        c.retries = 3;
        let r = run_check(&c).await;
        assert!(r.success());
        assert_eq!(r.attempts, 3);
        let calls = fake.calls();
        assert_eq!(calls[1] - calls[0], Duration::from_millis(250));
        assert_eq!(calls[2] - calls[1], Duration::from_millis(500));
        // Out of retries: the last failure is the result.
        fake.fail_first.store(10, Ordering::SeqCst);
        c.retries = 1;
        let r = run_check(&c).await;
        assert_eq!(r.attempts, 2);
        assert_eq!(r.error.unwrap().error_type, ErrorType::Connect);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_is_one_trace_across_retries_and_a_timeout_keeps_it() {
        let seen: Arc<Mutex<Vec<TraceId>>> = Arc::default();
        let log = seen.clone();
        let runner = Runner::traced(move |trace| {
            let attempt = {
                let mut seen = log.lock().unwrap();
                seen.push(trace);
                seen.len()
            };
            Box::pin(async move {
                if attempt % 2 == 1 {
                    std::future::pending::<()>().await;
                }
                ProbeResult::failed(
                    ProbeError::new(ErrorType::Connect, "refused"),
                    Duration::ZERO,
                )
            })
        });
        let mut c = every("traced", 60, runner);
        c.timeout = Duration::from_secs(1);
        c.retries = 1;
        let first = run_check(&c).await;
        let second = run_check(&c).await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        // Both attempts of a run share its trace; the next run has a new one.
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[2], seen[3]);
        assert_ne!(seen[0], seen[2]);
        assert_eq!(first.trace_id, Some(seen[0]));
        assert_eq!(second.trace_id, Some(seen[2]));
        // A run cut by the timeout (the odd attempts hang) still reports its trace.
        c.retries = 0;
        let timed_out = run_check(&c).await;
        assert_eq!(timed_out.error.unwrap().error_type, ErrorType::Timeout);
        assert!(timed_out.trace_id.is_some());
        // A runner without trace context reports none.
        let fake = Fake::default();
        assert_eq!(
            run_check(&every("plain", 60, fake.runner(Duration::ZERO)))
                .await
                .trace_id,
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failing_checks_run_on_the_faster_schedule() {
        let (s, _, _t) = scheduler();
        let fake = Fake::default();
        fake.fail_first.store(3, Ordering::SeqCst);
        let mut c = every("wf", 60, fake.runner(Duration::ZERO));
        c.when_failing = Some(Duration::from_secs(10));
        s.apply(&agent(vec![c], 4));
        tokio::time::sleep(Duration::from_secs(200)).await;
        let calls = fake.calls();
        // After each of the three failures the next run comes within 10 s; after the success, back to 60 s.
        let gaps: Vec<u64> = calls.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert!(gaps[..3].iter().all(|g| *g <= 10), "{gaps:?}");
        assert!(
            gaps[3] <= 60 && gaps[4..].iter().all(|g| *g == 60),
            "{gaps:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn apply_keeps_unchanged_checks_and_stops_removed_ones() {
        let (s, m, _t) = scheduler();
        let (a, b, c) = (Fake::default(), Fake::default(), Fake::default());
        let cfg = agent(
            vec![
                every("a", 10, a.runner(Duration::ZERO)),
                every("b", 10, b.runner(Duration::ZERO)),
            ],
            4,
        );
        assert_eq!(s.apply(&cfg).added, 2);
        tokio::time::sleep(Duration::from_secs(11)).await;
        let a_state = s.check("a").unwrap();
        assert!(a_state.status().last.is_some());
        // Same a, b removed, c added.
        let mut next = agent(vec![every("c", 10, c.runner(Duration::ZERO))], 4);
        next.checks.insert(0, cfg.checks[0].clone());
        let applied = s.apply(&next);
        assert_eq!(
            applied,
            Applied {
                added: 1,
                changed: 0,
                unchanged: 1,
                removed: 1
            }
        );
        assert!(Arc::ptr_eq(&a_state, &s.check("a").unwrap()));
        assert!(s.check("a").unwrap().status().last.is_some());
        let text = m.encode();
        assert!(!text.contains("endpoint=\"b\""), "{text}");
        let b_runs = b.calls().len();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(b.calls().len(), b_runs, "removed check kept running");
        assert!(c.calls().len() >= 2);
        // A changed timeout restarts the check.
        let mut changed = every("a", 10, a.runner(Duration::ZERO));
        changed.timeout = Duration::from_secs(2);
        let applied = s.apply(&agent(vec![changed], 4));
        assert_eq!(
            applied,
            Applied {
                added: 0,
                changed: 1,
                unchanged: 0,
                removed: 1
            }
        );
        assert!(s.check("a").unwrap().status().last.is_none());
    }
}
