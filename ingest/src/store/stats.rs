//! The stats API's result shapes, and the parts every query over stored events shares: one SQL text per
//! query, run unchanged on SQLite and PostgreSQL, with its cells decoded the same way from both.
//!
//! # Percentiles
//! Every percentile is the **nearest-rank** percentile: for the `n` values of a group sorted ascending, the
//! p-th percentile is the value at 1-based rank `ceil(p * n / 100)`. The `pages`, `api`, `errors` and
//! `vitals` stats read it from the rollups' sketches (`rollup.rs`), within 1 % of the exact value, and the
//! same on both engines (the same sketches merged in any order give the same counts).
//!
//! Shares (error share, vital ratings) are integer counts divided in Rust, again identical on both.
//! Windows compare `since_ms` with the event's client timestamp (see the store's module docs). Text is
//! compared bytewise on both engines (PostgreSQL columns use the "C" collation), and results are sorted in
//! Rust, so the order is identical too.

use super::StoreError;

/// How many most frequent messages [`ErrorStats::top_messages`] lists per route.
pub const TOP_MESSAGES: usize = 5;

/// Page-load times of one route, milliseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PageStats {
    pub route: String,
    /// `page_load` events with a load time.
    pub samples: u64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p95_ms: f64,
}

/// Calls to one API endpoint (`METHOD host/route`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiStats {
    pub endpoint: String,
    /// All `api_call` events for the endpoint.
    pub calls: u64,
    /// Calls with status >= 400 or 0 (network error).
    pub errors: u64,
    /// `errors / calls`.
    pub error_share: f64,
    /// Percentiles over the calls that carry a duration; `None` when none does.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// How often one error message occurred.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageCount {
    pub message: String,
    pub count: u64,
}

/// Errors on one route.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErrorStats {
    pub route: String,
    pub errors: u64,
    /// Distinct sessions that saw at least one error on the route.
    pub affected_sessions: u64,
    /// The most frequent messages (at most [`TOP_MESSAGES`]), most frequent first, ties by message.
    pub top_messages: Vec<MessageCount>,
}

/// One web vital on one route.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VitalStats {
    pub route: String,
    /// `LCP`, `INP`, `CLS`, `FCP`, `TTFB`.
    pub name: String,
    pub samples: u64,
    /// Milliseconds, except CLS (unitless).
    pub p75: f64,
    /// Share of samples rated `good` / `needs-improvement` / `poor` (unrated samples count in none).
    pub good_share: f64,
    pub needs_improvement_share: f64,
    pub poor_share: f64,
}

/// One result cell, decoded the same way from both engines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

// Parameters: ?1 = site, ?2 = since_ms (client time), ?3 = the receive-time bound that narrows the scan
// (store module docs, "Time base"): PostgreSQL's `(site, event_type, received_ms)` index takes it as is;
// SQLite gets the first rowid of that receive time instead (see `sqlite_sql`). PostgreSQL gets `$1`, `$2`
// (see `postgres_sql`), so these texts must not contain any other `?`.

/// The receive-time bound as every query spells it, once.
const RECEIVED_BOUND: &str = "received_ms >= ?3";

/// An error group's occurrences query (its latest one is the group's sample) as the SQLite (`sqlite`) or
/// the PostgreSQL store runs it: parameters site, since (ms), the receive-time bound (PostgreSQL: ms; SQLite:
/// the first rowid received at or after it), the fingerprint, the most rows. For `bench/ingest/stats.rs`,
/// which times and explains it on large stores; the rest of the stats read rollups (`rollup.rs`).
#[doc(hidden)]
pub fn occurrences_sql_as_run(sqlite: bool) -> String {
    let sql = super::error_groups::OCCURRENCES_SQL;
    if sqlite {
        sqlite_sql(sql)
    } else {
        postgres_sql(sql)
    }
}

/// Every query that reads events by site, event type and receive time, as the PostgreSQL store runs it: those
/// of the timeline and the session list. Each must be able to use the stats index, which holds only the
/// event types they name (migration 10); a test checks the plans (`ingest/tests/store_backends.rs`). (An
/// error group's occurrences have an index of their own, migration 12.)
#[doc(hidden)]
pub fn postgres_queries_by_event_type() -> Vec<(&'static str, String)> {
    [
        ("TIMELINE_SQL", super::timeline::TIMELINE_SQL),
        ("SESSIONS_SQL", super::sessions::SESSIONS_SQL),
    ]
    .into_iter()
    .map(|(name, sql)| (name, postgres_sql(sql)))
    .collect()
}

/// A query parameter after the three every stats query has (`?4`, `?5`, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The same query with PostgreSQL's `$n` placeholders.
pub(crate) fn postgres_sql(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The same query bounded by rowid: SQLite has no receive-time index, its rows are in receive order, and
/// `?3` is then the first rowid of the receive-time bound. `NOT INDEXED` keeps the planner from reading the
/// site's every event through the idempotency key's `(site, ...)` prefix instead.
pub(crate) fn sqlite_sql(sql: &str) -> String {
    sql.replace(RECEIVED_BOUND, "rowid >= ?3")
        .replace("FROM events\n", "FROM events NOT INDEXED\n")
}

pub(super) fn bad_row(what: &str) -> StoreError {
    StoreError::Database(format!("unexpected result shape in {what} stats"))
}

pub(super) fn text(row: &mut [Cell], i: usize, what: &str) -> Result<String, StoreError> {
    match row.get_mut(i).map(|c| std::mem::replace(c, Cell::Null)) {
        Some(Cell::Text(s)) => Ok(s),
        _ => Err(bad_row(what)),
    }
}

pub(super) fn count(row: &[Cell], i: usize, what: &str) -> Result<u64, StoreError> {
    match row.get(i) {
        Some(Cell::Int(v)) if *v >= 0 => Ok(*v as u64),
        // SUM over no rows; cannot happen inside a group but costs nothing to accept.
        Some(Cell::Null) => Ok(0),
        _ => Err(bad_row(what)),
    }
}

pub(super) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_translate_and_no_stray_question_marks() {
        // Every query keeps the same bounds; one session's events and one group's occurrences are found
        // through their own index on SQLite too (no forced rowid scan).
        for (sql, params, rowid_scan) in [
            (super::super::error_groups::OCCURRENCES_SQL, 5, 0),
            (super::super::timeline::TIMELINE_SQL, 4, 1),
            (super::super::sessions::SESSIONS_SQL, 4, 1),
            (super::super::sessions::SESSION_EVENTS_SQL, 5, 0),
        ] {
            assert_eq!(sql.matches('?').count(), params, "{sql}");
            assert_eq!(sql.matches(RECEIVED_BOUND).count(), 1, "{sql}");
            assert!(!sqlite_sql(sql).contains("received_ms"), "{sql}");
            assert!(postgres_sql(sql).contains("$3"), "{sql}");
            assert_eq!(
                sqlite_sql(sql).matches("FROM events NOT INDEXED\n").count(),
                rowid_scan,
                "{sql}"
            );
        }
    }
}
