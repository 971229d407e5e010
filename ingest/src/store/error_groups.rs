//! Error groups over stored events: per group its counts, first and last seen, releases, top pages and
//! browsers and its latest occurrence as a sample; and a group's recent occurrences. One SQL text per query,
//! run unchanged on both engines (the parameters and scan bounds of [`super::stats`]), sorted in Rust.

use super::stats::{bad_row, count, text, Cell};
use super::StoreError;
use std::collections::BTreeMap;

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

// Parameters as in `stats.rs`: ?1 site, ?2 since_ms (client time), ?3 the receive-time scan bound.

pub(crate) const GROUP_TOTALS_SQL: &str = "
SELECT fingerprint, COUNT(*), COUNT(DISTINCT session_id), MIN(client_ts_ms), MAX(client_ts_ms)
FROM events
WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2 AND fingerprint IS NOT NULL
GROUP BY fingerprint";

pub(crate) const GROUP_FACETS_SQL: &str = "
WITH e AS (
    SELECT fingerprint, release, route, browser
    FROM events
    WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2 AND fingerprint IS NOT NULL
), f AS (
    SELECT fingerprint, 'release' AS facet, release AS value, COUNT(*) AS c FROM e WHERE release IS NOT NULL
    GROUP BY fingerprint, release
    UNION ALL
    SELECT fingerprint, 'page', route, COUNT(*) FROM e GROUP BY fingerprint, route
    UNION ALL
    SELECT fingerprint, 'browser', browser, COUNT(*) FROM e GROUP BY fingerprint, browser
), r AS (
    SELECT fingerprint, facet, value, c,
           ROW_NUMBER() OVER (PARTITION BY fingerprint, facet ORDER BY c DESC, value) AS rn
    FROM f
)
SELECT fingerprint, facet, value, c FROM r WHERE rn <= 10";

pub(crate) const GROUP_SAMPLES_SQL: &str = "
WITH e AS (
    SELECT fingerprint, name, release, stack,
           ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY client_ts_ms DESC, event_id) AS rn
    FROM events
    WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2 AND fingerprint IS NOT NULL
)
SELECT fingerprint, name, release, stack FROM e WHERE rn = 1";

/// ?4 the fingerprint, ?5 the most rows.
pub(crate) const OCCURRENCES_SQL: &str = "
SELECT client_ts_ms, session_id, url, route, release, browser, name, stack
FROM events
WHERE site = ?1 AND event_type = 'error' AND received_ms >= ?3 AND client_ts_ms >= ?2 AND fingerprint = ?4
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

/// The groups from the rows of the three group queries, most frequent first (ties by id), at most
/// [`MAX_GROUPS`].
pub(crate) fn error_groups(
    totals: Vec<Vec<Cell>>,
    facets: Vec<Vec<Cell>>,
    samples: Vec<Vec<Cell>>,
) -> Result<Vec<ErrorGroup>, StoreError> {
    let mut groups = BTreeMap::new();
    for mut r in totals {
        let id = text(&mut r, 0, W)?;
        groups.insert(
            id.clone(),
            ErrorGroup {
                id,
                error_type: String::new(),
                message: String::new(),
                count: count(&r, 1, W)?,
                sessions: count(&r, 2, W)?,
                first_seen_ms: int(&r, 3)?,
                last_seen_ms: int(&r, 4)?,
                releases: Vec::new(),
                top_pages: Vec::new(),
                top_browsers: Vec::new(),
                sample: Sample {
                    message: String::new(),
                    release: None,
                    stack: None,
                },
            },
        );
    }
    let mut facet_rows: Vec<(String, String, Facet)> = Vec::with_capacity(facets.len());
    for mut r in facets {
        let c = count(&r, 3, W)?;
        facet_rows.push((
            text(&mut r, 0, W)?,
            text(&mut r, 1, W)?,
            Facet {
                value: text(&mut r, 2, W)?,
                count: c,
            },
        ));
    }
    facet_rows.sort_by(|a, b| {
        (&a.0, &a.1, b.2.count, &a.2.value).cmp(&(&b.0, &b.1, a.2.count, &b.2.value))
    });
    for (id, facet, f) in facet_rows {
        let Some(g) = groups.get_mut(&id) else {
            continue;
        };
        match facet.as_str() {
            "release" if g.releases.len() < TOP_RELEASES => g.releases.push(f.value),
            "page" if g.top_pages.len() < TOP_FACETS => g.top_pages.push(f),
            "browser" if g.top_browsers.len() < TOP_FACETS => g.top_browsers.push(f),
            _ => {}
        }
    }
    for mut r in samples {
        let id = text(&mut r, 0, W)?;
        let Some(g) = groups.get_mut(&id) else {
            continue;
        };
        g.sample = Sample {
            message: opt_text(&mut r, 1)?.unwrap_or_default(),
            release: opt_text(&mut r, 2)?,
            stack: opt_text(&mut r, 3)?,
        };
        // The type and normalised message are those the fingerprint was made of (`jserror::fingerprint`).
        let header = g
            .sample
            .stack
            .as_deref()
            .and_then(|s| s.lines().next())
            .filter(|l| crate::jserror::frames::parse_frame(l).is_none());
        let (error_type, message) =
            crate::jserror::fingerprint::describe(&g.sample.message, header);
        g.error_type = error_type;
        g.message = message;
    }
    let mut out: Vec<ErrorGroup> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    out.truncate(MAX_GROUPS);
    Ok(out)
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
    fn facets_sorted_and_bounded_types_from_the_sample() {
        let t = |s: &str| Cell::Text(s.into());
        let totals = vec![
            vec![
                t("b"),
                Cell::Int(3),
                Cell::Int(2),
                Cell::Int(10),
                Cell::Int(30),
            ],
            vec![
                t("a"),
                Cell::Int(3),
                Cell::Int(1),
                Cell::Int(5),
                Cell::Int(6),
            ],
        ];
        let mut facets = vec![vec![t("a"), t("page"), t("/x"), Cell::Int(1)]];
        for (i, c) in [(1, 1), (2, 5), (3, 2), (4, 2), (5, 1), (6, 1)] {
            facets.push(vec![t("b"), t("page"), t(&format!("/p{i}")), Cell::Int(c)]);
        }
        facets.push(vec![t("b"), t("release"), t("r1"), Cell::Int(1)]);
        facets.push(vec![t("b"), t("release"), t("r2"), Cell::Int(2)]);
        let samples = vec![vec![
            t("b"),
            t("Uncaught TypeError: item 7 has no 'sku'"),
            t("r2"),
            t("TypeError: item 7 has no 'sku'\n    at add (src/cart.js:42:13)"),
        ]];
        let g = error_groups(totals, facets, samples).unwrap();
        assert_eq!(
            g.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let b = &g[1];
        assert_eq!(b.releases, ["r2", "r1"]);
        let pages: Vec<_> = b.top_pages.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(pages, ["/p2", "/p3", "/p4", "/p1", "/p5"]);
        assert_eq!(
            (b.error_type.as_str(), b.message.as_str()),
            ("TypeError", "item <n> has no <str>")
        );
        assert_eq!(g[0].sample.stack, None);
        assert!(error_groups(vec![vec![Cell::Int(1)]], vec![], vec![]).is_err());
    }
}
