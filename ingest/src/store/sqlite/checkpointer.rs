//! The SQLite checkpointer thread: copies the WAL into the database file in the background and flushes it.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::super::StoreError;
use super::{connect, db, open_file, WRITER_BUSY_TIMEOUT};

/// How often the checkpointer copies the WAL into the database file. What it has not copied when the WAL
/// reaches its bound, the writer copies inline while every submitter waits, so a short interval keeps that
/// stall short for little checkpointer CPU (bench/README.md, "The store's write path").
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(4);
/// The checkpointer's interval while the WAL does not change, so an idle server does not spend CPU on passes
/// and flushes that find nothing (bench/README.md, "The store's write path").
const CHECKPOINT_IDLE_INTERVAL: Duration = Duration::from_millis(50);

/// Copies the WAL into the database file in the background (passive checkpoints never wait for the writer),
/// so the writer's own auto-checkpoint, the bound, finds little left to copy.
pub(super) struct Checkpointer {
    conn: Connection,
    /// The database file, flushed after each checkpoint (see `run`).
    db_file: std::fs::File,
}

impl Checkpointer {
    pub(super) fn open(db_path: &Path) -> Result<Self, StoreError> {
        let conn = connect(db_path, WRITER_BUSY_TIMEOUT)?;
        // NORMAL: fsync the WAL before copying and the database file after.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let db_file = open_file(db_path)?;
        Ok(Self { conn, db_file })
    }

    pub(super) fn run(self, stop: std::sync::mpsc::Receiver<()>) {
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
