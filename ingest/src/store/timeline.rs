//! Page loads and errors over time: counts per time bucket of a window, for the explorer's chart. One SQL text
//! run unchanged on both engines (the parameters and scan bounds of [`super::stats`]), zero-filled in Rust.
//!
//! Buckets are aligned to the Unix epoch (a 1-day bucket starts at 00:00 UTC) on the events' client time; the
//! size comes from the window ([`bucket_for`]), so that a window has at most [`MAX_BUCKETS`] of them.

use super::stats::{count, Cell};
use super::StoreError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most buckets one answer holds (the smallest size of [`BUCKET_SIZES`] that keeps a window under it).
pub const MAX_BUCKETS: u64 = 300;

/// The bucket sizes a window may get, smallest first.
const BUCKET_SIZES: [Duration; 12] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(86_400),
    Duration::from_secs(2 * 86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(30 * 86_400),
];

/// The bucket size for a window: the smallest of 1m, 5m, 15m, 30m, 1h, 3h, 6h, 12h, 1d, 2d, 7d, 30d that cuts
/// it into at most [`MAX_BUCKETS`] buckets (1h: 1m, 24h: 5m, 7d: 1h, 30d: 3h, 400d: 2d).
pub fn bucket_for(window: Duration) -> Duration {
    BUCKET_SIZES
        .into_iter()
        .find(|b| window.as_millis().div_ceil(b.as_millis()) <= u128::from(MAX_BUCKETS))
        .unwrap_or(BUCKET_SIZES[BUCKET_SIZES.len() - 1])
}

/// One bucket's counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bucket {
    /// The bucket's start (ms since the epoch, client time).
    pub start_ms: i64,
    pub page_loads: u64,
    pub errors: u64,
}

// ?4 the bucket size in ms. Client timestamps are positive, so integer division is the floor on both engines.
pub(crate) const TIMELINE_SQL: &str = "
SELECT client_ts_ms / ?4 AS b,
       SUM(CASE WHEN event_type = 'page_load' THEN 1 ELSE 0 END),
       SUM(CASE WHEN event_type = 'error' THEN 1 ELSE 0 END)
FROM events
WHERE site = ?1 AND event_type IN ('page_load', 'error') AND received_ms >= ?3 AND client_ts_ms >= ?2
GROUP BY b";

/// Every bucket from the one holding `since_ms` to the one holding `until_ms` (or the last with events, if
/// later: clients may be a few minutes ahead), in time order, empty ones with zeros.
pub(crate) fn timeline(
    rows: Vec<Vec<Cell>>,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>, StoreError> {
    const W: &str = "timeline";
    let mut found = BTreeMap::new();
    for r in rows {
        let b = match r.first() {
            Some(Cell::Int(b)) => *b,
            _ => return Err(super::stats::bad_row(W)),
        };
        found.insert(b, (count(&r, 1, W)?, count(&r, 2, W)?));
    }
    let first = since_ms.div_euclid(bucket_ms);
    let last = until_ms
        .div_euclid(bucket_ms)
        .max(found.keys().next_back().copied().unwrap_or(first));
    Ok((first..=last)
        .map(|b| {
            let (page_loads, errors) = found.get(&b).copied().unwrap_or((0, 0));
            Bucket {
                start_ms: b * bucket_ms,
                page_loads,
                errors,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sizes_keep_windows_under_the_bound() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(
            bucket_for(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(bucket_for(h(1)), Duration::from_secs(60));
        assert_eq!(bucket_for(h(5)), Duration::from_secs(60));
        assert_eq!(bucket_for(h(6)), Duration::from_secs(5 * 60));
        assert_eq!(bucket_for(h(24)), Duration::from_secs(5 * 60));
        assert_eq!(bucket_for(h(7 * 24)), h(1));
        assert_eq!(bucket_for(h(30 * 24)), h(3));
        assert_eq!(bucket_for(h(400 * 24)), h(48));
        for hours in 1..=9_600 {
            let w = h(hours);
            assert!(w.as_millis().div_ceil(bucket_for(w).as_millis()) <= MAX_BUCKETS as u128);
        }
    }

    #[test]
    fn zero_filled_in_order_and_bad_rows_are_errors() {
        let rows = vec![
            vec![Cell::Int(12), Cell::Int(3), Cell::Int(0)],
            vec![Cell::Int(10), Cell::Int(1), Cell::Int(2)],
        ];
        let t = timeline(rows, 1_005, 1_150, 100).unwrap();
        let got: Vec<_> = t
            .iter()
            .map(|b| (b.start_ms, b.page_loads, b.errors))
            .collect();
        assert_eq!(got, [(1_000, 1, 2), (1_100, 0, 0), (1_200, 3, 0)]);
        assert!(timeline(vec![vec![Cell::Text("x".into())]], 0, 0, 1).is_err());
    }
}
