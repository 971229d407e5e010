//! The SQLite writer thread: group commit on its own connection, each group handed to the syncer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use tokio::sync::mpsc;

use super::super::health::Health;
use super::super::migrate::Dialect;
use super::super::queue::{Pending, WriteError, Written};
use super::super::rollup::{self, Partials};
use super::super::schema::{event_key_columns, text_safe, INSERT_COLUMNS, INSERT_COLUMN_COUNT};
use super::super::EventRecord;
use super::syncer::{Committed, SyncerProgress};

/// While the syncer is fsyncing, the writer's open transaction takes in submits until it holds this many
/// events, then commits anyway: its COMMIT (writing the WAL) then overlaps the running fsync, and the syncer
/// starts the next fsync as soon as that one ends instead of idling until a commit arrives. By this size a
/// commit's shared pages are paid for (bench/README.md, "The store's write path").
const GROUP_EVENTS_WHILE_SYNCING: usize = 256;
/// While the syncer is busy, how often the writer looks for new submits to add to its open transaction.
const SYNCER_POLL: Duration = Duration::from_micros(500);
/// Free space a probe wants on the database's filesystem during an outage, about what a large group adds to
/// the WAL. A nearly full disk still takes the probe's one row (into WAL space freed by a checkpoint), then
/// refuses the next group: the store would flap between ready and not.
const PROBE_MIN_FREE_BYTES: u64 = 4 << 20;

/// The writer connection and the text of its cached insert.
pub(super) struct Writer {
    conn: Connection,
    path: PathBuf,
    row_sql: String,
    write_timeout: Duration,
    health: Arc<Health>,
    /// Per rollup backfill, events received before its cutoff are the backfill's to count.
    rollups_from: rollup::Cutoffs,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        path: PathBuf,
        write_timeout: Duration,
        health: Arc<Health>,
        rollups_from: rollup::Cutoffs,
    ) -> Self {
        Self {
            conn,
            path,
            row_sql: insert_sql(),
            write_timeout,
            health,
            rollups_from,
        }
    }

    /// Group commit until the queue is closed and empty; every group goes on to the syncer.
    ///
    /// A group's transaction stays open, taking in every submit that arrives, for as long as the syncer is
    /// still fsyncing the previous group, up to [`GROUP_EVENTS_WHILE_SYNCING`] events: every commit rewrites
    /// every page it dirtied into the WAL, and the pages inserts share (each b-tree's right edge) are
    /// dirtied again by every commit, so tiny groups cost WAL (bench/README.md, "The store's write path").
    pub(super) fn run(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        synced: &std::sync::mpsc::Sender<Committed>,
        syncer: &SyncerProgress,
        max_batch_events: usize,
    ) {
        let mut sent = 0u64;
        while let Some(first) = rx.blocking_recv() {
            let started = Instant::now();
            let mut group = Group {
                rollups: Partials::received_since(self.rollups_from),
                ..Group::default()
            };
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
            if open.is_ok() && !group.rollups.is_empty() {
                open = self.append_rollups(&group.rollups);
            }
            let result = open
                .and_then(|()| self.commit())
                .map(|()| Written::Stored(group.duplicates));
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
        let written = (|| {
            if p.is_probe() {
                self.conn
                    .prepare_cached(WRITE_PROBE_SQL)?
                    .execute([crate::clock::now_ms()])?;
            }
            let mut stmt = self.conn.prepare_cached(&self.row_sql)?;
            let mut duplicates = Vec::new();
            for (i, e) in (0..).zip(&p.events) {
                if insert_row(&mut stmt, e)? {
                    group.rollups.add(e);
                } else {
                    duplicates.push(i);
                }
            }
            group.duplicates.push(duplicates);
            Ok::<_, rusqlite::Error>(())
        })();
        written.map_err(|e| self.rollback(write_error("insert", &e)))
    }

    /// Appends the group's partial rollup rows to its transaction (rollup.rs).
    fn append_rollups(&mut self, rollups: &Partials) -> Result<(), WriteError> {
        let appended = (|| {
            let mut stmt = self.conn.prepare_cached(&rollup_insert_sql())?;
            for r in rollups.rows() {
                append_rollup(&mut stmt, &r)?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        appended.map_err(|e| self.rollback(write_error("rollups", &e)))
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
pub(in crate::store) fn has_room(path: &Path) -> Result<(), String> {
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
fn write_error(step: &str, e: &rusqlite::Error) -> WriteError {
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

/// The submits of one transaction and which of each one's events were not new (retries).
#[derive(Default)]
struct Group {
    batch: Vec<Pending>,
    events: usize,
    duplicates: Vec<Vec<u32>>,
    /// What the new events add to the rollups.
    rollups: Partials,
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked)
}

/// `INSERT ... VALUES (?,..) ON CONFLICT (site, event_id) DO NOTHING` (one row).
fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({INSERT_COLUMNS}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
        vec!["?"; INSERT_COLUMN_COUNT].join(","),
        event_key_columns(Dialect::Sqlite)
    )
}

/// `INSERT INTO rollups (...) VALUES (?,..)` (one row; the backfill and compaction share it).
pub(in crate::store) fn rollup_insert_sql() -> String {
    format!(
        "INSERT INTO rollups ({}) VALUES ({})",
        rollup::COLUMNS,
        vec!["?"; rollup::COLUMN_COUNT].join(",")
    )
}

/// Binds one rollup row ([`rollup::COLUMNS`] in order) and runs the statement.
pub(in crate::store) fn append_rollup(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &rollup::Row,
) -> rusqlite::Result<()> {
    stmt.execute(rusqlite::params![
        r.site,
        r.kind,
        r.key,
        r.name,
        r.level,
        r.bucket_ms,
        r.count,
        r.errors,
        r.good,
        r.ni,
        r.poor,
        r.sketch,
        r.sessions,
        r.first_ms,
        r.last_ms
    ])?;
    Ok(())
}

/// Binds parameters 1 to 20 ([`INSERT_COLUMNS`] in order) and runs the cached statement; true when it
/// inserted a row (a retry's conflict inserts none). The spool's append shares it.
pub(in crate::store) fn insert_row(
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
    stmt.raw_bind_parameter(18, e.release.as_deref().map(text_safe))?;
    stmt.raw_bind_parameter(19, e.fingerprint.as_deref().map(text_safe))?;
    stmt.raw_bind_parameter(20, e.stack.as_deref().map(text_safe))?;
    Ok(stmt.raw_execute()? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_placeholder_per_column() {
        let sql = insert_sql();
        assert_eq!(sql.matches('?').count(), INSERT_COLUMN_COUNT);
    }
}
