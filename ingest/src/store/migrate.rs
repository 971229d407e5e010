//! The one migration runner: applies the migrations of [`schema::MIGRATIONS`] newer than the version a
//! database records, through a small per-backend adapter ([`Migrator`]).
//!
//! Applied versions are recorded one row each in `schema_migrations(version, applied_ms)`, the table both
//! backends have always used, so a database made by any earlier build opens and resumes where it stopped.
//! The caller runs the whole pass in one transaction (and, on PostgreSQL, under an advisory lock), so a
//! failed migration leaves the database at the version it had.

use std::time::Instant;

use super::schema::{self, Migration, MIGRATIONS};

/// The SQL dialect a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The migration's text in this dialect.
    fn text(self, m: &Migration) -> &'static str {
        match self {
            Self::Sqlite => m.sqlite,
            Self::Postgres => m.postgres,
        }
    }

    fn records_table(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)"
            }
            Self::Postgres => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            }
        }
    }

    /// One integer column, one row: the newest recorded version, 0 when none.
    fn recorded_version(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            Self::Postgres => "SELECT COALESCE(MAX(version), 0)::int8 FROM schema_migrations",
        }
    }

    /// Parameters: the version, the time applied (ms since the epoch).
    fn record(self) -> &'static str {
        match self {
            Self::Sqlite => "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            Self::Postgres => "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
        }
    }
}

/// What the runner needs from a backend: statements run inside the caller's transaction.
pub(crate) trait Migrator {
    type Error;
    const DIALECT: Dialect;
    /// Runs statements that return nothing.
    async fn execute_batch(&mut self, sql: &str) -> Result<(), Self::Error>;
    /// Runs a query that returns one row of one integer.
    async fn query_i64(&mut self, sql: &str) -> Result<i64, Self::Error>;
    /// Runs a statement with two integer parameters.
    async fn execute_with(&mut self, sql: &str, a: i64, b: i64) -> Result<(), Self::Error>;
    /// The database was migrated by a newer build than this one.
    fn newer(message: String) -> Self::Error;
    /// Migration `version`'s own text failed with `e`.
    fn step_failed(version: i64, e: Self::Error) -> Self::Error;
}

/// Applies, in order, every migration newer than the recorded version, recording each.
pub(crate) async fn run<M: Migrator>(db: &mut M) -> Result<(), M::Error> {
    let dialect = M::DIALECT;
    db.execute_batch(dialect.records_table()).await?;
    let current = db.query_i64(dialect.recorded_version()).await?;
    let latest = schema::latest_version();
    if current > latest {
        return Err(M::newer(format!(
            "database schema version {current} is newer than this build knows ({latest})"
        )));
    }
    if current < latest {
        // Some migrations rebuild the events table or index every event: on a large database the operator
        // should see why startup waits.
        tracing::info!(
            from = current,
            to = latest,
            "applying {} schema migrations",
            dialect.name()
        );
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let started = Instant::now();
        db.execute_batch(dialect.text(m))
            .await
            .map_err(|e| M::step_failed(m.version, e))?;
        db.execute_with(dialect.record(), m.version, crate::clock::now_ms())
            .await?;
        tracing::info!(
            version = m.version,
            took_ms = started.elapsed().as_millis() as u64,
            "applied {} schema migration",
            dialect.name()
        );
    }
    Ok(())
}
