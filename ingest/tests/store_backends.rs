//! The event store against real SQLite (temp dir) and real PostgreSQL (a fresh database per test): the same
//! cases run on both backends. (The store's throughput benchmark is `bench/ingest/store.rs`.)
//!
//! PostgreSQL: `VANTAGE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) names the
//! server; each test creates `vantage_test_<uuid>` there (`tests/support`) and drops it at the end. An
//! unreachable server fails the test.

use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use vantage_ingest::store::{
    ApiStats, Bucket, ErrorGroup, ErrorStats, EventRecord, Facet, MessageCount, Occurrence,
    PageStats, Sample, SessionEvent, SessionSummary, Store, StoreConfig, StoreError, SubmitError,
    SubmitOutcome, VitalStats,
};

// ---------------------------------------------------------------------------------------------------------
// Backends under test

#[macro_use]
mod support;
use support::{
    event_record as event, pg_client as pg_admin, with_db, Backend, Backend as Kind, TestDb,
};

/// Every schema version this build applies, in order.
const ALL_VERSIONS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// Store-level helpers on the shared test database.
impl TestDb {
    fn config(&self, queue_capacity: usize, max_batch_events: usize) -> StoreConfig {
        StoreConfig {
            url: self.url.clone(),
            queue_capacity,
            max_batch_events,
            busy_retry_after_secs: 3,
            max_client_ahead_ms: StoreConfig::DEFAULT_MAX_CLIENT_AHEAD_MS,
            ..StoreConfig::with_url(self.url.clone())
        }
    }

    async fn open(&self) -> Store {
        self.open_with(&self.config(10_000, 1_000), &mut Registry::default())
            .await
    }

    async fn open_with(&self, cfg: &StoreConfig, registry: &mut Registry) -> Store {
        Store::open(cfg, registry).await.expect("store opens")
    }

    /// Takes the database's write lock from a second connection, as an operator or another process
    /// might, so the store's writer waits.
    async fn stall(&self) -> Stall {
        match self.backend {
            Kind::Sqlite => {
                let conn = rusqlite::Connection::open(self.sqlite_path.as_ref().unwrap()).unwrap();
                conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
                Stall::Sqlite(conn)
            }
            Kind::Postgres => {
                let c = pg_admin(&self.url).await;
                c.batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
                    .await
                    .unwrap();
                Stall::Postgres(c)
            }
        }
    }

    /// Runs statements on the database directly (the store closed).
    async fn execute(&self, sql: &str) {
        match self.backend {
            Kind::Sqlite => rusqlite::Connection::open(self.sqlite_path.as_ref().unwrap())
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Kind::Postgres => pg_admin(&self.url).await.batch_execute(sql).await.unwrap(),
        }
    }

    /// Applied schema versions, read directly.
    async fn migration_versions(&self) -> Vec<i64> {
        let sql = "SELECT version FROM schema_migrations ORDER BY version";
        match self.backend {
            Kind::Sqlite => {
                let conn = rusqlite::Connection::open(self.sqlite_path.as_ref().unwrap()).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let rows = stmt.query_map([], |r| r.get(0)).unwrap();
                rows.map(Result::unwrap).collect()
            }
            Kind::Postgres => {
                let c = pg_admin(&self.url).await;
                c.query(sql, &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            }
        }
    }
}

enum Stall {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl Stall {
    async fn release(self) {
        match self {
            Stall::Sqlite(c) => c.execute_batch("COMMIT").unwrap(),
            Stall::Postgres(c) => c.batch_execute("COMMIT").await.unwrap(),
        }
    }

    /// Drops the events table inside the stalling transaction, then commits: the waiting write fails.
    async fn drop_table_and_release(self) {
        match self {
            Stall::Sqlite(c) => c.execute_batch("DROP TABLE events; COMMIT").unwrap(),
            Stall::Postgres(c) => c.batch_execute("DROP TABLE events; COMMIT").await.unwrap(),
        }
    }
}

both!(
    submit_commits_and_counts,
    duplicate_event_ids_are_stored_once,
    busy_when_queue_full_then_everything_commits,
    shutdown_drains_the_queue,
    reopen_keeps_events_and_migrations_run_once,
    migration_8_keeps_the_earliest_of_an_id_in_several_sessions,
    failed_migration_rolls_back_and_newer_schema_refuses_to_open,
    commit_error_fails_every_waiter,
    delete_session_removes_only_that_session,
    delete_older_than_uses_receive_time,
    stats_on_a_known_data_set,
    rollups_count_each_event_once_across_levels_retries_and_backfill,
    error_groups_from_rollups_across_levels_retries_and_upgrade,
    error_groups_on_a_known_data_set,
    sourcemaps_and_error_group_rows,
    timeline_on_a_known_data_set,
    sessions_on_a_known_data_set,
);

// ---------------------------------------------------------------------------------------------------------
// Events

fn customs(site: &str, n: usize) -> Vec<EventRecord> {
    (0..n)
        .map(|i| event(site, &format!("s{i}"), "custom", 1_000))
        .collect()
}

/// The store's metrics as exposition text.
fn metrics_text(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
    out
}

/// Value of an unlabelled sample in exposition text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (generously) until the queue-depth gauge shows `depth`.
async fn wait_for_depth(registry: &Registry, depth: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = sample(&metrics_text(registry), "vantage_ingest_store_queue_depth");
        if now == Some(depth) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue depth stayed at {now:?}, wanted {depth}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Cases

async fn submit_commits_and_counts(kind: Kind) {
    let db = TestDb::new(kind).await;
    let mut registry = Registry::default();
    let store = db.open_with(&db.config(1_000, 100), &mut registry).await;
    store.ping().await.expect("ping");

    let out = store.submit(customs("shop", 3)).await.expect("committed");
    assert_eq!(
        out,
        SubmitOutcome {
            inserted: 3,
            duplicates: vec![],
            spooled: 0
        }
    );
    assert_eq!(store.submit(vec![]).await, Ok(SubmitOutcome::default()));
    store.submit(customs("blog", 2)).await.expect("committed");

    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 3);
    assert_eq!(store.count_events(Some("blog")).await.unwrap(), 2);
    assert_eq!(store.count_events(Some("none")).await.unwrap(), 0);
    assert_eq!(store.count_events(None).await.unwrap(), 5);

    // A submit larger than a group still goes in, and many concurrent submits all commit.
    store
        .submit(customs("shop", 250))
        .await
        .expect("large submit");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.submit(customs("shop", 20)).await },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().inserted, 20);
    }
    assert_eq!(
        store.count_events(Some("shop")).await.unwrap(),
        3 + 250 + 400
    );

    let text = metrics_text(&registry);
    assert!(
        sample(&text, "vantage_ingest_store_commits_total").unwrap() >= 3.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "vantage_ingest_store_events_inserted_total"),
        Some(655.0)
    );
    assert_eq!(sample(&text, "vantage_ingest_store_queue_depth"), Some(0.0));
    assert!(
        text.contains("vantage_ingest_store_commit_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("vantage_ingest_store_batch_events_bucket"),
        "{text}"
    );
    assert!(
        text.contains("vantage_ingest_store_commit_errors_total 0"),
        "{text}"
    );
    store.shutdown().await;
}

async fn duplicate_event_ids_are_stored_once(kind: Kind) {
    let db = TestDb::new(kind).await;
    let mut registry = Registry::default();
    let store = db.open_with(&db.config(1_000, 100), &mut registry).await;
    let first = customs("shop", 2);
    store.submit(first.clone()).await.unwrap();

    // A retried batch with one new event between its old ones: the old ones are named by index.
    let mut retry = first.clone();
    retry.insert(1, event("shop", "s9", "custom", 1_000));
    let out = store.submit(retry).await.unwrap();
    assert_eq!(
        out,
        SubmitOutcome {
            inserted: 1,
            duplicates: vec![0, 2],
            spooled: 0
        }
    );

    // The same id twice in one submit.
    let e = event("shop", "s1", "custom", 1_000);
    let out = store.submit(vec![e.clone(), e.clone()]).await.unwrap();
    assert_eq!(
        out,
        SubmitOutcome {
            inserted: 1,
            duplicates: vec![1],
            spooled: 0
        }
    );

    // The same new id from concurrent submits: exactly one of them inserts it.
    let e = event("shop", "s1", "custom", 1_000);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, e) = (store.clone(), e.clone());
        tasks.push(tokio::spawn(
            async move { s.submit(vec![e]).await.unwrap() },
        ));
    }
    let mut inserted = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert_eq!(out.inserted + out.duplicates.len(), 1);
        inserted += out.inserted;
    }
    assert_eq!(inserted, 1);
    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 5);

    // The key is (site, id): the same id in another session of the site is the same event (stored once),
    // in another site another event.
    let mut other_session = e.clone();
    other_session.session_id = "s2".into();
    let mut other_site = e.clone();
    other_site.site = "blog".into();
    let mut other_site_session = other_site.clone();
    other_site_session.session_id = "s3".into();
    let out = store
        .submit(vec![other_session, other_site, other_site_session])
        .await
        .unwrap();
    assert_eq!(
        out,
        SubmitOutcome {
            inserted: 1,
            duplicates: vec![0, 2],
            spooled: 0
        }
    );
    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 5);
    assert_eq!(store.count_events(Some("blog")).await.unwrap(), 1);
    let text = metrics_text(&registry);
    assert_eq!(
        sample(&text, "vantage_ingest_store_events_duplicate_total"),
        Some(12.0),
        "{text}"
    );
    store.shutdown().await;
}

/// Two stores on one PostgreSQL database (two ingest nodes) writing the same new events at once, as when a
/// browser's retry reaches the other node while the first attempt is being written, each in its own order:
/// every event is stored once and neither write fails. Rows written in the order they came would take the
/// key's locks in opposite orders and deadlock (PostgreSQL aborts one statement: a 503 and a store outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_writing_the_same_events_at_once_do_not_deadlock() {
    let db = TestDb::new(Kind::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    for round in 0..20 {
        let events: Vec<EventRecord> = (0..400)
            .map(|i| event("shop", &format!("r{round}s{}", i % 7), "custom", 1_000))
            .collect();
        let reversed: Vec<EventRecord> = events.iter().rev().cloned().collect();
        let (x, y) = tokio::join!(a.submit(events), b.submit(reversed));
        let (x, y) = (
            x.unwrap_or_else(|e| panic!("round {round}, first node: {e}")),
            y.unwrap_or_else(|e| panic!("round {round}, second node: {e}")),
        );
        assert_eq!(x.inserted + y.inserted, 400, "round {round}: {x:?} {y:?}");
        assert_eq!(
            x.duplicates.len() + y.duplicates.len(),
            400,
            "round {round}: {x:?} {y:?}"
        );
    }
    assert_eq!(a.count_events(Some("shop")).await.unwrap(), 20 * 400);
    a.shutdown().await;
    b.shutdown().await;
}

/// A database file as version 4 of the schema left it (the id alone as primary key), with rows received
/// out of rowid order and a gap, is rebuilt by migration 5: every row and rowid kept, retries of the old
/// rows still recognised, and all of them rolled up by migration 9's backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_version_4_keeps_rows_rowids_and_idempotency() {
    let db = TestDb::new(Kind::Sqlite).await;
    let path = db.sqlite_path.as_ref().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let old: Vec<EventRecord> = (0..50)
        .map(|i| page_load("shop", "/", SINCE + i, Some(100.0 + i as f64)))
        .collect();
    {
        let c = rusqlite::Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0), (4, 0);
             CREATE TABLE events (
                event_id BLOB NOT NULL PRIMARY KEY, site TEXT NOT NULL, session_id TEXT NOT NULL,
                event_type TEXT NOT NULL, client_ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
                route TEXT NOT NULL, url TEXT NOT NULL, browser TEXT NOT NULL, os TEXT NOT NULL,
                device TEXT NOT NULL, value REAL, name TEXT, endpoint TEXT, status INTEGER, rating TEXT,
                raw TEXT NOT NULL);",
        )
        .unwrap();
        for (i, e) in old.iter().enumerate() {
            c.execute(
                "INSERT INTO events (rowid, event_id, site, session_id, event_type, client_ts_ms, \
                 received_ms, route, url, browser, os, device, value, raw) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                rusqlite::params![
                    // Rowids 10, 12, 14, ...: gaps, as deletes leave them.
                    10 + 2 * i as i64,
                    &e.event_id.as_bytes()[..],
                    e.site,
                    e.session_id,
                    e.event_type,
                    e.client_ts_ms,
                    e.received_ms,
                    e.route,
                    e.url,
                    e.browser,
                    e.os,
                    e.device,
                    e.value,
                    e.raw.as_str()
                ],
            )
            .unwrap();
        }
    }

    let store = db.open().await;
    assert_eq!(db.migration_versions().await, ALL_VERSIONS);
    assert_eq!(store.count_events(None).await.unwrap(), 50);
    // The old rows are retries now; a new one is not.
    let mut retry = old[..5].to_vec();
    retry.push(page_load("shop", "/", SINCE + 60, Some(1.0)));
    assert_eq!(
        store.submit(retry).await.unwrap(),
        SubmitOutcome {
            inserted: 1,
            duplicates: vec![0, 1, 2, 3, 4],
            spooled: 0
        }
    );
    // Rolled up by the upgrade's backfill (migration 9): the old rows and the new one, received before the
    // upgrade by its clock, all in the window's first minute.
    store.maintain_rollups().await.unwrap();
    let pages = store.page_stats("shop", SINCE + 25).await.unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].samples, 51);
    store.shutdown().await;
    drop(store);

    let c = rusqlite::Connection::open(path).unwrap();
    let rowids: Vec<i64> = c
        .prepare("SELECT rowid FROM events ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut expected: Vec<i64> = (0..50).map(|i| 10 + 2 * i).collect();
    expected.push(109);
    assert_eq!(rowids, expected);
}

/// New databases get 4 KiB pages; one made by an earlier build with 16 KiB pages keeps them and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_page_size_new_4k_and_older_16k_kept() {
    for (made_before, expected) in [(None, 4_096), (Some(16_384), 16_384)] {
        let db = TestDb::new(Kind::Sqlite).await;
        let path = db.sqlite_path.as_ref().unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if let Some(page_size) = made_before {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch(&format!(
                "PRAGMA page_size={page_size}; PRAGMA journal_mode=WAL; CREATE TABLE t (x); DROP TABLE t;"
            ))
            .unwrap();
        }
        let store = db.open().await;
        let events: Vec<EventRecord> = (0..200)
            .map(|i| page_load("shop", "/", SINCE + i, Some(i as f64)))
            .collect();
        assert_eq!(store.submit(events).await.unwrap().inserted, 200);
        store.shutdown().await;
        drop(store);
        let c = rusqlite::Connection::open(path).unwrap();
        let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let rows: i64 = c
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (page_size, rows),
            (expected, 200),
            "made with {made_before:?}"
        );
    }
}

async fn busy_when_queue_full_then_everything_commits(kind: Kind) {
    let db = TestDb::new(kind).await;
    let mut registry = Registry::default();
    let store = db.open_with(&db.config(100, 50), &mut registry).await;
    let stall = db.stall().await;

    let mut pending = Vec::new();
    for _ in 0..5 {
        let s = store.clone();
        pending.push(tokio::spawn(
            async move { s.submit(customs("shop", 20)).await },
        ));
    }
    wait_for_depth(&registry, 100.0).await;
    // Full: 100 + 20 > 100, answered at once.
    let started = Instant::now();
    assert_eq!(
        store.submit(customs("shop", 20)).await,
        Err(SubmitError::Busy {
            retry_after_secs: 3
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "Busy must not wait"
    );
    // Nothing is acknowledged while the writer cannot commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pending.iter().all(|t| !t.is_finished()),
        "a submit resolved before its commit"
    );
    // Reads still work while the writer is stalled (readiness stays answerable).
    store.ping().await.expect("ping while stalled");

    stall.release().await;
    for t in pending {
        assert_eq!(
            t.await.unwrap(),
            Ok(SubmitOutcome {
                inserted: 20,
                duplicates: vec![],
                spooled: 0
            })
        );
    }
    assert_eq!(store.count_events(None).await.unwrap(), 100);
    wait_for_depth(&registry, 0.0).await;
    // Room again.
    assert_eq!(
        store.submit(customs("shop", 20)).await.unwrap().inserted,
        20
    );
    store.shutdown().await;
}

async fn shutdown_drains_the_queue(kind: Kind) {
    let db = TestDb::new(kind).await;
    let mut registry = Registry::default();
    let store = db.open_with(&db.config(1_000, 30), &mut registry).await;
    let stall = db.stall().await;
    let mut pending = Vec::new();
    for _ in 0..5 {
        let s = store.clone();
        pending.push(tokio::spawn(
            async move { s.submit(customs("shop", 20)).await },
        ));
    }
    wait_for_depth(&registry, 100.0).await;

    // The shutdown closes the queue on its first poll, then waits for the writer: polled once here, it has
    // closed (a submit made before the close would be admitted and wait for the stalled writer).
    let s = store.clone();
    let mut shutdown = Box::pin(async move { s.shutdown().await });
    assert!(
        futures::poll!(shutdown.as_mut()).is_pending(),
        "shutdown returned while the writer is stalled"
    );
    assert_eq!(
        store.submit(customs("shop", 1)).await,
        Err(SubmitError::Closed)
    );
    let shutdown = tokio::spawn(shutdown);

    stall.release().await;
    tokio::time::timeout(Duration::from_secs(30), shutdown)
        .await
        .expect("shutdown finishes once the writer can commit")
        .unwrap();
    for t in pending {
        assert_eq!(t.await.unwrap().unwrap().inserted, 20);
    }
    store.shutdown().await; // idempotent
    drop(store);

    let store = db.open().await;
    assert_eq!(store.count_events(None).await.unwrap(), 100);
    store.shutdown().await;
}

async fn reopen_keeps_events_and_migrations_run_once(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let mut acknowledged = 0;
    for _ in 0..5 {
        acknowledged += store.submit(customs("shop", 10)).await.unwrap().inserted;
    }
    store.shutdown().await;
    drop(store);
    for _ in 0..2 {
        let store = db.open().await;
        assert_eq!(
            store.count_events(None).await.unwrap() as usize,
            acknowledged
        );
        store.shutdown().await;
    }
    assert_eq!(db.migration_versions().await, ALL_VERSIONS);
}

/// A database as version 7 left it (key `(site, session_id, event_id)`, no session index), holding one site's
/// event id in three sessions and the same id in another site: migration 8 keeps the earliest received of the
/// site's three (whatever the order they were written in), keeps the other site's, and from then on the id is
/// a retry in any session of its site.
async fn migration_8_keeps_the_earliest_of_an_id_in_several_sessions(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let e = event("shop", "s1", "custom", 1_000_000);
    let mut blog = e.clone();
    blog.site = "blog".into();
    let kept = event("shop", "s1", "custom", 1_000_000);
    store
        .submit(vec![e.clone(), blog, kept.clone()])
        .await
        .unwrap();
    store.shutdown().await;
    drop(store);

    // Back to version 7's indexes, then the rows the old key allowed: the same id in sessions s0 (received
    // first, written last) and s2 (received last). PostgreSQL's table is one table again first.
    if kind == Kind::Postgres {
        db.execute(PG_UNPARTITION).await;
    }
    db.execute(
        "DROP INDEX events_site_event; DROP INDEX events_site_session; \
         CREATE UNIQUE INDEX events_site_session_event ON events (site, session_id, event_id); \
         DROP TABLE rollups; DROP TABLE rollup_backfill; DROP INDEX IF EXISTS events_errors; \
         DELETE FROM schema_migrations WHERE version >= 8;",
    )
    .await;
    let copy = |session: &str, received_offset: i64| {
        format!(
            "INSERT INTO events ({cols}) SELECT event_id, site, '{session}', event_type, client_ts_ms, \
             received_ms + {received_offset}, route, url, browser, os, device, value, name, endpoint, status, \
             rating, raw, release, fingerprint, stack FROM events WHERE site = 'shop' AND session_id = 's1' \
             AND received_ms = {received}",
            cols = "event_id, site, session_id, event_type, client_ts_ms, received_ms, route, url, browser, \
                    os, device, value, name, endpoint, status, rating, raw, release, fingerprint, stack",
            received = e.received_ms,
        )
    };
    // Both events of s1 have the same receive time: each copy doubles both ids.
    db.execute(&copy("s2", 7)).await;
    db.execute(&copy("s0", -7)).await;
    let store = db.open().await;
    assert_eq!(db.migration_versions().await, ALL_VERSIONS);
    // Two ids of shop (one row each: the s0 copies, received first) and blog's.
    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 2);
    assert_eq!(store.count_events(Some("blog")).await.unwrap(), 1);
    assert_eq!(store.delete_session("shop", "s1").await.unwrap(), 0);
    assert_eq!(store.delete_session("shop", "s2").await.unwrap(), 0);
    // The id is a retry in any session of shop now, new in a site that has not sent it.
    let mut again = kept.clone();
    again.session_id = "s9".into();
    let mut news = kept.clone();
    news.site = "news".into();
    assert_eq!(
        store.submit(vec![again, news]).await.unwrap(),
        SubmitOutcome {
            inserted: 1,
            duplicates: vec![0],
            spooled: 0
        }
    );
    // The privacy delete by session has its index again.
    let indexes = match kind {
        Kind::Sqlite => {
            let c = rusqlite::Connection::open(db.sqlite_path.as_ref().unwrap()).unwrap();
            let mut stmt = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name")
                .unwrap();
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            names.map(Result::unwrap).collect::<Vec<_>>()
        }
        Kind::Postgres => pg_admin(&db.url)
            .await
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect(),
    };
    let expected: &[&str] = match kind {
        Kind::Sqlite => &["events_errors", "events_site_event", "events_site_session"],
        // The partitioned table's; the receive-time index stays with the legacy partition (migration 11).
        Kind::Postgres => &[
            "events_errors",
            "events_site_event_ts",
            "events_site_session",
            "events_site_type_received",
        ],
    };
    assert_eq!(indexes, expected);
    assert_eq!(store.delete_session("shop", "s0").await.unwrap(), 2);
    store.shutdown().await;
}

/// PostgreSQL's `events` as one table, as before migration 11 (with its indexes of version 10), its rows
/// copied, and the rollups as before migration 12; the store closed, and both migrations unrecorded.
const PG_UNPARTITION: &str = "CREATE TABLE events_flat (LIKE events); \
     INSERT INTO events_flat SELECT * FROM events; DROP TABLE events; \
     ALTER TABLE events_flat RENAME TO events; \
     CREATE UNIQUE INDEX events_site_event ON events (site, event_id); \
     CREATE INDEX events_received ON events (received_ms); \
     CREATE INDEX events_site_type_received ON events (site, event_type, received_ms) \
     WHERE event_type IN ('page_load', 'route_change', 'error'); \
     CREATE INDEX events_site_session ON events USING hash (session_id); \
     ALTER TABLE rollups DROP COLUMN first_ms; ALTER TABLE rollups DROP COLUMN last_ms; \
     DELETE FROM rollup_backfill WHERE id = 2; \
     DELETE FROM schema_migrations WHERE version >= 11;";

/// The migration runner: a migration that fails leaves the recorded versions as they were (one
/// transaction), and a database recorded at a version this build does not know is not touched.
async fn failed_migration_rolls_back_and_newer_schema_refuses_to_open(kind: Kind) {
    let db = TestDb::new(kind).await;
    db.open().await.shutdown().await;
    // Versions 7 and 8 unrecorded but their columns, tables and indexes kept: applying 7 again fails.
    db.execute("DELETE FROM schema_migrations WHERE version >= 7")
        .await;
    let cfg = db.config(100, 10);
    let e = Store::open(&cfg, &mut Registry::default())
        .await
        .expect_err("migration 7 cannot add its columns twice")
        .to_string();
    assert!(e.contains("migration 7"), "{e}");
    assert_eq!(db.migration_versions().await, vec![1, 2, 3, 4, 5, 6]);

    db.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES (7, 0), (8, 0), (9, 0), (10, 0), (11, 0), \
         (12, 0), (99, 0)",
    )
    .await;
    let e = Store::open(&cfg, &mut Registry::default())
        .await
        .expect_err("a newer schema is refused")
        .to_string();
    assert!(
        e.contains("database schema version 99 is newer than this build knows (12)"),
        "{e}"
    );
    assert_eq!(
        db.migration_versions().await,
        [ALL_VERSIONS, &[99]].concat()
    );
}

async fn commit_error_fails_every_waiter(kind: Kind) {
    let db = TestDb::new(kind).await;
    let mut registry = Registry::default();
    let store = db.open_with(&db.config(1_000, 100), &mut registry).await;
    let stall = db.stall().await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        let s = store.clone();
        pending.push(tokio::spawn(
            async move { s.submit(customs("shop", 5)).await },
        ));
    }
    wait_for_depth(&registry, 15.0).await;
    stall.drop_table_and_release().await;
    // The group being written gets the database's error. On PostgreSQL its COPY was refused before it
    // started, which leaves the connection unusable (rust-postgres/rust-postgres#1337): the writer replaces
    // it, and the new one cannot prepare its statements on a table that is gone, so a later group is refused
    // as unavailable instead.
    let mut failed = 0;
    for t in pending {
        match t.await.unwrap() {
            Err(SubmitError::Failed(msg)) => {
                assert!(!msg.is_empty());
                assert!(
                    !msg.contains("postgres://") && !msg.contains("sqlite://"),
                    "{msg}"
                );
                failed += 1;
            }
            Err(SubmitError::Unavailable { .. }) if matches!(kind, Kind::Postgres) => {}
            other => panic!("expected Failed, got {other:?}"),
        }
    }
    assert!(failed >= 1);
    let text = metrics_text(&registry);
    assert!(
        sample(&text, "vantage_ingest_store_commit_errors_total").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(sample(&text, "vantage_ingest_store_queue_depth"), Some(0.0));
    // The store itself is still alive and reports errors for queries instead of hanging.
    store.ping().await.expect("ping");
    assert!(matches!(
        store.count_events(None).await,
        Err(StoreError::Database(_))
    ));
    store.shutdown().await;
}

async fn delete_session_removes_only_that_session(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let mut events = Vec::new();
    for (site, session, n) in [("shop", "s1", 3), ("shop", "s2", 2), ("blog", "s1", 1)] {
        events.extend((0..n).map(|_| event(site, session, "custom", 1_000)));
    }
    store.submit(events).await.unwrap();
    assert_eq!(store.delete_session("shop", "s1").await.unwrap(), 3);
    assert_eq!(store.delete_session("shop", "s1").await.unwrap(), 0);
    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 2);
    assert_eq!(store.count_events(Some("blog")).await.unwrap(), 1);
    store.shutdown().await;
}

/// The indexes a PostgreSQL plan reads, each named as the partitioned index of `events` it is a partition
/// of (partitions' indexes get generated names), sorted, once each.
async fn plan_indexes(c: &tokio_postgres::Client, plan: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in plan.lines() {
        for marker in [
            "Index Scan using ",
            "Index Only Scan using ",
            "Bitmap Index Scan on ",
        ] {
            if let Some(rest) = line.split(marker).nth(1) {
                let index = rest.split_whitespace().next().unwrap();
                let row = c
                    .query_one(
                        "SELECT COALESCE((SELECT p.relname::text FROM pg_inherits i \
                         JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = x.oid), x.relname::text) \
                         FROM pg_class x WHERE x.relname = $1",
                        &[&index],
                    )
                    .await
                    .unwrap();
                names.push(row.get::<_, String>(0));
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Rows in the tables a PostgreSQL plan reads sequentially (empty partitions may be read so: nothing to
/// read).
async fn seq_scanned_rows(c: &tokio_postgres::Client, plan: &str) -> i64 {
    let mut rows = 0;
    for line in plan.lines() {
        if let Some(rest) = line.split("Seq Scan on ").nth(1) {
            let table = rest.split_whitespace().next().unwrap();
            rows += c
                .query_one(&format!("SELECT COUNT(*) FROM \"{table}\""), &[])
                .await
                .unwrap()
                .get::<_, i64>(0);
        }
    }
    rows
}

/// The rollup upkeep (every 5 s on every node) keeps one connection between rounds, where it opened one per
/// round. Counted by PostgreSQL itself: `pg_stat_database.sessions` counts the sessions ever opened to the
/// database (a backend reports its own when it flushes its statistics, at the latest when it exits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rollup_upkeep_keeps_one_connection() {
    let db = TestDb::new(Kind::Postgres).await;
    let store = db.open().await;
    store
        .submit(vec![page_load("shop", "/", 1_000, Some(1.0))])
        .await
        .unwrap();
    store.maintain_rollups().await.unwrap(); // the upkeep's connection opens here
    let admin = pg_admin(&db.url).await;
    let sessions = || async {
        admin
            .query_one(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = sessions().await;
    for round in 0..8 {
        store
            .submit(vec![page_load("shop", "/", 2_000 + round, Some(1.0))])
            .await
            .unwrap();
        assert!(store.maintain_rollups().await.unwrap() > 0, "round {round}");
    }
    store.shutdown().await;
    drop(store);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // (this test's own connection may be counted after `before`)
    let opened = sessions().await - before;
    assert!(
        opened <= 2,
        "{opened} sessions opened during 8 rounds of rollup upkeep"
    );
}

/// The privacy delete by session finds its rows through the session index on PostgreSQL too (a hash index on
/// `session_id` since migration 10; SQLite's `(site, session_id)` plan is checked in the store's unit tests): on a
/// table of 20,000 events in 2,000 sessions, analyzed, the planner picks the index for the store's statement
/// without being pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_delete_by_session_uses_the_session_index() {
    let db = TestDb::new(Kind::Postgres).await;
    let store = db.open().await;
    let events: Vec<EventRecord> = (0..20_000)
        .map(|i| event("shop", &format!("session-{}", i % 2_000), "custom", 1_000))
        .collect();
    for chunk in events.chunks(5_000) {
        store.submit(chunk.to_vec()).await.unwrap();
    }
    let c = pg_admin(&db.url).await;
    c.batch_execute("ANALYZE events").await.unwrap();
    // The statement `delete_session` runs (ingest/src/store/postgres.rs).
    let plan: Vec<String> = c
        .query(
            "EXPLAIN DELETE FROM events WHERE site = $1 AND session_id = $2",
            &[&"shop", &"session-7"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert_eq!(
        plan_indexes(&c, &plan).await,
        ["events_site_session"],
        "{plan}"
    );
    assert_eq!(seq_scanned_rows(&c, &plan).await, 0, "{plan}");
    assert_eq!(store.delete_session("shop", "session-7").await.unwrap(), 10);
    store.shutdown().await;
}

/// The stats index holds only the event types some query reads through it (migration 10), and every query
/// that reads events by site, type and receive time can still use it: on 18,000 analyzed events of nine
/// types, with sequential scans off (a small table would be scanned whole anyway), each plan reads
/// `events_site_type_received`. A type left out of the index (resource loads) cannot be read through it. A
/// group's occurrences read the errors' index instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_by_event_type_use_the_partial_stats_index() {
    let db = TestDb::new(Kind::Postgres).await;
    let store = db.open().await;
    let types = [
        "page_load",
        "route_change",
        "api_call",
        "web_vital",
        "error",
        "resource_load",
        "long_task",
        "user_interaction",
        "custom",
    ];
    let events: Vec<EventRecord> = (0..18_000)
        .map(|i| {
            let mut e = event(
                "shop",
                &format!("session-{}", i % 900),
                types[i % types.len()],
                1_000 + i as i64,
            );
            e.fingerprint = Some(format!("{:016x}", i % 7));
            e
        })
        .collect();
    for chunk in events.chunks(6_000) {
        store.submit(chunk.to_vec()).await.unwrap();
    }
    let c = pg_admin(&db.url).await;
    c.batch_execute("ANALYZE events; SET enable_seqscan = off")
        .await
        .unwrap();
    let plan = |sql: String| {
        let c = &c;
        async move {
            let stmt = c.prepare(&format!("EXPLAIN {sql}")).await.unwrap();
            let params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> = stmt
                .params()
                .iter()
                .map(|t| -> Box<dyn tokio_postgres::types::ToSql + Sync> {
                    match *t {
                        tokio_postgres::types::Type::INT8 => Box::new(500i64),
                        tokio_postgres::types::Type::TEXT => Box::new("shop"),
                        ref other => panic!("parameter of type {other} in {sql}"),
                    }
                })
                .collect();
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p.as_ref()).collect();
            let rows = c.query(&stmt, &params).await.unwrap();
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let queries = vantage_ingest::store::postgres_queries_by_event_type();
    assert_eq!(queries.len(), 2);
    for (name, sql) in queries {
        let p = plan(sql).await;
        assert!(
            plan_indexes(&c, &p)
                .await
                .contains(&"events_site_type_received".to_owned()),
            "{name}:\n{p}"
        );
    }
    // A group's occurrences (and its sample) read the errors' own index (migration 12), in its order.
    // (Each day partition's copy of the index, merged in order: a Merge Append, no Sort node.)
    let p = plan(vantage_ingest::store::occurrences_sql_as_run(false)).await;
    assert!(
        plan_indexes(&c, &p)
            .await
            .contains(&"events_errors".to_owned()),
        "{p}"
    );
    assert!(!p.contains("Sort  ("), "{p}");
    let p = plan(
        "SELECT COUNT(*) FROM events WHERE site = $1 AND event_type = 'resource_load' \
         AND received_ms >= $2"
            .to_owned(),
    )
    .await;
    assert!(
        !plan_indexes(&c, &p)
            .await
            .contains(&"events_site_type_received".to_owned()),
        "{p}"
    );
    store.shutdown().await;
}

const DAY_MS: i64 = 86_400_000;

/// The partitions of PostgreSQL's `events`, sorted.
async fn pg_partitions(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Whether a table of that name exists at all (a dropped partition does not; a detached one would).
async fn pg_table_exists(c: &tokio_postgres::Client, name: &str) -> bool {
    c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .unwrap()
        .get(0)
}

/// The partition holding the event's row(s), one name per row.
async fn pg_partition_of(c: &tokio_postgres::Client, e: &EventRecord) -> Vec<String> {
    c.query(
        "SELECT tableoid::regclass::text FROM events WHERE site = $1 AND event_id = $2::text::uuid",
        &[&&*e.site, &e.event_id.to_string()],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Across a UTC midnight (2024-02-28 to the leap day), by the store's partition upkeep run at a given time:
/// the next day's partition exists before midnight; events 0.1 s either side of it land in their two days;
/// a retry of the earlier one after midnight is still a duplicate; retention keeps a day whose end is after
/// the cutoff and drops it (the table, not only its rows) once its end is not; upkeep does not make a
/// dropped day again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitions_across_midnight() {
    const MIDNIGHT: i64 = 1_709_164_800_000; // 2024-02-29T00:00:00Z
    let db = TestDb::new(Kind::Postgres).await;
    let store = db.open().await;
    let c = pg_admin(&db.url).await;
    assert!(!pg_table_exists(&c, "events_p20240229").await);
    // The upkeep at 23:59: max_past (7 days) back to two days ahead.
    assert_eq!(
        store.create_partitions(MIDNIGHT - 60_000).await.unwrap(),
        10
    );
    let parts = pg_partitions(&c).await;
    for day in [
        "events_p20240221",
        "events_p20240228",
        "events_p20240229",
        "events_p20240301",
    ] {
        assert!(parts.contains(&day.to_owned()), "{day}: {parts:?}");
    }
    assert_eq!(
        store.create_partitions(MIDNIGHT - 1).await.unwrap(),
        0,
        "made once"
    );

    let mut before = event("shop", "s1", "custom", MIDNIGHT - 100);
    before.received_ms = MIDNIGHT - 100;
    let mut after = event("shop", "s1", "custom", MIDNIGHT + 100);
    after.received_ms = MIDNIGHT + 100;
    assert_eq!(
        store
            .submit(vec![before.clone(), after.clone()])
            .await
            .unwrap()
            .inserted,
        2
    );
    assert_eq!(pg_partition_of(&c, &before).await, ["events_p20240228"]);
    assert_eq!(pg_partition_of(&c, &after).await, ["events_p20240229"]);
    let mut retry = before.clone();
    retry.received_ms = MIDNIGHT + 1_000;
    assert_eq!(
        store.submit(vec![retry]).await.unwrap(),
        SubmitOutcome {
            inserted: 0,
            duplicates: vec![0],
            spooled: 0
        }
    );
    assert_eq!(pg_partition_of(&c, &before).await, ["events_p20240228"]);

    // The cutoff a millisecond before the 28th ends: the days before it go, the 28th stays whole.
    let removed = store.delete_older_than(MIDNIGHT - 1).await.unwrap();
    assert_eq!((removed.events, removed.partitions), (0, 7));
    assert!(pg_table_exists(&c, "events_p20240228").await);
    assert!(!pg_table_exists(&c, "events_p20240227").await);
    assert_eq!(store.count_events(None).await.unwrap(), 2);
    // At midnight: the 28th is dropped, table and all; the 29th stays.
    let removed = store.delete_older_than(MIDNIGHT).await.unwrap();
    assert_eq!((removed.events, removed.partitions), (0, 1));
    assert!(!pg_table_exists(&c, "events_p20240228").await);
    assert!(!pg_partitions(&c)
        .await
        .contains(&"events_p20240228".to_owned()));
    assert!(pg_partition_of(&c, &before).await.is_empty());
    assert_eq!(pg_partition_of(&c, &after).await, ["events_p20240229"]);
    // Upkeep does not make the dropped days again.
    assert_eq!(store.create_partitions(MIDNIGHT - 60_000).await.unwrap(), 0);
    assert!(!pg_table_exists(&c, "events_p20240228").await);
    store.shutdown().await;
}

/// A PostgreSQL store as version 10 left it, built from that build's own migrations, with events in it:
/// migration 11 makes its table the legacy partition without copying a row (same file), every event is
/// there once, retries of old events are duplicates, events after the legacy range go to day partitions,
/// retention deletes legacy rows by receive time and then drops it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_to_partitions_keeps_events_and_idempotency() {
    let db = TestDb::new(Kind::Postgres).await;
    let c = pg_admin(&db.url).await;
    c.batch_execute(
        "BEGIN; CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    for (version, sql) in vantage_ingest::store::postgres_migrations_up_to(10) {
        c.batch_execute(sql).await.unwrap();
        c.execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[&version])
            .await
            .unwrap();
    }
    c.batch_execute("COMMIT").await.unwrap();
    let now = vantage_ingest::clock::now_ms();
    // Three days of events up to now, and a few from 1970.
    let mut old: Vec<EventRecord> = (0..600)
        .map(|i| {
            event(
                "shop",
                &format!("s{}", i % 40),
                "page_load",
                now - i * 432_000,
            )
        })
        .collect();
    old.extend((0..10).map(|i| event("blog", "s1", "custom", 1_000 + i)));
    for e in &old {
        c.execute(
            "INSERT INTO events (event_id, site, session_id, event_type, client_ts_ms, received_ms, route, url, \
             browser, os, device, raw) VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &e.event_id.to_string(),
                &&*e.site,
                &&*e.session_id,
                &&*e.event_type,
                &e.client_ts_ms,
                &e.received_ms,
                &&*e.route,
                &&*e.url,
                &&*e.browser,
                &&*e.os,
                &&*e.device,
                &e.raw.as_str(),
            ],
        )
        .await
        .unwrap();
    }
    let file = "SELECT relfilenode FROM pg_class WHERE relname = $1";
    let before: u32 = c.query_one(file, &[&"events"]).await.unwrap().get(0);

    let store = db.open().await;
    let opened = vantage_ingest::clock::now_ms();
    assert_eq!(db.migration_versions().await, ALL_VERSIONS);
    assert_eq!(store.count_events(None).await.unwrap(), 610);
    let doubled: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM (SELECT 1 FROM events GROUP BY site, event_id HAVING COUNT(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0);
    let after: u32 = c.query_one(file, &[&"events_legacy"]).await.unwrap().get(0);
    assert_eq!(
        after, before,
        "the old table's file is the legacy partition's"
    );
    // The legacy range ends at the midnight after the newest event (now).
    let bound: String = c
        .query_one(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'events_legacy'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let upper = (now / DAY_MS + 1) * DAY_MS;
    let upper_then = (opened / DAY_MS + 1) * DAY_MS; // the day may have turned meanwhile
    assert!(
        bound == format!("FOR VALUES FROM (MINVALUE) TO ('{upper}')")
            || bound == format!("FOR VALUES FROM (MINVALUE) TO ('{upper_then}')"),
        "{bound}"
    );
    let parts = pg_partitions(&c).await;
    assert!(
        parts.contains(&"events_default".to_owned()) && parts.contains(&"events_legacy".to_owned()),
        "{parts:?}"
    );

    // Old events again: duplicates. New ones: in the legacy range to the legacy partition, after it to a day.
    let retry = old[..100].to_vec();
    assert_eq!(store.submit(retry).await.unwrap().duplicates.len(), 100);
    let today = event("shop", "s9", "custom", now);
    let mut tomorrow = event("shop", "s9", "custom", upper_then + 100);
    tomorrow.received_ms = now;
    let out = store
        .submit(vec![today.clone(), tomorrow.clone()])
        .await
        .unwrap();
    assert_eq!(out.inserted, 2);
    assert_eq!(pg_partition_of(&c, &today).await, ["events_legacy"]);
    assert_eq!(
        pg_partition_of(&c, &tomorrow).await,
        [format!("events_p{}", {
            let name: String = c
                .query_one(
                    "SELECT to_char(to_timestamp($1::float8 / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD')",
                    &[&(upper_then as f64)],
                )
                .await
                .unwrap()
                .get(0);
            name
        })]
    );

    // Retention before the legacy range ends: its rows received before the cutoff go one by one.
    let cutoff = now - DAY_MS;
    let expected = old.iter().filter(|e| e.received_ms < cutoff).count() as u64;
    let removed = store.delete_older_than(cutoff).await.unwrap();
    assert_eq!((removed.events, removed.partitions), (expected, 0));
    assert_eq!(store.count_events(None).await.unwrap(), 612 - expected);
    // Once it ends before the cutoff, the legacy partition goes whole.
    let removed = store.delete_older_than(upper_then).await.unwrap();
    assert_eq!((removed.events, removed.partitions), (0, 1));
    assert!(!pg_table_exists(&c, "events_legacy").await);
    assert_eq!(store.count_events(None).await.unwrap(), 1);
    assert_eq!(pg_partition_of(&c, &tomorrow).await.len(), 1);
    store.shutdown().await;
}

async fn delete_older_than_uses_receive_time(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    // More old events than one delete chunk, so the chunk loop runs more than once.
    let old: Vec<EventRecord> = (0..12_000)
        .map(|i| {
            let mut e = event("shop", "old", "custom", 10_000_000);
            e.received_ms = 1_000 + i;
            e
        })
        .collect();
    for chunk in old.chunks(2_000) {
        store.submit(chunk.to_vec()).await.unwrap();
    }
    let mut recent = event("shop", "new", "custom", 0); // client clock far behind: irrelevant here
    recent.received_ms = 50_000;
    // Another site's recent event with an old event's id (ids are unique per site only): it stays.
    let mut same_id = event("blog", "new", "custom", 0);
    same_id.event_id = old[0].event_id;
    same_id.received_ms = 50_000;
    store.submit(vec![recent, same_id]).await.unwrap();

    assert_eq!(
        store.delete_older_than(13_000).await.unwrap().events,
        12_000
    );
    assert_eq!(store.count_events(Some("shop")).await.unwrap(), 1);
    assert_eq!(store.count_events(Some("blog")).await.unwrap(), 1);
    assert_eq!(store.delete_older_than(13_000).await.unwrap().events, 0);

    // The rollups go too: every minute, hour and day row whose bucket ended before the cutoff, folded or not.
    const DAY: i64 = 86_400_000;
    let old_page = page_load("shop", "/", 5_000, Some(1.0));
    let new_page = page_load("shop", "/", 3 * DAY, Some(2.0));
    store.submit(vec![old_page.clone()]).await.unwrap();
    store.maintain_rollups().await.unwrap();
    store.submit(vec![old_page, new_page]).await.unwrap(); // the old one again: a retry
    assert_eq!(store.page_stats("shop", 0).await.unwrap()[0].samples, 2);
    store.delete_older_than(2 * DAY).await.unwrap();
    assert_eq!(store.page_stats("shop", 0).await.unwrap()[0].samples, 1);
    store.maintain_rollups().await.unwrap();
    assert_eq!(store.page_stats("shop", 0).await.unwrap()[0].samples, 1);
    store.shutdown().await;
}

const SINCE: i64 = 1_700_000_000_000;
/// Stats windows start at the minute holding their start (rollups are per minute).
const SINCE_MINUTE: i64 = SINCE - SINCE % 60_000;

/// A percentile read from the rollups, replaced by the exact value it stands for when it is within 1 % of it
/// (the sketches' accuracy): `assert_eq!` then compares everything else exactly, and shows a percentile
/// outside that bound as it is.
fn snap(actual: f64, exact: f64) -> f64 {
    if (actual - exact).abs() <= exact.abs() * 0.01 {
        exact
    } else {
        actual
    }
}

fn snap_opt(actual: Option<f64>, exact: Option<f64>) -> Option<f64> {
    match (actual, exact) {
        (Some(a), Some(e)) => Some(snap(a, e)),
        (a, _) => a,
    }
}

/// Each stats row of `actual` with its percentiles snapped (`snap`) to those of the row of `expected` at the
/// same place.
fn snapped<T>(actual: Vec<T>, expected: &[T], snap_row: impl Fn(&mut T, &T)) -> Vec<T> {
    let mut actual = actual;
    for (a, e) in actual.iter_mut().zip(expected) {
        snap_row(a, e);
    }
    actual
}

fn snap_pages(actual: Vec<PageStats>, expected: &[PageStats]) -> Vec<PageStats> {
    snapped(actual, expected, |a, e| {
        a.p50_ms = snap(a.p50_ms, e.p50_ms);
        a.p75_ms = snap(a.p75_ms, e.p75_ms);
        a.p95_ms = snap(a.p95_ms, e.p95_ms);
    })
}

fn snap_api(actual: Vec<ApiStats>, expected: &[ApiStats]) -> Vec<ApiStats> {
    snapped(actual, expected, |a, e| {
        a.p50_ms = snap_opt(a.p50_ms, e.p50_ms);
        a.p95_ms = snap_opt(a.p95_ms, e.p95_ms);
    })
}

fn snap_vitals(actual: Vec<VitalStats>, expected: &[VitalStats]) -> Vec<VitalStats> {
    snapped(actual, expected, |a, e| a.p75 = snap(a.p75, e.p75))
}

fn page_load(site: &str, route: &str, ts: i64, value: Option<f64>) -> EventRecord {
    let mut e = event(site, "s", "page_load", ts);
    e.route = route.into();
    e.value = value;
    e
}

fn api_call(endpoint: Option<&str>, value: Option<f64>, status: Option<i32>) -> EventRecord {
    let mut e = event("shop", "s", "api_call", SINCE + 10);
    e.endpoint = endpoint.map(Into::into);
    e.value = value;
    e.status = status;
    e
}

fn error(route: &str, session: &str, message: &str) -> EventRecord {
    let mut e = event("shop", session, "error", SINCE + 10);
    e.route = route.into();
    e.name = Some(message.to_string().into());
    e
}

fn vital(route: &str, name: &str, value: f64, rating: &str) -> EventRecord {
    let mut e = event("shop", "s", "web_vital", SINCE + 10);
    e.route = route.into();
    e.name = Some(name.to_string().into());
    e.value = Some(value);
    e.rating = Some(rating.to_string().into());
    e
}

/// A small data set whose stats are computed by hand below (nearest-rank percentiles).
fn known_data_set() -> Vec<EventRecord> {
    let mut v = Vec::new();
    // Excluded: a day's worth of older page loads, before the window on both clocks (SQLite starts its scan
    // at the window's first rowid, found by binary search over these).
    for i in 0..1_000 {
        v.push(page_load(
            "shop",
            "/",
            SINCE - 86_400_000 + i,
            Some(99_999.0),
        ));
    }
    // "/": 100..1000 step 100 (shuffled) -> n 10, p50 rank 5 = 500, p75 rank 8 = 800, p95 rank 10 = 1000.
    for x in [700, 100, 1000, 300, 500, 200, 900, 400, 800, 600] {
        v.push(page_load("shop", "/", SINCE + 1, Some(x as f64)));
    }
    // "/about": 30, 10, 20 -> p50 rank 2 = 20, p75 rank 3 = 30, p95 rank 3 = 30. Sent by a client whose clock
    // is 9 minutes ahead (received before the window starts): the window is on client time.
    for x in [30.0, 10.0, 20.0] {
        let mut e = page_load("shop", "/about", SINCE, Some(x));
        e.received_ms = SINCE - 9 * 60_000;
        v.push(e);
    }
    // Excluded: before the window (which starts at the minute holding SINCE), another site, no value.
    v.push(page_load("shop", "/", SINCE_MINUTE - 1, Some(99_999.0)));
    v.push(page_load("blog", "/", SINCE + 1, Some(99_999.0)));
    v.push(page_load("shop", "/", SINCE + 1, None));

    // "GET api/x": 40, 10, 30, 20 with statuses 0, 200, 500, 200 -> p50 rank 2 = 20, p95 rank 4 = 40,
    // errors 2 of 4. One more call without a duration counts as a call but not in percentiles.
    for (d, s) in [(40.0, 0), (10.0, 200), (30.0, 500), (20.0, 200)] {
        v.push(api_call(Some("GET api/x"), Some(d), Some(s)));
    }
    v.push(api_call(Some("GET api/x"), None, Some(204)));
    v.push(api_call(Some("POST api/y"), Some(300.0), Some(201)));
    v.push(api_call(None, None, Some(404)));

    // "/": 3 errors in 2 sessions (A twice, B once); "/cart": 1 error.
    v.push(error("/", "s1", "A"));
    v.push(error("/", "s1", "B"));
    v.push(error("/", "s2", "A"));
    v.push(error("/cart", "s3", "C"));
    // Seven distinct messages on "/x": only the top 5 are listed (ties by message).
    for m in ["m7", "m6", "m5", "m4", "m3", "m2", "m1", "m1"] {
        v.push(error("/x", "s4", m));
    }

    // "/" LCP: 1000 good, 2000 good, 3000 needs-improvement, 5000 poor -> p75 rank 3 = 3000.
    for (x, r) in [
        (5000.0, "poor"),
        (1000.0, "good"),
        (3000.0, "needs-improvement"),
        (2000.0, "good"),
    ] {
        v.push(vital("/", "LCP", x, r));
    }
    v.push(vital("/", "CLS", 0.05, "good"));
    v
}

async fn stats_on_a_known_data_set(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    // In receive order, as a live store holds them, so the client 9 minutes ahead is stored before the
    // window's other rows.
    let mut events = known_data_set();
    events.sort_by_key(|e| e.received_ms);
    store.submit(events).await.unwrap();

    let pages = store.page_stats("shop", SINCE).await.unwrap();
    let expected = vec![
        PageStats {
            route: "/".into(),
            samples: 10,
            p50_ms: 500.0,
            p75_ms: 800.0,
            p95_ms: 1000.0,
        },
        PageStats {
            route: "/about".into(),
            samples: 3,
            p50_ms: 20.0,
            p75_ms: 30.0,
            p95_ms: 30.0,
        },
    ];
    assert_eq!(snap_pages(pages.clone(), &expected), expected);

    let api = store.api_stats("shop", SINCE).await.unwrap();
    let expected = vec![
        ApiStats {
            endpoint: "POST api/y".into(),
            calls: 1,
            errors: 0,
            error_share: 0.0,
            p50_ms: Some(300.0),
            p95_ms: Some(300.0),
        },
        ApiStats {
            endpoint: "GET api/x".into(),
            calls: 5,
            errors: 2,
            error_share: 0.4,
            p50_ms: Some(20.0),
            p95_ms: Some(40.0),
        },
        ApiStats {
            endpoint: "unknown".into(),
            calls: 1,
            errors: 1,
            error_share: 1.0,
            p50_ms: None,
            p95_ms: None,
        },
    ];
    assert_eq!(snap_api(api.clone(), &expected), expected);

    let errors = store.error_stats("shop", SINCE).await.unwrap();
    let mc = |m: &str, c| MessageCount {
        message: m.into(),
        count: c,
    };
    assert_eq!(
        errors,
        vec![
            ErrorStats {
                route: "/x".into(),
                errors: 8,
                affected_sessions: 1,
                top_messages: vec![
                    mc("m1", 2),
                    mc("m2", 1),
                    mc("m3", 1),
                    mc("m4", 1),
                    mc("m5", 1)
                ],
            },
            ErrorStats {
                route: "/".into(),
                errors: 3,
                affected_sessions: 2,
                top_messages: vec![mc("A", 2), mc("B", 1)],
            },
            ErrorStats {
                route: "/cart".into(),
                errors: 1,
                affected_sessions: 1,
                top_messages: vec![mc("C", 1)],
            },
        ]
    );

    let vitals = store.vital_stats("shop", SINCE).await.unwrap();
    let expected = vec![
        VitalStats {
            route: "/".into(),
            name: "CLS".into(),
            samples: 1,
            p75: 0.05,
            good_share: 1.0,
            needs_improvement_share: 0.0,
            poor_share: 0.0,
        },
        VitalStats {
            route: "/".into(),
            name: "LCP".into(),
            samples: 4,
            p75: 3000.0,
            good_share: 0.5,
            needs_improvement_share: 0.25,
            poor_share: 0.25,
        },
    ];
    assert_eq!(snap_vitals(vitals.clone(), &expected), expected);

    // A window from the next minute is empty; another site sees only its own data.
    assert!(store
        .page_stats("shop", SINCE_MINUTE + 60_000)
        .await
        .unwrap()
        .is_empty());
    let blog = store.page_stats("blog", 0).await.unwrap();
    assert_eq!(blog.len(), 1);
    assert_eq!(snap(blog[0].p95_ms, 99_999.0), 99_999.0);
    // Serializable for the HTTP layer.
    assert!(serde_json::to_string(&pages)
        .unwrap()
        .contains("\"p75_ms\":"));

    // Folding the partial rows into minutes, hours and days changes nothing, to the last bit.
    assert!(store.maintain_rollups().await.unwrap() > 0);
    assert_eq!(store.page_stats("shop", SINCE).await.unwrap(), pages);
    assert_eq!(store.api_stats("shop", SINCE).await.unwrap(), api);
    assert_eq!(store.error_stats("shop", SINCE).await.unwrap(), errors);
    assert_eq!(store.vital_stats("shop", SINCE).await.unwrap(), vitals);
    store.shutdown().await;
}

/// Page loads every 17 minutes over three days before `now`, values 1..=n ms.
fn spread_page_loads(now: i64) -> Vec<EventRecord> {
    let n = 3 * 24 * 60 / 17;
    (0..n)
        .map(|i| {
            let mut e = page_load(
                "shop",
                "/",
                now - 3 * 86_400_000 + i * 17 * 60_000,
                Some((i + 1) as f64),
            );
            e.received_ms = now;
            e
        })
        .collect()
}

/// Windows over the three days before `now` that start at the first event, mid-minute, on a day, on an hour,
/// and within the last hour: each reads its own mix of partial, minute, hour and day rows.
fn window_starts(now: i64) -> [i64; 5] {
    [
        now - 3 * 86_400_000,
        now - 2 * 86_400_000 - 7 * 3_600_000 - 123_456,
        (now - 86_400_000) - (now - 86_400_000) % 86_400_000,
        (now - 5 * 3_600_000) - (now - 5 * 3_600_000) % 3_600_000,
        now - 40 * 60_000 - 1,
    ]
}

/// The rollups' counts are exact: a window holds exactly the events from the minute of its start on, read
/// from whichever mix of partial, minute, hour and day rows the window spans, before and after folding; a
/// retry adds nothing; and events stored before rollups existed are counted by the backfill, once.
async fn rollups_count_each_event_once_across_levels_retries_and_backfill(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let now = vantage_ingest::clock::now_ms();
    let events = spread_page_loads(now);
    store.submit(events.clone()).await.unwrap();
    let starts = window_starts(now);
    let expected = |since: i64| {
        let minute = since - since.rem_euclid(60_000);
        let mut v: Vec<f64> = events
            .iter()
            .filter(|e| e.client_ts_ms >= minute)
            .map(|e| e.value.unwrap())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let check = |stats: Vec<PageStats>, since: i64, when: &str| {
        let v = expected(since);
        if v.is_empty() {
            assert!(stats.is_empty(), "{when}: since {since}");
            return;
        }
        assert_eq!(stats.len(), 1, "{when}");
        assert_eq!(stats[0].samples, v.len() as u64, "{when}: since {since}");
        let rank = |p: usize| v[(p * v.len()).div_ceil(100) - 1];
        assert_eq!(snap(stats[0].p50_ms, rank(50)), rank(50), "{when}");
        assert_eq!(snap(stats[0].p95_ms, rank(95)), rank(95), "{when}");
    };
    let mut before = Vec::new();
    for since in starts {
        let s = store.page_stats("shop", since).await.unwrap();
        check(s.clone(), since, "partial rows");
        before.push(s);
    }
    // A retry of the whole batch adds nothing.
    assert_eq!(
        store.submit(events.clone()).await.unwrap().duplicates.len(),
        events.len()
    );
    assert!(store.maintain_rollups().await.unwrap() > 0);
    assert_eq!(
        store.maintain_rollups().await.unwrap(),
        0,
        "nothing left to fold"
    );
    for (since, b) in starts.iter().zip(&before) {
        assert_eq!(
            &store.page_stats("shop", *since).await.unwrap(),
            b,
            "folded"
        );
    }
    // More events after folding: read from partial rows beside the merged ones, then folded into them.
    let late = page_load("shop", "/", now - 2 * 86_400_000, Some(5.0));
    store.submit(vec![late]).await.unwrap();
    let with_late = store.page_stats("shop", starts[0]).await.unwrap();
    assert_eq!(with_late[0].samples, before[0][0].samples + 1);
    store.maintain_rollups().await.unwrap();
    assert_eq!(
        store.page_stats("shop", starts[0]).await.unwrap(),
        with_late
    );
    store.shutdown().await;
    drop(store);

    // The same store as version 8 left it: events, no rollups (later migrations run again, as they would).
    db.execute(
        "DROP TABLE rollups; DROP TABLE rollup_backfill; DROP INDEX events_errors; \
         DELETE FROM schema_migrations WHERE version >= 9;",
    )
    .await;
    let store = db.open().await;
    assert!(
        store
            .page_stats("shop", starts[0])
            .await
            .unwrap()
            .is_empty(),
        "not yet backfilled"
    );
    // An event stored after the upgrade is the writer's to count, not the backfill's.
    let mut after = page_load("shop", "/", now - 60_000, Some(7.0));
    after.received_ms = vantage_ingest::clock::now_ms() + 1_000;
    store.submit(vec![after.clone()]).await.unwrap();
    store.maintain_rollups().await.unwrap();
    let upgraded = store.page_stats("shop", starts[0]).await.unwrap();
    assert_eq!(upgraded[0].samples, with_late[0].samples + 1);
    // Folded and backfilled: a retry of everything still adds nothing.
    let mut all = events.clone();
    all.push(after);
    assert_eq!(
        store.submit(all.clone()).await.unwrap().duplicates.len(),
        all.len()
    );
    store.maintain_rollups().await.unwrap();
    assert_eq!(store.page_stats("shop", starts[0]).await.unwrap(), upgraded);
    store.shutdown().await;
}

/// Errors of three groups every 13 minutes over three days before `now`, on four routes, three browsers,
/// four releases (or none) and seven sessions, all received at `now`.
fn spread_errors(now: i64) -> Vec<EventRecord> {
    let n = 3 * 24 * 60 / 13;
    (0..n)
        .map(|i| {
            let fp = [GROUP_A, GROUP_A, GROUP_B, GROUP_A, GROUP_C][i % 5];
            let release = format!("r{}", i % 4);
            let mut e = grouped(
                fp,
                &format!("s{}", i % 7),
                now - 3 * 86_400_000 + i as i64 * 13 * 60_000,
                (
                    ["/", "/cart", "/checkout", "/p"][i % 4],
                    ["Chrome", "Firefox", "Safari"][(i / 2) % 3],
                    (i % 6 != 0).then_some(release.as_str()),
                ),
                ("TypeError: x is 42", Some(STACK_A)),
            );
            e.received_ms = now;
            e
        })
        .collect()
}

/// The error groups of `events` from the minute holding `since` on, computed from the raw events.
fn expected_groups(events: &[EventRecord], since: i64) -> Vec<ErrorGroup> {
    let minute = since - since.rem_euclid(60_000);
    let mut by_group: std::collections::BTreeMap<&str, Vec<&EventRecord>> = Default::default();
    for e in events.iter().filter(|e| e.client_ts_ms >= minute) {
        by_group
            .entry(e.fingerprint.as_deref().unwrap())
            .or_default()
            .push(e);
    }
    let top = |values: Vec<&str>, n: usize| {
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        let mut f: Vec<Facet> = counts
            .into_iter()
            .map(|(value, count)| Facet {
                value: value.into(),
                count,
            })
            .collect();
        f.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        f.truncate(n);
        f
    };
    let mut out: Vec<ErrorGroup> = by_group
        .into_iter()
        .map(|(id, es)| {
            let latest = es
                .iter()
                .max_by_key(|e| (e.client_ts_ms, std::cmp::Reverse(e.event_id)))
                .unwrap();
            let sessions: std::collections::BTreeSet<&str> =
                es.iter().map(|e| &*e.session_id).collect();
            ErrorGroup {
                id: id.into(),
                error_type: "TypeError".into(),
                message: "x is <n>".into(),
                count: es.len() as u64,
                sessions: sessions.len() as u64,
                first_seen_ms: es.iter().map(|e| e.client_ts_ms).min().unwrap(),
                last_seen_ms: es.iter().map(|e| e.client_ts_ms).max().unwrap(),
                releases: top(es.iter().filter_map(|e| e.release.as_deref()).collect(), 10)
                    .into_iter()
                    .map(|f| f.value)
                    .collect(),
                top_pages: top(es.iter().map(|e| &*e.route).collect(), 5),
                top_browsers: top(es.iter().map(|e| &*e.browser).collect(), 5),
                sample: Sample {
                    message: latest.name.as_deref().unwrap().into(),
                    release: latest.release.as_deref().map(Into::into),
                    stack: latest.stack.clone(),
                },
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    out
}

/// Error groups from the rollups are exact (sessions too, for this handful) whichever mix of partial, minute,
/// hour and day rows a window reads, before and after folding; a retry adds nothing; and a store that had
/// rollups before the group kinds existed (schema 11) rolls up its stored errors for them once, without
/// counting them again in the other kinds.
async fn error_groups_from_rollups_across_levels_retries_and_upgrade(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let now = vantage_ingest::clock::now_ms();
    let mut events = spread_errors(now);
    store.submit(events.clone()).await.unwrap();
    let starts = window_starts(now);
    let check = |store: &Store, events: Vec<EventRecord>, when: &'static str| {
        let store = store.clone();
        async move {
            for since in starts {
                assert_eq!(
                    store.error_groups("shop", since).await.unwrap(),
                    expected_groups(&events, since),
                    "{when}: since {since}"
                );
            }
        }
    };
    check(&store, events.clone(), "partial rows").await;
    assert_eq!(
        store.submit(events.clone()).await.unwrap().duplicates.len(),
        events.len()
    );
    assert!(store.maintain_rollups().await.unwrap() > 0);
    check(&store, events.clone(), "folded").await;
    // A late error after folding: read from a partial row beside the merged ones, then folded into them.
    let mut late = grouped(
        GROUP_C,
        "s-late",
        now - 2 * 86_400_000 + 1,
        ("/late", "Edge", Some("r9")),
        ("TypeError: x is 1", Some(STACK_A)),
    );
    late.received_ms = now;
    store.submit(vec![late.clone()]).await.unwrap();
    events.push(late);
    check(&store, events.clone(), "late, partial").await;
    store.maintain_rollups().await.unwrap();
    check(&store, events.clone(), "late, folded").await;
    let per_route = store.error_stats("shop", starts[0]).await.unwrap();
    store.shutdown().await;
    drop(store);

    // The same store as version 11 left it: rollups of the other kinds, none of the groups.
    db.execute(
        "DELETE FROM rollups WHERE kind LIKE 'group%'; ALTER TABLE rollups DROP COLUMN first_ms; \
         ALTER TABLE rollups DROP COLUMN last_ms; DROP INDEX events_errors; \
         DELETE FROM rollup_backfill WHERE id = 2; DELETE FROM schema_migrations WHERE version >= 12;",
    )
    .await;
    let store = db.open().await;
    assert!(
        store
            .error_groups("shop", starts[0])
            .await
            .unwrap()
            .is_empty(),
        "not yet backfilled"
    );
    // An error stored after the upgrade is the writer's to count, in every kind.
    let mut after = grouped(
        GROUP_B,
        "s-after",
        now - 60_000,
        ("/", "Chrome", Some("r1")),
        ("TypeError: x is 3", Some(STACK_A)),
    );
    after.received_ms = vantage_ingest::clock::now_ms() + 1_000;
    store.submit(vec![after.clone()]).await.unwrap();
    events.push(after);
    store.maintain_rollups().await.unwrap();
    check(&store, events.clone(), "upgraded").await;
    // The errors per route were counted once: what they were, plus the new one.
    let total = |s: &[ErrorStats]| s.iter().map(|r| r.errors).sum::<u64>();
    assert_eq!(
        total(&store.error_stats("shop", starts[0]).await.unwrap()),
        total(&per_route) + 1
    );
    // Folded and backfilled: a retry of everything still adds nothing.
    assert_eq!(
        store.submit(events.clone()).await.unwrap().duplicates.len(),
        events.len()
    );
    store.maintain_rollups().await.unwrap();
    check(&store, events.clone(), "upgraded, retried").await;
    store.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// Not backend cases

#[tokio::test]
async fn unusable_urls_are_config_errors() {
    for url in ["mysql://x/y", "sqlite://", "sqlite://:memory:"] {
        let cfg = StoreConfig::with_url(url);
        match Store::open(&cfg, &mut Registry::default()).await {
            Err(StoreError::Config(_)) => {}
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn postgres_error_never_shows_the_password() {
    let cfg = StoreConfig::with_url("postgres://vantage:hunter2secret@127.0.0.1:1/nothing");
    let err = Store::open(&cfg, &mut Registry::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");
}

#[test]
fn test_db_urls() {
    assert_eq!(
        with_db("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(with_db("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(
        with_db("postgres://u@h/db?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}

/// One error of group `fingerprint`.
fn grouped(
    fingerprint: &str,
    session: &str,
    ts: i64,
    (route, browser, release): (&str, &str, Option<&str>),
    (message, stack): (&str, Option<&str>),
) -> EventRecord {
    let mut e = event("shop", session, "error", ts);
    e.route = route.into();
    e.url = format!("https://shop.example.com{route}").into();
    e.browser = browser.into();
    e.release = release.map(Into::into);
    e.fingerprint = Some(fingerprint.into());
    e.name = Some(message.to_string().into());
    e.stack = stack.map(str::to_string);
    e
}

const GROUP_A: &str = "aaaaaaaaaaaaaaaa";
const GROUP_B: &str = "bbbbbbbbbbbbbbbb";
const GROUP_C: &str = "cccccccccccccccc";
const STACK_A: &str = "TypeError: x is 42\n    at addToCart (src/cart.js:42:31)";

/// Error groups: the same answer on both engines, computed by hand; the same after folding the rollups and
/// after a retry of every event.
async fn error_groups_on_a_known_data_set(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let a = |session, ts, place, msg| grouped(GROUP_A, session, ts, place, (msg, Some(STACK_A)));
    let mut events = vec![
        a(
            "s1",
            SINCE + 10,
            ("/cart", "Chrome", Some("r2")),
            "TypeError: x is 7",
        ),
        a(
            "s1",
            SINCE + 20,
            ("/cart", "Firefox", Some("r1")),
            "TypeError: x is 9",
        ),
        a(
            "s2",
            SINCE + 30,
            ("/", "Chrome", Some("r2")),
            "TypeError: x is 42",
        ),
        grouped(
            GROUP_B,
            "s3",
            SINCE + 5,
            ("/", "Safari", None),
            ("boom", None),
        ),
        // Excluded: before the window (which starts at the minute holding SINCE), another site, an error
        // without a group.
        a(
            "s9",
            SINCE_MINUTE - 1,
            ("/old", "Chrome", Some("r0")),
            "TypeError: x is 1",
        ),
    ];
    let mut blog = a("s9", SINCE + 40, ("/", "Chrome", None), "TypeError: x");
    blog.site = "blog".into();
    events.push(blog);
    events.push(error("/", "s9", "no group"));
    events.sort_by_key(|e| e.received_ms);
    store.submit(events.clone()).await.unwrap();

    let facet = |v: &str, count| Facet {
        value: v.into(),
        count,
    };
    assert_eq!(
        store.error_groups("shop", SINCE).await.unwrap(),
        vec![
            ErrorGroup {
                id: GROUP_A.into(),
                error_type: "TypeError".into(),
                message: "x is <n>".into(),
                count: 3,
                sessions: 2,
                first_seen_ms: SINCE + 10,
                last_seen_ms: SINCE + 30,
                releases: vec!["r2".into(), "r1".into()],
                top_pages: vec![facet("/cart", 2), facet("/", 1)],
                top_browsers: vec![facet("Chrome", 2), facet("Firefox", 1)],
                sample: Sample {
                    message: "TypeError: x is 42".into(),
                    release: Some("r2".into()),
                    stack: Some(STACK_A.into()),
                },
            },
            ErrorGroup {
                id: GROUP_B.into(),
                error_type: "Error".into(),
                message: "boom".into(),
                count: 1,
                sessions: 1,
                first_seen_ms: SINCE + 5,
                last_seen_ms: SINCE + 5,
                releases: vec![],
                top_pages: vec![facet("/", 1)],
                top_browsers: vec![facet("Safari", 1)],
                sample: Sample {
                    message: "boom".into(),
                    release: None,
                    stack: None,
                },
            },
        ]
    );
    let groups = store.error_groups("shop", SINCE).await.unwrap();
    assert_eq!(
        store.submit(events.clone()).await.unwrap().duplicates.len(),
        events.len()
    );
    assert!(store.maintain_rollups().await.unwrap() > 0);
    assert_eq!(store.error_groups("shop", SINCE).await.unwrap(), groups);
    // The window from the next minute on holds none of them.
    assert!(store
        .error_groups("shop", SINCE_MINUTE + 60_000)
        .await
        .unwrap()
        .is_empty());
    let occ =
        |session: &str, ts, route: &str, browser: &str, release: &str, msg: &str| Occurrence {
            time_ms: ts,
            session_id: session.into(),
            page: format!("https://shop.example.com{route}"),
            route: route.into(),
            release: Some(release.into()),
            browser: browser.into(),
            message: msg.into(),
            stack: Some(STACK_A.into()),
        };
    assert_eq!(
        store
            .error_occurrences("shop", GROUP_A, SINCE, 2)
            .await
            .unwrap(),
        vec![
            occ("s2", SINCE + 30, "/", "Chrome", "r2", "TypeError: x is 42"),
            occ(
                "s1",
                SINCE + 20,
                "/cart",
                "Firefox",
                "r1",
                "TypeError: x is 9"
            ),
        ]
    );
    assert!(store
        .error_occurrences("shop", GROUP_B, SINCE + 6, 10)
        .await
        .unwrap()
        .is_empty());
    store.shutdown().await;
}

/// Source maps (limit per release, replace, list, delete) and error group rows (created once, retention).
async fn sourcemaps_and_error_group_rows(kind: Kind) {
    use vantage_ingest::store::{NewSourceMap, PutOutcome};
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let map = |release: &str, url: &str, content: &str| NewSourceMap {
        site: "shop".into(),
        release: release.into(),
        url: url.into(),
        name: "x.js.map".into(),
        content: content.into(),
        uploaded_ms: 1_000,
        max_per_release: 2,
    };
    let put = |m| store.put_sourcemap(m);
    assert_eq!(
        put(map("r1", "https://a/1.js", "{}")).await.unwrap(),
        PutOutcome::Stored { replaced: false }
    );
    assert_eq!(
        put(map("r1", "https://a/2.js", "{}")).await.unwrap(),
        PutOutcome::Stored { replaced: false }
    );
    assert_eq!(
        put(map("r1", "https://a/3.js", "{}")).await.unwrap(),
        PutOutcome::ReleaseFull { maps: 2 }
    );
    assert_eq!(
        put(map("r1", "https://a/2.js", "{\"v\":2}")).await.unwrap(),
        PutOutcome::Stored { replaced: true }
    );
    assert_eq!(
        put(map("r2", "https://a/1.js", "{}")).await.unwrap(),
        PutOutcome::Stored { replaced: false }
    );
    assert_eq!(
        store
            .get_sourcemap("shop", "r1", "https://a/2.js")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"v\":2}")
    );
    assert_eq!(
        store
            .get_sourcemap("shop", "r1", "https://a/3.js")
            .await
            .unwrap(),
        None
    );
    let listed = store.list_sourcemaps("shop", Some("r1")).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.url.as_str(), m.bytes))
            .collect::<Vec<_>>(),
        [("https://a/1.js", 2), ("https://a/2.js", 7)]
    );
    assert_eq!(store.list_sourcemaps("shop", None).await.unwrap().len(), 3);
    assert_eq!(store.delete_sourcemaps("shop", "r1").await.unwrap(), 2);
    assert_eq!(store.list_sourcemaps("shop", None).await.unwrap().len(), 1);

    let fps = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        store
            .touch_error_groups("shop", &fps(&["a", "b"]), 1_000)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .touch_error_groups("shop", &fps(&["a", "c"]), 5_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .touch_error_groups("blog", &fps(&["a"]), 5_000)
            .await
            .unwrap(),
        1
    );
    // Retention deletes the groups not seen since its cutoff ("b"): it is new again when it comes back.
    store.delete_older_than(2_000).await.unwrap();
    assert_eq!(
        store
            .touch_error_groups("shop", &fps(&["a", "b", "c"]), 6_000)
            .await
            .unwrap(),
        1
    );
    store.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// The explorer's queries

/// Page loads and errors per bucket: the same answer on both engines, zero-filled, window on client time.
async fn timeline_on_a_known_data_set(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    const MIN: i64 = 60_000;
    // Buckets are aligned to the epoch: the window's first one starts before SINCE.
    let first = SINCE - SINCE.rem_euclid(MIN);
    let at = |site: &str, event_type: &str, ts: i64| event(site, "s", event_type, ts);
    let mut events = vec![
        at("shop", "page_load", SINCE),
        at("shop", "page_load", first + MIN - 1),
        at("shop", "error", first + 10),
        at("shop", "page_load", first + 2 * MIN),
        at("shop", "page_load", first + 2 * MIN + 59_999),
        at("shop", "error", first + 2 * MIN + 1),
        // Counted nowhere: other types, before the window, another site.
        at("shop", "api_call", first + MIN + 5),
        at("shop", "route_change", first + MIN + 5),
        at("shop", "page_load", SINCE - 1),
        at("blog", "page_load", first + MIN + 5),
    ];
    // A client 9 minutes ahead: received before the window, counted by its client time.
    let mut ahead = at("shop", "error", first + MIN + 7);
    ahead.received_ms = SINCE - 9 * MIN;
    events.push(ahead);
    events.sort_by_key(|e| e.received_ms);
    store.submit(events).await.unwrap();

    let b = |i: i64, page_loads, errors| Bucket {
        start_ms: first + i * MIN,
        page_loads,
        errors,
    };
    assert_eq!(
        store
            .timeline("shop", SINCE, first + 3 * MIN + 1, MIN)
            .await
            .unwrap(),
        vec![b(0, 2, 0), b(1, 0, 1), b(2, 2, 1), b(3, 0, 0)]
    );
    // Nothing in the window: every bucket is there, with zeros.
    let empty = store
        .timeline("shop", SINCE + 10 * MIN, SINCE + 12 * MIN, MIN)
        .await
        .unwrap();
    assert_eq!(empty.len(), 3);
    assert!(empty.iter().all(|b| b.page_loads == 0 && b.errors == 0));
    // More buckets than an answer may hold is refused, not computed.
    assert!(store.timeline("shop", 0, 1_000 * MIN, MIN).await.is_err());
    store.shutdown().await;
}

/// The session list (latest first, page views and errors, last page) and one session's events in order.
async fn sessions_on_a_known_data_set(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let ev = |session: &str, event_type: &str, ts: i64, route: &str| {
        let mut e = event("shop", session, event_type, ts);
        e.route = route.into();
        e.url = format!("https://shop.example.com{route}").into();
        e
    };
    let mut load = ev("s1", "page_load", SINCE + 10, "/");
    load.value = Some(512.0);
    load.release = Some("shop@1.4.2".into());
    let mut api = ev("s1", "api_call", SINCE + 15, "/");
    api.endpoint = Some("GET api.shop.example.com/cart".into());
    api.status = Some(500);
    api.value = Some(85.5);
    let mut click = ev("s1", "user_interaction", SINCE + 18, "/");
    click.value = Some(120.0);
    click.raw = r#"{"type":"user_interaction","interaction":{"action":"click","target":"buy-button","duration":120}}"#.into();
    let mut route = ev("s1", "route_change", SINCE + 20, "/cart");
    route.release = Some("shop@1.4.2".into());
    let mut vital = ev("s1", "web_vital", SINCE + 25, "/cart");
    vital.name = Some("LCP".into());
    vital.value = Some(1830.0);
    vital.rating = Some("good".into());
    let mut err = ev("s1", "error", SINCE + 30, "/cart");
    err.name = Some("TypeError: x".into());
    err.fingerprint = Some(GROUP_A.into());
    err.release = Some("shop@1.4.2".into());
    err.browser = "Firefox".into();
    let mut events = vec![
        load,
        api,
        click,
        route,
        vital,
        err,
        ev("s2", "page_load", SINCE + 100, "/about"),
        // s3 made API calls only: no page view, not listed.
        ev("s3", "api_call", SINCE + 200, "/"),
        // Before the window; another site with the same session id.
        ev("s4", "page_load", SINCE - 1, "/old"),
        ev("s1", "custom", SINCE - 1, "/"),
    ];
    let mut blog = ev("s1", "page_load", SINCE + 300, "/blog");
    blog.site = "blog".into();
    events.push(blog);
    events.sort_by_key(|e| e.received_ms);
    store.submit(events).await.unwrap();

    let s2 = SessionSummary {
        id: "s2".into(),
        start_ms: SINCE + 100,
        last_ms: SINCE + 100,
        page_views: 1,
        errors: 0,
        last_route: "/about".into(),
        browser: "Chrome".into(),
        device: "desktop".into(),
        release: None,
    };
    let s1 = SessionSummary {
        id: "s1".into(),
        start_ms: SINCE + 10,
        last_ms: SINCE + 30,
        page_views: 2,
        errors: 1,
        last_route: "/cart".into(),
        browser: "Firefox".into(),
        device: "desktop".into(),
        release: Some("shop@1.4.2".into()),
    };
    assert_eq!(
        store.sessions("shop", SINCE, 50).await.unwrap(),
        vec![s2.clone(), s1]
    );
    assert_eq!(store.sessions("shop", SINCE, 1).await.unwrap(), vec![s2]);
    assert!(store
        .sessions("shop", SINCE + 1_000, 50)
        .await
        .unwrap()
        .is_empty());

    let base = |event_type: &str, ts: i64, route: &str| SessionEvent {
        event_type: event_type.into(),
        time_ms: ts,
        route: route.into(),
        url: format!("https://shop.example.com{route}"),
        value: None,
        name: None,
        endpoint: None,
        status: None,
        rating: None,
        group: None,
        target: None,
        release: None,
    };
    let expected = vec![
        SessionEvent {
            value: Some(512.0),
            release: Some("shop@1.4.2".into()),
            ..base("page_load", SINCE + 10, "/")
        },
        SessionEvent {
            value: Some(85.5),
            endpoint: Some("GET api.shop.example.com/cart".into()),
            status: Some(500),
            ..base("api_call", SINCE + 15, "/")
        },
        SessionEvent {
            value: Some(120.0),
            target: Some("buy-button".into()),
            ..base("user_interaction", SINCE + 18, "/")
        },
        SessionEvent {
            release: Some("shop@1.4.2".into()),
            ..base("route_change", SINCE + 20, "/cart")
        },
        SessionEvent {
            value: Some(1830.0),
            name: Some("LCP".into()),
            rating: Some("good".into()),
            ..base("web_vital", SINCE + 25, "/cart")
        },
        SessionEvent {
            name: Some("TypeError: x".into()),
            group: Some(GROUP_A.into()),
            release: Some("shop@1.4.2".into()),
            ..base("error", SINCE + 30, "/cart")
        },
    ];
    let all = store
        .session_events("shop", "s1", SINCE, 500)
        .await
        .unwrap();
    assert_eq!((all.events, all.truncated), (expected.clone(), false));
    let first_two = store.session_events("shop", "s1", SINCE, 2).await.unwrap();
    assert_eq!(
        (first_two.events, first_two.truncated),
        (expected[..2].to_vec(), true)
    );
    let exact = store.session_events("shop", "s1", SINCE, 6).await.unwrap();
    assert!(!exact.truncated);
    let none = store
        .session_events("shop", "nope", SINCE, 500)
        .await
        .unwrap();
    assert!(none.events.is_empty() && !none.truncated);
    store.shutdown().await;
}
