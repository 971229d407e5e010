//! PostgreSQL backend: each group is one `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT DO NOTHING`.
//!
//! One statement per group is one transaction (autocommit), one round trip and one WAL flush, whatever the
//! group size; the statement is prepared once per connection. The writer owns its own connection; queries
//! and deletes share a second one. Either is re-established on the next use after it broke (a group that
//! was in flight when the connection died fails, and its submitters may retry: event ids make that safe).
//! Every error text passes through a [`Redactor`] holding the URL and password.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};
use vantage_common::Redactor;

use super::queue::{take_batch, Pending, Queue};
use super::schema::{
    self, text_safe, EVENT_KEY_COLUMNS, INSERT_COLUMNS, MIGRATIONS, MIGRATIONS_TABLE_POSTGRES,
};
use super::stats::{postgres_sql, Cell};
use super::{EventRecord, StoreError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Serialises migrations of several ingest nodes starting at once against one database.
const MIGRATION_LOCK_KEY: i64 = 0x0076_616e_7461_6765; // "vantage"
/// Rows per retention delete statement, so inserts are never held up for long.
const DELETE_CHUNK_ROWS: i64 = 5_000;

/// Connects on demand and remembers how to describe errors safely.
struct Connector {
    config: tokio_postgres::Config,
    redactor: Redactor,
}

impl Connector {
    fn new(url: &str) -> Result<Self, StoreError> {
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
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("vantage-ingest");
        Ok(Self { config, redactor })
    }

    async fn connect(&self) -> Result<Client, String> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| format!("cannot connect to postgres: {}", self.describe(&e)))?;
        let redactor = self.redactor.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %redactor.redact(&e.to_string()), "postgres connection closed");
            }
        });
        Ok(client)
    }

    /// The error's text without anything secret; server errors as `message (SQLSTATE code)`.
    fn describe(&self, e: &tokio_postgres::Error) -> String {
        let text = match e.as_db_error() {
            Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            None => e.to_string(),
        };
        self.redactor.redact(&text)
    }
}

/// Opens the connections, migrates, and starts the writer task.
pub(crate) async fn open(
    url: &str,
    rx: mpsc::UnboundedReceiver<Pending>,
    queue: Arc<Queue>,
    max_batch_events: usize,
    writer_done: watch::Sender<bool>,
) -> Result<Reader, StoreError> {
    let connector = Arc::new(Connector::new(url)?);
    let mut client = connector.connect().await.map_err(StoreError::Unavailable)?;
    migrate(&mut client, &connector).await?;
    let insert = client
        .prepare(&insert_sql())
        .await
        .map_err(|e| StoreError::Database(connector.describe(&e)))?;
    let writer = Writer {
        connector: connector.clone(),
        session: Some((client, insert)),
    };
    tokio::spawn(async move {
        writer.run(rx, &queue, max_batch_events).await;
        let _ = writer_done.send(true);
    });
    let reader = Reader {
        connector,
        client: tokio::sync::Mutex::new(None),
    };
    // Fail at open, not at the first query, when a second connection is impossible.
    reader.client().await?;
    Ok(reader)
}

async fn migrate(client: &mut Client, connector: &Connector) -> Result<(), StoreError> {
    let err = |e: tokio_postgres::Error| StoreError::Database(connector.describe(&e));
    let tx = client.transaction().await.map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(err)?;
    tx.batch_execute(MIGRATIONS_TABLE_POSTGRES)
        .await
        .map_err(err)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::int8 FROM schema_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    if current > schema::latest_version() {
        return Err(StoreError::Unavailable(format!(
            "database schema version {current} is newer than this build knows ({})",
            schema::latest_version()
        )));
    }
    if current < schema::latest_version() {
        // Some migrations build an index over every event: on a large table startup waits for it.
        tracing::info!(
            from = current,
            to = schema::latest_version(),
            "applying postgres schema migrations"
        );
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let started = Instant::now();
        tx.batch_execute(m.postgres).await.map_err(|e| {
            StoreError::Database(format!(
                "migration {}: {}",
                m.version,
                connector.describe(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&m.version, &crate::clock::now_ms()],
        )
        .await
        .map_err(err)?;
        tracing::info!(
            version = m.version,
            took_ms = started.elapsed().as_millis() as u64,
            "applied postgres schema migration"
        );
    }
    tx.commit().await.map_err(err)
}

fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({INSERT_COLUMNS}) SELECT * FROM UNNEST(\
         $1::text[]::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], $14::text[], $15::int4[], \
         $16::text[], $17::text[]) ON CONFLICT ({EVENT_KEY_COLUMNS}) DO NOTHING \
         RETURNING site, session_id, event_id::text"
    )
}

struct Writer {
    connector: Arc<Connector>,
    /// The writer's connection and its prepared insert; `None` after the connection broke.
    session: Option<(Client, Statement)>,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        queue: &Queue,
        max_batch_events: usize,
    ) {
        while let Some(first) = rx.recv().await {
            let batch = take_batch(first, &mut rx, max_batch_events);
            let started = Instant::now();
            let result = self.write(&batch).await;
            queue.finish(batch, result, started.elapsed());
        }
        tracing::debug!("postgres writer drained and stopped");
    }

    /// Inserts the group; how many of each submit's events were new, in order.
    async fn write(&mut self, batch: &[Pending]) -> Result<Vec<usize>, String> {
        if !matches!(&self.session, Some((c, _)) if !c.is_closed()) {
            self.session = None;
            let client = self.connector.connect().await?;
            let insert = client
                .prepare(&insert_sql())
                .await
                .map_err(|e| self.connector.describe(&e))?;
            self.session = Some((client, insert));
        }
        let Some((client, insert)) = self.session.as_ref() else {
            return Err("no postgres connection".into());
        };

        let n: usize = batch.iter().map(|p| p.events.len()).sum();
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
        for e in batch.iter().flat_map(|p| p.events.iter()) {
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
        }
        let params: [&(dyn ToSql + Sync); 17] = [
            &ids, &site, &session, &kind, &client_ts, &received, &route, &url, &browser, &os,
            &device, &value, &name, &endpoint, &status, &rating, &raw,
        ];
        match client.query(insert, &params).await {
            Ok(rows) => {
                // The keys PostgreSQL reports as newly stored, by id; within the group, the first event
                // with a key gets it, a later one is the duplicate.
                let mut fresh: HashMap<uuid::Uuid, Vec<(String, String)>> =
                    HashMap::with_capacity(rows.len());
                for row in rows {
                    let (site, session, id) = (|| {
                        Ok::<_, tokio_postgres::Error>((
                            row.try_get::<_, String>(0)?,
                            row.try_get::<_, String>(1)?,
                            row.try_get::<_, &str>(2)?.parse().unwrap_or_default(),
                        ))
                    })()
                    .map_err(|e| self.connector.describe(&e))?;
                    fresh.entry(id).or_default().push((site, session));
                }
                let mut take = |e: &EventRecord| {
                    let Some(keys) = fresh.get_mut(&e.event_id) else {
                        return false;
                    };
                    let (site, session) = (text_safe(&e.site), text_safe(&e.session_id));
                    match keys.iter().position(|(a, b)| *a == site && *b == session) {
                        Some(i) => {
                            keys.swap_remove(i);
                            true
                        }
                        None => false,
                    }
                };
                Ok(batch
                    .iter()
                    .map(|p| p.events.iter().filter(|e| take(e)).count())
                    .collect())
            }
            Err(e) => {
                let msg = self.connector.describe(&e);
                if client.is_closed() {
                    self.session = None;
                }
                Err(msg)
            }
        }
    }
}

/// The query side: one shared connection (tokio-postgres pipelines concurrent queries on it).
pub(crate) struct Reader {
    connector: Arc<Connector>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Reader {
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            self.connector
                .connect()
                .await
                .map_err(StoreError::Unavailable)?,
        );
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

    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let mut total = 0;
        loop {
            let n = c
                .execute(
                    "DELETE FROM events WHERE event_id IN \
                     (SELECT event_id FROM events WHERE received_ms < $1 LIMIT $2)",
                    &[&cutoff_ms, &DELETE_CHUNK_ROWS],
                )
                .await
                .map_err(|e| self.db(e))?;
            total += n;
            if (n as i64) < DELETE_CHUNK_ROWS {
                return Ok(total);
            }
        }
    }

    pub async fn stats_query(
        &self,
        sql: &'static str,
        site: &str,
        since_ms: i64,
        received_since_ms: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(&postgres_sql(sql), &[&site, &since_ms, &received_since_ms])
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
        let err = Connector::new("postgres://u:s3cretpw@host:notaport/db")
            .err()
            .expect("invalid");
        let text = err.to_string();
        assert!(!text.contains("s3cretpw"), "{text}");
    }

    #[tokio::test]
    async fn unreachable_server_error_hides_the_password() {
        // Port 1 on loopback: nothing listens there, the connect is refused at once.
        let c = Connector::new("postgres://u:s3cretpw@127.0.0.1:1/db").unwrap();
        let Err(err) = c.connect().await else {
            panic!("connect to port 1 succeeded")
        };
        assert!(
            !err.contains("s3cretpw") && !err.contains("postgres://"),
            "{err}"
        );
    }
}
