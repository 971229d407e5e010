//! The SQLite syncer thread: makes committed groups durable (one WAL fsync for all committed meanwhile),
//! then answers their submitters.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::queue::{Pending, Queue, WriteError, Written};
use super::super::StoreError;
use super::open_file;

/// How many groups the syncer has fsynced, so the writer knows when it is idle.
#[derive(Default)]
pub(super) struct SyncerProgress {
    synced: Mutex<u64>,
    changed: std::sync::Condvar,
}

impl SyncerProgress {
    pub(super) fn synced(&self, groups: u64) {
        *self.synced.lock().unwrap_or_else(|p| p.into_inner()) += groups;
        self.changed.notify_all();
    }

    /// True once all `sent` groups are fsynced; waits at most `timeout` for that.
    pub(super) fn wait_idle(&self, sent: u64, timeout: Duration) -> bool {
        let synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let (synced, _) = self
            .changed
            .wait_timeout_while(synced, timeout, |n| *n < sent)
            .unwrap_or_else(|p| p.into_inner());
        *synced >= sent
    }
}

/// A group the writer has committed (or failed), on its way to the syncer.
pub(super) struct Committed {
    pub batch: Vec<Pending>,
    pub result: Result<Written, WriteError>,
    pub started: Instant,
}

/// Makes committed groups durable before they are answered.
pub(super) struct Syncer {
    /// The WAL file itself.
    wal: std::fs::File,
    wal_path: PathBuf,
}

impl Syncer {
    /// Opened after the writer has migrated, so the WAL file exists (SQLite keeps it while a connection is open).
    pub(super) fn open(db_path: &Path) -> Result<Self, StoreError> {
        let mut wal_path = db_path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let wal = open_file(&wal_path)?;
        Ok(Self { wal, wal_path })
    }

    /// Until the writer is gone: take every committed group, one fsync for all, answer them.
    pub(super) fn run(
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
                queue.finish(g.batch, result, g.started);
            }
        }
        tracing::debug!("sqlite syncer stopped");
    }
}
