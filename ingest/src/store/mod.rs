//! The durable event store: one writer task with a bounded queue and group commit, over SQLite or PostgreSQL.
//!
//! Contract used by the HTTP pipeline (do not change shapes without updating both sides):
//! - [`Store::open`] picks the backend from `storage.url` (`sqlite://path` or `postgres://...`), applies the
//!   schema migrations, and starts the writer task.
//! - [`Store::submit`] enqueues one request's events and resolves only once they are committed (so the handler
//!   answers 202 only for durable events), or durable in the spool of a PostgreSQL store that cannot take
//!   writes (`storage.spool`). A full queue returns [`SubmitError::Busy`] at once, a store that cannot write
//!   now (unreachable, starting up, failover, timeout, locked, disk full, I/O error) and no spool to take the
//!   events returns [`SubmitError::Unavailable`]: both are 503 with Retry-After, and nothing was stored. An
//!   event whose `(site, event_id)` is already stored is ignored (idempotent retries, in whatever session)
//!   and not counted as inserted.
//! - [`Store::readiness`] says whether a submit could be stored now (`/readyz`).
//! - Stats queries return the same results on both backends.
//!
//! # Layout
//! - [`queue`]: admission into the bounded queue (depth counted in events), batch taking, waking submitters.
//! - [`health`]: whether the store can write, probes that find out without traffic, the outage's log lines.
//! - [`schema`]: the versioned migrations, one text per dialect.
//! - [`migrate`]: the one runner that applies them (per-backend adapters), recorded in `schema_migrations`.
//! - [`sqlite`]: SQLite backend: WAL; writer, syncer (fsync before answering) and checkpointer threads
//!   (`sqlite/{writer,syncer,checkpointer}.rs`), queries in `sqlite/reader.rs`; single-row inserts.
//! - [`postgres`]: PostgreSQL backend: one binary `COPY` per group (`INSERT ... ON CONFLICT` after a
//!   conflict), reconnects.
//! - [`partitions`]: PostgreSQL's day partitions of `events`: created ahead, dropped by retention.
//! - [`spool`]: a PostgreSQL store's local spool (a SQLite file) for the events it cannot write now.
//! - [`drain`]: moves spooled events into PostgreSQL once it is back, oldest first, at a bounded rate.
//! - [`stats`]: the stats API's result shapes and what every query over events shares (cells, SQL dialects).
//! - [`rollup`]: the `pages`/`api`/`errors`/`vitals` stats and the error groups' numbers kept at write time
//!   per minute, folded into minute, hour and day rows, read per window; and the backfills of events stored
//!   before them.
//! - [`sketch`]: the rollups' mergeable summaries: a DDSketch (percentiles within 1 %), a HyperLogLog.
//! - [`error_groups`]: error groups' result shapes, and a group's occurrences (shared SQL, its own index).
//! - [`timeline`]: page loads and errors per time bucket of a window (shared SQL), zero-filled.
//! - [`sessions`]: a site's recent sessions and one session's events in time order (shared SQL).
//!
//! Besides events, the store keeps uploaded source maps (`sourcemaps`: written and read on the query side,
//! never by the writer) and the error groups that exist (`error_groups`, for the new-groups counter).
//!
//! # Time base
//! Stats windows (`since_ms`) compare against the event's **client** timestamp (`client_ts_ms`): that is when
//! the user saw the page, and the HTTP layer already rejects timestamps too far in the past or future.
//! The scan is narrowed by **receive** time, though, which only grows as rows are added (an index on client
//! time takes inserts all over the last seconds of each type, one dirty page per event): the queries add
//! `received_ms >= since_ms - max_client_ahead_ms`, which every row with `client_ts_ms >= since_ms` meets,
//! so results are those of the client-time window alone. PostgreSQL serves that bound from its
//! `(site, event_type, received_ms)` index; SQLite has no index for it (every commit rewrote each event
//! type's right-edge page) and scans the rowid range from the first row received then, rows being
//! appended in receive order (`sqlite/reader.rs`). (Should
//! `max_future` be lowered, events stored earlier under the larger value could fall out at the window's edge.)
//! Retention ([`Store::delete_older_than`]) compares against the **server receive** time (`received_ms`): how
//! long we hold data is our clock's business, not the sender's. Except on PostgreSQL's day partitions (by
//! client day, schema migration 11), which it drops whole once the day has ended before the cutoff: an event
//! goes `retention` after the end of its client day, so one received late (by at most `limits.max_past`)
//! goes that much sooner than `retention` after receipt, and none stays longer than `retention` + 1 day +
//! `limits.max_future` after receipt. (Deleting exactly by receive time there would delete every row one by
//! one before its day could be dropped; dropping only days whose events were all surely received before
//! the cutoff would keep events up to `max_past` + 1 day longer.)

/// Text that the events of one request share (site, session, route, URL, browser, ...): a clone is a
/// reference count, not a copy, and the store's threads free one allocation per request, not one per field
/// per event.
pub type Text = std::sync::Arc<str>;

/// One accepted, shaped event as stored. Numeric fields are milliseconds unless named otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub event_id: uuid::Uuid,
    pub site: Text,
    pub session_id: Text,
    /// `page_load`, `api_call`, `web_vital`, ...
    pub event_type: Cow<'static, str>,
    /// Client timestamp (ms since the Unix epoch).
    pub client_ts_ms: i64,
    /// Server receive time (ms since the Unix epoch).
    pub received_ms: i64,
    /// Route template of the page (`/users/:id`).
    pub route: Text,
    /// Page URL, query stripped unless configured otherwise.
    pub url: Text,
    pub browser: Text,
    pub os: Text,
    /// `desktop`, `mobile`, `tablet`, `bot`, `other`.
    pub device: Text,
    /// The event's main number: page_load total, api_call / long_task / interaction / resource duration,
    /// web_vital value (CLS unitless, others ms). `None` when absent or dropped as impossible.
    pub value: Option<f64>,
    /// web_vital name (`LCP`...), custom event name, or error message (truncated).
    pub name: Option<Cow<'static, str>>,
    /// api_call endpoint label (`GET api.example.com/users/:id`).
    pub endpoint: Option<String>,
    /// api_call HTTP status (0 for network errors).
    pub status: Option<i32>,
    /// web_vital rating: `good`, `needs-improvement`, `poor`.
    pub rating: Option<Cow<'static, str>>,
    /// The event as received (after dropping impossible fields), JSON text.
    pub raw: RawJson,
    /// The release of the page's code that sent it (`shop@1.4.2`), when the page said.
    pub release: Option<Text>,
    /// error: the group's fingerprint (16 hex digits, `jserror::fingerprint`).
    pub fingerprint: Option<String>,
    /// error: the stack, symbolicated where a source map of its release covers a frame.
    pub stack: Option<String>,
}

/// An event's JSON text: usually a slice of its request's body, shared by all of the request's events
/// (no copy per event), else its own text (an event re-serialised without dropped fields, or built in tests).
#[derive(Clone)]
pub struct RawJson(RawRepr);

#[derive(Clone)]
enum RawRepr {
    Slice {
        body: Text,
        start: usize,
        end: usize,
    },
    Owned(Box<str>),
}

impl RawJson {
    /// `part` as a slice of `body` when it lies within `body`'s memory (no copy), else a copy of it.
    pub fn within(body: &Text, part: &str) -> Self {
        // Where `part` is inside `body`, these are its offsets there, and the bytes are the same bytes.
        let start = (part.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end)
                if end <= body.len()
                    && body.is_char_boundary(start)
                    && body.is_char_boundary(end) =>
            {
                Self(RawRepr::Slice {
                    body: body.clone(),
                    start,
                    end,
                })
            }
            _ => Self::from(part),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            RawRepr::Slice { body, start, end } => &body[*start..*end],
            RawRepr::Owned(s) => s,
        }
    }
}

impl std::ops::Deref for RawJson {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for RawJson {
    fn from(s: String) -> Self {
        Self(RawRepr::Owned(s.into_boxed_str()))
    }
}

impl From<&str> for RawJson {
    fn from(s: &str) -> Self {
        Self(RawRepr::Owned(s.into()))
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

mod drain;
mod error_groups;
mod health;
mod migrate;
mod partitions;
mod postgres;
mod queue;
mod rollup;
mod schema;
mod sessions;
mod sketch;
mod spool;
mod sqlite;
mod stats;
mod timeline;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

pub use error_groups::{ErrorGroup, Facet, Occurrence, Sample, MAX_OCCURRENCES};
#[doc(hidden)]
pub use schema::postgres_migrations_up_to;
pub use sessions::{SessionEvent, SessionEvents, SessionSummary, MAX_SESSIONS, MAX_SESSION_EVENTS};
pub use spool::SpoolConfig;
#[doc(hidden)]
pub use sqlite::stats_rowid_bound;
pub use stats::{
    occurrences_sql_as_run, postgres_queries_by_event_type, ApiStats, ErrorStats, MessageCount,
    PageStats, VitalStats,
};
pub use timeline::{bucket_for, Bucket, MAX_BUCKETS};

/// A source map to store: the map of the script at `url` in `release` of `site`.
#[derive(Debug, Clone)]
pub struct NewSourceMap {
    pub site: String,
    pub release: String,
    /// The script's URL (query and fragment dropped), as frames of that release name it.
    pub url: String,
    /// The uploaded file's name (`app.min.js.map`), for listings.
    pub name: String,
    /// The map's JSON, checked (`jserror::symbolicate::check_map`).
    pub content: String,
    pub uploaded_ms: i64,
    /// Most maps one release may have; a new one past it is refused (a replacement is not new).
    pub max_per_release: usize,
}

/// What storing a map did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored; `replaced` when it took the place of an earlier upload for the same script.
    Stored { replaced: bool },
    /// Refused: the release has `maps` maps already, the limit.
    ReleaseFull { maps: usize },
}

/// A stored map as listed (never its content).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceMapInfo {
    pub release: String,
    pub url: String,
    pub name: String,
    pub bytes: u64,
    pub uploaded_ms: i64,
}

use health::Health;
use queue::{Queue, StoreMetrics};
use spool::Spool;

/// Where and how events are stored (`storage:` in the ingest config).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// `sqlite://data/rum.db` (relative to the working directory; parent directories are created),
    /// `sqlite:///abs/path.db`, or `postgres://user[:password]@host[:port]/db`.
    pub url: String,
    /// Maximum events queued or being written but not yet committed; beyond it `submit` answers `Busy`.
    pub queue_capacity: usize,
    /// Maximum events written in one transaction (one group commit). A single larger submit is still
    /// written whole, in its own transaction.
    pub max_batch_events: usize,
    /// What `Busy` tells the sender to wait before retrying (the HTTP `Retry-After`), seconds.
    pub busy_retry_after_secs: u64,
    /// How far a stored event's client timestamp may be ahead of its receive time, ms (the HTTP layer's
    /// `limits.max_future`). Stats windows use it to range-scan the `(site, event_type, received_ms)` index.
    pub max_client_ahead_ms: i64,
    /// How far a stored event's client timestamp may be behind its receive time, ms (the HTTP layer's
    /// `limits.max_past`). PostgreSQL makes day partitions from this long ago on.
    pub max_client_behind_ms: i64,
    /// How long a group may wait for the database (a lock held by another SQLite connection; connecting to
    /// PostgreSQL, or a statement there) before the store counts as unavailable for now.
    pub write_timeout: Duration,
    /// PostgreSQL only: where events go while PostgreSQL cannot take writes.
    pub spool: Option<SpoolConfig>,
}

/// These defaults are also those of the config file's `storage:` section (`config.rs` refers to them).
impl StoreConfig {
    /// Default queue capacity (events): about half a second of the target rate.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 50_000;
    /// Default group-commit size (events).
    pub const DEFAULT_MAX_BATCH_EVENTS: usize = 5_000;
    /// Default `Retry-After` for `Busy`.
    pub const DEFAULT_BUSY_RETRY_AFTER_SECS: u64 = 1;
    /// Default for [`Self::max_client_ahead_ms`]: the default `limits.max_future`, 10 minutes.
    pub const DEFAULT_MAX_CLIENT_AHEAD_MS: i64 = 10 * 60 * 1000;
    /// Default for [`Self::max_client_behind_ms`]: the default `limits.max_past`, 7 days.
    pub const DEFAULT_MAX_CLIENT_BEHIND_MS: i64 = 7 * 86_400_000;
    /// Default for [`Self::write_timeout`].
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

    /// The given URL with default queue and batch sizes.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            max_batch_events: Self::DEFAULT_MAX_BATCH_EVENTS,
            busy_retry_after_secs: Self::DEFAULT_BUSY_RETRY_AFTER_SECS,
            max_client_ahead_ms: Self::DEFAULT_MAX_CLIENT_AHEAD_MS,
            max_client_behind_ms: Self::DEFAULT_MAX_CLIENT_BEHIND_MS,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            spool: None,
        }
    }
}

/// What one committed submit did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SubmitOutcome {
    /// Events newly stored.
    pub inserted: usize,
    /// The submit's events, by index in ascending order, whose `(site, event_id)` was already stored (or appeared
    /// earlier in the same group): ignored. By index, because a batch can be partly a retry (a hide beacon joins
    /// a batch whose answer was lost with new ones), and only its new events are counted in the metrics.
    pub duplicates: Vec<u32>,
    /// Events durable in the spool, to be drained into the store (whether they are new is known then).
    pub spooled: usize,
}

impl SubmitOutcome {
    /// Events the sender may consider stored.
    pub fn accepted(&self) -> usize {
        self.inserted + self.duplicates.len() + self.spooled
    }
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Events deleted one by one.
    pub events: u64,
    /// PostgreSQL partitions dropped whole (their events are not counted: that would mean reading them).
    pub partitions: u64,
}

/// Why a submit was not acknowledged. None of these mean the events are stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: the writer is behind. Answer 503 with `Retry-After`.
    #[error("event store is busy; retry after {retry_after_secs}s")]
    Busy { retry_after_secs: u64 },
    /// The store cannot write now (unreachable, starting up, failover, timeout, locked, disk full, I/O
    /// error) and no spool took the events. Answer 503 with `Retry-After`.
    #[error("event store is unavailable; retry after {retry_after_secs}s")]
    Unavailable { retry_after_secs: u64 },
    /// The store is shutting down and accepts nothing more.
    #[error("event store is shut down")]
    Closed,
    /// The transaction holding these events failed for a reason that will not pass by itself (a bug, a
    /// schema problem); nothing of it was committed. The message never contains the connection string or
    /// password.
    #[error("event store write failed: {0}")]
    Failed(String),
}

/// Errors from opening the store and from its queries. Messages never contain the connection string or
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `storage.url` or a size in the config is unusable.
    #[error("storage config: {0}")]
    Config(String),
    /// The database could not be reached or opened.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error("storage error: {0}")]
    Database(String),
    /// The store was shut down.
    #[error("event store is shut down")]
    Closed,
}

/// Handle on the open store; cheap to clone, every clone talks to the same writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    backend: Backend,
    /// Turns true when the writer has committed everything and stopped.
    writer_done: tokio::sync::watch::Receiver<bool>,
    max_client_ahead_ms: i64,
    health: Arc<Health>,
    spool: Option<Arc<Spool>>,
    /// Tasks that run as long as the store: the prober, the spool's drain (both safe to stop anywhere).
    tasks: Vec<tokio::task::AbortHandle>,
    /// The backfills of events stored before their rollup kinds existed have finished ([`maintain_rollups`]).
    backfilled: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How often the store folds partial rollup rows (and continues a backfill). Queries read partial rows too,
/// so this bounds how many a window reads, not how fresh the stats are.
pub const ROLLUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

async fn maintain_rollups(inner: &Inner) -> Result<usize, StoreError> {
    let backend = &inner.backend;
    // A finished backfill stays finished: asking again would cost PostgreSQL a connection and a lock wait
    // every interval.
    if !inner.backfilled.load(std::sync::atomic::Ordering::Relaxed) {
        for b in rollup::Backfill::ALL {
            loop {
                let done = match backend {
                    Backend::Sqlite(r) => r.backfill_rollups(b).await?,
                    Backend::Postgres(r) => r.backfill_rollups(b).await?,
                };
                if done {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        inner
            .backfilled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let mut folded = 0;
    loop {
        let (n, chunk) = match backend {
            Backend::Sqlite(r) => (r.compact_rollups().await?, rollup::SQLITE_COMPACT_CHUNK),
            Backend::Postgres(r) => (r.compact_rollups().await?, rollup::COMPACT_CHUNK),
        };
        folded += n;
        if (n as i64) < chunk {
            return Ok(folded);
        }
        // Between chunks the writer gets the lock (SQLite) and queries their turn.
        tokio::task::yield_now().await;
    }
}

/// The store's rollup upkeep, every [`ROLLUP_INTERVAL`], for as long as the store lives.
async fn rollup_loop(inner: std::sync::Weak<Inner>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(ROLLUP_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        match maintain_rollups(&inner).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("rollup upkeep works again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "rollup upkeep failed; stats stay correct, windows read more rows until it works");
            }
            Err(_) => {}
        }
    }
}

/// Creates PostgreSQL's day partitions ahead every [`partitions::UPKEEP_INTERVAL`] (opening made the first
/// ones), for as long as the store lives.
async fn partition_loop(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(partitions::UPKEEP_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Backend::Postgres(r) = &inner.backend {
            // Failures are logged where they happen; the default partition takes the events meanwhile.
            let _ = r.create_partitions(crate::clock::now_ms()).await;
        }
    }
}

/// Whether a submit could be stored now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The store takes writes.
    Writing,
    /// The store cannot write, its spool takes the events.
    Spooling,
    /// Neither: submits get 503.
    Unavailable,
}

/// The query side of each backend (the write side lives in the writer task).
enum Backend {
    Sqlite(sqlite::Reader),
    Postgres(postgres::Reader),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Store").field("backend", &kind).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database named by `cfg.url`, applies migrations, starts the writer
    /// and registers the store's metrics in `registry`.
    pub async fn open(cfg: &StoreConfig, registry: &mut Registry) -> Result<Store, StoreError> {
        if cfg.queue_capacity == 0 {
            return Err(StoreError::Config(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if cfg.max_batch_events == 0 {
            return Err(StoreError::Config(
                "max_batch_events must be at least 1".into(),
            ));
        }
        let (writer_done_tx, writer_done) = tokio::sync::watch::channel(false);
        let spool = match (&cfg.spool, cfg.url.starts_with("sqlite://")) {
            (Some(_), true) => {
                return Err(StoreError::Config(
                    "storage.spool is for PostgreSQL stores; a SQLite store writes to its local disk already"
                        .into(),
                ))
            }
            (Some(sc), false) => {
                let sc = sc.clone();
                let spool = tokio::task::spawn_blocking(move || Spool::open(&sc))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("spool open task failed: {e}")))??;
                Some(Arc::new(spool))
            }
            (None, _) => None,
        };
        let health = Arc::new(Health::new(spool.is_some()));
        let metrics = StoreMetrics::new();
        let (queue, rx) = Queue::new(
            cfg.queue_capacity,
            cfg.busy_retry_after_secs,
            metrics.clone(),
            health.clone(),
        );
        let queue = Arc::new(queue);
        let mut tasks = Vec::new();
        let backend = if let Some(path) = cfg.url.strip_prefix("sqlite://") {
            let reader = sqlite::open(
                path,
                rx,
                queue.clone(),
                cfg.max_batch_events,
                cfg.write_timeout,
                health.clone(),
                writer_done_tx,
            )
            .await?;
            Backend::Sqlite(reader)
        } else if cfg.url.starts_with("postgres://") || cfg.url.starts_with("postgresql://") {
            let (reader, drain) = postgres::open(
                &cfg.url,
                postgres::WriterSetup {
                    rx,
                    queue: queue.clone(),
                    max_batch_events: cfg.max_batch_events,
                    write_timeout: cfg.write_timeout,
                    writer_done: writer_done_tx,
                    spool: spool.clone(),
                    health: health.clone(),
                    max_past_ms: cfg.max_client_behind_ms.max(0),
                },
            )
            .await?;
            tasks.extend(drain);
            Backend::Postgres(reader)
        } else {
            return Err(StoreError::Config(
                "storage url must start with sqlite:// or postgres://".into(),
            ));
        };
        metrics.register(registry);
        health.register(registry);
        if let Some(s) = &spool {
            s.register(registry);
        }
        tasks.push(tokio::spawn(health::probe_loop(queue.clone(), health.clone())).abort_handle());
        let max_client_ahead_ms = cfg.max_client_ahead_ms.max(0);
        let inner = Arc::new_cyclic(|weak| {
            // Holds the store weakly: the loop ends when the store is dropped.
            tasks.push(tokio::spawn(rollup_loop(weak.clone())).abort_handle());
            if matches!(backend, Backend::Postgres(_)) {
                tasks.push(tokio::spawn(partition_loop(weak.clone())).abort_handle());
            }
            Inner {
                queue,
                backend,
                writer_done,
                max_client_ahead_ms,
                health,
                spool,
                tasks,
                backfilled: std::sync::atomic::AtomicBool::new(false),
            }
        });
        Ok(Store { inner })
    }

    /// Queues `events` and resolves once the transaction holding them has committed.
    pub async fn submit(&self, events: Vec<EventRecord>) -> Result<SubmitOutcome, SubmitError> {
        self.inner.queue.submit(events).await
    }

    /// Whether a submit could be stored now: the last write (or probe) worked, or else the spool takes
    /// events. Answered from memory; probes keep it current (`health.rs`).
    pub fn readiness(&self) -> Readiness {
        if self.inner.health.is_available() {
            Readiness::Writing
        } else if self.inner.spool.as_ref().is_some_and(|s| s.accepting()) {
            Readiness::Spooling
        } else {
            Readiness::Unavailable
        }
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.ping().await,
            Backend::Postgres(r) => r.ping().await,
        }
    }

    /// Stops accepting (later submits get `Closed`), lets the writer commit everything already queued,
    /// and waits for it to stop. Safe to call more than once and from several clones.
    pub async fn shutdown(&self) {
        self.inner.queue.close();
        let mut done = self.inner.writer_done.clone();
        // An Err means the writer is gone already, which is also "done".
        let _ = done.wait_for(|d| *d).await;
        // A drain stopped mid-chunk resumes at the next start: nothing in the spool is lost or doubled.
        for t in &self.inner.tasks {
            t.abort();
        }
    }

    /// Deletes every event of one session of one site (privacy request). Returns the number deleted. The
    /// rollups keep the events' share of the aggregates, which hold no session id ([`rollup`]).
    pub async fn delete_session(&self, site: &str, session_id: &str) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.delete_session(site, session_id).await,
            Backend::Postgres(r) => r.delete_session(site, session_id).await,
        }
    }

    /// Deletes every event received before `cutoff_ms` (server receive time, ms since the epoch), in
    /// small transactions so the writer is never blocked for long; on PostgreSQL, drops every day partition
    /// whose client day ended by then instead (see "Time base" above).
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<Removed, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => Ok(Removed {
                events: r.delete_older_than(cutoff_ms).await?,
                partitions: 0,
            }),
            Backend::Postgres(r) => r.delete_older_than(cutoff_ms).await,
        }
    }

    /// PostgreSQL: creates the day partitions from `limits.max_past` before `now_ms` to two days after it
    /// that do not exist yet (the store does this at open and every hour; `now_ms` is a parameter for
    /// tests). How many it created; SQLite has none.
    pub async fn create_partitions(&self, now_ms: i64) -> Result<usize, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(_) => Ok(0),
            Backend::Postgres(r) => r.create_partitions(now_ms).await,
        }
    }

    /// Number of stored events, of one site or of all.
    pub async fn count_events(&self, site: Option<&str>) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.count_events(site).await,
            Backend::Postgres(r) => r.count_events(site).await,
        }
    }

    /// Page-load percentiles per route since `since_ms` (client time), from the rollups (see [`rollup`]:
    /// the window starts at its minute, percentiles within 1 %).
    pub async fn page_stats(
        &self,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<PageStats>, StoreError> {
        rollup::page_stats(self.rollup_rows(site, rollup::Kind::Page, since_ms).await?)
    }

    /// API calls per endpoint since `since_ms`, slowest (p95) first.
    pub async fn api_stats(&self, site: &str, since_ms: i64) -> Result<Vec<ApiStats>, StoreError> {
        rollup::api_stats(self.rollup_rows(site, rollup::Kind::Api, since_ms).await?)
    }

    /// Errors per route since `since_ms`, most errors first, with affected sessions and top messages.
    pub async fn error_stats(
        &self,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<ErrorStats>, StoreError> {
        let totals = self
            .rollup_rows(site, rollup::Kind::Error, since_ms)
            .await?;
        let messages = self
            .rollup_rows(site, rollup::Kind::ErrorMessage, since_ms)
            .await?;
        rollup::error_stats(totals, messages)
    }

    /// Web vitals per route and vital name since `since_ms`: p75 and rating shares.
    pub async fn vital_stats(
        &self,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<VitalStats>, StoreError> {
        rollup::vital_stats(
            self.rollup_rows(site, rollup::Kind::Vital, since_ms)
                .await?,
        )
    }

    async fn rollup_rows(
        &self,
        site: &str,
        kind: rollup::Kind,
        since_ms: i64,
    ) -> Result<Vec<Vec<stats::Cell>>, StoreError> {
        let bounds = rollup::window_bounds(since_ms);
        match &self.inner.backend {
            Backend::Sqlite(r) => r.rollup_rows(site, kind, bounds).await,
            Backend::Postgres(r) => r.rollup_rows(site, kind, bounds).await,
        }
    }

    /// Rolls up the events stored before rollups existed, then folds every partial rollup row into the
    /// minute, hour and day rows (the store does both in the background every [`ROLLUP_INTERVAL`]; tests
    /// and benches call it to get there now). Returns the partial rows folded.
    pub async fn maintain_rollups(&self) -> Result<usize, StoreError> {
        maintain_rollups(&self.inner).await
    }

    /// Error groups since `since_ms` (client time), most frequent first, at most
    /// [`error_groups::MAX_GROUPS`]: numbers and facets from the rollups (the window starts at its minute,
    /// sessions are an estimate, see [`rollup`]), each group's sample its latest occurrence in that window.
    pub async fn error_groups(
        &self,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<ErrorGroup>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        use rollup::Kind;
        let (totals, pages, browsers, releases) = futures::try_join!(
            self.rollup_rows(site, Kind::Group, since_ms),
            self.rollup_rows(site, Kind::GroupPage, since_ms),
            self.rollup_rows(site, Kind::GroupBrowser, since_ms),
            self.rollup_rows(site, Kind::GroupRelease, since_ms),
        )?;
        let mut groups = rollup::error_groups(totals, pages, browsers, releases)?;
        // The rollups' window: from the minute holding `since_ms`.
        let [minute, ..] = rollup::window_bounds(since_ms);
        // A few at a time: PostgreSQL pipelines them on one connection; SQLite's reader runs one at a time.
        let latest: Vec<Vec<Occurrence>> = futures::stream::iter(&groups)
            .map(|g| self.error_occurrences(site, &g.id, minute, 1))
            .buffered(8)
            .try_collect()
            .await?;
        for (g, mut latest) in groups.iter_mut().zip(latest) {
            // None only when the group's events were deleted since (a privacy delete).
            if let Some(o) = latest.pop() {
                g.set_sample(o);
            }
        }
        Ok(groups)
    }

    /// The latest occurrences of one group since `since_ms`, newest first, at most `limit` (capped at
    /// [`MAX_OCCURRENCES`]).
    pub async fn error_occurrences(
        &self,
        site: &str,
        fingerprint: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<Occurrence>, StoreError> {
        let extra = vec![
            stats::Param::Text(fingerprint.to_string()),
            stats::Param::Int(limit.min(MAX_OCCURRENCES) as i64),
        ];
        let rows = self
            .query_with(error_groups::OCCURRENCES_SQL, site, since_ms, extra)
            .await?;
        error_groups::occurrences(rows)
    }

    /// Page loads and errors per `bucket_ms` bucket (aligned to the epoch) from the bucket holding `since_ms`
    /// to the one holding `until_ms` (client time), empty buckets included. See [`timeline`].
    pub async fn timeline(
        &self,
        site: &str,
        since_ms: i64,
        until_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        if bucket_ms <= 0 || until_ms < since_ms {
            return Err(StoreError::Config(format!(
                "timeline: bucket {bucket_ms} ms over {since_ms}..{until_ms}"
            )));
        }
        let buckets = (until_ms - since_ms) / bucket_ms + 1;
        if buckets > MAX_BUCKETS as i64 + 1 {
            return Err(StoreError::Config(format!(
                "timeline: {buckets} buckets of {bucket_ms} ms, at most {MAX_BUCKETS}"
            )));
        }
        let rows = self
            .query_with(
                timeline::TIMELINE_SQL,
                site,
                since_ms,
                vec![stats::Param::Int(bucket_ms)],
            )
            .await?;
        timeline::timeline(rows, since_ms, until_ms, bucket_ms)
    }

    /// The sessions with a page view or an error since `since_ms` (client time), latest activity first, at
    /// most `limit` (capped at [`MAX_SESSIONS`]).
    pub async fn sessions(
        &self,
        site: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let extra = vec![stats::Param::Int(limit.min(MAX_SESSIONS) as i64)];
        let rows = self
            .query_with(sessions::SESSIONS_SQL, site, since_ms, extra)
            .await?;
        sessions::sessions(rows)
    }

    /// One session's events since `since_ms` (client time), oldest first: the first `limit` (capped at
    /// [`MAX_SESSION_EVENTS`]), and whether there are more.
    pub async fn session_events(
        &self,
        site: &str,
        session_id: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<SessionEvents, StoreError> {
        let limit = limit.min(MAX_SESSION_EVENTS);
        let extra = vec![
            stats::Param::Text(session_id.to_string()),
            // One more than answered: whether the session has more.
            stats::Param::Int(limit as i64 + 1),
        ];
        let rows = self
            .query_with(sessions::SESSION_EVENTS_SQL, site, since_ms, extra)
            .await?;
        let mut events = sessions::session_events(rows)?;
        let truncated = events.len() > limit;
        events.truncate(limit);
        Ok(SessionEvents { events, truncated })
    }

    /// Stores (or replaces) a source map, within the per-release limit.
    pub async fn put_sourcemap(&self, map: NewSourceMap) -> Result<PutOutcome, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.put_sourcemap(map).await,
            Backend::Postgres(r) => r.put_sourcemap(map).await,
        }
    }

    /// The maps of a site (of one release, when given), by release and URL.
    pub async fn list_sourcemaps(
        &self,
        site: &str,
        release: Option<&str>,
    ) -> Result<Vec<SourceMapInfo>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.list_sourcemaps(site, release).await,
            Backend::Postgres(r) => r.list_sourcemaps(site, release).await,
        }
    }

    /// One map's JSON.
    pub async fn get_sourcemap(
        &self,
        site: &str,
        release: &str,
        url: &str,
    ) -> Result<Option<String>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.get_sourcemap(site, release, url).await,
            Backend::Postgres(r) => r.get_sourcemap(site, release, url).await,
        }
    }

    /// Deletes every map of a release; how many.
    pub async fn delete_sourcemaps(&self, site: &str, release: &str) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.delete_sourcemaps(site, release).await,
            Backend::Postgres(r) => r.delete_sourcemaps(site, release).await,
        }
    }

    /// Records that events of these groups were stored at `now_ms`: creates the groups that did not exist
    /// (returns how many) and moves the others' last-seen time. [`Store::delete_older_than`] deletes
    /// groups last seen before its cutoff.
    pub async fn touch_error_groups(
        &self,
        site: &str,
        fingerprints: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(r) => r.touch_error_groups(site, fingerprints, now_ms).await,
            Backend::Postgres(r) => r.touch_error_groups(site, fingerprints, now_ms).await,
        }
    }

    async fn query_with(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
        extra: Vec<stats::Param>,
    ) -> Result<Vec<Vec<stats::Cell>>, StoreError> {
        let received_since_ms = since_ms.saturating_sub(self.inner.max_client_ahead_ms);
        match &self.inner.backend {
            Backend::Sqlite(r) => {
                r.stats_query(sql, site, since_ms, received_since_ms, extra)
                    .await
            }
            Backend::Postgres(r) => {
                r.stats_query(sql, site, since_ms, received_since_ms, extra)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_json_shares_its_body_or_copies() {
        let body: Text = r#"{"events":[{"a":1},{"b":2}]}"#.into();
        let part = &body[11..18];
        let shared = RawJson::within(&body, part);
        assert!(matches!(
            shared.0,
            RawRepr::Slice {
                start: 11,
                end: 18,
                ..
            }
        ));
        assert_eq!(shared.as_str(), r#"{"a":1}"#);
        // Text elsewhere (an event re-serialised) is copied, equal text compares equal.
        let elsewhere = String::from(r#"{"a":1}"#);
        let copied = RawJson::within(&body, &elsewhere);
        assert!(matches!(copied.0, RawRepr::Owned(_)));
        assert_eq!(copied, shared);
        assert_eq!(RawJson::from("{}").as_str(), "{}");
    }
}
