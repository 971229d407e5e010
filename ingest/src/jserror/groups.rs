//! Which error groups exist: each group has a row in the store's `error_groups` (created by whichever node
//! stores its first event, so the count of new groups summed over nodes is exact), and this node remembers
//! the groups it has written lately, so a known group costs no database write.

use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

/// How often a known group's `last_seen_ms` is written again (retention deletes groups not seen for
/// `storage.retention_days`; a group that comes back after that counts as new again).
pub const TOUCH_INTERVAL_MS: i64 = 3_600_000;
/// Groups remembered; past it the memory is cleared (and groups are written again once).
const MAX_KNOWN: usize = 50_000;

/// The groups this node wrote lately: (site, fingerprint) -> when.
#[derive(Default)]
pub struct KnownGroups {
    written: Mutex<HashMap<(String, String), i64>>,
}

impl KnownGroups {
    /// Records that events of these groups of `site` were stored; returns how many groups are new.
    pub async fn record(
        &self,
        store: &Store,
        site: &str,
        fingerprints: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let due: Vec<String> = {
            let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            let mut due: Vec<String> = fingerprints
                .iter()
                .filter(|f| {
                    written
                        .get(&(site.to_string(), f.to_string()))
                        .is_none_or(|at| now_ms - at >= TOUCH_INTERVAL_MS)
                })
                .cloned()
                .collect();
            due.sort();
            due.dedup();
            due
        };
        if due.is_empty() {
            return Ok(0);
        }
        let created = store.touch_error_groups(site, &due, now_ms).await?;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written.len() + due.len() > MAX_KNOWN {
            written.clear();
        }
        for f in due {
            written.insert((site.to_string(), f), now_ms);
        }
        Ok(created)
    }
}
