//! Stats queries over stored events: one SQL text per query, run unchanged on SQLite and PostgreSQL.
//!
//! # Percentiles
//! Every percentile is the **nearest-rank** percentile: for the `n` values of a group sorted ascending, the
//! p-th percentile is the value at 1-based rank `ceil(p * n / 100)`, computed in SQL as the integer
//! expression `(p * n + 99) / 100` over a `ROW_NUMBER()` window. It is always one of the observed values
//! (no interpolation), so both engines return bit-identical numbers. Example: values 100..1000 step 100
//! (n = 10) give p50 = 500 (rank 5), p75 = 800 (rank 8), p95 = 1000 (rank 10).
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
}

// Parameters: ?1 = site, ?2 = since_ms (client time), ?3 = the receive-time bound that narrows the scan
// (store module docs, "Time base"): PostgreSQL's `(site, event_type, received_ms)` index takes it as is;
// SQLite gets the first rowid of that receive time instead (see `sqlite_sql`). PostgreSQL gets `$1`, `$2`
// (see `postgres_sql`), so these texts must not contain any other `?`.

/// The receive-time bound as every query spells it, once.
const RECEIVED_BOUND: &str = "received_ms >= ?3";

pub(crate) const PAGE_SQL: &str = "
WITH v AS (
    SELECT route, value,
           ROW_NUMBER() OVER (PARTITION BY route ORDER BY value) AS rn,
           COUNT(*) OVER (PARTITION BY route) AS n
    FROM events
    WHERE site = ?1 AND event_type = 'page_load' AND received_ms >= ?3 AND client_ts_ms >= ?2 AND value IS NOT NULL
)
SELECT route, MAX(n),
       MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN value END),
       MAX(CASE WHEN rn = (75 * n + 99) / 100 THEN value END),
       MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN value END)
FROM v GROUP BY route";

pub(crate) const API_SQL: &str = "
WITH v AS (
    SELECT COALESCE(endpoint, 'unknown') AS ep, value,
           CASE WHEN status >= 400 OR status = 0 THEN 1 ELSE 0 END AS failed,
           ROW_NUMBER() OVER (PARTITION BY COALESCE(endpoint, 'unknown') ORDER BY value NULLS LAST) AS rn,
           COUNT(value) OVER (PARTITION BY COALESCE(endpoint, 'unknown')) AS n
    FROM events
    WHERE site = ?1 AND event_type = 'api_call' AND received_ms >= ?3 AND client_ts_ms >= ?2
)
SELECT ep, COUNT(*), SUM(failed),
       MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN value END),
       MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN value END)
FROM v GROUP BY ep";

pub(crate) const ERROR_TOTALS_SQL: &str = "
SELECT route, COUNT(*), COUNT(DISTINCT session_id)
FROM events
WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2
GROUP BY route";

pub(crate) const ERROR_MESSAGES_SQL: &str = "
WITH m AS (
    SELECT route, COALESCE(name, '') AS message, COUNT(*) AS c
    FROM events
    WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2
    GROUP BY route, COALESCE(name, '')
), r AS (
    SELECT route, message, c, ROW_NUMBER() OVER (PARTITION BY route ORDER BY c DESC, message) AS rn
    FROM m
)
SELECT route, message, c FROM r WHERE rn <= 5";

pub(crate) const VITAL_SQL: &str = "
WITH v AS (
    SELECT route, name, value, rating,
           ROW_NUMBER() OVER (PARTITION BY route, name ORDER BY value) AS rn,
           COUNT(*) OVER (PARTITION BY route, name) AS n
    FROM events
    WHERE site = ?1 AND event_type = 'web_vital' AND received_ms >= ?3 AND client_ts_ms >= ?2
      AND value IS NOT NULL AND name IS NOT NULL
)
SELECT route, name, MAX(n),
       MAX(CASE WHEN rn = (75 * n + 99) / 100 THEN value END),
       SUM(CASE WHEN rating = 'good' THEN 1 ELSE 0 END),
       SUM(CASE WHEN rating = 'needs-improvement' THEN 1 ELSE 0 END),
       SUM(CASE WHEN rating = 'poor' THEN 1 ELSE 0 END)
FROM v GROUP BY route, name";

/// Every stats query by name, for the tests that check them all and [`queries_as_run`].
pub(crate) const ALL_SQL: [(&str, &str); 8] = [
    ("PAGE_SQL", PAGE_SQL),
    ("API_SQL", API_SQL),
    ("ERROR_TOTALS_SQL", ERROR_TOTALS_SQL),
    ("ERROR_MESSAGES_SQL", ERROR_MESSAGES_SQL),
    ("VITAL_SQL", VITAL_SQL),
    ("GROUP_TOTALS_SQL", super::error_groups::GROUP_TOTALS_SQL),
    ("GROUP_FACETS_SQL", super::error_groups::GROUP_FACETS_SQL),
    ("GROUP_SAMPLES_SQL", super::error_groups::GROUP_SAMPLES_SQL),
];

/// Every stats query by name, as the SQLite (`sqlite`) or the PostgreSQL store runs it: parameters site,
/// since (ms), and the receive-time bound (PostgreSQL: ms; SQLite: the first rowid received at or after it).
/// For `bench/ingest/stats.rs`, which times and explains them on large stores.
#[doc(hidden)]
pub fn queries_as_run(sqlite: bool) -> Vec<(&'static str, String)> {
    ALL_SQL
        .iter()
        .map(|(name, sql)| {
            let sql = if sqlite {
                sqlite_sql(sql)
            } else {
                postgres_sql(sql)
            };
            (*name, sql)
        })
        .collect()
}

/// Every query that reads events by site, event type and receive time, as the PostgreSQL store runs it: the
/// stats queries and those of the timeline, the session list and an error group's occurrences. Each must be
/// able to use the stats index, which holds only the event types they name (migration 10); a test checks
/// the plans (`ingest/tests/store_backends.rs`).
#[doc(hidden)]
pub fn postgres_queries_by_event_type() -> Vec<(&'static str, String)> {
    ALL_SQL
        .iter()
        .copied()
        .chain([
            ("TIMELINE_SQL", super::timeline::TIMELINE_SQL),
            ("SESSIONS_SQL", super::sessions::SESSIONS_SQL),
            ("OCCURRENCES_SQL", super::error_groups::OCCURRENCES_SQL),
        ])
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

fn number(row: &[Cell], i: usize, what: &str) -> Result<Option<f64>, StoreError> {
    match row.get(i) {
        Some(Cell::Real(v)) => Ok(Some(*v)),
        // SQLite hands back a REAL column's integral values as REAL, but be lenient.
        Some(Cell::Int(v)) => Ok(Some(*v as f64)),
        Some(Cell::Null) => Ok(None),
        _ => Err(bad_row(what)),
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub(crate) fn page_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<PageStats>, StoreError> {
    const W: &str = "page";
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        let p = |i| number(&r, i, W).and_then(|v| v.ok_or_else(|| bad_row(W)));
        let (p50_ms, p75_ms, p95_ms) = (p(2)?, p(3)?, p(4)?);
        out.push(PageStats {
            samples: count(&r, 1, W)?,
            p50_ms,
            p75_ms,
            p95_ms,
            route: text(&mut r, 0, W)?,
        });
    }
    out.sort_by(|a, b| a.route.cmp(&b.route));
    Ok(out)
}

pub(crate) fn api_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<ApiStats>, StoreError> {
    const W: &str = "api";
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        let calls = count(&r, 1, W)?;
        let errors = count(&r, 2, W)?;
        out.push(ApiStats {
            calls,
            errors,
            error_share: share(errors, calls),
            p50_ms: number(&r, 3, W)?,
            p95_ms: number(&r, 4, W)?,
            endpoint: text(&mut r, 0, W)?,
        });
    }
    // Slowest first; endpoints without durations last; then busiest; then by name for a stable order.
    out.sort_by(|a, b| {
        let slow = match (a.p95_ms, b.p95_ms) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        slow.then(b.calls.cmp(&a.calls))
            .then(a.endpoint.cmp(&b.endpoint))
    });
    Ok(out)
}

pub(crate) fn error_stats(
    totals: Vec<Vec<Cell>>,
    messages: Vec<Vec<Cell>>,
) -> Result<Vec<ErrorStats>, StoreError> {
    const W: &str = "error";
    let mut by_route = std::collections::BTreeMap::new();
    for mut r in totals {
        let errors = count(&r, 1, W)?;
        let affected_sessions = count(&r, 2, W)?;
        let route = text(&mut r, 0, W)?;
        by_route.insert(
            route.clone(),
            ErrorStats {
                route,
                errors,
                affected_sessions,
                top_messages: Vec::new(),
            },
        );
    }
    for mut r in messages {
        let c = count(&r, 2, W)?;
        let message = text(&mut r, 1, W)?;
        let route = text(&mut r, 0, W)?;
        if let Some(s) = by_route.get_mut(&route) {
            s.top_messages.push(MessageCount { message, count: c });
        }
    }
    let mut out: Vec<ErrorStats> = by_route.into_values().collect();
    for s in &mut out {
        s.top_messages
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
        s.top_messages.truncate(TOP_MESSAGES);
    }
    out.sort_by(|a, b| b.errors.cmp(&a.errors).then(a.route.cmp(&b.route)));
    Ok(out)
}

pub(crate) fn vital_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<VitalStats>, StoreError> {
    const W: &str = "vital";
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        let samples = count(&r, 2, W)?;
        let p75 = number(&r, 3, W)?.ok_or_else(|| bad_row(W))?;
        let (good, ni, poor) = (count(&r, 4, W)?, count(&r, 5, W)?, count(&r, 6, W)?);
        out.push(VitalStats {
            name: text(&mut r, 1, W)?,
            route: text(&mut r, 0, W)?,
            samples,
            p75,
            good_share: share(good, samples),
            needs_improvement_share: share(ni, samples),
            poor_share: share(poor, samples),
        });
    }
    out.sort_by(|a, b| a.route.cmp(&b.route).then(a.name.cmp(&b.name)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_translate_and_no_stray_question_marks() {
        for (_, sql) in ALL_SQL {
            let pg = postgres_sql(sql);
            assert!(pg.contains("$1") && pg.contains("$2") && pg.contains("$3"));
            assert_eq!(sql.matches('?').count(), 3, "{sql}");
            assert_eq!(sql.matches(RECEIVED_BOUND).count(), 1, "{sql}");
            assert!(!sqlite_sql(sql).contains("received_ms"), "{sql}");
            assert_eq!(
                sqlite_sql(sql).matches("FROM events NOT INDEXED\n").count(),
                1
            );
        }
        assert!(ERROR_MESSAGES_SQL.contains(&format!("rn <= {TOP_MESSAGES}")));
        // Queries with more parameters keep the same bounds; one session's events are found through the
        // session index on SQLite too (no forced rowid scan).
        for (sql, params, rowid_scan) in [
            (super::super::error_groups::OCCURRENCES_SQL, 5, 1),
            (super::super::timeline::TIMELINE_SQL, 4, 1),
            (super::super::sessions::SESSIONS_SQL, 4, 1),
            (super::super::sessions::SESSION_EVENTS_SQL, 5, 0),
        ] {
            assert_eq!(sql.matches('?').count(), params, "{sql}");
            assert_eq!(sql.matches(RECEIVED_BOUND).count(), 1, "{sql}");
            assert!(!sqlite_sql(sql).contains("received_ms"), "{sql}");
            assert_eq!(
                sqlite_sql(sql).matches("FROM events NOT INDEXED\n").count(),
                rowid_scan,
                "{sql}"
            );
        }
    }

    #[test]
    fn api_rows_sorted_slowest_first_with_shares() {
        let rows = vec![
            vec![
                Cell::Text("GET a".into()),
                Cell::Int(4),
                Cell::Int(1),
                Cell::Real(1.0),
                Cell::Real(9.0),
            ],
            vec![
                Cell::Text("GET b".into()),
                Cell::Int(2),
                Cell::Int(2),
                Cell::Null,
                Cell::Null,
            ],
            vec![
                Cell::Text("GET c".into()),
                Cell::Int(1),
                Cell::Int(0),
                Cell::Real(5.0),
                Cell::Real(50.0),
            ],
        ];
        let s = api_stats(rows).unwrap();
        let names: Vec<_> = s.iter().map(|a| a.endpoint.as_str()).collect();
        assert_eq!(names, ["GET c", "GET a", "GET b"]);
        assert_eq!(s[1].error_share, 0.25);
        assert_eq!(s[2].error_share, 1.0);
    }

    #[test]
    fn malformed_row_is_an_error_not_a_panic() {
        let rows = vec![vec![Cell::Int(1)]];
        assert!(page_stats(rows).is_err());
    }
}
