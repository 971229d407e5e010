//! The SQLite query side: reads, deletes and stats on their own connection, on tokio's blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::super::rollup::{self, Counted, Partials};
use super::super::stats::{self, Cell, Param};
use super::super::{NewSourceMap, PutOutcome, SourceMapInfo, StoreError};
use super::db;
use super::writer::{append_rollup, rollup_insert_sql};

/// Rows are appended in receive order, so rowid order is receive order, up to the moments a submit spends
/// between its handler and the writer, or a step back of the server's clock. Walks that use rowid order as
/// receive order (retention, the stats windows) allow this much disorder.
const RECEIVE_ORDER_SLACK_MS: i64 = 60_000;
/// Rows per retention delete transaction, so the writer is never locked out for long.
const DELETE_CHUNK_ROWS: i64 = 5_000;

/// The query side: one connection behind a mutex, used from the blocking pool.
pub(crate) struct Reader {
    conn: Arc<Mutex<Connection>>,
}

/// The first rowid received at or after `received_ms` (one past the last row when there is none), by
/// binary search over rowids: rowid order is receive order ([`RECEIVE_ORDER_SLACK_MS`]), and each probe is
/// one b-tree seek, where an index on receive time would cost every commit a rewritten page.
/// A stats query's `?3` on SQLite: the first rowid that may hold an event received since
/// `received_since_ms` (rows can be out of receive order by [`RECEIVE_ORDER_SLACK_MS`]). Public for
/// bench/ingest/stats.rs, which explains the store's queries with the store's own bound.
#[doc(hidden)]
pub fn stats_rowid_bound(c: &Connection, received_since_ms: i64) -> rusqlite::Result<i64> {
    first_rowid_received_since(c, received_since_ms.saturating_sub(RECEIVE_ORDER_SLACK_MS))
}

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

/// Every row of a query as cells, the first `columns` of each.
fn all_cells(rows: &mut rusqlite::Rows<'_>, columns: usize) -> rusqlite::Result<Vec<Vec<Cell>>> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let cells = (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                })
            })
            .collect::<rusqlite::Result<Vec<Cell>>>()?;
        out.push(cells);
    }
    Ok(out)
}

/// A rollup row from `COLUMNS` starting at column `at`.
fn read_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<rollup::Row> {
    let kind: String = r.get(at + 1)?;
    Ok(rollup::Row {
        site: r.get(at)?,
        kind: rollup::kind_str(&kind).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 1,
                rusqlite::types::Type::Text,
                e.to_string().into(),
            )
        })?,
        key: r.get(at + 2)?,
        name: r.get(at + 3)?,
        level: r.get(at + 4)?,
        bucket_ms: r.get(at + 5)?,
        count: r.get(at + 6)?,
        errors: r.get(at + 7)?,
        good: r.get(at + 8)?,
        ni: r.get(at + 9)?,
        poor: r.get(at + 10)?,
        sketch: r.get(at + 11)?,
        sessions: r.get(at + 12)?,
        first_ms: r.get(at + 13)?,
        last_ms: r.get(at + 14)?,
    })
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
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

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

    /// Stores a map in one immediate transaction: refused when its release has `max_per_release` other maps.
    pub async fn put_sourcemap(&self, m: NewSourceMap) -> Result<PutOutcome, StoreError> {
        self.with_conn(move |c| {
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let (others, same): (i64, i64) = c.query_row(
                "SELECT COUNT(*) - COALESCE(SUM(url = ?3), 0), COALESCE(SUM(url = ?3), 0) \
                 FROM sourcemaps WHERE site = ?1 AND release = ?2",
                (&m.site, &m.release, &m.url),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if others as usize >= m.max_per_release {
                return Ok(PutOutcome::ReleaseFull { maps: others as usize });
            }
            c.execute(
                "INSERT INTO sourcemaps (site, release, url, name, bytes, uploaded_ms, content) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (site, release, url) DO UPDATE SET \
                 name = excluded.name, bytes = excluded.bytes, uploaded_ms = excluded.uploaded_ms, \
                 content = excluded.content",
                (
                    &m.site,
                    &m.release,
                    &m.url,
                    &m.name,
                    m.content.len() as i64,
                    m.uploaded_ms,
                    &m.content,
                ),
            )?;
            tx.commit()?;
            Ok(PutOutcome::Stored { replaced: same > 0 })
        })
        .await
    }

    pub async fn list_sourcemaps(
        &self,
        site: &str,
        release: Option<&str>,
    ) -> Result<Vec<SourceMapInfo>, StoreError> {
        let (site, release) = (site.to_owned(), release.map(str::to_owned));
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT release, url, name, bytes, uploaded_ms FROM sourcemaps \
                 WHERE site = ?1 AND (?2 IS NULL OR release = ?2) ORDER BY release, url",
            )?;
            let rows = stmt.query_map((site, release), |r| {
                Ok(SourceMapInfo {
                    release: r.get(0)?,
                    url: r.get(1)?,
                    name: r.get(2)?,
                    bytes: r.get::<_, i64>(3)? as u64,
                    uploaded_ms: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub async fn get_sourcemap(
        &self,
        site: &str,
        release: &str,
        url: &str,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        let key = (site.to_owned(), release.to_owned(), url.to_owned());
        self.with_conn(move |c| {
            c.prepare_cached(
                "SELECT content FROM sourcemaps WHERE site = ?1 AND release = ?2 AND url = ?3",
            )?
            .query_row(key, |r| r.get(0))
            .optional()
        })
        .await
    }

    pub async fn delete_sourcemaps(&self, site: &str, release: &str) -> Result<u64, StoreError> {
        let key = (site.to_owned(), release.to_owned());
        self.with_conn(move |c| {
            c.execute(
                "DELETE FROM sourcemaps WHERE site = ?1 AND release = ?2",
                key,
            )
            .map(|n| n as u64)
        })
        .await
    }

    /// Creates the groups not stored yet (counted) and moves the others' `last_seen_ms`, in one transaction.
    pub async fn touch_error_groups(
        &self,
        site: &str,
        fingerprints: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let (site, fps) = (site.to_owned(), fingerprints.to_vec());
        self.with_conn(move |c| {
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let mut created = 0;
            {
                let mut insert = c.prepare_cached(
                    "INSERT INTO error_groups (site, fingerprint, first_seen_ms, last_seen_ms) \
                     VALUES (?1, ?2, ?3, ?3) ON CONFLICT (site, fingerprint) DO NOTHING",
                )?;
                let mut touch = c.prepare_cached(
                    "UPDATE error_groups SET last_seen_ms = ?3 \
                     WHERE site = ?1 AND fingerprint = ?2 AND last_seen_ms < ?3",
                )?;
                for f in &fps {
                    if insert.execute((&site, f, now_ms))? == 1 {
                        created += 1;
                    } else {
                        touch.execute((&site, f, now_ms))?;
                    }
                }
            }
            tx.commit()?;
            Ok(created)
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
                    c.execute(
                        "DELETE FROM error_groups WHERE last_seen_ms < ?1",
                        [cutoff_ms],
                    )?;
                    c.execute(rollup::RETENTION_SQL, rollup::retention_bounds(cutoff_ms))?;
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
                    // Groups not seen since the cutoff go with their events, and so do the rollups.
                    c.execute(
                        "DELETE FROM error_groups WHERE last_seen_ms < ?1",
                        [cutoff_ms],
                    )?;
                    c.execute(rollup::RETENTION_SQL, rollup::retention_bounds(cutoff_ms))?;
                    return Ok(total);
                }
                after = last;
            }
        })
        .await
    }

    /// The rollup rows of one kind in a window ([`rollup::window_sql`]), one snapshot.
    pub async fn rollup_rows(
        &self,
        site: &str,
        kind: rollup::Kind,
        bounds: [i64; 3],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let site = site.to_owned();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(rollup::window_sql(kind))?;
            let mut rows = stmt.query(rusqlite::params![
                site,
                kind.as_str(),
                bounds[0],
                bounds[1],
                bounds[2]
            ])?;
            all_cells(&mut rows, rollup::WINDOW_COLUMNS)
        })
        .await
    }

    /// Folds up to [`rollup::SQLITE_COMPACT_CHUNK`] partial rollup rows into merged ones; how many were
    /// folded. The reading and merging happen before the write lock is taken, so the writer waits only for
    /// the deletes and upserts: only this connection writes merged rows or deletes partial ones, and the
    /// writer appends partial rows after the last one read (rowids grow while the largest is kept).
    pub async fn compact_rollups(&self) -> Result<usize, StoreError> {
        self.with_conn(move |c| {
            let mut read = c.prepare_cached(&format!(
                "SELECT rowid, {} FROM rollups WHERE level = 0 ORDER BY rowid LIMIT ?1",
                rollup::COLUMNS
            ))?;
            let mut last = i64::MIN;
            let partials = read
                .query_map([rollup::SQLITE_COMPACT_CHUNK], |r| {
                    Ok((r.get::<_, i64>(0)?, read_row(r, 1)?))
                })?
                .map(|r| {
                    r.map(|(rowid, row)| {
                        last = rowid;
                        row
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let n = partials.len();
            if n == 0 {
                return Ok(Ok(0));
            }
            let targets = match rollup::fold(partials) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            let merged = match with_stored(c, targets)? {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            // Rolled back when dropped on an error.
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            c.prepare_cached("DELETE FROM rollups WHERE level = 0 AND rowid <= ?1")?
                .execute([last])?;
            put_merged(c, &merged)?;
            tx.commit()?;
            Ok(Ok(n))
        })
        .await?
    }

    /// Rolls up the next [`rollup::SQLITE_BACKFILL_CHUNK`] events that backfill `b` walks (events stored
    /// before its kinds existed, schema migrations 9 and 12), in rowid order, straight into merged minute,
    /// hour and day rows (no partial rows to append, read back and fold); true once none is left. The
    /// events are read and the rows merged before the write lock is taken (only this connection writes
    /// merged rows and the cursor), so the writer waits only for the upserts and the cursor's update.
    pub async fn backfill_rollups(&self, b: rollup::Backfill) -> Result<bool, StoreError> {
        self.with_conn(move |c| {
            let (until_ms, cursor, done): (i64, String, bool) = c.query_row(
                "SELECT until_ms, cursor_id, done FROM rollup_backfill WHERE id = ?1",
                [b.id()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if done {
                return Ok(Ok(true));
            }
            let after: i64 = cursor.parse().unwrap_or(0);
            // The rowid range, never the errors' index (its order is not rowid order).
            let mut read = c.prepare_cached(&format!(
                "SELECT rowid, received_ms, site, session_id, event_type, client_ts_ms, route, value, name, \
                 endpoint, status, rating, browser, release, fingerprint FROM events NOT INDEXED \
                 WHERE rowid > ?1{} ORDER BY rowid LIMIT ?2",
                b.events_filter()
            ))?;
            let mut rows = read.query(rusqlite::params![after, rollup::SQLITE_BACKFILL_CHUNK])?;
            let mut partials = Partials::received_since(rollup::Cutoffs::only(b));
            let (mut last, mut seen, mut past) = (after, 0i64, false);
            while let Some(r) = rows.next()? {
                seen += 1;
                last = r.get(0)?;
                let received_ms: i64 = r.get(1)?;
                if received_ms >= until_ms {
                    // Rowid order is receive order up to the slack: past it, every later row is newer.
                    past = received_ms >= until_ms.saturating_add(RECEIVE_ORDER_SLACK_MS);
                    if past {
                        break;
                    }
                    continue;
                }
                let site: super::super::Text = r.get::<_, String>(2)?.into();
                let route: super::super::Text = r.get::<_, String>(6)?.into();
                partials.add_fields(Counted {
                    site: &site,
                    session_id: &r.get::<_, String>(3)?,
                    event_type: &r.get::<_, String>(4)?,
                    client_ts_ms: r.get(5)?,
                    received_ms,
                    route: &route,
                    value: r.get(7)?,
                    name: r.get::<_, Option<String>>(8)?.as_deref(),
                    endpoint: r.get::<_, Option<String>>(9)?.as_deref(),
                    status: r.get(10)?,
                    rating: r.get::<_, Option<String>>(11)?.as_deref(),
                    browser: &r.get::<_, String>(12)?,
                    release: r.get::<_, Option<String>>(13)?.as_deref(),
                    fingerprint: r.get::<_, Option<String>>(14)?.as_deref(),
                });
            }
            drop(rows);
            let merged = match with_stored(c, partials.folded())? {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            let done = past || seen < rollup::SQLITE_BACKFILL_CHUNK;
            // Rolled back when dropped on an error.
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            put_merged(c, &merged)?;
            c.execute(
                "UPDATE rollup_backfill SET cursor_id = ?1, done = ?2 WHERE id = ?3",
                rusqlite::params![last.to_string(), done, b.id()],
            )?;
            tx.commit()?;
            Ok(Ok(done))
        })
        .await?
    }

    pub async fn stats_query(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
        received_since_ms: i64,
        extra: Vec<Param>,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        use rusqlite::types::Value;
        let site = site.to_owned();
        self.with_conn(move |c| {
            let first = stats_rowid_bound(c, received_since_ms)?;
            let mut stmt = c.prepare_cached(&stats::sqlite_sql(sql))?;
            let columns = stmt.column_count();
            let params = [
                Value::Text(site),
                Value::Integer(since_ms),
                Value::Integer(first),
            ]
            .into_iter()
            .chain(extra.into_iter().map(|p| match p {
                Param::Text(t) => Value::Text(t),
                Param::Int(i) => Value::Integer(i),
            }));
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            all_cells(&mut rows, columns)
        })
        .await
    }
}

/// The merged row of one key at `level`: parameters site, kind, bucket_ms, key, name.
///
/// The level is written into the statement (one cached statement per level): as a bound parameter,
/// `level = ?` matched the partial index `rollups_pending`'s `level = 0` closely enough that SQLite
/// prepared the statement again at every run, to see whether the bound value made that index usable
/// (half the backfill's time went to SQLite's parser). `level > 0` is the partial index
/// `rollups_merged`'s own condition, spelled out so that SQLite can use it: it does not infer it from
/// `level = 1`, and took `rollups_window` instead, reading every key of the bucket per lookup.
fn merged_lookup_sql(level: i64) -> String {
    format!(
        "SELECT 0, {} FROM rollups WHERE site = ?1 AND kind = ?2 AND level = {level} \
         AND bucket_ms = ?3 AND key = ?4 AND name = ?5 AND level > 0",
        rollup::COLUMNS
    )
}

/// `targets` added to the merged rows already stored for them. Read without the write lock: only the
/// reader's connection writes merged rows (compaction and backfills, one at a time), so what it reads
/// here is still what is stored when it writes.
fn with_stored(
    c: &Connection,
    targets: HashMap<rollup::Key, rollup::Agg>,
) -> rusqlite::Result<Result<Vec<rollup::Row>, StoreError>> {
    let mut existing = Vec::new();
    // In the index's order, so that consecutive lookups share its pages (and the rows', written in the same
    // order) instead of each reading its own.
    let targets = rollup::Targets::new(targets);
    let by_level = [
        merged_lookup_sql(1),
        merged_lookup_sql(2),
        merged_lookup_sql(3),
    ];
    // One read transaction for all the lookups, not a file lock taken and released for each.
    let read = Transaction::new_unchecked(c, TransactionBehavior::Deferred)?;
    for k in targets.keys() {
        // Only merged levels are targets; any other would be upserted without its stored numbers.
        let Some(sql) = usize::try_from(k.level - 1)
            .ok()
            .and_then(|i| by_level.get(i))
        else {
            return Ok(Err(StoreError::Database(format!(
                "rollup target at level {} (merged levels are 1-3)",
                k.level
            ))));
        };
        let mut get = c.prepare_cached(sql)?;
        let rows = get.query_map(
            rusqlite::params![&*k.site, k.kind.as_str(), k.bucket_ms, &*k.key, &*k.name],
            |r| read_row(r, 1),
        )?;
        for r in rows {
            existing.push(r?);
        }
    }
    read.commit()?;
    Ok(targets.merged_rows(existing))
}

/// Writes merged rows over the stored ones (inside the caller's write transaction).
fn put_merged(c: &Connection, rows: &[rollup::Row]) -> rusqlite::Result<()> {
    let mut put = c.prepare_cached(&format!("{}{}", rollup_insert_sql(), rollup::MERGED_UPSERT))?;
    for r in rows {
        append_rollup(&mut put, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::migrate;
    use super::*;

    /// The query plan of `sql` (stats parameters and more) as SQLite gives it.
    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        plan.join("\n")
    }

    #[test]
    fn merged_row_lookups_use_the_merged_key_once_prepared() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for level in [1, 2, 3] {
            let sql = merged_lookup_sql(level);
            let plan = plan(&conn, &sql, ("shop", "page", 0, "/", ""));
            assert!(
                plan.contains("USING INDEX rollups_merged (site=? AND kind=? AND level=? AND bucket_ms=? AND key=? AND name=?)"),
                "{sql}\n{plan}"
            );
            // And it stays prepared whatever is bound.
            let mut stmt = conn.prepare(&sql).unwrap();
            for bucket in [0, 60_000, 120_000] {
                stmt.query(("shop", "page", bucket, "/", ""))
                    .unwrap()
                    .next()
                    .unwrap();
            }
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }

    #[test]
    fn window_reads_each_level_through_its_own_index_range() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        // Rows with summaries, and rows that only count (summed by SQLite).
        for kind in [rollup::Kind::Vital, rollup::Kind::GroupPage] {
            let sql = rollup::window_sql(kind);
            let plan = plan(
                &conn,
                sql,
                ("shop", kind.as_str(), 0, 3_600_000, 86_400_000),
            );
            // Each level a range of (site, kind, level, bucket_ms), never all of the site's rows of the kind.
            let ranged =
                "USING INDEX rollups_window (site=? AND kind=? AND level=? AND bucket_ms>?";
            assert_eq!(plan.matches(ranged).count(), 4, "{kind:?}\n{plan}");
            assert!(!plan.contains("(site=? AND kind=?)"), "{kind:?}\n{plan}");
        }
    }

    #[test]
    fn explorer_queries_use_the_rowid_range_or_the_session_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        // The chart and the session list read their window's rowid range, as the other stats do.
        for sql in [
            super::super::super::timeline::TIMELINE_SQL,
            super::super::super::sessions::SESSIONS_SQL,
        ] {
            let sql = stats::sqlite_sql(sql);
            let plan = plan(&conn, &sql, ("shop", 0, 0, 300_000));
            assert!(
                plan.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)"),
                "{sql}\n{plan}"
            );
            assert!(!plan.contains("SCAN events"), "{sql}\n{plan}");
        }
        // One session: the (site, session_id) index (migration 8), not the window.
        let sql = stats::sqlite_sql(super::super::super::sessions::SESSION_EVENTS_SQL);
        let plan = plan(&conn, &sql, ("shop", 0, 0, "s-1", 501));
        assert!(
            plan.contains("SEARCH events USING INDEX events_site_session (site=? AND session_id=?"),
            "{sql}\n{plan}"
        );
        // One group's occurrences: the errors' index (migration 12), in its order (no sort).
        let sql = stats::sqlite_sql(super::super::super::error_groups::OCCURRENCES_SQL);
        let group = self::plan(&conn, &sql, ("shop", 0, 0, "f", 1));
        assert!(
            group.contains(
                "SEARCH events USING INDEX events_errors (site=? AND fingerprint=? AND client_ts_ms>?)"
            ),
            "{sql}\n{group}"
        );
        assert!(!group.contains("TEMP B-TREE"), "{sql}\n{group}");
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
}
