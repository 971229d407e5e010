//! Rollups: the stats API's numbers kept at write time, per site, kind, route (or endpoint, or error group)
//! and minute, so `pages`, `api`, `errors` (per route and per group) and `vitals` read a few rows per key
//! instead of every raw event of the window.
//!
//! # Rows
//! One table, `rollups`, on both backends. A row is (site, kind, key, name, level, bucket_ms) with counts,
//! two mergeable summaries (`sketch.rs`: a DDSketch of the values and a HyperLogLog of the sessions) and the
//! earliest and latest client time it counts (`first_ms`, `last_ms`: min and max merge, so exact at every
//! level; migration 12).
//! | kind            | key                     | name        | count                 | extra                     |
//! |-----------------|-------------------------|-------------|-----------------------|---------------------------|
//! | `page`          | route                   | ``          | page loads with value | sketch of load times      |
//! | `api`           | endpoint (or `unknown`) | ``          | calls                 | errors, sketch of durations |
//! | `vital`         | route                   | vital name  | samples               | good/ni/poor, sketch      |
//! | `error`         | route                   | ``          | errors                | sessions (distinct)       |
//! | `error_msg`     | route                   | message     | errors                |                           |
//! | `group`         | fingerprint             | ``          | errors of the group   | sessions, first/last seen |
//! | `group_page`    | fingerprint             | route       | errors                |                           |
//! | `group_browser` | fingerprint             | browser     | errors                |                           |
//! | `group_release` | fingerprint             | release     | errors (with release) |                           |
//!
//! The `group*` kinds count errors with a fingerprint only (the error groups of `error_groups.rs`).
//!
//! # Levels
//! The writer appends **partial** rows (level 0: one per key and client-time minute per write group), in the
//! same transaction as the events they count, and only for events newly stored (a retry adds nothing).
//! [`compact`](Self) folds partial rows, in one transaction that holds a lock, into one row per key at each
//! of three levels at once: the **minute** (1), the **hour** (2) and the **day** (3) holding it. At any
//! moment each stored event is counted once in level 0 ∪ level 1, once in level 0 ∪ level 2 and once in
//! level 0 ∪ level 3, so a window is read in one statement (one snapshot) as: partial rows of its
//! minutes, minute rows up to its first whole hour, hour rows up to its first whole day, day rows after
//! ([`window_sql`]). A 7-day window reads at most about 8 + 24 + 60 rows per key, whatever the traffic.
//!
//! # Backfills
//! Events stored before a kind existed are counted by a **backfill** (a `rollup_backfill` row, [`Backfill`]):
//! it walks the events received before its `until_ms` and counts its own kinds only; the writer counts each
//! kind for events received from its backfill's `until_ms` on ([`Cutoffs`]). Row 1 (migration 9) holds the
//! stats kinds, row 2 (migration 12) the error group kinds, so a store that had rollups before groups
//! existed walks its errors once more for the group kinds alone, and each event is counted once per kind.
//!
//! # What changes for the reader
//! - A window starts at the minute holding `since_ms` (up to 59.999 s earlier than asked).
//! - Percentiles are within 1 % of the exact nearest-rank ones, affected sessions (per route and per group)
//!   within a few percent above a few hundred (`sketch.rs`). Counts, facets and first/last seen are exact.
//! - Rollups count what was stored: a privacy delete of a session removes its events, not their share of
//!   the aggregates (which hold no session id: the HyperLogLog keeps only hash bits). Retention removes
//!   rollup rows whose bucket ended before the cutoff.

use std::collections::HashMap;

use super::error_groups::{ErrorGroup, Facet, MAX_GROUPS, TOP_FACETS, TOP_RELEASES};
use super::sketch::{Corrupt, Distinct, Sketch};
use super::stats::{
    share, ApiStats, Cell, ErrorStats, MessageCount, PageStats, VitalStats, TOP_MESSAGES,
};
use super::{EventRecord, StoreError, Text};

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// The merged levels and their bucket lengths.
const LEVELS: [(i64, i64); 3] = [(1, MINUTE_MS), (2, HOUR_MS), (3, DAY_MS)];
/// Partial rows folded (and events backfilled) per transaction on PostgreSQL, where it locks only the rows
/// it folds into: the writer goes on appending partial rows meanwhile.
pub(crate) const COMPACT_CHUNK: i64 = 20_000;
/// The same on SQLite, where the transaction holds the database's one write lock and the writer waits: a
/// chunk is at most three times as many upserts, a few milliseconds.
pub(crate) const SQLITE_COMPACT_CHUNK: i64 = 500;
/// Events rolled up per backfill transaction on SQLite (reading them is cheap; they make few rows).
pub(crate) const SQLITE_BACKFILL_CHUNK: i64 = 5_000;

/// Columns in bind order, both backends.
pub(crate) const COLUMNS: &str =
    "site, kind, key, name, level, bucket_ms, count, errors, good, ni, poor, sketch, sessions, first_ms, last_ms";
pub(crate) const COLUMN_COUNT: usize = 15;
/// What turns an insert of rollup rows into an upsert of merged rows, both backends: their unique key (the
/// partial index `rollups_merged`: level 0 rows repeat it), and the numbers it sets, merged in Rust by
/// [`Targets::merged_rows`].
pub(crate) const MERGED_UPSERT: &str = " ON CONFLICT (site, kind, level, bucket_ms, key, name) \
     WHERE level > 0 DO UPDATE SET count = excluded.count, errors = excluded.errors, \
     good = excluded.good, ni = excluded.ni, poor = excluded.poor, sketch = excluded.sketch, \
     sessions = excluded.sessions, first_ms = excluded.first_ms, last_ms = excluded.last_ms";

/// Where the backfills stand: (id, until_ms) per `rollup_backfill` row, for [`Cutoffs::from_rows`].
pub(crate) const CUTOFFS_SQL: &str = "SELECT id, until_ms FROM rollup_backfill";

/// Columns a window's rows are read as ([`window_sql`]).
pub(crate) const WINDOW_COLUMNS: usize = 11;

/// The rows a window reads: parameters site, kind, first minute, first whole hour, first whole day.
///
/// One `SELECT` per level, so that each reads its own range of the `rollups_window` index: written as one
/// `WHERE` with the levels `OR`ed, SQLite searched (site, kind) alone and stepped over every minute and hour
/// row the site ever kept, 1.4 million index entries for 13,000 rows at 10 million events.
macro_rules! window_rows {
    () => {
        concat!(
            "SELECT key, name, count, errors, good, ni, poor, sketch, sessions, first_ms, last_ms FROM rollups \
             WHERE site = ?1 AND kind = ?2 AND level = 0 AND bucket_ms >= ?3",
            " UNION ALL SELECT key, name, count, errors, good, ni, poor, sketch, sessions, first_ms, last_ms \
             FROM rollups WHERE site = ?1 AND kind = ?2 AND level = 1 AND bucket_ms >= ?3 AND bucket_ms < ?4",
            " UNION ALL SELECT key, name, count, errors, good, ni, poor, sketch, sessions, first_ms, last_ms \
             FROM rollups WHERE site = ?1 AND kind = ?2 AND level = 2 AND bucket_ms >= ?4 AND bucket_ms < ?5",
            " UNION ALL SELECT key, name, count, errors, good, ni, poor, sketch, sessions, first_ms, last_ms \
             FROM rollups WHERE site = ?1 AND kind = ?2 AND level = 3 AND bucket_ms >= ?5",
        )
    };
}
const WINDOW_SQL: &str = window_rows!();

/// The same for a kind that only counts ([`Kind::counts_only`]): summed per (key, name) by the database,
/// in the same columns. A week of error messages or group facets is tens of thousands of rows for a few
/// thousand keys, and each row read into the server costs more than the database's adding it.
const COUNTS_SQL: &str = concat!(
    "SELECT key, name, CAST(SUM(count) AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
     CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(NULL AS BYTEA), CAST(NULL AS BYTEA), \
     CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) FROM (",
    window_rows!(),
    ") AS w GROUP BY key, name"
);

/// The statement reading a window's rows of `kind` (parameters as [`window_bounds`] says, after site and
/// kind), one snapshot.
pub(crate) fn window_sql(kind: Kind) -> &'static str {
    if kind.counts_only() {
        COUNTS_SQL
    } else {
        WINDOW_SQL
    }
}

/// Rows whose bucket ended before the cutoff: parameters from [`retention_bounds`].
pub(crate) const RETENTION_SQL: &str = "DELETE FROM rollups WHERE \
     (level <= 1 AND bucket_ms < ?1) OR (level = 2 AND bucket_ms < ?2) OR (level = 3 AND bucket_ms < ?3)";

/// [`RETENTION_SQL`]'s parameters: the minute, hour and day buckets that ended before `cutoff_ms` start
/// before these.
pub(crate) fn retention_bounds(cutoff_ms: i64) -> [i64; 3] {
    [
        cutoff_ms.saturating_sub(MINUTE_MS),
        cutoff_ms.saturating_sub(HOUR_MS),
        cutoff_ms.saturating_sub(DAY_MS),
    ]
}

/// What a rollup row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Page,
    Api,
    Vital,
    Error,
    ErrorMessage,
    Group,
    GroupPage,
    GroupBrowser,
    GroupRelease,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Api => "api",
            Self::Vital => "vital",
            Self::Error => "error",
            Self::ErrorMessage => "error_msg",
            Self::Group => "group",
            Self::GroupPage => "group_page",
            Self::GroupBrowser => "group_browser",
            Self::GroupRelease => "group_release",
        }
    }

    /// Whether the kind's rows hold a count alone (no summaries, no first and last seen).
    pub(crate) fn counts_only(self) -> bool {
        matches!(
            self,
            Self::ErrorMessage | Self::GroupPage | Self::GroupBrowser | Self::GroupRelease
        )
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "page" => Self::Page,
            "api" => Self::Api,
            "vital" => Self::Vital,
            "error" => Self::Error,
            "error_msg" => Self::ErrorMessage,
            "group" => Self::Group,
            "group_page" => Self::GroupPage,
            "group_browser" => Self::GroupBrowser,
            "group_release" => Self::GroupRelease,
            _ => return None,
        })
    }
}

/// A backfill: the `rollup_backfill` row that counts some kinds for the events stored before the writer
/// counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backfill {
    /// `page`, `api`, `vital`, `error`, `error_msg` (migration 9).
    Stats,
    /// The `group*` kinds (migration 12).
    Groups,
}

impl Backfill {
    pub(crate) const ALL: [Backfill; 2] = [Backfill::Stats, Backfill::Groups];

    /// Its `rollup_backfill.id`.
    pub(crate) fn id(self) -> i64 {
        match self {
            Self::Stats => 1,
            Self::Groups => 2,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A condition on `events` (both dialects, after a `WHERE`) that keeps the events it can count: the
    /// group kinds' walk reads errors only.
    pub(crate) fn events_filter(self) -> &'static str {
        match self {
            Self::Stats => "",
            Self::Groups => " AND event_type = 'error' AND fingerprint IS NOT NULL",
        }
    }
}

/// Per backfill, the receive time from which the writer counts its kinds: events received before are the
/// backfill's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cutoffs([i64; 2]);

impl Cutoffs {
    /// Every kind of every event (tests; a store whose backfills had nothing to walk).
    pub(crate) const ALL: Cutoffs = Cutoffs([i64::MIN; 2]);

    /// A backfill's own: its kinds for every event it reads, no other kind.
    pub(crate) fn only(b: Backfill) -> Self {
        let mut c = [i64::MAX; 2];
        c[b.index()] = i64::MIN;
        Self(c)
    }

    /// From the rows of [`CUTOFFS_SQL`]; a backfill without a row has nothing to count.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut c = Self::ALL;
        for (id, until_ms) in rows {
            if let Some(b) = Backfill::ALL.into_iter().find(|b| b.id() == id) {
                c.0[b.index()] = until_ms;
            }
        }
        c
    }

    fn counts(&self, b: Backfill, received_ms: i64) -> bool {
        received_ms >= self.0[b.index()]
    }
}

/// Which row: everything but the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub site: Text,
    pub kind: Kind,
    pub key: Text,
    pub name: Text,
    pub level: i64,
    pub bucket_ms: i64,
}

impl Key {
    /// The order of the merged rows' index (`rollups_merged`, [`MERGED_UPSERT`]'s key): lookups and upserts
    /// made in it touch the index's pages one after another instead of at random.
    pub(crate) fn index_order(&self) -> (&str, &'static str, i64, i64, &str, &str) {
        (
            &self.site,
            self.kind.as_str(),
            self.level,
            self.bucket_ms,
            &self.key,
            &self.name,
        )
    }
}

/// The numbers of a row (or of several merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Agg {
    pub count: u64,
    pub errors: u64,
    pub good: u64,
    pub ni: u64,
    pub poor: u64,
    pub sketch: Sketch,
    pub sessions: Distinct,
    /// The earliest and latest client time counted (`group` rows; `None` in the others).
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

impl Agg {
    pub fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.errors += o.errors;
        self.good += o.good;
        self.ni += o.ni;
        self.poor += o.poor;
        self.sketch.merge(&o.sketch);
        self.sessions.merge(&o.sessions);
        self.seen(o.first_ms);
        self.seen(o.last_ms);
    }

    /// Widens first/last seen to include `ms`.
    fn seen(&mut self, ms: Option<i64>) {
        let Some(ms) = ms else { return };
        self.first_ms = Some(self.first_ms.map_or(ms, |f| f.min(ms)));
        self.last_ms = Some(self.last_ms.map_or(ms, |l| l.max(ms)));
    }
}

/// A row as stored: the numbers as integers, the summaries encoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub site: String,
    pub kind: &'static str,
    pub key: String,
    pub name: String,
    pub level: i64,
    pub bucket_ms: i64,
    pub count: i64,
    pub errors: i64,
    pub good: i64,
    pub ni: i64,
    pub poor: i64,
    pub sketch: Vec<u8>,
    pub sessions: Vec<u8>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

impl Row {
    fn new(k: &Key, a: &Agg) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            site: k.site.to_string(),
            kind: k.kind.as_str(),
            key: k.key.to_string(),
            name: k.name.to_string(),
            level: k.level,
            bucket_ms: k.bucket_ms,
            count: n(a.count),
            errors: n(a.errors),
            good: n(a.good),
            ni: n(a.ni),
            poor: n(a.poor),
            sketch: a.sketch.encode(),
            sessions: a.sessions.encode(),
            first_ms: a.first_ms,
            last_ms: a.last_ms,
        }
    }

    /// Splits a stored row back into key and numbers.
    pub fn into_parts(self) -> Result<(Key, Agg), StoreError> {
        let kind = Kind::parse(self.kind).ok_or_else(|| corrupt(Corrupt("kind")))?;
        let c = |v: i64| u64::try_from(v).map_err(|_| corrupt(Corrupt("count")));
        Ok((
            Key {
                site: self.site.into(),
                kind,
                key: self.key.into(),
                name: self.name.into(),
                level: self.level,
                bucket_ms: self.bucket_ms,
            },
            Agg {
                count: c(self.count)?,
                errors: c(self.errors)?,
                good: c(self.good)?,
                ni: c(self.ni)?,
                poor: c(self.poor)?,
                sketch: Sketch::decode(&self.sketch).map_err(corrupt)?,
                sessions: Distinct::decode(&self.sessions).map_err(corrupt)?,
                first_ms: self.first_ms,
                last_ms: self.last_ms,
            },
        ))
    }
}

/// Maps a stored kind back to its static text (rows read back from the database).
pub(crate) fn kind_str(s: &str) -> Result<&'static str, StoreError> {
    Kind::parse(s)
        .map(Kind::as_str)
        .ok_or_else(|| corrupt(Corrupt("kind")))
}

fn corrupt(c: Corrupt) -> StoreError {
    StoreError::Database(c.to_string())
}

/// A write group's partial rows, built from the events it newly stored.
pub(crate) struct Partials {
    rows: HashMap<Key, Agg>,
    /// Which kinds of which events to count (the rest are a backfill's, or another backfill's).
    cutoffs: Cutoffs,
}

impl Default for Partials {
    /// Counts every kind of every event.
    fn default() -> Self {
        Self::received_since(Cutoffs::ALL)
    }
}

/// The fields of an event that rollups count.
pub(crate) struct Counted<'a> {
    pub site: &'a Text,
    pub session_id: &'a str,
    pub event_type: &'a str,
    pub client_ts_ms: i64,
    pub received_ms: i64,
    pub route: &'a Text,
    pub browser: &'a str,
    pub release: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
    pub value: Option<f64>,
    pub name: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub status: Option<i32>,
    pub rating: Option<&'a str>,
}

/// `""`, shared by every row without a name.
fn empty() -> Text {
    static EMPTY: std::sync::OnceLock<Text> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Text::from("")).clone()
}

impl Partials {
    /// A writer's partial rows (`cutoffs` from `rollup_backfill`: the kinds of events received before are
    /// left to their backfill), or a backfill's ([`Cutoffs::only`]).
    pub fn received_since(cutoffs: Cutoffs) -> Self {
        Self {
            rows: HashMap::new(),
            cutoffs,
        }
    }

    /// Counts one newly stored event (events of other types, and kinds left to a backfill, are not rolled
    /// up).
    pub fn add(&mut self, e: &EventRecord) {
        self.add_fields(Counted {
            site: &e.site,
            session_id: &e.session_id,
            event_type: &e.event_type,
            client_ts_ms: e.client_ts_ms,
            received_ms: e.received_ms,
            route: &e.route,
            browser: &e.browser,
            release: e.release.as_deref(),
            fingerprint: e.fingerprint.as_deref(),
            value: e.value,
            name: e.name.as_deref(),
            endpoint: e.endpoint.as_deref(),
            status: e.status,
            rating: e.rating.as_deref(),
        });
    }

    /// Counts one event given by its fields (the backfill reads them from stored rows).
    pub fn add_fields(&mut self, e: Counted<'_>) {
        if self.cutoffs.counts(Backfill::Groups, e.received_ms) {
            self.add_group(&e);
        }
        if !self.cutoffs.counts(Backfill::Stats, e.received_ms) {
            return;
        }
        let bucket_ms = e.client_ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let key = |kind, key: Text, name: Text| Key {
            site: e.site.clone(),
            kind,
            key,
            name,
            level: 0,
            bucket_ms,
        };
        match e.event_type {
            "page_load" => {
                if let Some(v) = e.value {
                    let a = self.entry(key(Kind::Page, e.route.clone(), empty()));
                    a.count += 1;
                    a.sketch.add(v);
                }
            }
            "api_call" => {
                let endpoint = e.endpoint.unwrap_or("unknown");
                let a = self.entry(key(Kind::Api, endpoint.into(), empty()));
                a.count += 1;
                if e.status.is_some_and(|s| s >= 400 || s == 0) {
                    a.errors += 1;
                }
                if let Some(v) = e.value {
                    a.sketch.add(v);
                }
            }
            "web_vital" => {
                if let (Some(v), Some(name)) = (e.value, e.name) {
                    let a = self.entry(key(Kind::Vital, e.route.clone(), name.into()));
                    a.count += 1;
                    a.sketch.add(v);
                    match e.rating {
                        Some("good") => a.good += 1,
                        Some("needs-improvement") => a.ni += 1,
                        Some("poor") => a.poor += 1,
                        _ => {}
                    }
                }
            }
            "error" => {
                let a = self.entry(key(Kind::Error, e.route.clone(), empty()));
                a.count += 1;
                a.sessions.add(e.session_id);
                let message = e.name.unwrap_or("");
                self.entry(key(Kind::ErrorMessage, e.route.clone(), message.into()))
                    .count += 1;
            }
            _ => {}
        }
    }

    /// An error with a fingerprint: its group's totals and facets.
    fn add_group(&mut self, e: &Counted<'_>) {
        let (Some(fp), "error") = (e.fingerprint, e.event_type) else {
            return;
        };
        let bucket_ms = e.client_ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let fp: Text = fp.into();
        let key = |kind, name: Text| Key {
            site: e.site.clone(),
            kind,
            key: fp.clone(),
            name,
            level: 0,
            bucket_ms,
        };
        let a = self.entry(key(Kind::Group, empty()));
        a.count += 1;
        a.sessions.add(e.session_id);
        a.seen(Some(e.client_ts_ms));
        self.entry(key(Kind::GroupPage, e.route.clone())).count += 1;
        self.entry(key(Kind::GroupBrowser, e.browser.into())).count += 1;
        if let Some(release) = e.release {
            self.entry(key(Kind::GroupRelease, release.into())).count += 1;
        }
    }

    fn entry(&mut self, k: Key) -> &mut Agg {
        self.rows.entry(k).or_default()
    }

    /// The merged rows these partial rows add to (what [`fold`] makes of [`Self::rows`], without encoding
    /// and decoding the summaries): a backfill writes these directly instead of partial rows, so each
    /// event it walks is counted in one pass, not appended, read back and folded.
    pub fn folded(&self) -> HashMap<Key, Agg> {
        let mut out = HashMap::new();
        for (k, a) in &self.rows {
            fold_one(&mut out, k, a);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The level-0 rows to append, in key order (so concurrent writers take index locks in one order).
    pub fn rows(&self) -> Vec<Row> {
        let mut keys: Vec<&Key> = self.rows.keys().collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|k| Row::new(k, &self.rows[k]))
            .collect()
    }
}

/// Folds partial rows into the merged rows they add to: per key, its minute, hour and day.
pub(crate) fn fold(partials: Vec<Row>) -> Result<HashMap<Key, Agg>, StoreError> {
    let mut out: HashMap<Key, Agg> = HashMap::new();
    for r in partials {
        let (k, a) = r.into_parts()?;
        fold_one(&mut out, &k, &a);
    }
    Ok(out)
}

/// Adds one partial row's numbers to its minute, hour and day.
fn fold_one(out: &mut HashMap<Key, Agg>, k: &Key, a: &Agg) {
    for (level, span) in LEVELS {
        let target = Key {
            level,
            bucket_ms: k.bucket_ms.div_euclid(span) * span,
            ..k.clone()
        };
        out.entry(target).or_default().merge(a);
    }
}

/// The merged rows a fold or backfill chunk adds to, sorted once into the merged index's order
/// ([`Key::index_order`]): their stored rows are looked up, and the upserts made, in that order, so that
/// consecutive lookups share index pages and concurrent writers take row locks in one order.
pub(crate) struct Targets(Vec<(Key, Agg)>);

impl Targets {
    pub(crate) fn new(targets: HashMap<Key, Agg>) -> Self {
        let mut sorted: Vec<(Key, Agg)> = targets.into_iter().collect();
        sorted.sort_unstable_by(|(a, _), (b, _)| a.index_order().cmp(&b.index_order()));
        Self(sorted)
    }

    pub(crate) fn keys(&self) -> impl ExactSizeIterator<Item = &Key> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The rows to write: each target's new numbers plus what its stored row already held (`existing`, the
    /// stored rows of some of the targets, in any order), in index order.
    pub(crate) fn merged_rows(mut self, existing: Vec<Row>) -> Result<Vec<Row>, StoreError> {
        for r in existing {
            let (k, a) = r.into_parts()?;
            let at = self
                .0
                .binary_search_by(|(t, _)| t.index_order().cmp(&k.index_order()));
            if let Ok(i) = at {
                self.0[i].1.merge(&a);
            }
        }
        Ok(self.0.iter().map(|(k, a)| Row::new(k, a)).collect())
    }
}

/// The parameters of [`window_sql`] after site and kind: the window's first minute, first whole hour and
/// first whole day (UTC).
pub(crate) fn window_bounds(since_ms: i64) -> [i64; 3] {
    let minute = since_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
    let ceil =
        |span: i64| minute.div_euclid(span) * span + if minute % span == 0 { 0 } else { span };
    [minute, ceil(HOUR_MS), ceil(DAY_MS)]
}

/// An integer cell that may be NULL.
fn opt_int(r: &[Cell], i: usize) -> Result<Option<i64>, StoreError> {
    match r.get(i) {
        Some(Cell::Int(v)) => Ok(Some(*v)),
        Some(Cell::Null) => Ok(None),
        _ => Err(super::stats::bad_row("rollup")),
    }
}

/// A window's rows per (key, name), merged. The stored summaries are added to each key's straight from
/// their bytes: a 7-day window of a busy site is tens of thousands of rows.
fn by_key(rows: Vec<Vec<Cell>>) -> Result<Vec<(String, String, Agg)>, StoreError> {
    let what = "rollup";
    let mut out: HashMap<(String, String), Agg> = HashMap::new();
    for mut r in rows {
        let int = |r: &[Cell], i| super::stats::count(r, i, what);
        let name = super::stats::text(&mut r, 1, what)?;
        let key = super::stats::text(&mut r, 0, what)?;
        let a = out.entry((key, name)).or_default();
        a.count += int(&r, 2)?;
        a.errors += int(&r, 3)?;
        a.good += int(&r, 4)?;
        a.ni += int(&r, 5)?;
        a.poor += int(&r, 6)?;
        match r.get(7) {
            Some(Cell::Blob(b)) => a.sketch.merge_encoded(b).map_err(corrupt)?,
            Some(Cell::Null) => {}
            _ => return Err(super::stats::bad_row(what)),
        }
        match r.get(8) {
            Some(Cell::Blob(b)) => a.sessions.merge_encoded(b).map_err(corrupt)?,
            Some(Cell::Null) => {}
            _ => return Err(super::stats::bad_row(what)),
        }
        a.seen(opt_int(&r, 9)?);
        a.seen(opt_int(&r, 10)?);
    }
    Ok(out.into_iter().map(|((k, n), a)| (k, n, a)).collect())
}

pub(crate) fn page_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<PageStats>, StoreError> {
    let mut out: Vec<PageStats> = by_key(rows)?
        .into_iter()
        .filter(|(_, _, a)| a.count > 0)
        .map(|(route, _, a)| PageStats {
            route,
            samples: a.count,
            p50_ms: a.sketch.percentile(50).unwrap_or(0.0),
            p75_ms: a.sketch.percentile(75).unwrap_or(0.0),
            p95_ms: a.sketch.percentile(95).unwrap_or(0.0),
        })
        .collect();
    out.sort_by(|a, b| a.route.cmp(&b.route));
    Ok(out)
}

pub(crate) fn api_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<ApiStats>, StoreError> {
    let mut out: Vec<ApiStats> = by_key(rows)?
        .into_iter()
        .filter(|(_, _, a)| a.count > 0)
        .map(|(endpoint, _, a)| ApiStats {
            endpoint,
            calls: a.count,
            errors: a.errors,
            error_share: share(a.errors, a.count),
            p50_ms: a.sketch.percentile(50),
            p95_ms: a.sketch.percentile(95),
        })
        .collect();
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

pub(crate) fn vital_stats(rows: Vec<Vec<Cell>>) -> Result<Vec<VitalStats>, StoreError> {
    let mut out: Vec<VitalStats> = by_key(rows)?
        .into_iter()
        .filter(|(_, _, a)| a.count > 0)
        .map(|(route, name, a)| VitalStats {
            route,
            name,
            samples: a.count,
            p75: a.sketch.percentile(75).unwrap_or(0.0),
            good_share: share(a.good, a.count),
            needs_improvement_share: share(a.ni, a.count),
            poor_share: share(a.poor, a.count),
        })
        .collect();
    out.sort_by(|a, b| a.route.cmp(&b.route).then(a.name.cmp(&b.name)));
    Ok(out)
}

pub(crate) fn error_stats(
    totals: Vec<Vec<Cell>>,
    messages: Vec<Vec<Cell>>,
) -> Result<Vec<ErrorStats>, StoreError> {
    let mut by_route: HashMap<String, ErrorStats> = by_key(totals)?
        .into_iter()
        .filter(|(_, _, a)| a.count > 0)
        .map(|(route, _, a)| {
            let s = ErrorStats {
                route: route.clone(),
                errors: a.count,
                // An estimate: never more than the errors themselves.
                affected_sessions: a.sessions.estimate().clamp(1, a.count),
                top_messages: Vec::new(),
            };
            (route, s)
        })
        .collect();
    for (route, message, a) in by_key(messages)? {
        if let Some(s) = by_route.get_mut(&route) {
            s.top_messages.push(MessageCount {
                message,
                count: a.count,
            });
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

/// The error groups of a window from its `group`, `group_page`, `group_browser` and `group_release` rows:
/// most frequent first (ties by id), at most [`MAX_GROUPS`], each with its top facets. Type, message and
/// sample are the latest occurrence's, which the caller reads from the events ([`ErrorGroup::set_sample`]).
pub(crate) fn error_groups(
    totals: Vec<Vec<Cell>>,
    pages: Vec<Vec<Cell>>,
    browsers: Vec<Vec<Cell>>,
    releases: Vec<Vec<Cell>>,
) -> Result<Vec<ErrorGroup>, StoreError> {
    let mut groups: Vec<ErrorGroup> = by_key(totals)?
        .into_iter()
        .filter(|(_, _, a)| a.count > 0)
        .map(|(id, _, a)| {
            ErrorGroup::new(
                id,
                a.count,
                // An estimate: never more than the errors themselves.
                a.sessions.estimate().clamp(1, a.count),
                (a.first_ms.unwrap_or(0), a.last_ms.unwrap_or(0)),
            )
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
    groups.truncate(MAX_GROUPS);
    let facets = |rows, top: usize| -> Result<HashMap<String, Vec<Facet>>, StoreError> {
        let mut out: HashMap<String, Vec<Facet>> = HashMap::new();
        for (id, value, a) in by_key(rows)? {
            if a.count > 0 {
                out.entry(id).or_default().push(Facet {
                    value,
                    count: a.count,
                });
            }
        }
        for f in out.values_mut() {
            f.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            f.truncate(top);
        }
        Ok(out)
    };
    let (mut pages, mut browsers, mut releases) = (
        facets(pages, TOP_FACETS)?,
        facets(browsers, TOP_FACETS)?,
        facets(releases, TOP_RELEASES)?,
    );
    for g in &mut groups {
        g.top_pages = pages.remove(&g.id).unwrap_or_default();
        g.top_browsers = browsers.remove(&g.id).unwrap_or_default();
        g.releases = releases
            .remove(&g.id)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.value)
            .collect();
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_align_to_minute_hour_and_day() {
        let day = 20_000 * DAY_MS;
        assert_eq!(window_bounds(day), [day, day, day]);
        let t = day + 5 * HOUR_MS + 7 * MINUTE_MS + 1_234;
        assert_eq!(
            window_bounds(t),
            [
                day + 5 * HOUR_MS + 7 * MINUTE_MS,
                day + 6 * HOUR_MS,
                day + DAY_MS
            ]
        );
        let on_hour = day + 5 * HOUR_MS;
        assert_eq!(window_bounds(on_hour), [on_hour, on_hour, day + DAY_MS]);
    }

    #[test]
    fn cutoffs_leave_each_kind_to_its_backfill() {
        let (site, route): (Text, Text) = ("s".into(), "/".into());
        let kinds = |cutoffs, received_ms| {
            let mut p = Partials::received_since(cutoffs);
            p.add_fields(Counted {
                site: &site,
                session_id: "s1",
                event_type: "error",
                client_ts_ms: 0,
                received_ms,
                route: &route,
                browser: "Chrome",
                release: None,
                fingerprint: Some("f"),
                value: None,
                name: Some("boom"),
                endpoint: None,
                status: None,
                rating: None,
            });
            let mut k: Vec<&str> = p.rows().iter().map(|r| r.kind).collect();
            k.dedup();
            k
        };
        let all = ["error", "error_msg", "group", "group_page", "group_browser"];
        assert_eq!(kinds(Cutoffs::ALL, 5), all);
        // Stats kinds counted from 10 on, group kinds from 20 on (rows of `CUTOFFS_SQL`).
        let writer = Cutoffs::from_rows([(1, 10), (2, 20)]);
        assert_eq!(kinds(writer, 9), Vec::<&str>::new());
        assert_eq!(kinds(writer, 15), ["error", "error_msg"]);
        assert_eq!(kinds(writer, 20), all);
        assert_eq!(
            kinds(Cutoffs::only(Backfill::Groups), 5),
            ["group", "group_page", "group_browser"]
        );
        assert_eq!(
            kinds(Cutoffs::only(Backfill::Stats), 5),
            ["error", "error_msg"]
        );
    }

    #[test]
    fn groups_merge_first_last_and_rank_facets() {
        let text = |s: &str| Cell::Text(s.into());
        // (key, name, count, first, last, sessions)
        let row =
            |key: &str, name: &str, count: i64, seen: Option<(i64, i64)>, sessions: &[&str]| {
                let mut d = Distinct::default();
                sessions.iter().for_each(|s| d.add(s));
                let ms = |v: Option<i64>| v.map_or(Cell::Null, Cell::Int);
                vec![
                    text(key),
                    text(name),
                    Cell::Int(count),
                    Cell::Int(0),
                    Cell::Int(0),
                    Cell::Int(0),
                    Cell::Int(0),
                    Cell::Blob(Sketch::default().encode()),
                    Cell::Blob(d.encode()),
                    ms(seen.map(|s| s.0)),
                    ms(seen.map(|s| s.1)),
                ]
            };
        // Group b over an hour row and a partial row; a with one row; c with a count of 0 is left out.
        let totals = vec![
            row("b", "", 2, Some((50, 90)), &["s1", "s2"]),
            row("b", "", 1, Some((10, 20)), &["s2"]),
            row("a", "", 3, Some((5, 6)), &["s1"]),
            row("c", "", 0, None, &[]),
        ];
        let mut pages = Vec::new();
        for (i, c) in [(1, 1), (2, 5), (3, 2), (4, 2), (5, 1), (6, 1)] {
            pages.push(row("b", &format!("/p{i}"), c, None, &[]));
        }
        pages.push(row("b", "/p1", 1, None, &[]));
        let releases = vec![row("b", "r1", 1, None, &[]), row("b", "r2", 2, None, &[])];
        let g = error_groups(totals, pages, vec![], releases).unwrap();
        let ids: Vec<&str> = g.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "ties by id");
        let b = &g[1];
        assert_eq!(
            (b.count, b.sessions, b.first_seen_ms, b.last_seen_ms),
            (3, 2, 10, 90)
        );
        assert_eq!(g[0].sessions, 1);
        assert_eq!(b.releases, ["r2", "r1"]);
        let pages: Vec<(&str, u64)> = b
            .top_pages
            .iter()
            .map(|f| (f.value.as_str(), f.count))
            .collect();
        assert_eq!(
            pages,
            [("/p2", 5), ("/p1", 2), ("/p3", 2), ("/p4", 2), ("/p5", 1)]
        );
        assert!(b.top_browsers.is_empty());
        assert!(error_groups(vec![vec![Cell::Int(1)]], vec![], vec![], vec![]).is_err());
    }

    #[test]
    fn fold_adds_each_partial_to_its_minute_hour_and_day() {
        let site: Text = "s".into();
        let row = |bucket_ms, count| {
            Row::new(
                &Key {
                    site: site.clone(),
                    kind: Kind::Error,
                    key: "/".into(),
                    name: empty(),
                    level: 0,
                    bucket_ms,
                },
                &Agg {
                    count,
                    ..Agg::default()
                },
            )
        };
        let t = 20_000 * DAY_MS + HOUR_MS + 2 * MINUTE_MS;
        let folded = fold(vec![row(t, 2), row(t, 3), row(t + MINUTE_MS, 4)]).unwrap();
        let get = |level, bucket_ms| {
            folded
                .iter()
                .find(|(k, _)| k.level == level && k.bucket_ms == bucket_ms)
                .map(|(_, a)| a.count)
        };
        assert_eq!(get(1, t), Some(5));
        assert_eq!(get(1, t + MINUTE_MS), Some(4));
        assert_eq!(get(2, 20_000 * DAY_MS + HOUR_MS), Some(9));
        assert_eq!(get(3, 20_000 * DAY_MS), Some(9));
        assert_eq!(folded.len(), 4);
    }
}
