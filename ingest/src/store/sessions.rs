//! Sessions: the recent sessions of a site (to pick one) and one session's events in time order (its
//! timeline). One SQL text per query, run unchanged on both engines with the parameters of [`super::stats`].
//!
//! The list reads a window's page views and errors, as the other stats do (SQLite: the window's rowid range;
//! PostgreSQL: the `(site, event_type, received_ms)` index, once per event type). One session's events are
//! found through the idempotency key's `(site, session_id, event_id)` index on both engines, whatever the
//! window.

use super::stats::{count, text, Cell};
use super::StoreError;

/// Most sessions one list answers.
pub const MAX_SESSIONS: usize = 200;
/// Most events one session's answer holds.
pub const MAX_SESSION_EVENTS: usize = 2_000;

/// A session as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionSummary {
    pub id: String,
    /// Client time of its first and latest page view or error in the window (ms since the epoch).
    pub start_ms: i64,
    pub last_ms: i64,
    /// `page_load` and `route_change` events.
    pub page_views: u64,
    pub errors: u64,
    /// The route of its latest page view or error, and the browser, device and release that event came from.
    pub last_route: String,
    pub browser: String,
    pub device: String,
    pub release: Option<String>,
}

/// One event of a session, as its timeline shows it. Fields that do not apply to the event's type are
/// absent (`null`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionEvent {
    /// `page_load`, `route_change`, `api_call`, `error`, `web_vital`, `user_interaction`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    /// Client time (ms since the epoch).
    pub time_ms: i64,
    pub route: String,
    /// The page URL as stored (query dropped unless the site keeps some parameters).
    pub url: String,
    /// The event's main number: page load time, API call / interaction / long task duration, vital value
    /// (ms; CLS unitless), custom value.
    pub value: Option<f64>,
    /// Vital name (`LCP`...), custom event name, or error message.
    pub name: Option<String>,
    /// API call: `METHOD host/route` and HTTP status (0: network error).
    pub endpoint: Option<String>,
    pub status: Option<i64>,
    /// Vital rating: `good`, `needs-improvement`, `poor`.
    pub rating: Option<String>,
    /// Error: its group (`/v1/stats/errors/{group}`).
    pub group: Option<String>,
    /// User interaction: what was clicked (the element's `data-rum` value or a selector).
    pub target: Option<String>,
    pub release: Option<String>,
}

/// A session's events as answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionEvents {
    /// Oldest first.
    pub events: Vec<SessionEvent>,
    /// The session has more events in the window than the limit let through (the latest are left out).
    pub truncated: bool,
}

/// ?4 the most sessions. Ordered by latest activity; sorted again in Rust (identical on both engines).
pub(crate) const SESSIONS_SQL: &str = "
WITH e AS (
    SELECT session_id, event_type, client_ts_ms, route, browser, device, release, event_id
    FROM events
    WHERE site = ?1 AND event_type IN ('page_load', 'route_change', 'error') AND received_ms >= ?3 AND client_ts_ms >= ?2
), s AS (
    SELECT session_id, MIN(client_ts_ms) AS start_ms, MAX(client_ts_ms) AS last_ms,
           SUM(CASE WHEN event_type = 'error' THEN 0 ELSE 1 END) AS views,
           SUM(CASE WHEN event_type = 'error' THEN 1 ELSE 0 END) AS errors
    FROM e GROUP BY session_id
    ORDER BY last_ms DESC, session_id
    LIMIT ?4
), l AS (
    SELECT session_id, route, browser, device, release,
           ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY client_ts_ms DESC, event_id) AS rn
    FROM e WHERE session_id IN (SELECT session_id FROM s)
)
SELECT s.session_id, s.start_ms, s.last_ms, s.views, s.errors, l.route, l.browser, l.device, l.release
FROM s JOIN l ON l.session_id = s.session_id AND l.rn = 1";

/// ?4 the session id, ?5 the most rows. `FROM events WHERE` on one line: the session index serves it on
/// SQLite too (`stats::sqlite_sql` forces the rowid scan only on `FROM events` ending its line).
pub(crate) const SESSION_EVENTS_SQL: &str = "
SELECT client_ts_ms, event_type, route, url, value, name, endpoint, status, rating, fingerprint, release,
       CASE WHEN event_type = 'user_interaction' THEN raw END
FROM events WHERE site = ?1 AND session_id = ?4 AND received_ms >= ?3 AND client_ts_ms >= ?2
ORDER BY client_ts_ms, event_id
LIMIT ?5";

const W: &str = "session";

fn int(row: &[Cell], i: usize) -> Result<i64, StoreError> {
    match row.get(i) {
        Some(Cell::Int(v)) => Ok(*v),
        _ => Err(super::stats::bad_row(W)),
    }
}

fn opt_text(row: &mut [Cell], i: usize) -> Result<Option<String>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => text(row, i, W).map(Some),
    }
}

pub(crate) fn sessions(rows: Vec<Vec<Cell>>) -> Result<Vec<SessionSummary>, StoreError> {
    let mut out = rows
        .into_iter()
        .map(|mut r| {
            Ok(SessionSummary {
                start_ms: int(&r, 1)?,
                last_ms: int(&r, 2)?,
                page_views: count(&r, 3, W)?,
                errors: count(&r, 4, W)?,
                id: text(&mut r, 0, W)?,
                last_route: text(&mut r, 5, W)?,
                browser: text(&mut r, 6, W)?,
                device: text(&mut r, 7, W)?,
                release: opt_text(&mut r, 8)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// What a user interaction's stored JSON says was clicked.
fn interaction_target(raw: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let target = v.get("interaction")?.get("target")?.as_str()?;
    Some(crate::truncate::truncate(target, 200))
}

pub(crate) fn session_events(rows: Vec<Vec<Cell>>) -> Result<Vec<SessionEvent>, StoreError> {
    rows.into_iter()
        .map(|mut r| {
            let value = match r.get(4) {
                Some(Cell::Real(v)) => Some(*v),
                Some(Cell::Int(v)) => Some(*v as f64),
                Some(Cell::Null) => None,
                _ => return Err(super::stats::bad_row(W)),
            };
            let status = match r.get(7) {
                Some(Cell::Int(v)) => Some(*v),
                Some(Cell::Null) => None,
                _ => return Err(super::stats::bad_row(W)),
            };
            Ok(SessionEvent {
                time_ms: int(&r, 0)?,
                event_type: text(&mut r, 1, W)?,
                route: text(&mut r, 2, W)?,
                url: text(&mut r, 3, W)?,
                value,
                name: opt_text(&mut r, 5)?,
                endpoint: opt_text(&mut r, 6)?,
                status,
                rating: opt_text(&mut r, 8)?,
                group: opt_text(&mut r, 9)?,
                release: opt_text(&mut r, 10)?,
                target: opt_text(&mut r, 11)?
                    .as_deref()
                    .and_then(interaction_target),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_sorted_latest_first_and_bad_rows_are_errors() {
        let t = |s: &str| Cell::Text(s.into());
        let row = |id: &str, last| {
            vec![
                t(id),
                Cell::Int(1),
                Cell::Int(last),
                Cell::Int(2),
                Cell::Int(0),
                t("/"),
                t("Chrome"),
                t("desktop"),
                Cell::Null,
            ]
        };
        let s = sessions(vec![row("b", 5), row("c", 9), row("a", 5)]).unwrap();
        let ids: Vec<_> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        assert!(sessions(vec![vec![t("x")]]).is_err());
    }

    #[test]
    fn interaction_target_from_the_stored_event() {
        let raw =
            r#"{"type":"user_interaction","interaction":{"action":"click","target":"buy-button"}}"#;
        assert_eq!(interaction_target(raw).as_deref(), Some("buy-button"));
        assert_eq!(interaction_target("{}"), None);
        assert_eq!(interaction_target("not json"), None);
    }
}
