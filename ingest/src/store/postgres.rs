//! PostgreSQL backend: each group is one binary `COPY` into `events`, or, when one of its keys is already
//! stored, one `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT DO NOTHING RETURNING` ([`Session::insert`]).
//!
//! One statement per group is one transaction (autocommit) and one WAL flush, whatever the group size; the
//! statements are prepared once per connection. The writer owns its own connection; queries
//! and deletes share a second one, re-established on the next use after it broke. Every error text passes
//! through a [`Redactor`] holding the URL and password.
//!
//! Outages: a write that fails because PostgreSQL is unreachable, the connection was lost, the server is
//! starting up, read-only (a failover in progress) or out of resources, or that gets no answer within
//! `storage.write_timeout`, is transient ([`is_transient`]). The writer then drops its connection, and until a
//! background attempt (every [`RECONNECT_INTERVAL`]: connect, prepare, write the probe row) succeeds, groups
//! are not sent to PostgreSQL at all: they go to the spool when one is configured (acknowledged once fsync'd
//! there), else their submitters get 503 at once, so no request waits for a dead server. A group in flight
//! when the connection died may have been committed anyway: its retry (or its drain) is stored once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::SinkExt;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row, Statement};
use vantage_common::Redactor;

use super::health::Health;
use super::migrate;
use super::migrate::Dialect;
use super::partitions;
use super::queue::{take_batch, Pending, Queue, WriteError, Written};
use super::rollup::{self, Counted, Partials};
use super::schema::{event_key_columns, text_safe, INSERT_COLUMNS, INSERT_COLUMN_COUNT};
use super::spool::Spool;
use super::stats::{postgres_sql, Cell, Param};
use super::{EventRecord, NewSourceMap, PutOutcome, Removed, SourceMapInfo, StoreError};

/// Serialises migrations of several ingest nodes starting at once against one database.
const MIGRATION_LOCK_KEY: i64 = 0x0076_616e_7461_6765; // "vantage"
/// Serialises rollup compaction and backfill between the nodes sharing a database.
const ROLLUP_LOCK_KEY: i64 = 0x0076_616e_7461_6766;
/// Rows per retention delete statement, so inserts are never held up for long.
const DELETE_CHUNK_ROWS: i64 = 5_000;
/// While PostgreSQL is away, how often the writer tries to get a connection back (how soon it notices).
const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);
/// After a `COPY` found a key already stored, how many groups go in with `INSERT ... ON CONFLICT` before the
/// next `COPY` is tried (see [`Session::insert`]).
const CONFLICT_BACKOFF_GROUPS: u32 = 64;
/// The probe's one-row write (see `health.rs`).
const WRITE_PROBE_SQL: &str = "INSERT INTO write_probe (id, at_ms) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET at_ms = EXCLUDED.at_ms";

/// Connects on demand and remembers how to describe errors safely.
pub(super) struct Connector {
    config: tokio_postgres::Config,
    redactor: Redactor,
    /// `storage.write_timeout`: for connecting and for each statement of a writer.
    timeout: Duration,
    /// `limits.max_past`: day partitions are made from this long before now (see `partitions.rs`).
    max_past_ms: i64,
}

impl Connector {
    fn new(url: &str, timeout: Duration, max_past_ms: i64) -> Result<Self, StoreError> {
        let redactor = Redactor::new([url.to_owned()]);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Config(format!(
                "invalid postgres url: {}",
                redactor.redact(&format!("{e}"))
            ))
        })?;
        let redactor = match config.get_password() {
            Some(p) => redactor.with([String::from_utf8_lossy(p).into_owned()]),
            None => redactor,
        };
        config
            .connect_timeout(timeout)
            .application_name("vantage-ingest");
        Ok(Self {
            config,
            redactor,
            timeout,
            max_past_ms,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A connection and the task that drives it.
    async fn connect(&self) -> Result<Connection, String> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| format!("cannot connect to postgres: {}", self.describe(&e)))?;
        let redactor = self.redactor.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                // An outage is logged once by `Health`, not once per connection.
                tracing::debug!(error = %redactor.redact(&e.to_string()), "postgres connection closed");
            }
        });
        Ok((client, task))
    }

    /// The error's text without anything secret; server errors as `message (SQLSTATE code)`, others with
    /// their cause (`error connecting to server: Connection refused (os error 111)`).
    fn describe(&self, e: &tokio_postgres::Error) -> String {
        let text = match e.as_db_error() {
            Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            None => vantage_common::error_chain::error_chain(e),
        };
        self.redactor.redact(&text)
    }

    pub fn write_error(&self, e: &tokio_postgres::Error) -> WriteError {
        WriteError {
            transient: is_transient(e),
            message: self.describe(e),
        }
    }

    fn no_answer(&self) -> WriteError {
        WriteError::transient(format!(
            "postgres did not answer within {:?} (storage.write_timeout)",
            self.timeout
        ))
    }

    /// A connection that has just written the probe row: migrated first when `migrate`, statements
    /// prepared. Bounded by the write timeout as a whole.
    pub async fn session(&self, migrate: bool) -> Result<Session, WriteError> {
        let open = async {
            let (mut client, task) = self.connect().await.map_err(WriteError::transient)?;
            let connection = task.abort_handle();
            let prepared = async {
                if migrate {
                    self.migrate(&mut client).await?;
                    self.create_partitions(&mut client, i64::MIN, crate::clock::now_ms())
                        .await;
                }
                let insert = client.prepare(&insert_sql()).await?;
                let copy = client.prepare(&copy_sql()).await?;
                let probe = client.prepare(WRITE_PROBE_SQL).await?;
                let rollups = client.prepare(&rollup_insert_sql()).await?;
                let rollups_from = rollup::Cutoffs::from_rows(
                    client
                        .query(rollup::CUTOFFS_SQL, &[])
                        .await?
                        .iter()
                        .map(|r| Ok((r.try_get::<_, i32>(0)?.into(), r.try_get(1)?)))
                        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?,
                );
                Ok::<_, MigrateError>((insert, copy, probe, rollups, rollups_from))
            }
            .await;
            let (insert, copy, probe, rollups, rollups_from) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    connection.abort();
                    return Err(e.into_write_error(self));
                }
            };
            let session = Session {
                client,
                insert,
                copy,
                conflict_backoff: AtomicU32::new(0),
                desynced: AtomicBool::new(false),
                probe,
                rollups,
                rollups_from,
                connection,
            };
            session.probe().await.map_err(|e| self.write_error(&e))?;
            Ok(session)
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .unwrap_or_else(|_| Err(self.no_answer()))
    }

    /// Applies the migrations in one transaction, under a lock that serialises ingest nodes starting
    /// at once against one database.
    async fn migrate(&self, client: &mut Client) -> Result<(), MigrateError> {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        migrate::run(&mut Migrations(&tx)).await?;
        Ok(tx.commit().await?)
    }

    /// Creates the day partitions from `limits.max_past` before `now_ms` (but not before `floor_ms`) to
    /// [`partitions::AHEAD_DAYS`] after it. A failure is logged, not returned: the default partition takes
    /// the events of a day without one, and the next upkeep tries again.
    async fn create_partitions(&self, client: &mut Client, floor_ms: i64, now_ms: i64) -> usize {
        let from = now_ms.saturating_sub(self.max_past_ms).max(floor_ms);
        match partitions::create_ahead(client, from, now_ms).await {
            Ok(created) => {
                if !created.is_empty() {
                    tracing::info!(partitions = ?created, "created event partitions");
                }
                created.len()
            }
            Err(e) => {
                tracing::warn!(error = %self.describe(&e), "creating event partitions failed; retried at the next upkeep");
                0
            }
        }
    }
}

/// The migration runner's adapter: statements in the migrating transaction.
struct Migrations<'a>(&'a tokio_postgres::Transaction<'a>);

impl migrate::Migrator for Migrations<'_> {
    type Error = MigrateError;
    const DIALECT: migrate::Dialect = migrate::Dialect::Postgres;

    async fn execute_batch(&mut self, sql: &str) -> Result<(), MigrateError> {
        Ok(self.0.batch_execute(sql).await?)
    }

    async fn query_i64(&mut self, sql: &str) -> Result<i64, MigrateError> {
        Ok(self.0.query_one(sql, &[]).await?.try_get(0)?)
    }

    async fn execute_with(&mut self, sql: &str, a: i64, b: i64) -> Result<(), MigrateError> {
        self.0.execute(sql, &[&a, &b]).await?;
        Ok(())
    }

    fn newer(message: String) -> MigrateError {
        MigrateError::Newer(message)
    }

    fn step_failed(version: i64, e: MigrateError) -> MigrateError {
        match e {
            MigrateError::Db(e) => MigrateError::Step(version, e),
            other => other,
        }
    }
}

enum MigrateError {
    Db(tokio_postgres::Error),
    Step(i64, tokio_postgres::Error),
    Newer(String),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl MigrateError {
    fn into_write_error(self, c: &Connector) -> WriteError {
        match self {
            Self::Db(e) => c.write_error(&e),
            Self::Step(v, e) => WriteError {
                message: format!("migration {v}: {}", c.describe(&e)),
                ..c.write_error(&e)
            },
            Self::Newer(m) => WriteError::fatal(m),
        }
    }
}

/// Whether a failed statement may work if tried again soon (503, or the spool) rather than being a bug
/// (500): the connection broke or could not be made; or the server says it is shutting down, starting up
/// (57P03), read-only (25006, a standby: failover), out of disk, memory or connections (class 53), failing
/// I/O (class 58), or the statement lost a lock, deadlock or serialization race or was cancelled.
pub(super) fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => transient_code(db.code()),
        // No server answer at all: the socket failed or timed out.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn transient_code(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || c.starts_with("53")
        || c.starts_with("58")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code)
}

/// What the writer needs besides the URL.
pub(super) struct WriterSetup {
    pub rx: mpsc::UnboundedReceiver<Pending>,
    pub queue: Arc<Queue>,
    pub max_batch_events: usize,
    pub write_timeout: Duration,
    pub writer_done: watch::Sender<bool>,
    pub spool: Option<Arc<Spool>>,
    pub health: Arc<Health>,
    /// `limits.max_past`, ms: how far back day partitions are made.
    pub max_past_ms: i64,
}

/// Opens the connections, migrates, and starts the writer (and the spool's drain). With a spool, an
/// unreachable server at start is an outage like any other: the node starts, spools, and migrates once the
/// server is back.
pub(crate) async fn open(
    url: &str,
    setup: WriterSetup,
) -> Result<(Reader, Option<AbortHandle>), StoreError> {
    let connector = Arc::new(Connector::new(url, setup.write_timeout, setup.max_past_ms)?);
    let session = match connector.session(true).await {
        Ok(s) => Some(s),
        Err(e) if e.transient && setup.spool.is_some() => {
            setup.health.failed(&e.message);
            None
        }
        Err(e) if e.transient => return Err(StoreError::Unavailable(e.message)),
        Err(e) => return Err(StoreError::Database(e.message)),
    };
    let started_up = session.is_some();
    let drain = setup.spool.clone().map(|spool| {
        let (connector, available) = (connector.clone(), setup.health.subscribe());
        tokio::spawn(super::drain::run(spool, connector, available)).abort_handle()
    });
    // The other writing connections; one that cannot be had now is taken in the background like after a
    // lost connection.
    let mut sessions = vec![session];
    for _ in 1..WRITERS {
        sessions.push(match started_up {
            true => connector.session(false).await.ok(),
            false => None,
        });
    }
    let rx = Arc::new(tokio::sync::Mutex::new(setup.rx));
    let connected = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(watch::channel(false).0);
    let outage = Arc::new(Outage::default());
    let mut writers = tokio::task::JoinSet::new();
    for session in sessions {
        if session.is_some() {
            connected.fetch_add(1, Ordering::Relaxed);
        }
        let writer = Writer {
            connector: connector.clone(),
            migrated: started_up,
            session,
            connected: connected.clone(),
            closed: closed.clone(),
            outage: outage.clone(),
            down_reason: String::new(),
            spool: setup.spool.clone(),
            health: setup.health.clone(),
        };
        writers.spawn(writer.run(rx.clone(), setup.queue.clone(), setup.max_batch_events));
    }
    let writer_done = setup.writer_done;
    tokio::spawn(async move {
        while writers.join_next().await.is_some() {}
        let _ = writer_done.send(true);
    });
    let reader = Reader {
        connector,
        client: tokio::sync::Mutex::new(None),
        rollup_conn: tokio::sync::Mutex::new(None),
        retention_cutoff: AtomicI64::new(i64::MIN),
    };
    if started_up {
        // Fail at open, not at the first query, when a second connection is impossible.
        reader.client().await?;
    }
    Ok((reader, drain))
}

fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({INSERT_COLUMNS}) SELECT * FROM UNNEST(\
         $1::text[]::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], $14::text[], $15::int4[], \
         $16::text[], $17::text[], $18::text[], $19::text[], $20::text[]) ON CONFLICT ({}) DO NOTHING \
         RETURNING site, event_id::text",
        event_key_columns(Dialect::Postgres)
    )
}

/// `INSERT INTO rollups (...) SELECT * FROM UNNEST(15 arrays)`: a group's partial rollup rows (the backfill
/// and, with an upsert clause, the compaction share it).
fn rollup_insert_sql() -> String {
    format!(
        "INSERT INTO rollups ({}) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::int4[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], \
         $12::bytea[], $13::bytea[], $14::int8[], $15::int8[])",
        rollup::COLUMNS
    )
}

/// Rollup rows as the 15 arrays of [`rollup_insert_sql`].
struct RollupArrays {
    site: Vec<String>,
    kind: Vec<&'static str>,
    key: Vec<String>,
    name: Vec<String>,
    level: Vec<i32>,
    bucket_ms: Vec<i64>,
    count: Vec<i64>,
    errors: Vec<i64>,
    good: Vec<i64>,
    ni: Vec<i64>,
    poor: Vec<i64>,
    sketch: Vec<Vec<u8>>,
    sessions: Vec<Vec<u8>>,
    first_ms: Vec<Option<i64>>,
    last_ms: Vec<Option<i64>>,
}

impl RollupArrays {
    fn new(rows: Vec<rollup::Row>) -> Self {
        let mut a = Self {
            site: Vec::with_capacity(rows.len()),
            kind: Vec::with_capacity(rows.len()),
            key: Vec::with_capacity(rows.len()),
            name: Vec::with_capacity(rows.len()),
            level: Vec::with_capacity(rows.len()),
            bucket_ms: Vec::with_capacity(rows.len()),
            count: Vec::with_capacity(rows.len()),
            errors: Vec::with_capacity(rows.len()),
            good: Vec::with_capacity(rows.len()),
            ni: Vec::with_capacity(rows.len()),
            poor: Vec::with_capacity(rows.len()),
            sketch: Vec::with_capacity(rows.len()),
            sessions: Vec::with_capacity(rows.len()),
            first_ms: Vec::with_capacity(rows.len()),
            last_ms: Vec::with_capacity(rows.len()),
        };
        for r in rows {
            a.site.push(text_safe(&r.site).into_owned());
            a.kind.push(r.kind);
            a.key.push(text_safe(&r.key).into_owned());
            a.name.push(text_safe(&r.name).into_owned());
            a.level.push(r.level as i32);
            a.bucket_ms.push(r.bucket_ms);
            a.count.push(r.count);
            a.errors.push(r.errors);
            a.good.push(r.good);
            a.ni.push(r.ni);
            a.poor.push(r.poor);
            a.sketch.push(r.sketch);
            a.sessions.push(r.sessions);
            a.first_ms.push(r.first_ms);
            a.last_ms.push(r.last_ms);
        }
        a
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        [
            &self.site,
            &self.kind,
            &self.key,
            &self.name,
            &self.level,
            &self.bucket_ms,
            &self.count,
            &self.errors,
            &self.good,
            &self.ni,
            &self.poor,
            &self.sketch,
            &self.sessions,
            &self.first_ms,
            &self.last_ms,
        ]
    }
}

/// A rollup row as PostgreSQL returns [`rollup::COLUMNS`].
fn rollup_row(r: &Row) -> Result<rollup::Row, StoreError> {
    let get = || -> Result<rollup::Row, tokio_postgres::Error> {
        Ok(rollup::Row {
            site: r.try_get(0)?,
            kind: "",
            key: r.try_get(2)?,
            name: r.try_get(3)?,
            level: r.try_get::<_, i32>(4)?.into(),
            bucket_ms: r.try_get(5)?,
            count: r.try_get(6)?,
            errors: r.try_get(7)?,
            good: r.try_get(8)?,
            ni: r.try_get(9)?,
            poor: r.try_get(10)?,
            sketch: r.try_get(11)?,
            sessions: r.try_get(12)?,
            first_ms: r.try_get(13)?,
            last_ms: r.try_get(14)?,
        })
    };
    let mut row = get().map_err(|e| StoreError::Database(format!("rollup row: {e}")))?;
    row.kind = rollup::kind_str(r.try_get::<_, &str>(1).unwrap_or(""))?;
    Ok(row)
}

/// Adds `targets` to the merged rows stored for them (inside the caller's transaction, which holds the
/// rollup lock: no one else writes merged rows meanwhile).
async fn put_merged(
    tx: &tokio_postgres::Transaction<'_>,
    targets: std::collections::HashMap<rollup::Key, rollup::Agg>,
    db: &(impl Fn(tokio_postgres::Error) -> StoreError + Sync),
) -> Result<(), StoreError> {
    // In the index's order, so that consecutive probes share its pages.
    let targets = rollup::Targets::new(targets);
    let keys: Vec<&rollup::Key> = targets.keys().collect();
    let site: Vec<&str> = keys.iter().map(|k| &*k.site).collect();
    let kind: Vec<&str> = keys.iter().map(|k| k.kind.as_str()).collect();
    let level: Vec<i32> = keys.iter().map(|k| k.level as i32).collect();
    let bucket: Vec<i64> = keys.iter().map(|k| k.bucket_ms).collect();
    let key: Vec<&str> = keys.iter().map(|k| &*k.key).collect();
    let name: Vec<&str> = keys.iter().map(|k| &*k.name).collect();
    // One index probe per target (`LIMIT 1` keeps the subquery a per-row lookup): as a plain join of the
    // arrays, the planner saw thousands of targets and chose a hash join over a scan of the whole table,
    // so each fold and backfill chunk read every rollup row stored.
    let existing = tx
        .query(
            &format!(
                "SELECT {} FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::int8[], $5::text[], \
                 $6::text[]) AS t(site, kind, level, bucket_ms, key, name) CROSS JOIN LATERAL (\
                 SELECT * FROM rollups r WHERE r.site = t.site AND r.kind = t.kind AND r.level = t.level \
                 AND r.bucket_ms = t.bucket_ms AND r.key = t.key AND r.name = t.name AND r.level > 0 \
                 LIMIT 1) r",
                rollup::COLUMNS
                    .split(", ")
                    .map(|c| format!("r.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[&site, &kind, &level, &bucket, &key, &name],
        )
        .await
        .map_err(db)?;
    let existing = existing
        .iter()
        .map(rollup_row)
        .collect::<Result<Vec<_>, _>>()?;
    let merged = RollupArrays::new(targets.merged_rows(existing)?);
    tx.execute(
        &format!("{}{}", rollup_insert_sql(), rollup::MERGED_UPSERT),
        &merged.params(),
    )
    .await
    .map_err(db)?;
    Ok(())
}

fn copy_sql() -> String {
    format!("COPY events ({INSERT_COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// `events` in `COPY`'s binary format, columns in [`INSERT_COLUMNS`] order, text through [`text_safe`].
fn copy_data(events: &[&EventRecord]) -> BytesMut {
    fn text(buf: &mut BytesMut, t: &str) {
        let t = text_safe(t);
        buf.put_i32(t.len() as i32);
        buf.put_slice(t.as_bytes());
    }
    fn opt_text(buf: &mut BytesMut, t: Option<&str>) {
        match t {
            Some(t) => text(buf, t),
            None => buf.put_i32(-1),
        }
    }
    let size: usize = events
        .iter()
        .map(|e| 256 + e.raw.len() + e.url.len() + e.stack.as_ref().map_or(0, |s| s.len()))
        .sum();
    let mut buf = BytesMut::with_capacity(19 + size + 2);
    // Signature, flags, header extension length.
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
    for e in events {
        buf.put_i16(INSERT_COLUMN_COUNT as i16);
        buf.put_i32(16);
        buf.put_slice(e.event_id.as_bytes());
        text(&mut buf, &e.site);
        text(&mut buf, &e.session_id);
        text(&mut buf, &e.event_type);
        buf.put_i32(8);
        buf.put_i64(e.client_ts_ms);
        buf.put_i32(8);
        buf.put_i64(e.received_ms);
        text(&mut buf, &e.route);
        text(&mut buf, &e.url);
        text(&mut buf, &e.browser);
        text(&mut buf, &e.os);
        text(&mut buf, &e.device);
        match e.value {
            Some(v) => {
                buf.put_i32(8);
                buf.put_f64(v);
            }
            None => buf.put_i32(-1),
        }
        opt_text(&mut buf, e.name.as_deref());
        opt_text(&mut buf, e.endpoint.as_deref());
        match e.status {
            Some(s) => {
                buf.put_i32(4);
                buf.put_i32(s);
            }
            None => buf.put_i32(-1),
        }
        opt_text(&mut buf, e.rating.as_deref());
        text(&mut buf, &e.raw);
        opt_text(&mut buf, e.release.as_deref());
        opt_text(&mut buf, e.fingerprint.as_deref());
        opt_text(&mut buf, e.stack.as_deref());
    }
    buf.put_i16(-1);
    buf
}

/// A writing connection with its prepared statements; dropping it closes the connection.
pub(super) struct Session {
    client: Client,
    insert: Statement,
    /// [`copy_sql`]: the first try of each group.
    copy: Statement,
    /// Groups left to go in without trying `COPY` first, after a `COPY` met a stored key.
    conflict_backoff: AtomicU32,
    /// A `COPY` was refused before it started: the connection cannot be used again (see [`Session::copy`]).
    desynced: AtomicBool,
    probe: Statement,
    rollups: Statement,
    /// Per rollup backfill, events received before its cutoff are the backfill's to count.
    rollups_from: rollup::Cutoffs,
    connection: AbortHandle,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A server that stopped answering would keep the connection task waiting forever.
        self.connection.abort();
    }
}

impl Session {
    /// Whether the connection is gone or must not be used again.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() || self.desynced.load(Ordering::Relaxed)
    }

    async fn probe(&self) -> Result<u64, tokio_postgres::Error> {
        self.client
            .execute(&self.probe, &[&crate::clock::now_ms()])
            .await
    }

    /// Stores `events`, and the partial rollup rows of those newly stored, in one transaction; the keys
    /// (site, id) newly stored, each once (a key twice in `events` is stored from its first event).
    ///
    /// The rows go in ordered by key. Nodes sharing the database insert the same keys when a browser's retry
    /// reaches another node while the first attempt is being written; each statement takes the keys' index
    /// locks in row order, so in different orders two such statements could wait on each other (a deadlock,
    /// seen between two nodes in ingest/tests/nodes.rs) where in one order the second simply waits.
    ///
    /// First as one `COPY` (its own transaction): PostgreSQL writes a page's rows as one WAL record and skips
    /// the speculative insertion `ON CONFLICT` needs (bench/README.md, "PostgreSQL's write path"). A key that
    /// is already stored fails the whole `COPY` (unique violation, nothing written); the group then goes in
    /// again as `INSERT ... ON CONFLICT DO NOTHING RETURNING`, which says which keys were new, and so do the
    /// next [`CONFLICT_BACKOFF_GROUPS`] groups (retries come in bursts, after an outage).
    pub async fn insert<'a>(
        &self,
        events: impl Iterator<Item = &'a EventRecord>,
    ) -> Result<Vec<(String, uuid::Uuid)>, tokio_postgres::Error> {
        let mut events: Vec<&EventRecord> = events.collect();
        // In the key's order ([`event_key_columns`]). Stable: of two events with one key, the first submitted
        // stays first and is the one stored.
        let key = |e: &EventRecord| (e.event_id, e.client_ts_ms);
        events.sort_by(|a, b| (&a.site, key(a)).cmp(&(&b.site, key(b))));
        events.dedup_by(|b, a| a.site == b.site && key(a) == key(b));
        let backoff = self.conflict_backoff.load(Ordering::Relaxed);
        if backoff == 0 {
            self.client.batch_execute("BEGIN").await?;
            match self.copy(&events).await {
                Ok(()) => {
                    if let Err(e) = self.commit_with_rollups(events.iter().copied()).await {
                        self.rollback().await;
                        return Err(e);
                    }
                    return Ok(events
                        .iter()
                        .map(|e| (text_safe(&e.site).into_owned(), e.event_id))
                        .collect());
                }
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    self.client.batch_execute("ROLLBACK").await?;
                    self.conflict_backoff
                        .store(CONFLICT_BACKOFF_GROUPS, Ordering::Relaxed);
                }
                Err(e) => {
                    self.rollback().await;
                    return Err(e);
                }
            }
        } else {
            self.conflict_backoff.store(backoff - 1, Ordering::Relaxed);
        }
        self.client.batch_execute("BEGIN").await?;
        let inserted = async {
            let rows = self.insert_on_conflict(&events).await?;
            let keys = rows
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get::<_, String>(0)?,
                        row.try_get::<_, &str>(1)?.parse().unwrap_or_default(),
                    ))
                })
                .collect::<Result<Vec<(String, uuid::Uuid)>, tokio_postgres::Error>>()?;
            let fresh: std::collections::HashSet<(&str, uuid::Uuid)> =
                keys.iter().map(|(s, id)| (s.as_str(), *id)).collect();
            let stored = events
                .iter()
                .copied()
                .filter(|e| fresh.contains(&(&*text_safe(&e.site), e.event_id)));
            self.commit_with_rollups(stored).await?;
            Ok(keys)
        }
        .await;
        if inserted.is_err() {
            self.rollback().await;
        }
        inserted
    }

    /// Ends the open transaction, after appending the partial rollup rows of `stored` (the events it newly
    /// stored) to it. The two statements are sent together: one round trip.
    async fn commit_with_rollups<'a>(
        &self,
        stored: impl Iterator<Item = &'a EventRecord>,
    ) -> Result<(), tokio_postgres::Error> {
        let mut partials = Partials::received_since(self.rollups_from);
        stored.for_each(|e| partials.add(e));
        if partials.is_empty() {
            return self.client.batch_execute("COMMIT").await;
        }
        let arrays = RollupArrays::new(partials.rows());
        let params = arrays.params();
        let (appended, committed) = tokio::join!(
            self.client.execute(&self.rollups, &params),
            self.client.batch_execute("COMMIT")
        );
        appended?;
        committed
    }

    /// Leaves a failed transaction, so the session stays usable after an error that is not the
    /// connection's (a connection out of step after a refused `COPY` is replaced instead).
    async fn rollback(&self) {
        if !self.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
    }

    /// `events` (sorted, one per key) as one `COPY ... FROM STDIN (FORMAT binary)`.
    async fn copy(&self, events: &[&EventRecord]) -> Result<(), tokio_postgres::Error> {
        let data = copy_data(events);
        let sink = match self.client.copy_in::<_, bytes::Bytes>(&self.copy).await {
            Ok(sink) => sink,
            Err(e) => {
                // Refused before COPY mode (no table, no permission, a lock wait cancelled): tokio-postgres
                // has then sent one Sync too many, and the connection's next answer would belong to no
                // request (rust-postgres/rust-postgres#1337). The writer replaces it before the next group.
                self.desynced.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        futures::pin_mut!(sink);
        sink.send(data.freeze()).await?;
        sink.as_mut().finish().await.map(|_| ())
    }

    /// `events` (sorted, one per key) in one `INSERT ... ON CONFLICT DO NOTHING`; the rows newly stored.
    async fn insert_on_conflict(
        &self,
        events: &[&EventRecord],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let n = events.len();
        let mut ids = Vec::with_capacity(n);
        let (mut site, mut session, mut kind) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut client_ts, mut received) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut route, mut url, mut browser) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut os, mut device, mut value) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut name, mut endpoint, mut status) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut rating, mut raw) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut release, mut fingerprint, mut stack) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in events.iter() {
            ids.push(e.event_id.to_string());
            site.push(text_safe(&e.site));
            session.push(text_safe(&e.session_id));
            kind.push(text_safe(&e.event_type));
            client_ts.push(e.client_ts_ms);
            received.push(e.received_ms);
            route.push(text_safe(&e.route));
            url.push(text_safe(&e.url));
            browser.push(text_safe(&e.browser));
            os.push(text_safe(&e.os));
            device.push(text_safe(&e.device));
            value.push(e.value);
            name.push(e.name.as_deref().map(text_safe));
            endpoint.push(e.endpoint.as_deref().map(text_safe));
            status.push(e.status);
            rating.push(e.rating.as_deref().map(text_safe));
            raw.push(text_safe(&e.raw));
            release.push(e.release.as_deref().map(text_safe));
            fingerprint.push(e.fingerprint.as_deref().map(text_safe));
            stack.push(e.stack.as_deref().map(text_safe));
        }
        let params: [&(dyn ToSql + Sync); 20] = [
            &ids,
            &site,
            &session,
            &kind,
            &client_ts,
            &received,
            &route,
            &url,
            &browser,
            &os,
            &device,
            &value,
            &name,
            &endpoint,
            &status,
            &rating,
            &raw,
            &release,
            &fingerprint,
            &stack,
        ];
        self.client.query(&self.insert, &params).await
    }

    /// Writes a group (a group of probes writes the probe row); which of each submit's events were not new.
    async fn store(&self, batch: &[Pending], c: &Connector) -> Result<Vec<Vec<u32>>, WriteError> {
        let n: usize = batch.iter().map(|p| p.events.len()).sum();
        if n == 0 {
            return match tokio::time::timeout(c.timeout, self.probe()).await {
                Ok(Ok(_)) => Ok(vec![Vec::new(); batch.len()]),
                Ok(Err(e)) => Err(c.write_error(&e)),
                Err(_) => Err(c.no_answer()),
            };
        }
        let events = batch.iter().flat_map(|p| p.events.iter());
        let keys = match tokio::time::timeout(c.timeout, self.insert(events)).await {
            Ok(Ok(keys)) => keys,
            Ok(Err(e)) => return Err(c.write_error(&e)),
            Err(_) => return Err(c.no_answer()),
        };
        // The keys newly stored, by id; within the group, the first event with a key gets it, a later one is
        // the duplicate.
        let mut fresh: HashMap<uuid::Uuid, Vec<String>> = HashMap::with_capacity(keys.len());
        for (site, id) in keys {
            fresh.entry(id).or_default().push(site);
        }
        let mut take = |e: &EventRecord| {
            let Some(keys) = fresh.get_mut(&e.event_id) else {
                return false;
            };
            let site = text_safe(&e.site);
            match keys.iter().position(|a| *a == site) {
                Some(i) => {
                    keys.swap_remove(i);
                    true
                }
                None => false,
            }
        };
        Ok(batch
            .iter()
            .map(|p| {
                (0..)
                    .zip(&p.events)
                    .filter(|(_, e)| !take(e))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect())
    }
}

/// Writing connections, each with its own group commit: while one group waits for its COMMIT (the WAL
/// flush), the next is written on the other connection, instead of PostgreSQL and the node idling through
/// the wait. Concurrent groups keep their rows in key order (`Session::insert`), so two that hold the same keys
/// (retries) wait on each other instead of deadlocking, as two nodes do. bench/README.md, "PostgreSQL's write
/// path".
const WRITERS: usize = 2;

/// Whether the last thing a writer learnt about the server was a failure (a write that timed out or lost its
/// connection) rather than a connection made, and that failure's reason.
#[derive(Default)]
struct Outage {
    down: AtomicBool,
    reason: std::sync::Mutex<String>,
}

struct Writer {
    connector: Arc<Connector>,
    /// The writer's connection; `None` while PostgreSQL is away (a background attempt gets it back).
    session: Option<Session>,
    /// Writers that have a connection. One without takes groups (to spool or refuse them) only when no
    /// writer has one.
    connected: Arc<AtomicUsize>,
    /// Set by the writer that finds the queue closed and drained, for the others that are not taking
    /// groups (they would not see it).
    closed: Arc<watch::Sender<bool>>,
    /// A connection that timed out or was lost says the server is away for the other writers too: they drop
    /// theirs at their next group and answer at once, instead of each waiting out the write timeout in turn,
    /// until a writer has connected again.
    outage: Arc<Outage>,
    /// Whether this process has applied the migrations (a node that started during an outage has not).
    migrated: bool,
    /// Why the last write or reconnect failed.
    down_reason: String,
    spool: Option<Arc<Spool>>,
    health: Arc<Health>,
}

impl Writer {
    async fn run(
        mut self,
        rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
        queue: Arc<Queue>,
        max_batch_events: usize,
    ) {
        let mut reconnect: Option<JoinHandle<Result<Session, WriteError>>> = None;
        let mut retry_at = tokio::time::Instant::now();
        let mut closed = self.closed.subscribe();
        loop {
            let due = self.session.is_none() && reconnect.is_none();
            let takes = self.session.is_some() || self.connected.load(Ordering::Relaxed) == 0;
            // Biased: a finished reconnect, then a due one, then groups, so heavy traffic cannot starve
            // the way back.
            tokio::select! {
                biased;
                done = async { reconnect.as_mut().expect("guarded by the branch condition").await },
                    if reconnect.is_some() =>
                {
                    reconnect = None;
                    match done.unwrap_or_else(|e| Err(WriteError::transient(format!("reconnect task: {e}")))) {
                        Ok(s) => self.connect(s),
                        Err(e) => {
                            self.failed(e.message);
                            retry_at = tokio::time::Instant::now() + RECONNECT_INTERVAL;
                        }
                    }
                }
                () = tokio::time::sleep_until(retry_at), if due => {
                    let (connector, migrate) = (self.connector.clone(), !self.migrated);
                    reconnect = Some(tokio::spawn(async move { connector.session(migrate).await }));
                }
                // One writer at a time waits for the next submit and takes its group; the lock is released
                // before the group is written. (recv is cancel-safe, and nothing awaits after it.)
                batch = async {
                    let mut rx = rx.lock().await;
                    let first = rx.recv().await?;
                    Some(take_batch(first, &mut rx, max_batch_events))
                }, if takes => {
                    let Some(batch) = batch else {
                        self.closed.send_replace(true);
                        break;
                    };
                    let started = Instant::now();
                    let (batch, result) = self.write(batch).await;
                    queue.finish(batch, result, started);
                }
                () = async {
                    let _ = closed.wait_for(|c| *c).await;
                }, if !takes => break,
            }
        }
        if let Some(r) = reconnect {
            r.abort();
        }
        tracing::debug!("postgres writer drained and stopped");
    }

    fn connect(&mut self, session: Session) {
        self.outage.down.store(false, Ordering::Relaxed);
        // A background reconnect can finish after `write` connected inline: that session is kept.
        if self.session.is_none() {
            self.session = Some(session);
            self.connected.fetch_add(1, Ordering::Relaxed);
        }
        self.migrated = true;
        self.health.wrote(Instant::now());
    }

    /// The connection is gone (or was never had).
    fn disconnect(&mut self) {
        if self.session.take().is_some() {
            self.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A write or a reconnect made to write failed: the server is deemed away for every writer (and the
    /// group goes to the spool, which must not be drained meanwhile).
    fn went_away(&mut self, reason: String) {
        *self.outage.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason.clone();
        self.outage.down.store(true, Ordering::Relaxed);
        self.failed(reason);
    }

    /// Reported to the health (which pauses the spool's drain and fails /readyz) once the server is deemed
    /// away, not while another writer still holds a working connection (e.g. this one's reconnect was refused
    /// for too many connections).
    fn failed(&mut self, reason: String) {
        if self.outage.down.load(Ordering::Relaxed) || self.connected.load(Ordering::Relaxed) == 0 {
            self.health.failed(&reason);
        }
        self.down_reason = reason;
    }

    /// Whether `write` tries a new connection before the group rather than fail it: the session closed while
    /// idle (the server restarted, an idle timeout), or there is none while another writer has connected
    /// since this one took the group (`takes` was decided while no writer was connected), so `/readyz` already
    /// says the store is back. A server that is really away fails the attempt at once (or after the write
    /// timeout).
    fn connects_first(&self) -> bool {
        match &self.session {
            Some(s) => s.is_closed(),
            None => {
                self.connected.load(Ordering::Relaxed) > 0
                    && !self.outage.down.load(Ordering::Relaxed)
            }
        }
    }

    /// Writes a group to PostgreSQL, or, while it is away, to the spool (or refuses it).
    async fn write(&mut self, batch: Vec<Pending>) -> (Vec<Pending>, Result<Written, WriteError>) {
        if self.session.is_some() && self.outage.down.load(Ordering::Relaxed) {
            // Another writer's connection failed (the background reconnect finds out whether the server
            // is back).
            self.disconnect();
            let reason = self
                .outage
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            self.failed(reason);
        } else if self.connects_first() {
            self.disconnect();
            match self.connector.session(!self.migrated).await {
                Ok(s) => self.connect(s),
                Err(e) => self.went_away(e.message),
            }
        }
        if let Some(session) = &self.session {
            match session.store(&batch, &self.connector).await {
                Ok(inserted) => return (batch, Ok(Written::Stored(inserted))),
                Err(e) if !e.transient && !session.is_closed() => return (batch, Err(e)),
                Err(e) if !e.transient && !session.client.is_closed() => {
                    // A statement error (500) that left the connection unusable: the next group gets a new one.
                    self.disconnect();
                    return (batch, Err(e));
                }
                Err(e) => {
                    // The background reconnect takes over from here.
                    self.disconnect();
                    self.went_away(e.message);
                }
            }
        }
        self.spool_or_refuse(batch).await
    }

    async fn spool_or_refuse(
        &self,
        batch: Vec<Pending>,
    ) -> (Vec<Pending>, Result<Written, WriteError>) {
        let cause = self.down_reason.clone();
        let Some(spool) = self.spool.clone() else {
            return (batch, Err(WriteError::transient(cause)));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = if batch.iter().all(Pending::is_probe) {
                // A probe while away: only a spool whose disk failed needs to find out whether it works.
                if spool.write_failing() {
                    spool.probe()
                } else {
                    Ok(())
                }
            } else {
                spool.append(batch.iter().flat_map(|p| p.events.iter()))
            };
            (batch, result)
        })
        .await;
        match joined {
            Ok((batch, Ok(()))) => (batch, Ok(Written::Spooled)),
            Ok((batch, Err(e))) => (batch, Err(WriteError::transient(format!("{cause}; {e}")))),
            // The submitters of a panicked append are answered "writer stopped" (their replies dropped).
            Err(e) => (
                Vec::new(),
                Err(WriteError::fatal(format!("spool task: {e}"))),
            ),
        }
    }
}

/// A connection and the task that drives it. (Boxed where it is kept: a client is large, and the store's
/// backend enum holds the reader inline.)
type Connection = (Client, JoinHandle<()>);

/// The query side: one shared connection (tokio-postgres pipelines concurrent queries on it).
pub(crate) struct Reader {
    connector: Arc<Connector>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// The rollup upkeep's own connection (its transactions need the client to itself), kept between
    /// rounds: one connection per node, not one every [`super::ROLLUP_INTERVAL`].
    rollup_conn: tokio::sync::Mutex<Option<Box<Connection>>>,
    /// The latest retention cutoff: partitions are not made again for days retention has dropped.
    retention_cutoff: AtomicI64,
}

impl Reader {
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (c, _task) = self
            .connector
            .connect()
            .await
            .map_err(StoreError::Unavailable)?;
        let c = Arc::new(c);
        *slot = Some(c.clone());
        Ok(c)
    }

    fn db(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError::Database(self.connector.describe(&e))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    pub async fn count_events(&self, site: Option<&str>) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let row = match site {
            Some(s) => {
                c.query_one("SELECT COUNT(*) FROM events WHERE site = $1", &[&s])
                    .await
            }
            None => c.query_one("SELECT COUNT(*) FROM events", &[]).await,
        }
        .map_err(|e| self.db(e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    pub async fn delete_session(&self, site: &str, session_id: &str) -> Result<u64, StoreError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM events WHERE site = $1 AND session_id = $2",
            &[&site, &session_id],
        )
        .await
        .map_err(|e| self.db(e))
    }

    /// Creates the day partitions around `now_ms` that do not exist yet (not those retention has dropped);
    /// how many.
    pub async fn create_partitions(&self, now_ms: i64) -> Result<usize, StoreError> {
        let (mut client, task) = self
            .connector
            .connect()
            .await
            .map_err(StoreError::Unavailable)?;
        let floor = self.retention_cutoff.load(Ordering::Relaxed);
        let n = self
            .connector
            .create_partitions(&mut client, floor, now_ms)
            .await;
        task.abort();
        Ok(n)
    }

    /// Drops the partitions whose every event has a client timestamp before the cutoff, and deletes the
    /// events received before it from the partitions that are not days (legacy, default), in chunks.
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<Removed, StoreError> {
        self.retention_cutoff
            .fetch_max(cutoff_ms, Ordering::Relaxed);
        // Schema changes on a connection of their own (transactions with a lock timeout).
        let (mut ddl, task) = self
            .connector
            .connect()
            .await
            .map_err(StoreError::Unavailable)?;
        let existing = partitions::list(&ddl).await.map_err(|e| self.db(e));
        let mut removed = Removed::default();
        let dropped = async {
            let existing = existing?;
            let (drop, rows) = partitions::retention_plan(&existing, cutoff_ms);
            for name in drop {
                partitions::drop_partition(&mut ddl, name)
                    .await
                    .map_err(|e| self.db(e))?;
                removed.partitions += 1;
            }
            Ok::<_, StoreError>(rows.into_iter().map(str::to_owned).collect::<Vec<_>>())
        }
        .await;
        task.abort();
        let c = self.client().await?;
        for name in dropped? {
            let table = partitions::ident(&name);
            loop {
                // By row, not by id: an id is unique only per site (migration 8). A ctid is unique only in
                // its partition: each statement names one.
                let n = c
                    .execute(
                        &format!(
                            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
                             SELECT ctid FROM {table} WHERE received_ms < $1 LIMIT $2))"
                        ),
                        &[&cutoff_ms, &DELETE_CHUNK_ROWS],
                    )
                    .await
                    .map_err(|e| self.db(e))?;
                removed.events += n;
                if (n as i64) < DELETE_CHUNK_ROWS {
                    break;
                }
            }
        }
        // Groups not seen since the cutoff go with their events, and so do the rollups.
        c.execute(
            "DELETE FROM error_groups WHERE last_seen_ms < $1",
            &[&cutoff_ms],
        )
        .await
        .map_err(|e| self.db(e))?;
        let [minute, hour, day] = rollup::retention_bounds(cutoff_ms);
        c.execute(
            &postgres_sql(rollup::RETENTION_SQL),
            &[&minute, &hour, &day],
        )
        .await
        .map_err(|e| self.db(e))?;
        Ok(removed)
    }

    /// Stores a map in one transaction on a connection of its own (uploads are rare), under an advisory
    /// lock per (site, release) so that nodes uploading at once cannot pass the per-release limit together.
    pub async fn put_sourcemap(&self, m: NewSourceMap) -> Result<PutOutcome, StoreError> {
        let (mut client, task) = self
            .connector
            .connect()
            .await
            .map_err(StoreError::Unavailable)?;
        let result = async {
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                &[&m.site, &m.release],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT COUNT(*) FILTER (WHERE url <> $3), COUNT(*) FILTER (WHERE url = $3) \
                     FROM sourcemaps WHERE site = $1 AND release = $2",
                    &[&m.site, &m.release, &m.url],
                )
                .await?;
            let (others, same): (i64, i64) = (row.get(0), row.get(1));
            if others as usize >= m.max_per_release {
                return Ok(PutOutcome::ReleaseFull {
                    maps: others as usize,
                });
            }
            tx.execute(
                "INSERT INTO sourcemaps (site, release, url, name, bytes, uploaded_ms, content) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site, release, url) DO UPDATE SET \
                 name = EXCLUDED.name, bytes = EXCLUDED.bytes, uploaded_ms = EXCLUDED.uploaded_ms, \
                 content = EXCLUDED.content",
                &[
                    &m.site,
                    &m.release,
                    &m.url,
                    &m.name,
                    &(m.content.len() as i64),
                    &m.uploaded_ms,
                    &m.content,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(PutOutcome::Stored { replaced: same > 0 })
        }
        .await
        .map_err(|e| self.db(e));
        drop(client);
        task.abort();
        result
    }

    pub async fn list_sourcemaps(
        &self,
        site: &str,
        release: Option<&str>,
    ) -> Result<Vec<SourceMapInfo>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT release, url, name, bytes, uploaded_ms FROM sourcemaps \
                 WHERE site = $1 AND ($2::text IS NULL OR release = $2) ORDER BY release, url",
                &[&site, &release],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(rows
            .iter()
            .map(|r| SourceMapInfo {
                release: r.get(0),
                url: r.get(1),
                name: r.get(2),
                bytes: r.get::<_, i64>(3) as u64,
                uploaded_ms: r.get(4),
            })
            .collect())
    }

    pub async fn get_sourcemap(
        &self,
        site: &str,
        release: &str,
        url: &str,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT content FROM sourcemaps WHERE site = $1 AND release = $2 AND url = $3",
                &[&site, &release, &url],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn delete_sourcemaps(&self, site: &str, release: &str) -> Result<u64, StoreError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM sourcemaps WHERE site = $1 AND release = $2",
            &[&site, &release],
        )
        .await
        .map_err(|e| self.db(e))
    }

    /// Creates the groups not stored yet (counted: the rows this statement inserted) and moves the others'
    /// `last_seen_ms`.
    pub async fn touch_error_groups(
        &self,
        site: &str,
        fingerprints: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        // In key order, for the reason `Session::insert` gives.
        let mut fingerprints = fingerprints.to_vec();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let c = self.client().await?;
        let created = c
            .execute(
                "INSERT INTO error_groups (site, fingerprint, first_seen_ms, last_seen_ms) \
                 SELECT $1, f, $3, $3 FROM UNNEST($2::text[]) AS f \
                 ON CONFLICT (site, fingerprint) DO NOTHING",
                &[&site, &fingerprints, &now_ms],
            )
            .await
            .map_err(|e| self.db(e))?;
        c.execute(
            "UPDATE error_groups SET last_seen_ms = $3 \
             WHERE site = $1 AND fingerprint = ANY($2::text[]) AND last_seen_ms < $3",
            &[&site, &fingerprints, &now_ms],
        )
        .await
        .map_err(|e| self.db(e))?;
        Ok(created as usize)
    }

    /// The rollup rows of one kind in a window ([`rollup::window_sql`]), one snapshot.
    pub async fn rollup_rows(
        &self,
        site: &str,
        kind: rollup::Kind,
        bounds: [i64; 3],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &postgres_sql(rollup::window_sql(kind)),
                &[&site, &kind.as_str(), &bounds[0], &bounds[1], &bounds[2]],
            )
            .await
            .map_err(|e| self.db(e))?;
        rows.into_iter()
            .map(|r| {
                let cells = (|| {
                    Ok::<_, tokio_postgres::Error>(vec![
                        Cell::Text(r.try_get(0)?),
                        Cell::Text(r.try_get(1)?),
                        Cell::Int(r.try_get(2)?),
                        Cell::Int(r.try_get(3)?),
                        Cell::Int(r.try_get(4)?),
                        Cell::Int(r.try_get(5)?),
                        Cell::Int(r.try_get(6)?),
                        // (NULL where the kind only counts.)
                        r.try_get::<_, Option<Vec<u8>>>(7)?
                            .map_or(Cell::Null, Cell::Blob),
                        r.try_get::<_, Option<Vec<u8>>>(8)?
                            .map_or(Cell::Null, Cell::Blob),
                        r.try_get::<_, Option<i64>>(9)?
                            .map_or(Cell::Null, Cell::Int),
                        r.try_get::<_, Option<i64>>(10)?
                            .map_or(Cell::Null, Cell::Int),
                    ])
                })();
                cells.map_err(|e| self.db(e))
            })
            .collect()
    }

    /// Runs `work` in a transaction on the rollup connection, holding the rollup lock (nodes take turns:
    /// the second finds the work done). The connection is kept for the next round unless it closed or the
    /// round failed (a connection in an unknown state is not reused).
    async fn with_rollup_lock<T>(
        &self,
        work: impl for<'t> FnOnce(
            &'t tokio_postgres::Transaction<'t>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 't>,
        >,
    ) -> Result<T, StoreError> {
        let mut slot = self.rollup_conn.lock().await;
        let (mut client, task) = match slot.take().map(|b| *b) {
            Some((client, task)) if !client.is_closed() => (client, task),
            stale => {
                if let Some((_, task)) = stale {
                    task.abort();
                }
                self.connector
                    .connect()
                    .await
                    .map_err(StoreError::Unavailable)?
            }
        };
        let result = async {
            let tx = client.transaction().await.map_err(|e| self.db(e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK_KEY])
                .await
                .map_err(|e| self.db(e))?;
            let out = work(&tx).await?;
            tx.commit().await.map_err(|e| self.db(e))?;
            Ok(out)
        }
        .await;
        match result {
            Ok(_) => *slot = Some(Box::new((client, task))),
            Err(_) => task.abort(),
        }
        result
    }

    /// Folds up to [`rollup::COMPACT_CHUNK`] partial rollup rows into merged ones in one transaction; how
    /// many were folded.
    pub async fn compact_rollups(&self) -> Result<usize, StoreError> {
        let connector = self.connector.clone();
        let db = move |e: tokio_postgres::Error| StoreError::Database(connector.describe(&e));
        self.with_rollup_lock(|tx| {
            Box::pin(async move {
                let taken = tx
                    .query(
                        &format!(
                            "DELETE FROM rollups WHERE ctid = ANY(ARRAY(\
                                 SELECT ctid FROM rollups WHERE level = 0 LIMIT $1)) RETURNING {}",
                            rollup::COLUMNS
                        ),
                        &[&rollup::COMPACT_CHUNK],
                    )
                    .await
                    .map_err(&db)?;
                let n = taken.len();
                if n == 0 {
                    return Ok(0);
                }
                let partials = taken
                    .iter()
                    .map(rollup_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let targets = rollup::fold(partials)?;
                put_merged(tx, targets, &db).await?;
                Ok(n)
            })
        })
        .await
    }

    /// Rolls up the next [`rollup::COMPACT_CHUNK`] events that backfill `b` walks (events stored before its
    /// kinds existed, schema migrations 9 and 12), in (site, event_id) order, straight into merged minute,
    /// hour and day rows (no partial rows to append, read back and fold), in one transaction with its
    /// cursor; true once none is left.
    pub async fn backfill_rollups(&self, b: rollup::Backfill) -> Result<bool, StoreError> {
        let connector = self.connector.clone();
        let db = move |e: tokio_postgres::Error| StoreError::Database(connector.describe(&e));
        self.with_rollup_lock(|tx| {
                Box::pin(async move {
                    let state = tx
                        .query_one(
                            "SELECT until_ms, cursor_site, cursor_id, done FROM rollup_backfill WHERE id = $1",
                            &[&(b.id() as i32)],
                        )
                        .await
                        .map_err(&db)?;
                    let (until_ms, site, id, done): (i64, String, String, i32) = (|| {
                        Ok::<_, tokio_postgres::Error>((
                            state.try_get(0)?,
                            state.try_get(1)?,
                            state.try_get(2)?,
                            state.try_get(3)?,
                        ))
                    })()
                    .map_err(&db)?;
                    if done != 0 {
                        return Ok(true);
                    }
                    // The rest of the cursor's site, then the sites after it: two queries, where one
                    // `(site, event_id) > ($1, $2)` let PostgreSQL estimate the row comparison by its first
                    // column alone, expect a handful of rows from the last site and sort all of its events
                    // left at each chunk. Ordered by the table's columns (`events.`): a bare `event_id`
                    // names the selected text, which no index holds in order.
                    let select = |cond: &str, received: &str, limit: &str| {
                        format!(
                            "SELECT site, event_id::text, session_id, event_type, client_ts_ms, route, value, \
                             name, endpoint, status, rating, received_ms, browser, release, fingerprint \
                             FROM events WHERE {cond} AND received_ms < {received}{} \
                             ORDER BY events.site, events.event_id LIMIT {limit}",
                            b.events_filter()
                        )
                    };
                    let mut rows = tx
                        .query(
                            &select("site = $1 AND event_id > $2::text::uuid", "$3", "$4"),
                            &[&site, &id, &until_ms, &rollup::COMPACT_CHUNK],
                        )
                        .await
                        .map_err(&db)?;
                    let rest = rollup::COMPACT_CHUNK - rows.len() as i64;
                    if rest > 0 {
                        rows.extend(
                            tx.query(&select("site > $1", "$2", "$3"), &[&site, &until_ms, &rest])
                                .await
                                .map_err(&db)?,
                        );
                    }
                    let mut partials = Partials::received_since(rollup::Cutoffs::only(b));
                    let mut last = (site, id);
                    for r in &rows {
                        let fields = (|| {
                            Ok::<_, tokio_postgres::Error>(((
                                r.try_get::<_, String>(0)?,
                                r.try_get::<_, String>(1)?,
                                r.try_get::<_, &str>(2)?,
                                r.try_get::<_, &str>(3)?,
                                r.try_get::<_, i64>(4)?,
                                r.try_get::<_, String>(5)?,
                                r.try_get::<_, Option<f64>>(6)?,
                                r.try_get::<_, Option<&str>>(7)?,
                                r.try_get::<_, Option<&str>>(8)?,
                                r.try_get::<_, Option<i32>>(9)?,
                                r.try_get::<_, Option<&str>>(10)?,
                            ), (
                                r.try_get::<_, i64>(11)?,
                                r.try_get::<_, &str>(12)?,
                                r.try_get::<_, Option<&str>>(13)?,
                                r.try_get::<_, Option<&str>>(14)?,
                            )))
                        })()
                        .map_err(&db)?;
                        let (site, id, session, kind, ts, route, value, name, endpoint, status, rating) =
                            fields.0;
                        let (received_ms, browser, release, fingerprint) = fields.1;
                        let (site_text, route_text): (super::Text, super::Text) =
                            (site.as_str().into(), route.into());
                        partials.add_fields(Counted {
                            site: &site_text,
                            session_id: session,
                            event_type: kind,
                            client_ts_ms: ts,
                            route: &route_text,
                            value,
                            name,
                            endpoint,
                            status,
                            rating,
                            received_ms,
                            browser,
                            release,
                            fingerprint,
                        });
                        last = (site, id);
                    }
                    if !partials.is_empty() {
                        put_merged(tx, partials.folded(), &db).await?;
                    }
                    let done = (rows.len() as i64) < rollup::COMPACT_CHUNK;
                    tx.execute(
                        "UPDATE rollup_backfill SET cursor_site = $1, cursor_id = $2, done = $3 WHERE id = $4",
                        &[&last.0, &last.1, &i32::from(done), &(b.id() as i32)],
                    )
                    .await
                    .map_err(&db)?;
                    Ok(done)
                })
            })
        .await
    }

    pub async fn stats_query(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
        received_since_ms: i64,
        extra: Vec<Param>,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let c = self.client().await?;
        let extra: Vec<Box<dyn ToSql + Sync + Send>> = extra
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync + Send> {
                match p {
                    Param::Text(t) => Box::new(t),
                    Param::Int(i) => Box::new(i),
                }
            })
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&site, &since_ms, &received_since_ms];
        params.extend(extra.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
        let rows = c
            .query(&postgres_sql(sql), &params)
            .await
            .map_err(|e| self.db(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let t = col.type_();
                let cell = if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)
                        .map(|v| v.map_or(Cell::Null, Cell::Int))
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)
                        .map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into())))
                } else if *t == Type::FLOAT8 {
                    row.try_get::<_, Option<f64>>(i)
                        .map(|v| v.map_or(Cell::Null, Cell::Real))
                } else {
                    row.try_get::<_, Option<String>>(i)
                        .map(|v| v.map_or(Cell::Null, Cell::Text))
                };
                cells.push(cell.map_err(|e| self.db(e))?);
            }
            out.push(cells);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_url_error_hides_the_password() {
        let err = Connector::new(
            "postgres://u:s3cretpw@host:notaport/db",
            Duration::from_secs(1),
            0,
        )
        .err()
        .expect("invalid");
        let text = err.to_string();
        assert!(!text.contains("s3cretpw"), "{text}");
    }

    #[test]
    fn sqlstates_that_pass_are_transient() {
        for code in [
            "57P03", "57P01", "25006", "53100", "53300", "08006", "58030", "40001",
        ] {
            assert!(transient_code(&SqlState::from_code(code)), "{code}");
        }
        // Bugs and configuration mistakes stay 500.
        for code in ["42P01", "42703", "23505", "22P05", "28P01", "3D000"] {
            assert!(!transient_code(&SqlState::from_code(code)), "{code}");
        }
    }

    #[tokio::test]
    async fn unreachable_server_error_hides_the_password() {
        // Port 1 on loopback: nothing listens there, the connect is refused at once.
        let c = Connector::new(
            "postgres://u:s3cretpw@127.0.0.1:1/db",
            Duration::from_secs(5),
            0,
        )
        .unwrap();
        let Err(err) = c.connect().await else {
            panic!("connect to port 1 succeeded")
        };
        assert!(
            !err.contains("s3cretpw") && !err.contains("postgres://"),
            "{err}"
        );
    }
}
