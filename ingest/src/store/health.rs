//! Whether the store can write right now, and how an outage is told: one log line when writes start failing,
//! at most one summary line per [`SUMMARY_INTERVAL`] while they fail, one line when they work again. "Again"
//! means for [`RECOVERY_SETTLE`] without a new failure: a store that flaps (a nearly full disk takes a small
//! write, then refuses the next group) is one outage, not a line per flap. Readiness follows each write
//! at once, though: a store is ready as soon as a write works.
//!
//! The writers report every outcome here (a group committed, a probe written, a transient failure); the
//! HTTP side only reads [`Health::is_available`]. A store that nobody writes to would never notice that its
//! database came back, or went away: [`probe_loop`] sends a probe (a one-row write, see `schema.rs`) through
//! the writer every [`DOWN_PROBE_INTERVAL`] while writes fail, and after [`IDLE_PROBE_INTERVAL`] without a
//! write while they work, so `/readyz` tells the truth without traffic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::queue::Queue;

/// At most one "still unavailable" line per this interval, never a line per request.
pub(crate) const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);
/// While writes fail, how often the store tries a probe write (how soon `/readyz` sees the store back).
pub(crate) const DOWN_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// While writes work, a probe after this long without any write (how soon `/readyz` sees an idle store go).
pub(crate) const IDLE_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long writes must work, without a failure, before an outage counts as over.
pub(crate) const RECOVERY_SETTLE: Duration = Duration::from_secs(3);

/// The store's write health, shared by the writer, the queue and the HTTP side.
pub(crate) struct Health {
    state: Mutex<State>,
    available: watch::Sender<bool>,
    /// `vantage_ingest_store_available`: 1 while writes work.
    gauge: Gauge,
    /// What requests get while the store is away, for the first log line.
    fallback: &'static str,
    settle: Duration,
}

struct State {
    outage: Option<Outage>,
    last_write: Instant,
}

/// One stretch of failing writes.
struct Outage {
    since: Instant,
    /// The latest failure's text (never secret: the backends redact it).
    reason: String,
    /// Requests acknowledged from the local spool.
    spooled: u64,
    /// Requests answered 503 with Retry-After.
    refused: u64,
    last_line: Instant,
    /// Since when writes work again (the outage ends [`RECOVERY_SETTLE`] later unless one fails).
    back_since: Option<Instant>,
    /// The latest failure: a write started before it says nothing about the store since.
    failed_at: Instant,
}

impl Health {
    /// `spool`: whether a local spool takes the events while the store is away.
    pub fn new(spool: bool) -> Self {
        let gauge = Gauge::default();
        gauge.set(1);
        Self {
            state: Mutex::new(State {
                outage: None,
                last_write: Instant::now(),
            }),
            available: watch::channel(true).0,
            gauge,
            fallback: if spool {
                "events go to the local spool until it is back"
            } else {
                "requests are answered 503 with Retry-After until it is back"
            },
            settle: RECOVERY_SETTLE,
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "vantage_ingest_store_available",
            "1 while the event store takes writes, 0 while writes fail (disk full, database unreachable, ...)",
            self.gauge.clone(),
        );
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A group or a probe started at `started` was written: the store is available; an outage ends once that
    /// holds for [`RECOVERY_SETTLE`]. A write started before the latest failure does not end it (with two
    /// PostgreSQL writers, the other's group can commit just after the server began shutting down: taken for
    /// "back", it let the spool's drain try a server that was going away).
    pub fn wrote(&self, started: Instant) {
        let mut s = self.state();
        let now = Instant::now();
        s.last_write = now;
        if let Some(o) = &mut s.outage {
            if o.back_since.is_none() && started >= o.failed_at {
                o.back_since = Some(now);
                self.set_available(true);
            }
        }
        self.settle(&mut s);
    }

    fn set_available(&self, up: bool) {
        self.gauge.set(i64::from(up));
        self.available.send_replace(up);
    }

    fn settle(&self, s: &mut State) {
        let Some(o) = &s.outage else { return };
        let Some(back) = o.back_since.filter(|b| b.elapsed() >= self.settle) else {
            return;
        };
        tracing::info!(
            down_secs = round_secs(back.saturating_duration_since(o.since)),
            spooled_requests = o.spooled,
            refused_requests = o.refused,
            "event store available again"
        );
        s.outage = None;
    }

    /// A write failed for a reason that passes (see `WriteError::transient`): starts an outage, or notes the
    /// latest reason of the running one.
    pub fn failed(&self, reason: &str) {
        let mut s = self.state();
        match &mut s.outage {
            Some(o) => {
                o.failed_at = Instant::now();
                if o.reason != reason {
                    o.reason = reason.to_owned();
                }
                if o.back_since.take().is_some() {
                    self.set_available(false);
                }
            }
            None => {
                let now = Instant::now();
                tracing::error!(reason, "event store unavailable: {}", self.fallback);
                s.outage = Some(Outage {
                    since: now,
                    reason: reason.to_owned(),
                    spooled: 0,
                    refused: 0,
                    last_line: now,
                    back_since: None,
                    failed_at: now,
                });
                self.set_available(false);
            }
        }
    }

    /// Requests answered during an outage: `spooled` acknowledged from the spool, `refused` answered 503.
    pub fn answered(&self, spooled: u64, refused: u64) {
        if spooled == 0 && refused == 0 {
            return;
        }
        let mut s = self.state();
        if let Some(o) = &mut s.outage {
            o.spooled += spooled;
            o.refused += refused;
        }
        Self::summarize(&mut s);
    }

    /// The summary line of a running outage when the last line is [`SUMMARY_INTERVAL`] old, or its last
    /// line once it has settled.
    pub fn tick(&self) {
        let mut s = self.state();
        self.settle(&mut s);
        Self::summarize(&mut s);
    }

    fn summarize(s: &mut State) {
        let Some(o) = &mut s.outage else { return };
        if o.back_since.is_some() || o.last_line.elapsed() < SUMMARY_INTERVAL {
            return;
        }
        o.last_line = Instant::now();
        tracing::warn!(
            down_secs = round_secs(o.since.elapsed()),
            reason = %o.reason,
            spooled_requests = o.spooled,
            refused_requests = o.refused,
            "event store still unavailable"
        );
    }

    /// Whether the last write (or probe) worked.
    pub fn is_available(&self) -> bool {
        *self.available.borrow()
    }

    /// Whether an outage is running or not yet settled: probes then come every [`DOWN_PROBE_INTERVAL`]
    /// and must find room for real traffic, not just for their own row (see `sqlite::has_room`).
    pub fn in_outage(&self) -> bool {
        self.state().outage.is_some()
    }

    /// Follows [`Self::is_available`] (the spool's drain waits for the store to come back).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.available.subscribe()
    }

    /// Time since the last write that worked.
    fn idle(&self) -> Duration {
        self.state().last_write.elapsed()
    }
}

fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// Probes the store through its writer (see the module docs) until the queue is closed.
pub(crate) async fn probe_loop(queue: Arc<Queue>, health: Arc<Health>) {
    loop {
        let wait = if health.in_outage() {
            DOWN_PROBE_INTERVAL
        } else {
            IDLE_PROBE_INTERVAL.saturating_sub(health.idle())
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        health.tick();
        if !health.in_outage() && health.idle() < IDLE_PROBE_INTERVAL {
            continue;
        }
        // The writer reports the outcome to `health` itself; only "closed" matters here.
        if matches!(queue.probe().await, Err(super::SubmitError::Closed)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_writes_and_counts_requests() {
        let mut h = Health::new(false);
        h.settle = Duration::from_millis(50);
        let mut rx = h.subscribe();
        assert!(h.is_available());
        let before = Instant::now();
        h.failed("disk full");
        assert!(!h.is_available());
        assert!(rx.has_changed().unwrap());
        assert!(!*rx.borrow_and_update());
        h.failed("I/O error");
        h.answered(0, 3);
        h.answered(2, 0);
        {
            let s = h.state();
            let o = s.outage.as_ref().unwrap();
            assert_eq!(
                (o.reason.as_str(), o.spooled, o.refused),
                ("I/O error", 2, 3)
            );
        }
        assert_eq!(h.gauge.get(), 0);
        // A write started before the failure (another writer's, committed as the store went away) tells
        // nothing: still unavailable.
        h.wrote(before);
        assert!(!h.is_available());
        assert!(!rx.has_changed().unwrap());
        // A write started since works: ready at once, but the outage is not over until it settles.
        h.wrote(Instant::now());
        assert!(h.is_available());
        assert!(*rx.borrow_and_update());
        assert_eq!(h.gauge.get(), 1);
        assert!(h.in_outage());
        // A flap: the same outage, not a new one.
        h.failed("disk full");
        assert!(!h.is_available());
        h.answered(0, 1);
        assert_eq!(h.state().outage.as_ref().unwrap().refused, 4);
        h.wrote(Instant::now());
        std::thread::sleep(Duration::from_millis(60));
        h.tick();
        assert!(!h.in_outage());
        assert!(h.is_available());
        // Outside an outage, answers are not counted anywhere.
        h.answered(1, 1);
        assert!(h.state().outage.is_none());
    }
}
