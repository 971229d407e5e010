//! SQLite backend: WAL with `synchronous=FULL`, the writer on its own OS thread, one cached single-row insert per event.
//!
//! Why `synchronous=FULL`: in WAL mode `NORMAL` skips the fsync at each commit, so the last commits can vanish
//! on power loss although we already answered 202 for them. With group commit one fsync covers a whole group,
//! so FULL costs little (see the store benchmark in `tests/store_backends.rs`).
//!
//! Queries and deletes use a second connection (WAL lets it read while the writer writes); it runs on
//! tokio's blocking pool, never on the async workers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use tokio::sync::{mpsc, watch};

use super::queue::{take_batch, Pending, Queue};
use super::schema::{
    self, text_safe, INSERT_COLUMNS, INSERT_COLUMN_COUNT, MIGRATIONS, MIGRATIONS_TABLE_SQLITE,
};
use super::stats::Cell;
use super::{EventRecord, StoreError};

/// How long one attempt to take the write lock waits before we log and try again.
const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a group may wait for a write lock held by another connection before its submitters get
/// `Failed`. Meanwhile the queue fills and new submits get `Busy`.
const WRITER_STALL_LIMIT: Duration = Duration::from_secs(60);
/// Queries and deletes wait this long for a lock.
const READER_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows per retention delete transaction, so the writer is never locked out for long.
const DELETE_CHUNK_ROWS: i64 = 5_000;

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
    writer_done: watch::Sender<bool>,
) -> Result<Reader, StoreError> {
    let path = file_path(path)?;
    let (writer_conn, reader_conn) =
        tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            let mut w = connect(&path, WRITER_BUSY_TIMEOUT)?;
            // The writer has the hot pages; give it a bigger cache (64 MiB).
            w.pragma_update(None, "cache_size", -65_536).map_err(db)?;
            // The WAL auto-checkpoint stays inside the writer's commit: moving it to a background thread
            // (PASSIVE every 200 ms) raised p99 from ~50 to ~160 ms in bench/ingest (bench/README.md).
            migrate(&mut w)?;
            let r = connect(&path, READER_BUSY_TIMEOUT)?;
            Ok((w, r))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("open task failed: {e}")))??;

    let writer = Writer::new(writer_conn);
    std::thread::Builder::new()
        .name("store-sqlite-writer".into())
        .spawn(move || {
            writer.run(rx, &queue, max_batch_events);
            let _ = writer_done.send(true);
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
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

fn connect(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open sqlite database {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(busy).map_err(db)?;
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
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sqlite)
            .map_err(|e| StoreError::Database(format!("migration {}: {e}", m.version)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            (m.version, schema::now_ms()),
        )
        .map_err(db)?;
        tracing::info!(version = m.version, "applied sqlite schema migration");
    }
    tx.commit().map_err(db)
}

/// The writer connection and the text of its cached insert.
struct Writer {
    conn: Connection,
    row_sql: String,
}

impl Writer {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            row_sql: insert_sql(),
        }
    }

    /// Group commit until the queue is closed and empty.
    fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        queue: &Queue,
        max_batch_events: usize,
    ) {
        while let Some(first) = rx.blocking_recv() {
            let batch = take_batch(first, &mut rx, max_batch_events);
            let started = Instant::now();
            let result = self.write(&batch);
            queue.finish(batch, result, started.elapsed());
        }
        tracing::debug!("sqlite writer drained and stopped");
    }

    /// Writes one group in one transaction; returns the ids that were newly inserted.
    fn write(&mut self, batch: &[Pending]) -> Result<HashSet<uuid::Uuid>, String> {
        self.begin()?;
        let inserted = self.insert_all(batch).and_then(|ids| {
            self.conn.execute_batch("COMMIT")?;
            Ok(ids)
        });
        inserted.map_err(|e| {
            // Harmless when the transaction is already gone.
            let _ = self.conn.execute_batch("ROLLBACK");
            e.to_string()
        })
    }

    /// Takes the write lock, waiting out another connection that holds it (up to the stall limit).
    fn begin(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut warned = false;
        loop {
            match self.conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => return Ok(()),
                Err(e) if is_busy(&e) && started.elapsed() < WRITER_STALL_LIMIT => {
                    if !warned {
                        tracing::warn!(
                            "sqlite write lock held by another connection; writer waiting"
                        );
                        warned = true;
                    }
                }
                Err(e) => return Err(format!("cannot start transaction: {e}")),
            }
        }
    }

    /// One cached single-row statement per event: `changes()` tells whether the row was new, so no
    /// `RETURNING` rows are materialised and no id text is parsed back (measured faster than 64-row
    /// multi-value inserts with `RETURNING`, see bench/README.md).
    fn insert_all(&mut self, batch: &[Pending]) -> rusqlite::Result<HashSet<uuid::Uuid>> {
        let events: usize = batch.iter().map(|p| p.events.len()).sum();
        let mut fresh = HashSet::with_capacity(events);
        let mut stmt = self.conn.prepare_cached(&self.row_sql)?;
        for e in batch.iter().flat_map(|p| p.events.iter()) {
            if insert_row(&mut stmt, e)? {
                fresh.insert(e.event_id);
            }
        }
        Ok(fresh)
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked)
}

/// `INSERT ... VALUES (?,..) ON CONFLICT (event_id) DO NOTHING` (one row).
fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({INSERT_COLUMNS}) VALUES ({}) ON CONFLICT (event_id) DO NOTHING",
        vec!["?"; INSERT_COLUMN_COUNT].join(",")
    )
}

/// Binds and runs the cached single-row insert; true when the row was new (not a duplicate id).
fn insert_row(stmt: &mut rusqlite::CachedStatement<'_>, e: &EventRecord) -> rusqlite::Result<bool> {
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
    stmt.raw_bind_parameter(17, text_safe(&e.raw))?;
    Ok(stmt.raw_execute()? == 1)
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

    pub async fn delete_session(&self, site: &str, session_id: &str) -> Result<u64, StoreError> {
        let (site, session) = (site.to_owned(), session_id.to_owned());
        self.with_conn(move |c| {
            c.prepare_cached("DELETE FROM events WHERE site = ?1 AND session_id = ?2")?
                .execute((site, session))
                .map(|n| n as u64)
        })
        .await
    }

    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "DELETE FROM events WHERE rowid IN \
                 (SELECT rowid FROM events WHERE received_ms < ?1 LIMIT ?2)",
            )?;
            let mut total = 0u64;
            loop {
                let n = stmt.execute((cutoff_ms, DELETE_CHUNK_ROWS))?;
                total += n as u64;
                if (n as i64) < DELETE_CHUNK_ROWS {
                    return Ok(total);
                }
            }
        })
        .await
    }

    pub async fn stats_query(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let site = site.to_owned();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(sql)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query((site, since_ms))?;
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
    fn insert_sql_has_one_placeholder_per_column() {
        let sql = insert_sql();
        assert_eq!(sql.matches('?').count(), INSERT_COLUMN_COUNT);
    }
}
