//! Draining the spool into PostgreSQL once the writer can write again: oldest first, in chunks, each one
//! `INSERT ... ON CONFLICT DO NOTHING` committed in PostgreSQL before it is deleted from the spool. A crash
//! between the two leaves the chunk in the spool, and the next drain inserts nothing twice; a restart with a
//! non-empty spool simply drains it.
//!
//! The pace leaves room for live traffic: at most `drain_events_per_second`, and after each chunk a pause at
//! least as long as the chunk took (so the drain never holds its connection more than half of the time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::postgres::{Connector, Session};
use super::spool::Spool;

/// Events per drain statement.
const CHUNK_EVENTS: usize = 1_000;
/// Pause after a failed drain attempt.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// One drain from a non-empty spool to an empty one, for its two log lines.
struct Run {
    started: Instant,
    events: u64,
    new: u64,
    errors: u64,
}

/// Drains `spool` whenever it holds events and `available` (the writer's health) is true. Runs until
/// aborted; stopping it anywhere loses nothing.
pub(super) async fn run(
    spool: Arc<Spool>,
    connector: Arc<Connector>,
    mut available: watch::Receiver<bool>,
) {
    let rate = f64::from(spool.config().drain_events_per_second.max(1));
    let mut session: Option<Session> = None;
    let mut run: Option<Run> = None;
    loop {
        if spool.is_empty() {
            if let Some(r) = run.take() {
                tracing::info!(
                    events = r.events,
                    new_events = r.new,
                    errors = r.errors,
                    secs = (r.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                    "spool drained into postgres"
                );
            }
            session = None;
            spool.appended.notified().await;
            continue;
        }
        if !*available.borrow_and_update() {
            session = None;
            if available.changed().await.is_err() {
                return;
            }
            continue;
        }
        let r = run.get_or_insert_with(|| {
            let level = spool.level();
            tracing::info!(
                events = level.events,
                bytes = level.bytes,
                "draining the spool into postgres"
            );
            Run {
                started: Instant::now(),
                events: 0,
                new: 0,
                errors: 0,
            }
        });
        match drain_chunk(&spool, &connector, &mut session).await {
            Ok((events, new, took)) => {
                r.events += events as u64;
                r.new += new as u64;
                if spool.is_empty() {
                    continue;
                }
                let pace = Duration::from_secs_f64(events as f64 / rate).max(took * 2);
                tokio::time::sleep(pace.saturating_sub(took)).await;
            }
            Err(e) => {
                spool.drain_error();
                if r.errors == 0 {
                    // One line per drain; the count is in the final line and the metric.
                    tracing::warn!(error = %e, "spool drain attempt failed; retrying");
                }
                r.errors += 1;
                session = None;
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
        }
    }
}

/// Moves the oldest chunk into PostgreSQL: (events, newly stored, time in PostgreSQL).
async fn drain_chunk(
    spool: &Arc<Spool>,
    connector: &Connector,
    session: &mut Option<Session>,
) -> Result<(usize, usize, Duration), String> {
    let s = match session {
        Some(s) if !s.is_closed() => s,
        _ => session.insert(connector.session(false).await.map_err(|e| e.message)?),
    };
    let reader = spool.clone();
    let chunk = tokio::task::spawn_blocking(move || reader.oldest(CHUNK_EVENTS))
        .await
        .map_err(|e| format!("spool read task: {e}"))??;
    let started = Instant::now();
    let new = tokio::time::timeout(
        connector.timeout(),
        s.insert(chunk.iter().map(|c| &c.event)),
    )
    .await
    .map_err(|_| format!("postgres did not answer within {:?}", connector.timeout()))?
    .map_err(|e| connector.write_error(&e).message)?
    .len();
    let took = started.elapsed();
    let events = chunk.len();
    let remover = spool.clone();
    tokio::task::spawn_blocking(move || remover.remove(&chunk))
        .await
        .map_err(|e| format!("spool delete task: {e}"))??;
    Ok((events, new, took))
}
