//! Error groups: their result shapes, and a group's recent occurrences from stored events (one SQL text,
//! run unchanged on both engines, with the parameters and scan bounds of [`super::stats`]). A group's
//! counts, sessions, first and last seen, releases and top pages and browsers come from the rollups
//! (`rollup.rs`); its sample is its latest occurrence.

use super::stats::{bad_row, text, Cell};
use super::StoreError;

/// Most groups one answer lists (most frequent first).
pub const MAX_GROUPS: usize = 100;
/// Releases listed per group (most frequent first).
pub const TOP_RELEASES: usize = 10;
/// Pages (routes) and browsers listed per group.
pub const TOP_FACETS: usize = 5;
/// Most occurrences one answer lists.
pub const MAX_OCCURRENCES: usize = 200;

/// One error group in a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErrorGroup {
    /// The fingerprint: 16 hex digits, the `{group}` of `/v1/stats/errors/{group}`.
    pub id: String,
    /// `TypeError`, `Error`, ...
    #[serde(rename = "type")]
    pub error_type: String,
    /// The message with numbers, ids, quoted strings and URLs replaced by placeholders.
    pub message: String,
    pub count: u64,
    /// Distinct sessions that saw it.
    pub sessions: u64,
    /// Client time of its first and last occurrence in the window (ms since the epoch).
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Releases it occurred in (at most [`TOP_RELEASES`], most occurrences first).
    pub releases: Vec<String>,
    /// Routes it occurred on and browsers it occurred in (at most [`TOP_FACETS`] each).
    pub top_pages: Vec<Facet>,
    pub top_browsers: Vec<Facet>,
    /// Its latest occurrence.
    pub sample: Sample,
}

/// A value and how many of the group's occurrences had it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Facet {
    pub value: String,
    pub count: u64,
}

/// One occurrence's message, release and (symbolicated) stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    pub message: String,
    pub release: Option<String>,
    pub stack: Option<String>,
}

/// One occurrence of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Occurrence {
    /// Client time (ms since the epoch).
    pub time_ms: i64,
    pub session_id: String,
    /// The page URL as stored, and its route.
    pub page: String,
    pub route: String,
    pub release: Option<String>,
    pub browser: String,
    pub message: String,
    pub stack: Option<String>,
}

// Parameters as in `stats.rs`: ?1 site, ?2 since_ms (client time), ?3 the receive-time scan bound; ?4 the
// fingerprint, ?5 the most rows. Read through the errors' own index (migration 12: errors only, by site,
// group and client time, newest first), so a group's latest occurrences cost a few index entries whatever
// the store holds; the receive bound is then a filter. On one line with `FROM events`: SQLite must not be
// told to scan the rowid range instead (`stats::sqlite_sql`).
pub(crate) const OCCURRENCES_SQL: &str = "
SELECT client_ts_ms, session_id, url, route, release, browser, name, stack
FROM events WHERE site = ?1 AND event_type = 'error' AND fingerprint = ?4 AND client_ts_ms >= ?2 AND received_ms >= ?3
ORDER BY client_ts_ms DESC, event_id
LIMIT ?5";

const W: &str = "error group";

fn int(row: &[Cell], i: usize) -> Result<i64, StoreError> {
    match row.get(i) {
        Some(Cell::Int(v)) => Ok(*v),
        _ => Err(bad_row(W)),
    }
}

fn opt_text(row: &mut [Cell], i: usize) -> Result<Option<String>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => text(row, i, W).map(Some),
    }
}

impl ErrorGroup {
    /// A group from its rolled-up numbers; type, message, facets and sample come after.
    pub(crate) fn new(id: String, count: u64, sessions: u64, (first, last): (i64, i64)) -> Self {
        ErrorGroup {
            id,
            error_type: String::new(),
            message: String::new(),
            count,
            sessions,
            first_seen_ms: first,
            last_seen_ms: last,
            releases: Vec::new(),
            top_pages: Vec::new(),
            top_browsers: Vec::new(),
            sample: Sample {
                message: String::new(),
                release: None,
                stack: None,
            },
        }
    }

    /// Takes `latest` (its latest occurrence) as the sample, and the type and normalised message from it:
    /// those the fingerprint was made of (`jserror::fingerprint`).
    pub(crate) fn set_sample(&mut self, latest: Occurrence) {
        self.sample = Sample {
            message: latest.message,
            release: latest.release,
            stack: latest.stack,
        };
        let header = self
            .sample
            .stack
            .as_deref()
            .and_then(|s| s.lines().next())
            .filter(|l| crate::jserror::frames::parse_frame(l).is_none());
        let (error_type, message) =
            crate::jserror::fingerprint::describe(&self.sample.message, header);
        self.error_type = error_type;
        self.message = message;
    }
}

pub(crate) fn occurrences(rows: Vec<Vec<Cell>>) -> Result<Vec<Occurrence>, StoreError> {
    rows.into_iter()
        .map(|mut r| {
            Ok(Occurrence {
                time_ms: int(&r, 0)?,
                session_id: text(&mut r, 1, W)?,
                page: text(&mut r, 2, W)?,
                route: text(&mut r, 3, W)?,
                release: opt_text(&mut r, 4)?,
                browser: text(&mut r, 5, W)?,
                message: opt_text(&mut r, 6)?.unwrap_or_default(),
                stack: opt_text(&mut r, 7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_message_from_the_sample() {
        let occurrence = |message: &str, stack: Option<&str>| Occurrence {
            time_ms: 1,
            session_id: "s".into(),
            page: "https://x/".into(),
            route: "/".into(),
            release: Some("r2".into()),
            browser: "Chrome".into(),
            message: message.into(),
            stack: stack.map(Into::into),
        };
        let mut g = ErrorGroup::new("b".into(), 3, 2, (10, 30));
        g.set_sample(occurrence(
            "Uncaught TypeError: item 7 has no 'sku'",
            Some("TypeError: item 7 has no 'sku'\n    at add (src/cart.js:42:13)"),
        ));
        assert_eq!(
            (g.error_type.as_str(), g.message.as_str()),
            ("TypeError", "item <n> has no <str>")
        );
        assert_eq!(g.sample.release.as_deref(), Some("r2"));
        // A stack that starts with a frame has no header: the message alone says the type.
        g.set_sample(occurrence("boom", Some("    at add (src/cart.js:42:13)")));
        assert_eq!(
            (g.error_type.as_str(), g.message.as_str()),
            ("Error", "boom")
        );
        assert_eq!((g.count, g.first_seen_ms, g.last_seen_ms), (3, 10, 30));
    }
}
