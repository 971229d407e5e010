//! The local spool of a PostgreSQL store: while PostgreSQL cannot take writes, a group of events is
//! acknowledged once it is durable in a SQLite file on the node (WAL, `synchronous=FULL`: the commit is
//! fsync'd before the submitters are answered, the same "202 means stored" promise), and `drain.rs` moves it
//! into PostgreSQL, oldest first, once PostgreSQL is back.
//!
//! Spooled events are never dropped: when the spool holds `max_bytes`, or its oldest event is older than
//! `max_age`, or its own disk fails, new events are refused (503 with Retry-After) and the spooled ones wait
//! for the drain. Events keep their ids, and the drain inserts with the same `ON CONFLICT DO NOTHING` as the
//! writer, so an event spooled twice (a retried request) or drained twice (a crash between PostgreSQL's
//! commit and the spool's delete) is stored once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use rusqlite::Connection;
use serde::Deserialize;

use super::schema::INSERT_COLUMNS;
use super::sqlite::{self, insert_row};
use super::{EventRecord, RawJson, StoreError, Text};

/// `storage.spool` in the ingest config (PostgreSQL stores only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// The spool's SQLite file, on a disk local to this node (parent directories are created). One file per
    /// ingest process: never share it between nodes.
    pub path: PathBuf,
    /// Most bytes of event data the spool holds (the events' text and numbers as stored; the file takes
    /// somewhat more). Beyond it, new events get 503 with Retry-After. Default 536870912 (512 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Once the oldest spooled event is this old, new events get 503 with Retry-After instead (PostgreSQL
    /// has been away too long for this node to keep taking data alone). Spooled events are kept until
    /// drained whatever their age. Default 24h.
    #[serde(default = "default_max_age", with = "vantage_common::serde_duration")]
    pub max_age: Duration,
    /// Most events per second moved into PostgreSQL once it is back, leaving room for live traffic; the
    /// drain also waits at least as long as each chunk took, so it never takes more than half of one
    /// connection. Default 5000.
    #[serde(default = "default_drain_rate")]
    pub drain_events_per_second: u32,
}

fn default_max_bytes() -> u64 {
    512 << 20
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_drain_rate() -> u32 {
    5_000
}

impl SpoolConfig {
    /// This path with the documented defaults.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            drain_events_per_second: default_drain_rate(),
        }
    }
}

/// The spool's table: a sequence number (drain order), the event's size as counted against `max_bytes`,
/// then the columns of [`INSERT_COLUMNS`] in that order, typed as in the SQLite events table.
const SPOOL_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spool (
    seq          INTEGER PRIMARY KEY,
    bytes        INTEGER NOT NULL,
    event_id     BLOB NOT NULL,
    site         TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    client_ts_ms INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    route        TEXT NOT NULL,
    url          TEXT NOT NULL,
    browser      TEXT NOT NULL,
    os           TEXT NOT NULL,
    device       TEXT NOT NULL,
    value        REAL,
    name         TEXT,
    endpoint     TEXT,
    status       INTEGER,
    rating       TEXT,
    raw          TEXT NOT NULL,
    release      TEXT,
    fingerprint  TEXT,
    stack        TEXT
);
CREATE TABLE IF NOT EXISTS spool_probe (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);
";

/// Why the spool did not take a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("spool is full ({bytes} of {max_bytes} bytes)")]
    Full { bytes: u64, max_bytes: u64 },
    #[error("spool's oldest event is {age_secs}s old (max_age {max_age_secs}s)")]
    TooOld { age_secs: u64, max_age_secs: u64 },
    #[error("spool write failed: {0}")]
    Write(String),
}

/// Why the spool refuses, for the log line when that starts and the readiness answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    TooOld,
    Write,
}

impl SpoolError {
    fn refusal(&self) -> Refusal {
        match self {
            Self::Full { .. } => Refusal::Full,
            Self::TooOld { .. } => Refusal::TooOld,
            Self::Write(_) => Refusal::Write,
        }
    }
}

/// What the spool holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Level {
    pub events: u64,
    pub bytes: u64,
    /// Receive time of the first event in drain order (events are appended in receive order).
    pub oldest_received_ms: Option<i64>,
}

impl Level {
    fn age_ms(&self, now_ms: i64) -> i64 {
        self.oldest_received_ms
            .map_or(0, |t| now_ms.saturating_sub(t).max(0))
    }
}

/// The spool file and what it holds. Its methods block (SQLite): call them from blocking threads.
pub(crate) struct Spool {
    conn: Mutex<Connection>,
    cfg: SpoolConfig,
    level: Arc<Mutex<Level>>,
    refusing: Mutex<Option<Refusal>>,
    /// Woken after each append, so an idle drain notices new work.
    pub appended: tokio::sync::Notify,
    metrics: SpoolMetrics,
}

impl Spool {
    /// Opens (creating) the spool file and counts what an earlier run left in it.
    pub fn open(cfg: &SpoolConfig) -> Result<Self, StoreError> {
        if cfg.max_bytes == 0 || cfg.drain_events_per_second == 0 {
            return Err(StoreError::Config(
                "spool max_bytes and drain_events_per_second must be at least 1".into(),
            ));
        }
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create spool directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = sqlite::connect(&cfg.path, Duration::from_secs(5))?;
        conn.execute_batch(SPOOL_SCHEMA)
            .and_then(|()| add_missing_columns(&conn))
            .map_err(|e| StoreError::Database(format!("spool {}: {e}", cfg.path.display())))?;
        // The file's directory entry must survive a crash too (SQLite syncs the file, not its directory).
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let (events, bytes): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM spool",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| StoreError::Database(format!("spool: {e}")))?;
        let level = Level {
            events: events as u64,
            bytes: bytes as u64,
            oldest_received_ms: oldest_received(&conn)
                .map_err(|e| StoreError::Database(format!("spool: {e}")))?,
        };
        let spool = Self {
            conn: Mutex::new(conn),
            cfg: cfg.clone(),
            level: Arc::new(Mutex::new(level)),
            refusing: Mutex::new(None),
            appended: tokio::sync::Notify::new(),
            metrics: SpoolMetrics::default(),
        };
        spool.metrics.show(&level);
        if level.events > 0 {
            tracing::info!(
                events = level.events,
                bytes = level.bytes,
                path = %cfg.path.display(),
                "spool holds events from an earlier run; they are drained into postgres once it takes writes"
            );
        }
        Ok(spool)
    }

    pub fn config(&self) -> &SpoolConfig {
        &self.cfg
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn level(&self) -> Level {
        *self.level.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.level().events == 0
    }

    /// Whether a group would be taken now (readiness): it took the last one (a spool that refused a group
    /// as too large counts as full until the drain makes room), has room and is not too old.
    pub fn accepting(&self) -> bool {
        // Room for one more byte: at `max_bytes` exactly, no event fits.
        self.refusal().is_none() && self.check(&self.level(), 1).is_ok()
    }

    fn check(&self, level: &Level, adding: u64) -> Result<(), SpoolError> {
        let age_ms = level.age_ms(crate::clock::now_ms());
        if age_ms > self.cfg.max_age.as_millis() as i64 {
            return Err(SpoolError::TooOld {
                age_secs: (age_ms / 1000) as u64,
                max_age_secs: self.cfg.max_age.as_secs(),
            });
        }
        if level.bytes.saturating_add(adding) > self.cfg.max_bytes {
            return Err(SpoolError::Full {
                bytes: level.bytes,
                max_bytes: self.cfg.max_bytes,
            });
        }
        Ok(())
    }

    /// Makes `events` durable in the spool (one transaction, fsync'd at commit), or refuses them whole.
    pub fn append<'a>(
        &self,
        events: impl Iterator<Item = &'a EventRecord> + Clone,
    ) -> Result<(), SpoolError> {
        let result = self.append_inner(events);
        self.note(&result);
        result
    }

    fn append_inner<'a>(
        &self,
        events: impl Iterator<Item = &'a EventRecord> + Clone,
    ) -> Result<(), SpoolError> {
        let adding: u64 = events.clone().map(record_bytes).sum();
        let count = events.clone().count() as u64;
        if count == 0 {
            return Ok(());
        }
        let conn = self.conn();
        self.check(&self.level(), adding)?;
        let first_received = events.clone().map(|e| e.received_ms).next();
        let write = || -> rusqlite::Result<()> {
            let tx = rusqlite::Transaction::new_unchecked(
                &conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            {
                let mut stmt = conn.prepare_cached(&append_sql())?;
                for e in events {
                    stmt.raw_bind_parameter(BYTES_PARAM, record_bytes(e) as i64)?;
                    insert_row(&mut stmt, e)?;
                }
            }
            tx.commit()
        };
        write().map_err(|e| SpoolError::Write(e.to_string()))?;
        let level = {
            let mut l = self.level.lock().unwrap_or_else(|p| p.into_inner());
            l.events += count;
            l.bytes += adding;
            if l.oldest_received_ms.is_none() {
                l.oldest_received_ms = first_received;
            }
            *l
        };
        drop(conn);
        self.metrics.spooled.inc_by(count);
        self.metrics.show(&level);
        self.appended.notify_one();
        Ok(())
    }

    /// One small durable write, once the spool's disk has room for real traffic again
    /// (`sqlite::has_room`): whether it takes writes after a failure.
    pub fn probe(&self) -> Result<(), SpoolError> {
        let result = sqlite::has_room(&self.cfg.path).map_err(SpoolError::Write);
        let result = result.and_then(|()| {
            self.conn()
                .execute(
                    "INSERT INTO spool_probe (id, at_ms) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
                    [crate::clock::now_ms()],
                )
                .map(|_| ())
                .map_err(|e| SpoolError::Write(e.to_string()))
        });
        // A probe says nothing about room or age: only a write failure is cleared or noted.
        match &result {
            Ok(()) => {
                if self.refusal() == Some(Refusal::Write) {
                    self.note(&Ok(()));
                }
            }
            Err(_) => self.note(&result),
        }
        result
    }

    /// Whether the spool refused its last group because its own disk failed (then probes tell when it works).
    pub fn write_failing(&self) -> bool {
        self.refusal() == Some(Refusal::Write)
    }

    fn refusal(&self) -> Option<Refusal> {
        *self.refusing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One log line when the spool starts refusing (or refuses for another reason), one when it takes
    /// events again.
    fn note(&self, result: &Result<(), SpoolError>) {
        let mut refusing = self.refusing.lock().unwrap_or_else(|p| p.into_inner());
        let now = result.as_ref().err().map(SpoolError::refusal);
        if now == *refusing {
            return;
        }
        match result {
            Err(e) => tracing::error!(
                error = %e,
                "spool refuses events: requests are answered 503 with Retry-After"
            ),
            Ok(()) => tracing::info!("spool takes events again"),
        }
        *refusing = now;
    }

    /// The oldest `max` events in drain order, with their sequence numbers and sizes.
    pub fn oldest(&self, max: usize) -> Result<Vec<Spooled>, String> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<Spooled>> {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT seq, bytes, {INSERT_COLUMNS} FROM spool ORDER BY seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map([max as i64], |r| {
                let id: Vec<u8> = r.get(2)?;
                let text =
                    |i: usize| -> rusqlite::Result<Text> { Ok(r.get::<_, String>(i)?.into()) };
                Ok(Spooled {
                    seq: r.get(0)?,
                    bytes: r.get::<_, i64>(1)? as u64,
                    event: EventRecord {
                        event_id: uuid::Uuid::from_slice(&id).unwrap_or_default(),
                        site: text(3)?,
                        session_id: text(4)?,
                        event_type: r.get::<_, String>(5)?.into(),
                        client_ts_ms: r.get(6)?,
                        received_ms: r.get(7)?,
                        route: text(8)?,
                        url: text(9)?,
                        browser: text(10)?,
                        os: text(11)?,
                        device: text(12)?,
                        value: r.get(13)?,
                        name: r.get::<_, Option<String>>(14)?.map(Into::into),
                        endpoint: r.get(15)?,
                        status: r.get(16)?,
                        rating: r.get::<_, Option<String>>(17)?.map(Into::into),
                        raw: RawJson::from(r.get::<_, String>(18)?),
                        release: r.get::<_, Option<String>>(19)?.map(Into::into),
                        fingerprint: r.get(20)?,
                        stack: r.get(21)?,
                    },
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| format!("spool read failed: {e}"))
    }

    /// Deletes `drained` (a prefix of the drain order, as [`Self::oldest`] returned it) once PostgreSQL
    /// has committed it.
    pub fn remove(&self, drained: &[Spooled]) -> Result<(), String> {
        let Some(last) = drained.last() else {
            return Ok(());
        };
        let conn = self.conn();
        let bytes: u64 = drained.iter().map(|s| s.bytes).sum();
        let delete = || -> rusqlite::Result<Option<i64>> {
            conn.execute("DELETE FROM spool WHERE seq <= ?1", [last.seq])?;
            oldest_received(&conn)
        };
        let oldest = delete().map_err(|e| format!("spool delete failed: {e}"))?;
        let level = {
            let mut l = self.level.lock().unwrap_or_else(|p| p.into_inner());
            l.events = l.events.saturating_sub(drained.len() as u64);
            l.bytes = l.bytes.saturating_sub(bytes);
            l.oldest_received_ms = oldest;
            if oldest.is_none() {
                // Counted from the events removed; the table is the truth.
                *l = Level::default();
            }
            *l
        };
        if level.events == 0 {
            // Give the disk back once everything is drained (cheap on an empty table).
            if let Err(e) = conn.execute_batch("VACUUM") {
                tracing::debug!(error = %e, "spool vacuum failed");
            }
        }
        drop(conn);
        self.metrics.drained.inc_by(drained.len() as u64);
        self.metrics.show(&level);
        if matches!(self.refusal(), Some(Refusal::Full | Refusal::TooOld))
            && self.check(&level, 1).is_ok()
        {
            self.note(&Ok(()));
        }
        Ok(())
    }

    pub fn drain_error(&self) {
        self.metrics.drain_errors.inc();
    }

    pub fn register(&self, registry: &mut Registry) {
        let m = &self.metrics;
        registry.register(
            "vantage_ingest_spool_events",
            "Events in the local spool, waiting to be drained into PostgreSQL",
            m.events.clone(),
        );
        registry.register(
            "vantage_ingest_spool_bytes",
            "Bytes of event data in the local spool (counted against storage.spool.max_bytes)",
            m.bytes.clone(),
        );
        registry.register(
            "vantage_ingest_spool_oldest_age_seconds",
            "Age of the oldest event in the local spool (0 when empty)",
            OldestAge(self.level.clone()),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "vantage_ingest_spool_spooled_events",
            "Events acknowledged from the local spool while PostgreSQL could not take writes",
            m.spooled.clone(),
        );
        registry.register(
            "vantage_ingest_spool_drained_events",
            "Events moved from the local spool into PostgreSQL (those already there included)",
            m.drained.clone(),
        );
        registry.register(
            "vantage_ingest_spool_drain_errors",
            "Drain attempts that failed (the events stay in the spool and are tried again)",
            m.drain_errors.clone(),
        );
    }
}

/// One spooled event as read for the drain.
pub(crate) struct Spooled {
    pub seq: i64,
    pub bytes: u64,
    pub event: EventRecord,
}

/// A spool file left by an earlier build lacks the columns added since (its rows drain with them NULL).
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('spool')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (column, ty) in [
        ("release", "TEXT"),
        ("fingerprint", "TEXT"),
        ("stack", "TEXT"),
    ] {
        if !have.iter().any(|h| h == column) {
            conn.execute_batch(&format!("ALTER TABLE spool ADD COLUMN {column} {ty}"))?;
        }
    }
    Ok(())
}

/// The parameter of the event's size, after [`INSERT_COLUMNS`]'s.
const BYTES_PARAM: usize = super::schema::INSERT_COLUMN_COUNT + 1;

fn append_sql() -> String {
    let params: Vec<String> = (1..=BYTES_PARAM).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO spool ({INSERT_COLUMNS}, bytes) VALUES ({})",
        params.join(",")
    )
}

fn oldest_received(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT received_ms FROM spool ORDER BY seq LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// An event's size as counted against `max_bytes`: its text and fixed-size fields as stored.
fn record_bytes(e: &EventRecord) -> u64 {
    let text = [
        e.site.len(),
        e.session_id.len(),
        e.event_type.len(),
        e.route.len(),
        e.url.len(),
        e.browser.len(),
        e.os.len(),
        e.device.len(),
        e.name.as_deref().map_or(0, str::len),
        e.endpoint.as_deref().map_or(0, str::len),
        e.rating.as_deref().map_or(0, str::len),
        e.raw.len(),
        e.release.as_deref().map_or(0, str::len),
        e.fingerprint.as_deref().map_or(0, str::len),
        e.stack.as_deref().map_or(0, str::len),
    ];
    // id, two timestamps, value, status, sequence number and size
    (text.iter().sum::<usize>() + 16 + 5 * 8) as u64
}

#[derive(Default)]
struct SpoolMetrics {
    events: Gauge,
    bytes: Gauge,
    spooled: Counter,
    drained: Counter,
    drain_errors: Counter,
}

impl SpoolMetrics {
    fn show(&self, level: &Level) {
        self.events.set(level.events as i64);
        self.bytes.set(level.bytes as i64);
    }
}

/// The oldest spooled event's age, computed when scraped.
#[derive(Debug)]
struct OldestAge(Arc<Mutex<Level>>);

impl EncodeMetric for OldestAge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let level = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        encoder.encode_gauge(&(level.age_ms(crate::clock::now_ms()) as f64 / 1000.0))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, received_ms: i64) -> EventRecord {
        EventRecord {
            event_id: uuid::Uuid::from_u128(id),
            site: "shop".into(),
            session_id: "s\0x".into(),
            event_type: "web_vital".into(),
            client_ts_ms: received_ms - 5,
            received_ms,
            route: "/p/:id".into(),
            url: "https://shop.example.com/p/1".into(),
            browser: "Chrome".into(),
            os: "Linux".into(),
            device: "desktop".into(),
            value: Some(1830.5),
            name: Some("LCP".into()),
            endpoint: None,
            status: Some(200),
            rating: Some("good".into()),
            raw: r#"{"type":"web_vital"}"#.into(),
            release: Some("shop@1.4.2".into()),
            fingerprint: None,
            stack: None,
        }
    }

    fn spool(dir: &tempfile::TempDir, max_bytes: u64, max_age: Duration) -> Spool {
        Spool::open(&SpoolConfig {
            max_bytes,
            max_age,
            ..SpoolConfig::at(dir.path().join("sub/spool.db"))
        })
        .unwrap()
    }

    #[test]
    fn columns_follow_the_insert_columns() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(&dir, 1 << 20, Duration::from_secs(60));
        let conn = s.conn();
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('spool') ORDER BY cid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let want: Vec<String> = ["seq", "bytes"]
            .into_iter()
            .map(String::from)
            .chain(INSERT_COLUMNS.split(',').map(|c| c.trim().to_string()))
            .collect();
        assert_eq!(cols, want);
    }

    #[test]
    fn events_come_back_in_order_as_stored_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::clock::now_ms();
        let events: Vec<EventRecord> = (1..=5).map(|i| event(i, now + i as i64)).collect();
        {
            let s = spool(&dir, 1 << 20, Duration::from_secs(60));
            s.append(events[..3].iter()).unwrap();
            s.append(events[3..].iter()).unwrap();
            assert_eq!(s.level().events, 5);
            assert_eq!(s.level().oldest_received_ms, Some(now + 1));
        }
        let s = spool(&dir, 1 << 20, Duration::from_secs(60));
        let level = s.level();
        assert_eq!(level.events, 5);
        assert_eq!(level.bytes, events.iter().map(record_bytes).sum::<u64>());
        let first = s.oldest(2).unwrap();
        // Text as stored (NUL replaced, as in the events table), everything else the same.
        let mut want = events[0].clone();
        want.session_id = "s\u{FFFD}x".into();
        assert_eq!(first[0].event, want);
        assert_eq!(first[1].event.event_id, events[1].event_id);
        s.remove(&first).unwrap();
        assert_eq!(s.level().events, 3);
        assert_eq!(s.level().oldest_received_ms, Some(now + 3));
        let rest = s.oldest(10).unwrap();
        assert_eq!(
            rest.iter().map(|r| r.event.event_id).collect::<Vec<_>>(),
            events[2..].iter().map(|e| e.event_id).collect::<Vec<_>>()
        );
        s.remove(&rest).unwrap();
        assert_eq!(s.level(), Level::default());
        assert!(s.is_empty());
    }

    #[test]
    fn full_and_too_old_refuse_new_events_and_keep_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::clock::now_ms();
        let one = record_bytes(&event(1, now));
        let s = spool(&dir, 2 * one, Duration::from_secs(60));
        s.append([event(1, now), event(2, now)].iter()).unwrap();
        assert!(!s.accepting(), "at max_bytes");
        assert!(matches!(
            s.append([event(3, now)].iter()),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(s.level().events, 2);

        let dir = tempfile::tempdir().unwrap();
        let s = spool(&dir, 1 << 20, Duration::from_secs(60));
        // Received two minutes ago: older than max_age once spooled.
        s.append([event(1, now - 120_000)].iter()).unwrap();
        assert!(!s.accepting());
        assert!(matches!(
            s.append([event(2, now)].iter()),
            Err(SpoolError::TooOld { .. })
        ));
        let drained = s.oldest(10).unwrap();
        s.remove(&drained).unwrap();
        assert!(s.accepting());
        s.append([event(2, now)].iter()).unwrap();
    }
}
