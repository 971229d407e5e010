//! SQLite backend: WAL; the writer, the syncer and the checkpointer on their own OS threads, one cached
//! single-row insert per event, the writer's transaction open while the syncer fsyncs the previous one.
//!
//! Durability: a submitter is answered only after an fsync of the WAL that started after its group's COMMIT
//! returned, which is what `synchronous=FULL` gives. But instead of letting SQLite fsync inside every COMMIT
//! (the writer then sits idle for the fsync and for the checkpoint's fsyncs), the writer commits with
//! `synchronous=NORMAL` and hands the group to the syncer thread, which fsyncs the WAL file once for every
//! group committed meanwhile and answers them. The writer meanwhile inserts the next group: disk waits
//! overlap with inserting (bench/README.md has the figures). A third thread, the checkpointer, copies the
//! WAL into the database file. A checkpoint only copies frames it has fsynced itself and fsyncs the database
//! file before the WAL may be reused, so an fsynced frame stays durable in the WAL or in the database file.
//!
//! Queries and deletes use a second connection (WAL lets it read while the writer writes); it runs on
//! tokio's blocking pool, never on the async workers.
//!
//! A write that fails because the disk is full, an I/O error, or another process holding the write lock past
//! `storage.write_timeout` is transient ([`write_error`]): its submitters get 503 with Retry-After, and
//! probes (`health.rs`) find out when writes work again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, watch};

use super::health::Health;
use super::queue::{Pending, Queue, WriteError, Written};
use super::schema::{
    self, text_safe, EVENT_KEY_COLUMNS, INSERT_COLUMNS, INSERT_COLUMN_COUNT, MIGRATIONS,
    MIGRATIONS_TABLE_SQLITE,
};
use super::stats::{self, Cell};
use super::{EventRecord, StoreError};

/// Page size of a new database (SQLite's default). Each commit writes every page it dirtied, and each
/// submit's idempotency-key insert dirties one leaf of its own (the key leads with the session, so a batch's
/// keys share a leaf but batches land anywhere in the index): that leaf is most of the WAL a submit costs, and
/// its size is the page size. 4 KiB pages write ~44% fewer bytes per event than the 16 KiB ones used before
/// (2.8 against 5.0 KB to the disk), and the background checkpoint keeps up with them: in alternating runs at
/// c64, similar events/s and p99 34-35 against 38-43 ms (bench/README.md, ingest-perf9). A database created
/// with other pages keeps them (SQLite cannot change the page size of a WAL database).
const PAGE_SIZE_BYTES: i64 = 4_096;
/// How long one attempt to take the write lock waits before we try again (a group waits for the lock up to
/// `storage.write_timeout` in all; meanwhile the queue fills and new submits get `Busy`).
const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// Queries and deletes wait this long for a lock.
const READER_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the checkpointer copies the WAL into the database file. What it has not copied when the WAL
/// reaches its bound, the writer copies inline while every submitter waits, so short intervals make that stall
/// short: at ~130,000 events/s its longest commit was ~40 ms with 50 ms, ~20 with 10, ~12 with 4, and p99
/// latency 34 / 22 / 17 ms, for ~0.1 us more checkpointer CPU per event (bench/README.md, ingest-perf9).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(4);
/// The checkpointer's interval while the WAL does not change: an idle server then uses ~0.2% of a core, against
/// ~2% with a pass and a flush every 4 ms.
const CHECKPOINT_IDLE_INTERVAL: Duration = Duration::from_millis(50);
/// The WAL size at which the writer checkpoints by itself. The WAL never restarts while the writer is busy
/// (each transaction begins before the checkpointer has copied the last commit), so it grows to this bound
/// and the writer copies what the checkpointer has not yet, while every submitter waits. At ~100,000 events/s
/// the WAL grows ~300 MB/s: 32 MiB meant that inline checkpoint ~10 times a second, ~23% of the writer's time
/// in a profile; with 128 MiB the writer's CPU per event fell ~10% against the HTTP workers' in the same runs
/// (bench/README.md, ingest-perf8). The file stays that large on disk.
const WAL_CHECKPOINT_BOUND_BYTES: i64 = 128 << 20;
/// While the syncer is fsyncing, the writer's open transaction takes in submits until it holds this many
/// events, then commits anyway: its COMMIT (writing the WAL) then overlaps the running fsync, and the syncer
/// starts the next fsync as soon as that one ends instead of idling until a commit arrives. By this size a
/// commit's shared pages are paid for: +9-21% events/s at 32-128 connections, ~7% more WAL per event
/// (bench/README.md, ingest-perf7).
const GROUP_EVENTS_WHILE_SYNCING: usize = 256;
/// While the syncer is busy, how often the writer looks for new submits to add to its open transaction.
const SYNCER_POLL: Duration = Duration::from_micros(500);
/// Rows are appended in receive order, so rowid order is receive order, up to the moments a submit spends
/// between its handler and the writer, or a step back of the server's clock. Walks that use rowid order as
/// receive order (retention, the stats windows) allow this much disorder.
const RECEIVE_ORDER_SLACK_MS: i64 = 60_000;
/// Rows per retention delete transaction, so the writer is never locked out for long.
const DELETE_CHUNK_ROWS: i64 = 5_000;
/// Free space a probe wants on the database's filesystem during an outage, about what a large group adds to
/// the WAL. A nearly full disk still takes the probe's one row (into WAL space freed by a checkpoint), then
/// refuses the next group: the store would flap between ready and not.
const PROBE_MIN_FREE_BYTES: u64 = 4 << 20;

/// The query side: one connection behind a mutex, used from the blocking pool.
pub(crate) struct Reader {
    conn: Arc<Mutex<Connection>>,
}

/// Opens the database file (creating it and its parent directories), migrates, and starts the writer.
pub(crate) async fn open(
    path: &str,
    rx: mpsc::UnboundedReceiver<Pending>,
    queue: Arc<Queue>,
    max_batch_events: usize,
    write_timeout: Duration,
    health: Arc<Health>,
    writer_done: watch::Sender<bool>,
) -> Result<Reader, StoreError> {
    let path = file_path(path)?;
    let db_path = path.clone();
    let (writer_conn, syncer, checkpointer, reader_conn) =
        tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            let mut w = connect(&path, WRITER_BUSY_TIMEOUT.min(write_timeout))?;
            migrate(&mut w)?;
            // 8 MiB: the hot pages (the right edge of each b-tree) fit; a bigger cache measured slower, as
            // SQLite walks the cache's hash table at the end of every transaction.
            w.pragma_update(None, "cache_size", -8_192).map_err(db)?;
            // The syncer fsyncs after each commit and the checkpointer checkpoints (see the module comment);
            // the writer's own auto-checkpoint is only the bound on the WAL's size.
            w.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
            // SQLite counts the bound in pages; an older database may have 16 KiB ones.
            let page_size: i64 = w
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(db)?;
            w.pragma_update(
                None,
                "wal_autocheckpoint",
                WAL_CHECKPOINT_BOUND_BYTES / page_size.max(512),
            )
            .map_err(db)?;
            let syncer = Syncer::open(&path)?;
            let checkpointer = Checkpointer::open(&path)?;
            let r = connect(&path, READER_BUSY_TIMEOUT)?;
            Ok((w, syncer, checkpointer, r))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("open task failed: {e}")))??;

    let mut writer = Writer::new(writer_conn, db_path, write_timeout, health);
    let (synced_tx, synced_rx) = std::sync::mpsc::channel();
    let progress = Arc::new(SyncerProgress::default());
    let syncer_progress = progress.clone();
    let spawn_err = |e| StoreError::Unavailable(format!("cannot start sqlite threads: {e}"));
    let (stop_checkpoints, checkpoints_stopped) = std::sync::mpsc::channel::<()>();
    let checkpointer = std::thread::Builder::new()
        .name("store-sqlite-checkpoint".into())
        .spawn(move || checkpointer.run(checkpoints_stopped))
        .map_err(spawn_err)?;
    let syncer = std::thread::Builder::new()
        .name("store-sqlite-syncer".into())
        .spawn(move || syncer.run(synced_rx, &queue, &syncer_progress))
        .map_err(spawn_err)?;
    std::thread::Builder::new()
        .name("store-sqlite-writer".into())
        .spawn(move || {
            writer.run(rx, &synced_tx, &progress, max_batch_events);
            // Every group is answered before the writer's connection closes.
            drop(synced_tx);
            let _ = syncer.join();
            drop(stop_checkpoints);
            let _ = checkpointer.join();
            drop(writer);
            let _ = writer_done.send(true);
        })
        .map_err(spawn_err)?;
    Ok(Reader {
        conn: Arc::new(Mutex::new(reader_conn)),
    })
}

/// `sqlite://data/rum.db` -> `data/rum.db`; `sqlite:///var/lib/x.db` -> `/var/lib/x.db`.
fn file_path(rest: &str) -> Result<PathBuf, StoreError> {
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() || rest.ends_with('/') {
        return Err(StoreError::Config(
            "sqlite url needs a file path, e.g. sqlite://data/rum.db".into(),
        ));
    }
    if rest == ":memory:" {
        return Err(StoreError::Config(
            "sqlite in-memory databases lose every event on exit; use a file path".into(),
        ));
    }
    Ok(PathBuf::from(rest))
}

/// A connection in WAL mode with `synchronous=FULL` (the spool uses it as is).
pub(super) fn connect(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open sqlite database {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(busy).map_err(db)?;
    // Takes effect only when this connection creates the database (before WAL is set); an existing file
    // keeps its page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE_BYTES)
        .map_err(db)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "sqlite database {} cannot use WAL (journal_mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Applies every migration newer than the recorded version, all in one immediate transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.execute_batch(MIGRATIONS_TABLE_SQLITE).map_err(db)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if current > schema::latest_version() {
        return Err(StoreError::Unavailable(format!(
            "database schema version {current} is newer than this build knows ({})",
            schema::latest_version()
        )));
    }
    if current < schema::latest_version() {
        // Some migrations rebuild the events table: on a large file the operator should see why startup waits.
        tracing::info!(
            from = current,
            to = schema::latest_version(),
            "applying sqlite schema migrations"
        );
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let started = Instant::now();
        tx.execute_batch(m.sqlite)
            .map_err(|e| StoreError::Database(format!("migration {}: {e}", m.version)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            (m.version, crate::clock::now_ms()),
        )
        .map_err(db)?;
        tracing::info!(
            version = m.version,
            took_ms = started.elapsed().as_millis() as u64,
            "applied sqlite schema migration"
        );
    }
    tx.commit().map_err(db)
}

/// The writer connection and the text of its cached insert.
struct Writer {
    conn: Connection,
    path: PathBuf,
    row_sql: String,
    write_timeout: Duration,
    health: Arc<Health>,
}

impl Writer {
    fn new(conn: Connection, path: PathBuf, write_timeout: Duration, health: Arc<Health>) -> Self {
        Self {
            conn,
            path,
            row_sql: insert_sql(),
            write_timeout,
            health,
        }
    }

    /// Group commit until the queue is closed and empty; every group goes on to the syncer.
    ///
    /// A group's transaction stays open, taking in every submit that arrives, for as long as the syncer is
    /// still fsyncing the previous group, up to [`GROUP_EVENTS_WHILE_SYNCING`] events: every commit rewrites
    /// every page it dirtied into the WAL, and the pages inserts share (each b-tree's right edge) are
    /// dirtied again by every commit, so tiny groups cost WAL (at 32 connections, groups of ~20 events
    /// wrote ~4.6 KB of WAL per event, ~3.0 KB when held open; bench/README.md, ingest-perf6).
    fn run(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        synced: &std::sync::mpsc::Sender<Committed>,
        syncer: &SyncerProgress,
        max_batch_events: usize,
    ) {
        let mut sent = 0u64;
        while let Some(first) = rx.blocking_recv() {
            let started = Instant::now();
            let mut group = Group::default();
            let mut open = self.begin();
            let mut next = Some(first);
            loop {
                if let Some(p) = next.take() {
                    if open.is_ok() {
                        open = self.insert_pending(&p, &mut group);
                    }
                    group.events += p.events.len();
                    group.batch.push(p);
                }
                if group.events >= max_batch_events.min(GROUP_EVENTS_WHILE_SYNCING) {
                    break;
                }
                match rx.try_recv() {
                    Ok(p) => next = Some(p),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if open.is_err() || syncer.wait_idle(sent, SYNCER_POLL) {
                            break;
                        }
                    }
                }
            }
            let result = open
                .and_then(|()| self.commit())
                .map(|()| Written::Stored(group.inserted));
            sent += 1;
            if synced
                .send(Committed {
                    batch: group.batch,
                    result,
                    started,
                })
                .is_err()
            {
                // The syncer is gone (it panicked): its submitters were answered "writer stopped".
                tracing::error!("sqlite syncer stopped; writer stops");
                return;
            }
        }
        tracing::debug!("sqlite writer drained and stopped");
    }

    /// Inserts one submit's events into the open transaction (a probe writes its row instead); on an error
    /// the transaction is rolled back and the whole group fails.
    fn insert_pending(&mut self, p: &Pending, group: &mut Group) -> Result<(), WriteError> {
        if p.is_probe() && self.health.in_outage() {
            has_room(&self.path).map_err(|e| self.rollback(WriteError::transient(e)))?;
        }
        let inserted = (|| {
            if p.is_probe() {
                self.conn
                    .prepare_cached(WRITE_PROBE_SQL)?
                    .execute([crate::clock::now_ms()])?;
            }
            let mut stmt = self.conn.prepare_cached(&self.row_sql)?;
            let mut inserted = 0;
            for e in &p.events {
                inserted += usize::from(insert_row(&mut stmt, e)?);
            }
            group.inserted.push(inserted);
            Ok::<_, rusqlite::Error>(())
        })();
        inserted.map_err(|e| self.rollback(write_error("insert", &e)))
    }

    fn commit(&mut self) -> Result<(), WriteError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.rollback(write_error("commit", &e)))
    }

    fn rollback(&mut self, error: WriteError) -> WriteError {
        // Harmless when the transaction is already gone.
        let _ = self.conn.execute_batch("ROLLBACK");
        error
    }

    /// Takes the write lock, waiting out another connection that holds it (up to `write_timeout`).
    fn begin(&mut self) -> Result<(), WriteError> {
        let started = Instant::now();
        loop {
            match self.conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => return Ok(()),
                Err(e) if is_busy(&e) && started.elapsed() < self.write_timeout => {}
                Err(e) if is_busy(&e) => {
                    return Err(WriteError::transient(format!(
                        "sqlite write lock held by another connection for over {:?} ({e})",
                        self.write_timeout
                    )))
                }
                Err(e) => return Err(write_error("begin", &e)),
            }
        }
    }
}

/// Whether the filesystem holding `path` has [`PROBE_MIN_FREE_BYTES`] free for this process.
pub(super) fn has_room(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let st = rustix::fs::statvfs(dir).map_err(|e| format!("statvfs {}: {e}", dir.display()))?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if free < PROBE_MIN_FREE_BYTES {
        return Err(format!(
            "disk almost full: {free} bytes free on the filesystem of {}",
            dir.display()
        ));
    }
    Ok(())
}

/// The probe's one-row write (see `health.rs`).
const WRITE_PROBE_SQL: &str = "INSERT INTO write_probe (id, at_ms) VALUES (1, ?1) \
     ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms";

/// A failed statement as the writer reports it: transient when SQLite says the database is locked or busy,
/// the disk is full, read-only or failing, or the file cannot be opened; anything else (a constraint, a
/// missing table, corruption) is a bug or needs an operator, and stays a 500.
pub(super) fn write_error(step: &str, e: &rusqlite::Error) -> WriteError {
    let transient = matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(
        f.code,
        ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed
    ));
    WriteError {
        transient,
        message: format!("sqlite {step}: {e}"),
    }
}

/// The submits of one transaction and how many of each one's events were new (not retries).
#[derive(Default)]
struct Group {
    batch: Vec<Pending>,
    events: usize,
    inserted: Vec<usize>,
}

/// How many groups the syncer has fsynced, so the writer knows when it is idle.
#[derive(Default)]
struct SyncerProgress {
    synced: Mutex<u64>,
    changed: std::sync::Condvar,
}

impl SyncerProgress {
    fn synced(&self, groups: u64) {
        *self.synced.lock().unwrap_or_else(|p| p.into_inner()) += groups;
        self.changed.notify_all();
    }

    /// True once all `sent` groups are fsynced; waits at most `timeout` for that.
    fn wait_idle(&self, sent: u64, timeout: Duration) -> bool {
        let synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let (synced, _) = self
            .changed
            .wait_timeout_while(synced, timeout, |n| *n < sent)
            .unwrap_or_else(|p| p.into_inner());
        *synced >= sent
    }
}

/// A group the writer has committed (or failed), on its way to the syncer.
struct Committed {
    batch: Vec<Pending>,
    result: Result<Written, WriteError>,
    started: Instant,
}

/// Makes committed groups durable before they are answered.
struct Syncer {
    /// The WAL file itself.
    wal: std::fs::File,
    wal_path: PathBuf,
}

impl Syncer {
    /// Opened after the writer has migrated, so the WAL file exists (SQLite keeps it while a connection is open).
    fn open(db_path: &Path) -> Result<Self, StoreError> {
        let mut wal_path = db_path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let wal = open_file(&wal_path)?;
        Ok(Self { wal, wal_path })
    }

    /// Until the writer is gone: take every committed group, one fsync for all, answer them.
    fn run(
        self,
        rx: std::sync::mpsc::Receiver<Committed>,
        queue: &Queue,
        progress: &SyncerProgress,
    ) {
        while let Ok(first) = rx.recv() {
            let mut groups = vec![first];
            groups.extend(rx.try_iter());
            // One fsync covers every frame written so far, so it covers each of these commits.
            let synced = if groups.iter().any(|g| g.result.is_ok()) {
                self.wal.sync_data().map_err(|e| {
                    // The commit is in the WAL but maybe not on the disk: not acknowledged, and the
                    // sender's retry is stored once (event ids).
                    WriteError::transient(format!(
                        "fsync of {} failed: {e}",
                        self.wal_path.display()
                    ))
                })
            } else {
                Ok(())
            };
            // The writer may commit its next group while these submitters are woken.
            progress.synced(groups.len() as u64);
            for g in groups {
                let result = match &synced {
                    Ok(()) => g.result,
                    Err(e) => g.result.and(Err(e.clone())),
                };
                queue.finish(g.batch, result, g.started.elapsed());
            }
        }
        tracing::debug!("sqlite syncer stopped");
    }
}

/// Copies the WAL into the database file in the background (passive checkpoints never wait for the writer),
/// so the writer's own auto-checkpoint, the bound, finds little left to copy.
struct Checkpointer {
    conn: Connection,
    /// The database file, flushed after each checkpoint (see `run`).
    db_file: std::fs::File,
}

impl Checkpointer {
    fn open(db_path: &Path) -> Result<Self, StoreError> {
        let conn = connect(db_path, WRITER_BUSY_TIMEOUT)?;
        // NORMAL: fsync the WAL before copying and the database file after.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let db_file = open_file(db_path)?;
        Ok(Self { conn, db_file })
    }

    fn run(self, stop: std::sync::mpsc::Receiver<()>) {
        let mut interval = CHECKPOINT_INTERVAL;
        let mut last = None;
        // A full or failing disk fails every pass (250 a second): one line when that starts, one when it ends.
        let mut failing = Failing::default();
        loop {
            match stop.recv_timeout(interval) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            // (busy, frames in the WAL, frames copied)
            let progress = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(|e| failing.failed("sqlite wal checkpoint", &e.to_string()))
                .ok();
            // Nothing written since the last pass: nothing to flush, and no hurry until the writer is back.
            if progress.is_some_and(|(busy, _, _)| busy == 0) && progress == last {
                interval = CHECKPOINT_IDLE_INTERVAL;
                continue;
            }
            last = progress;
            interval = CHECKPOINT_INTERVAL;
            // SQLite fsyncs the database file only after a checkpoint that copied the whole WAL, which
            // a passive one never does while the writer commits. Flushing here keeps the copied pages from
            // piling up for the writer's bound checkpoint, whose fsync would otherwise stall every submitter.
            match self.db_file.sync_data() {
                Err(e) => failing.failed("fsync of the sqlite database file", &e.to_string()),
                // Works again once a pass copies the whole WAL and flushes it.
                Ok(()) if matches!(progress, Some((0, frames, copied)) if frames > 0 && copied == frames) => {
                    failing.ok()
                }
                Ok(()) => {}
            }
        }
    }
}

/// Whether the checkpointer's passes fail, so it logs a change, not every pass.
#[derive(Default)]
struct Failing(bool);

impl Failing {
    fn failed(&mut self, what: &str, error: &str) {
        if !self.0 {
            tracing::warn!(error, "{what} failed; retrying quietly until it works");
            self.0 = true;
        }
    }

    fn ok(&mut self) {
        if self.0 {
            tracing::info!("sqlite checkpoints work again");
            self.0 = false;
        }
    }
}

/// A descriptor of one of the database's files, only to fsync it (fsync works per file, whichever
/// descriptor asks).
fn open_file(path: &Path) -> Result<std::fs::File, StoreError> {
    std::fs::File::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked)
}

/// `INSERT ... VALUES (?,..) ON CONFLICT (site, session_id, event_id) DO NOTHING` (one row).
fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({INSERT_COLUMNS}) VALUES ({}) ON CONFLICT ({EVENT_KEY_COLUMNS}) DO NOTHING",
        vec!["?"; INSERT_COLUMN_COUNT].join(",")
    )
}

/// Binds parameters 1 to 17 ([`INSERT_COLUMNS`] in order) and runs the cached statement; true when it
/// inserted a row (a retry's conflict inserts none). The spool's append shares it.
pub(super) fn insert_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    e: &EventRecord,
) -> rusqlite::Result<bool> {
    stmt.raw_bind_parameter(1, &e.event_id.as_bytes()[..])?;
    stmt.raw_bind_parameter(2, text_safe(&e.site))?;
    stmt.raw_bind_parameter(3, text_safe(&e.session_id))?;
    stmt.raw_bind_parameter(4, text_safe(&e.event_type))?;
    stmt.raw_bind_parameter(5, e.client_ts_ms)?;
    stmt.raw_bind_parameter(6, e.received_ms)?;
    stmt.raw_bind_parameter(7, text_safe(&e.route))?;
    stmt.raw_bind_parameter(8, text_safe(&e.url))?;
    stmt.raw_bind_parameter(9, text_safe(&e.browser))?;
    stmt.raw_bind_parameter(10, text_safe(&e.os))?;
    stmt.raw_bind_parameter(11, text_safe(&e.device))?;
    stmt.raw_bind_parameter(12, e.value)?;
    stmt.raw_bind_parameter(13, e.name.as_deref().map(text_safe))?;
    stmt.raw_bind_parameter(14, e.endpoint.as_deref().map(text_safe))?;
    stmt.raw_bind_parameter(15, e.status)?;
    stmt.raw_bind_parameter(16, e.rating.as_deref().map(text_safe))?;
    // JSON text never holds a NUL byte (the serializer escapes it): bound without the scan.
    stmt.raw_bind_parameter(17, e.raw.as_str())?;
    Ok(stmt.raw_execute()? == 1)
}

/// The first rowid received at or after `received_ms` (one past the last row when there is none), by
/// binary search over rowids: rowid order is receive order ([`RECEIVE_ORDER_SLACK_MS`]), and each probe is
/// one b-tree seek, where an index on receive time would cost every commit a rewritten page.
fn first_rowid_received_since(c: &Connection, received_ms: i64) -> rusqlite::Result<i64> {
    let mut probe = c.prepare_cached(
        "SELECT rowid, received_ms FROM events WHERE rowid >= ?1 ORDER BY rowid LIMIT 1",
    )?;
    // The received time of the first row at or after `rowid`, if any.
    let mut at = |rowid: i64| -> rusqlite::Result<Option<(i64, i64)>> {
        let mut rows = probe.query([rowid])?;
        rows.next()?.map(|r| Ok((r.get(0)?, r.get(1)?))).transpose()
    };
    let Some((first, _)) = at(i64::MIN)? else {
        return Ok(0);
    };
    let last: i64 = c.query_row("SELECT MAX(rowid) FROM events", [], |r| r.get(0))?;
    // Invariant: every row before `lo` was received before `received_ms`; the row at or after `hi` (if
    // any) was not, or `hi` is one past the last row.
    let (mut lo, mut hi) = (first, last.saturating_add(1));
    while lo < hi {
        // Rounded down, in a wider type: rowids may span the whole i64 range.
        let mid = (i128::from(lo) + i128::from(hi)).div_euclid(2) as i64;
        match at(mid)? {
            Some((rowid, at_ms)) if at_ms < received_ms => lo = rowid.saturating_add(1),
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// Deletes these rows in one short write transaction (none when there is nothing to delete).
fn delete_rows(c: &Connection, rowids: &[i64]) -> rusqlite::Result<u64> {
    if rowids.is_empty() {
        return Ok(0);
    }
    let mut stmt = c.prepare_cached("DELETE FROM events WHERE rowid = ?1")?;
    // Rolled back when dropped on an error.
    let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
    let mut deleted = 0u64;
    for id in rowids {
        deleted += stmt.execute([id])? as u64;
    }
    tx.commit()?;
    Ok(deleted)
}

impl Reader {
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(db)
        })
        .await
        .map_err(|e| StoreError::Database(format!("query task failed: {e}")))?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|_| ())
    }

    pub async fn count_events(&self, site: Option<&str>) -> Result<u64, StoreError> {
        let site = site.map(str::to_owned);
        self.with_conn(move |c| match site {
            Some(s) => c.query_row("SELECT COUNT(*) FROM events WHERE site = ?1", [s], |r| {
                r.get(0)
            }),
            None => c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)),
        })
        .await
    }

    /// Finds the rows through the idempotency key's `(site, session_id, ...)` index, as a read, which in
    /// WAL mode does not block the writer; the deletes are then short transactions by rowid.
    pub async fn delete_session(&self, site: &str, session_id: &str) -> Result<u64, StoreError> {
        let (site, session) = (site.to_owned(), session_id.to_owned());
        self.with_conn(move |c| {
            let rowids = c
                .prepare_cached("SELECT rowid FROM events WHERE site = ?1 AND session_id = ?2")?
                .query_map((site, session), |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            let mut total = 0u64;
            for chunk in rowids.chunks(DELETE_CHUNK_ROWS as usize) {
                total += delete_rows(c, chunk)?;
            }
            Ok(total)
        })
        .await
    }

    /// There is no `received_ms` index (migration 3), but rowid order is receive order
    /// ([`RECEIVE_ORDER_SLACK_MS`]). The walk goes from the oldest rowid in chunks, deleting what is older
    /// than the cutoff, and stops at the first row received [`RECEIVE_ORDER_SLACK_MS`] after it.
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.with_conn(move |c| {
            let mut scan = c.prepare_cached(
                "SELECT rowid, received_ms FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )?;
            let (mut after, mut total) = (i64::MIN, 0u64);
            loop {
                let rows = scan
                    .query_map((after, DELETE_CHUNK_ROWS), |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
                let Some(&(last, _)) = rows.last() else {
                    return Ok(total);
                };
                let old: Vec<i64> = rows
                    .iter()
                    .filter(|(_, at)| *at < cutoff_ms)
                    .map(|(rowid, _)| *rowid)
                    .collect();
                total += delete_rows(c, &old)?;
                let past_cutoff = rows
                    .iter()
                    .any(|(_, at)| *at >= cutoff_ms.saturating_add(RECEIVE_ORDER_SLACK_MS));
                if past_cutoff || (rows.len() as i64) < DELETE_CHUNK_ROWS {
                    return Ok(total);
                }
                after = last;
            }
        })
        .await
    }

    pub async fn stats_query(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
        received_since_ms: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let site = site.to_owned();
        self.with_conn(move |c| {
            let first = first_rowid_received_since(
                c,
                received_since_ms.saturating_sub(RECEIVE_ORDER_SLACK_MS),
            )?;
            let mut stmt = c.prepare_cached(&stats::sqlite_sql(sql))?;
            let columns = stmt.column_count();
            let mut rows = stmt.query((site, since_ms, first))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut cells = Vec::with_capacity(columns);
                for i in 0..columns {
                    use rusqlite::types::ValueRef;
                    cells.push(match row.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Real(v) => Cell::Real(v),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(_) => Cell::Null,
                    });
                }
                out.push(cells);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths() {
        assert_eq!(
            file_path("data/rum.db").unwrap(),
            PathBuf::from("data/rum.db")
        );
        assert_eq!(file_path("/var/x.db").unwrap(), PathBuf::from("/var/x.db"));
        assert!(matches!(file_path(""), Err(StoreError::Config(_))));
        assert!(matches!(file_path(":memory:"), Err(StoreError::Config(_))));
    }

    #[test]
    fn stats_queries_scan_only_the_rowid_range_of_their_window() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for sql in stats::ALL_SQL {
            let sql = stats::sqlite_sql(sql);
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(("shop", 0, 0), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)"),
                "{sql}\n{plan}"
            );
        }
    }

    /// Rows with these receive times, in rowid order, with every third rowid deleted (gaps).
    fn table_with_gaps(received: &[i64]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for (i, at) in received.iter().enumerate() {
            conn.execute(
                "INSERT INTO events (event_id, site, session_id, event_type, client_ts_ms, received_ms, \
                 route, url, browser, os, device, raw) VALUES (?1, 's', 's', 'custom', 0, ?2, '', '', '', '', '', '{}')",
                (&uuid::Uuid::from_u128(i as u128).as_bytes()[..], at),
            )
            .unwrap();
        }
        conn.execute("DELETE FROM events WHERE rowid % 3 = 0", [])
            .unwrap();
        conn
    }

    #[test]
    fn first_rowid_of_a_receive_time_by_binary_search() {
        // rowid r (1-based) was received at 10 * r; rowids 3, 6, 9, ... are gone.
        let received: Vec<i64> = (1..=1000).map(|r| 10 * r).collect();
        let conn = table_with_gaps(&received);
        let first = |at| first_rowid_received_since(&conn, at).unwrap();
        assert_eq!(first(i64::MIN), 1);
        assert_eq!(first(10), 1);
        assert_eq!(first(11), 2);
        // Rowid 3 (received at 30) is deleted: `rowid >= 3` starts at rowid 4, received at 40.
        assert_eq!(first(25), 3);
        assert_eq!(first(31), 3);
        assert_eq!(first(41), 5);
        assert_eq!(first(5_000), 500);
        assert_eq!(first(10_000), 999); // 999 is gone too
                                        // Past the last row: one past it, so the range is empty.
        assert_eq!(first(10_001), 1001);
        let empty = table_with_gaps(&[]);
        assert_eq!(first_rowid_received_since(&empty, 0).unwrap(), 0);
        // Rowids at both ends of their range (SQLite allows any i64).
        let extremes = table_with_gaps(&[]);
        for (rowid, at) in [(i64::MIN + 1, 5), (-7, 10), (i64::MAX - 1, 20)] {
            extremes
                .execute(
                    "INSERT INTO events (rowid, event_id, site, session_id, event_type, client_ts_ms, \
                     received_ms, route, url, browser, os, device, raw) \
                     VALUES (?1, ?1, 's', 's', 'custom', 0, ?2, '', '', '', '', '', '{}')",
                    (rowid, at),
                )
                .unwrap();
        }
        // The first row the bound lets in (None: none).
        let first_row = |at| -> Option<i64> {
            let bound = first_rowid_received_since(&extremes, at).unwrap();
            extremes
                .query_row(
                    "SELECT MIN(rowid) FROM events WHERE rowid >= ?1",
                    [bound],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(first_row(0), Some(i64::MIN + 1));
        assert_eq!(first_row(6), Some(-7));
        assert_eq!(first_row(11), Some(i64::MAX - 1));
        assert_eq!(first_row(21), None);
    }

    #[test]
    fn insert_sql_has_one_placeholder_per_column() {
        let sql = insert_sql();
        assert_eq!(sql.matches('?').count(), INSERT_COLUMN_COUNT);
    }
}
