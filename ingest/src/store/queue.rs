//! The bounded write queue: admission counted in events, group-commit batching, and waking the submitters.
//!
//! Depth counts events from admission until their transaction has finished (committed or failed), so the
//! memory held by a stalled writer is bounded by `queue_capacity` plus nothing else. Probes (see `health.rs`)
//! travel the same way, outside the bound: a probe holds no events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use super::health::Health;
use super::{EventRecord, SubmitError, SubmitOutcome};

/// One submit waiting for its commit, or a probe: no events, and the writer makes one small write instead
/// (the `write_probe` row) to learn whether the store takes writes.
pub(crate) struct Pending {
    pub events: Vec<EventRecord>,
    reply: oneshot::Sender<Result<SubmitOutcome, SubmitError>>,
}

impl Pending {
    pub fn is_probe(&self) -> bool {
        self.events.is_empty()
    }
}

/// What a writer did with a group.
#[derive(Debug, PartialEq)]
pub(crate) enum Written {
    /// Committed to the store: for each submit of the group in order, the indices (ascending) of its events
    /// that were not new.
    Stored(Vec<Vec<u32>>),
    /// The store could not take them; they are durable in the local spool, to be drained later.
    Spooled,
}

/// Why a group was not written. Nothing of it was committed (or, after a lost connection, possibly all of
/// it: event ids make the retry safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteError {
    /// The store cannot write now but may soon: unreachable, lost connection, starting up, failover,
    /// timeout, locked, disk full, I/O error. Answered 503 with Retry-After; anything else is a bug (500).
    pub transient: bool,
    /// Never holds a secret (the backends redact it).
    pub message: String,
}

impl WriteError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
    }
}

/// The store's own metrics (registered once per open store).
#[derive(Clone)]
pub(crate) struct StoreMetrics {
    queue_depth: Gauge,
    commit_seconds: Histogram,
    batch_events: Histogram,
    commits: Counter,
    commit_errors: Counter,
    inserted: Counter,
    duplicates: Counter,
}

impl StoreMetrics {
    pub fn new() -> Self {
        Self {
            queue_depth: Gauge::default(),
            // 0.25 ms .. ~4 s
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            // 1 .. 16384 events
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            commits: Counter::default(),
            commit_errors: Counter::default(),
            inserted: Counter::default(),
            duplicates: Counter::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "vantage_ingest_store_queue_depth",
            "Events accepted by the store and not yet committed",
            self.queue_depth.clone(),
        );
        registry.register(
            "vantage_ingest_store_commit_seconds",
            "Time to write and commit one group of events",
            self.commit_seconds.clone(),
        );
        registry.register(
            "vantage_ingest_store_batch_events",
            "Events per group commit",
            self.batch_events.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "vantage_ingest_store_commits",
            "Group commits that succeeded",
            self.commits.clone(),
        );
        registry.register(
            "vantage_ingest_store_commit_errors",
            "Group commits that failed (their submitters got an error)",
            self.commit_errors.clone(),
        );
        registry.register(
            "vantage_ingest_store_events_inserted",
            "Events newly stored",
            self.inserted.clone(),
        );
        registry.register(
            "vantage_ingest_store_events_duplicate",
            "Events ignored because their event_id was already stored",
            self.duplicates.clone(),
        );
    }
}

/// Admission side of the queue, shared by every `Store` clone and the writer.
pub(crate) struct Queue {
    depth: AtomicUsize,
    capacity: usize,
    retry_after_secs: u64,
    /// `None` once closed: the writer drains what is in the channel and stops when it is empty.
    tx: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
    metrics: StoreMetrics,
    health: Arc<Health>,
}

impl Queue {
    /// The channel itself is unbounded; `depth` is what bounds it.
    pub fn new(
        capacity: usize,
        retry_after_secs: u64,
        metrics: StoreMetrics,
        health: Arc<Health>,
    ) -> (Self, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Self {
            depth: AtomicUsize::new(0),
            capacity,
            retry_after_secs,
            tx: Mutex::new(Some(tx)),
            metrics,
            health,
        };
        (queue, rx)
    }

    /// Sends a probe to the writer and waits for its outcome (which the writer also reports to [`Health`]).
    pub async fn probe(&self) -> Result<SubmitOutcome, SubmitError> {
        let (reply, wait) = oneshot::channel();
        let sent = {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            match tx.as_ref() {
                Some(tx) => tx
                    .send(Pending {
                        events: Vec::new(),
                        reply,
                    })
                    .is_ok(),
                None => false,
            }
        };
        if !sent {
            return Err(SubmitError::Closed);
        }
        wait.await
            .unwrap_or_else(|_| Err(SubmitError::Failed("writer stopped".into())))
    }

    pub async fn submit(&self, events: Vec<EventRecord>) -> Result<SubmitOutcome, SubmitError> {
        if events.is_empty() {
            return if self.is_closed() {
                Err(SubmitError::Closed)
            } else {
                Ok(SubmitOutcome::default())
            };
        }
        // Closed wins over Busy: a draining store will not take the events whatever the depth.
        if self.is_closed() {
            return Err(SubmitError::Closed);
        }
        let n = events.len();
        self.admit(n)?;
        let (reply, wait) = oneshot::channel();
        let sent = {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            match tx.as_ref() {
                Some(tx) => tx.send(Pending { events, reply }).is_ok(),
                None => false,
            }
        };
        if !sent {
            self.release(n);
            return Err(SubmitError::Closed);
        }
        // The writer always answers; a dropped sender means it died, which we report as failed.
        wait.await
            .unwrap_or_else(|_| Err(SubmitError::Failed("writer stopped".into())))
    }

    /// Reserves room for `n` events or answers `Busy`. A submit larger than the whole capacity is let in
    /// when the queue is empty, so it can never be rejected forever.
    fn admit(&self, n: usize) -> Result<(), SubmitError> {
        let mut cur = self.depth.load(Ordering::Relaxed);
        loop {
            if cur > 0 && cur + n > self.capacity {
                return Err(SubmitError::Busy {
                    retry_after_secs: self.retry_after_secs,
                });
            }
            match self.depth.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // (by how much, not to what: two submits' sets of the values they computed could land in
                    // the other order and leave the gauge at a depth the queue no longer had)
                    self.metrics.queue_depth.inc_by(n as i64);
                    return Ok(());
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn release(&self, n: usize) {
        self.depth.fetch_sub(n, Ordering::AcqRel);
        self.metrics.queue_depth.dec_by(n as i64);
    }

    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn is_closed(&self) -> bool {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Reports a finished group, started at `started`: wakes each submitter with its own counts (or the
    /// failure), records metrics, tells [`Health`] (which needs the start: a write begun before a failure
    /// does not end the outage) and frees the queue room.
    pub fn finish(
        &self,
        batch: Vec<Pending>,
        result: Result<Written, WriteError>,
        started: Instant,
    ) {
        let events: usize = batch.iter().map(|p| p.events.len()).sum();
        let requests = batch.iter().filter(|p| !p.is_probe()).count() as u64;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_events.observe(events as f64);
        // Metrics and queue room are settled before anyone is woken, so a submitter that looks right
        // after its answer sees them.
        let answers: Vec<Result<SubmitOutcome, SubmitError>> = match result {
            Ok(Written::Stored(duplicates)) => {
                self.metrics.commits.inc();
                self.health.wrote(started);
                debug_assert_eq!(duplicates.len(), batch.len(), "one answer per submit");
                let answers: Vec<_> = batch
                    .iter()
                    .zip(
                        duplicates
                            .into_iter()
                            .chain(std::iter::repeat_with(Vec::new)),
                    )
                    .map(|(p, duplicates)| {
                        Ok(SubmitOutcome {
                            inserted: p.events.len().saturating_sub(duplicates.len()),
                            duplicates,
                            spooled: 0,
                        })
                    })
                    .collect();
                let inserted: usize = answers.iter().flatten().map(|o| o.inserted).sum();
                self.metrics.inserted.inc_by(inserted as u64);
                self.metrics.duplicates.inc_by((events - inserted) as u64);
                answers
            }
            Ok(Written::Spooled) => {
                self.health.answered(requests, 0);
                batch
                    .iter()
                    .map(|p| {
                        Ok(SubmitOutcome {
                            spooled: p.events.len(),
                            ..SubmitOutcome::default()
                        })
                    })
                    .collect()
            }
            Err(e) => {
                self.metrics.commit_errors.inc();
                let answer = if e.transient {
                    // Logged by `Health` once per outage, not per group.
                    self.health.failed(&e.message);
                    self.health.answered(0, requests);
                    SubmitError::Unavailable {
                        retry_after_secs: self.retry_after_secs,
                    }
                } else {
                    tracing::error!(events, error = %e.message, "event store commit failed");
                    SubmitError::Failed(e.message)
                };
                batch.iter().map(|_| Err(answer.clone())).collect()
            }
        };
        self.release(events);
        for (p, answer) in batch.into_iter().zip(answers) {
            // The submitter may have gone away (client disconnected); its events are stored anyway.
            let _ = p.reply.send(answer);
        }
    }
}

/// Takes `first` plus whatever else is queued right now, up to `max_events` (the first submit is always
/// taken whole, even when larger).
pub(crate) fn take_batch(
    first: Pending,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    max_events: usize,
) -> Vec<Pending> {
    let mut n = first.events.len();
    let mut batch = vec![first];
    while n < max_events {
        // Peeking is not possible: a submit that overshoots the limit joins this group anyway (bounded by
        // one submit's size), which is cheaper than holding it back.
        match rx.try_recv() {
            Ok(p) => {
                n += p.events.len();
                batch.push(p);
            }
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128) -> EventRecord {
        EventRecord {
            event_id: uuid::Uuid::from_u128(id),
            site: "s".into(),
            session_id: "x".into(),
            event_type: "custom".into(),
            client_ts_ms: 0,
            received_ms: 0,
            route: "/".into(),
            url: "/".into(),
            browser: "b".into(),
            os: "o".into(),
            device: "desktop".into(),
            value: None,
            name: None,
            endpoint: None,
            status: None,
            rating: None,
            raw: "{}".into(),
            release: None,
            fingerprint: None,
            stack: None,
        }
    }

    #[tokio::test]
    async fn busy_when_full_and_room_freed_after_finish() {
        let (q, mut rx) = Queue::new(3, 7, StoreMetrics::new(), Arc::new(Health::new(false)));
        let q = std::sync::Arc::new(q);
        let q1 = q.clone();
        let first = tokio::spawn(async move { q1.submit(vec![event(1), event(2)]).await });
        let p = rx.recv().await.expect("queued");
        assert_eq!(q.depth.load(Ordering::Relaxed), 2);
        // 2 + 2 > 3
        assert_eq!(
            q.submit(vec![event(3), event(4)]).await,
            Err(SubmitError::Busy {
                retry_after_secs: 7
            })
        );
        // The second of the two events was already stored.
        q.finish(vec![p], Ok(Written::Stored(vec![vec![1]])), Instant::now());
        assert_eq!(
            first.await.unwrap(),
            Ok(SubmitOutcome {
                inserted: 1,
                duplicates: vec![1],
                spooled: 0
            })
        );
        assert_eq!(q.depth.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn oversized_submit_admitted_when_empty_and_closed_rejects() {
        let (q, mut rx) = Queue::new(1, 1, StoreMetrics::new(), Arc::new(Health::new(false)));
        q.admit(5).expect("empty queue admits a large submit");
        q.release(5);
        q.close();
        assert_eq!(q.submit(vec![event(1)]).await, Err(SubmitError::Closed));
        assert_eq!(q.submit(vec![]).await, Err(SubmitError::Closed));
        assert!(rx.recv().await.is_none());
        assert_eq!(q.depth.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn failure_reaches_every_waiter_as_unavailable_or_failed() {
        let health = Arc::new(Health::new(false));
        let (q, mut rx) = Queue::new(10, 4, StoreMetrics::new(), health.clone());
        let q = std::sync::Arc::new(q);
        for (error, want) in [
            (
                WriteError::transient("disk full"),
                SubmitError::Unavailable {
                    retry_after_secs: 4,
                },
            ),
            (
                WriteError::fatal("no such table: events"),
                SubmitError::Failed("no such table: events".into()),
            ),
        ] {
            let (qa, qb) = (q.clone(), q.clone());
            let a = tokio::spawn(async move { qa.submit(vec![event(1)]).await });
            let b = tokio::spawn(async move { qb.submit(vec![event(2)]).await });
            let first = rx.recv().await.unwrap();
            let mut batch = vec![first];
            batch.push(rx.recv().await.unwrap());
            q.finish(batch, Err(error), Instant::now());
            for h in [a, b] {
                assert_eq!(h.await.unwrap(), Err(want.clone()));
            }
        }
        // Only the transient failure made the store unavailable; a probe that writes ends it.
        assert!(!health.is_available());
        let q1 = q.clone();
        let probe = tokio::spawn(async move { q1.probe().await });
        let p = rx.recv().await.unwrap();
        assert!(p.is_probe());
        q.finish(vec![p], Ok(Written::Stored(vec![vec![]])), Instant::now());
        assert_eq!(probe.await.unwrap(), Ok(SubmitOutcome::default()));
        assert!(health.is_available());
    }

    #[tokio::test]
    async fn spooled_groups_are_acknowledged_with_their_count() {
        let (q, mut rx) = Queue::new(10, 1, StoreMetrics::new(), Arc::new(Health::new(true)));
        let q = std::sync::Arc::new(q);
        let q1 = q.clone();
        let a = tokio::spawn(async move { q1.submit(vec![event(1), event(2)]).await });
        let p = rx.recv().await.unwrap();
        q.finish(vec![p], Ok(Written::Spooled), Instant::now());
        assert_eq!(
            a.await.unwrap(),
            Ok(SubmitOutcome {
                inserted: 0,
                duplicates: vec![],
                spooled: 2
            })
        );
        assert_eq!(q.depth.load(Ordering::Relaxed), 0);
    }
}
