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
//! `storage.write_timeout` is transient (`writer::write_error`): its submitters get 503 with Retry-After,
//! and probes (`health.rs`) find out when writes work again.
//!
//! # Layout
//! - this file: opening the database (connections, pragmas, migrations) and starting the threads.
//! - [`writer`]: group commit on the writer's connection, and the insert the spool shares.
//! - [`syncer`]: fsyncs the WAL once for every group committed meanwhile, then answers its submitters.
//! - [`checkpointer`]: copies the WAL into the database file in the background.
//! - [`reader`]: queries and deletes on a second connection.

mod checkpointer;
mod reader;
pub use reader::stats_rowid_bound;
mod syncer;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, watch};

use super::health::Health;
use super::migrate;
use super::queue::{Pending, Queue};
use super::rollup;
use super::StoreError;
use checkpointer::Checkpointer;
use syncer::{Syncer, SyncerProgress};
use writer::Writer;

pub(crate) use reader::Reader;
pub(super) use writer::{has_room, insert_row};

/// Page size of a new database (SQLite's default). Each submit's idempotency-key insert dirties a leaf of its
/// own and each commit writes every page it dirtied, so smaller pages write less WAL per event
/// (bench/README.md, "The store's write path"). A database created with other pages keeps them (SQLite
/// cannot change the page size of a WAL database).
const PAGE_SIZE_BYTES: i64 = 4_096;
/// How long one attempt to take the write lock waits before we try again (a group waits for the lock up to
/// `storage.write_timeout` in all; meanwhile the queue fills and new submits get `Busy`).
const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// Queries and deletes wait this long for a lock.
const READER_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The WAL size at which the writer checkpoints by itself. The WAL never restarts while the writer is busy
/// (each transaction begins before the checkpointer has copied the last commit), so it grows to this bound
/// and the writer copies what the checkpointer has not yet, while every submitter waits; a large bound makes
/// that rare (bench/README.md, "The store's write path"). The file stays that large on disk.
const WAL_CHECKPOINT_BOUND_BYTES: i64 = 128 << 20;

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
    let (writer_conn, syncer, checkpointer, reader_conn, rollups_from) =
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
            let rollups_from = w
                .prepare(rollup::CUTOFFS_SQL)
                .and_then(|mut q| {
                    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()
                })
                .map(rollup::Cutoffs::from_rows)
                .map_err(db)?;
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
            Ok((w, syncer, checkpointer, r, rollups_from))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("open task failed: {e}")))??;

    let mut writer = Writer::new(writer_conn, db_path, write_timeout, health, rollups_from);
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
    Ok(Reader::new(reader_conn))
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
    // The adapter never waits on anything, so the runner's future completes on its first poll.
    futures::executor::block_on(migrate::run(&mut Migrations(&tx)))?;
    tx.commit().map_err(db)
}

/// The migration runner's adapter: statements in the migrating transaction.
struct Migrations<'a>(&'a rusqlite::Transaction<'a>);

impl migrate::Migrator for Migrations<'_> {
    type Error = StoreError;
    const DIALECT: migrate::Dialect = migrate::Dialect::Sqlite;

    async fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql).map_err(db)
    }

    async fn query_i64(&mut self, sql: &str) -> Result<i64, StoreError> {
        self.0.query_row(sql, [], |r| r.get(0)).map_err(db)
    }

    async fn execute_with(&mut self, sql: &str, a: i64, b: i64) -> Result<(), StoreError> {
        self.0.execute(sql, (a, b)).map(drop).map_err(db)
    }

    fn newer(message: String) -> StoreError {
        StoreError::Unavailable(message)
    }

    fn step_failed(version: i64, e: StoreError) -> StoreError {
        match e {
            StoreError::Database(m) => StoreError::Database(format!("migration {version}: {m}")),
            other => other,
        }
    }
}

/// A descriptor of one of the database's files, only to fsync it (fsync works per file, whichever
/// descriptor asks).
fn open_file(path: &Path) -> Result<std::fs::File, StoreError> {
    std::fs::File::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
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
}
