//! The same HTTP cases against real SQLite and real PostgreSQL: stats on a known data set, restart durability,
//! backpressure (503) while the writer is stalled, privacy deletion, the periodic retention pass, retried
//! batches recognised by `batch_id` and event ids unique per site.

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;

both!(
    stats_on_a_known_data_set,
    restart_keeps_every_acknowledged_event,
    stalled_writer_answers_503_then_recovers,
    admin_deletes_a_session,
    retention_loop_deletes_old_events_and_keeps_new_ones,
    a_batch_sent_again_is_answered_once_and_counted_once,
    a_batch_answered_503_is_processed_when_it_comes_again,
    an_event_id_is_stored_once_per_site_whatever_its_session,
);

fn vital(session: &str, url: &str, name: &str, value: f64) -> Value {
    json!({"type": "web_vital", "session_id": session, "timestamp": now_ms(), "name": name, "value": value,
           "page": {"url": url}})
}

fn api_call(url: &str, status: i64, duration: f64) -> Value {
    json!({"type": "api_call", "session_id": "s", "timestamp": now_ms(), "page": {"url": "https://shop.example.com/"},
           "api": {"method": "GET", "endpoint": url, "duration": duration, "status": status}})
}

fn error(session: &str, url: &str, msg: &str) -> Value {
    json!({"type": "error", "session_id": session, "timestamp": now_ms(), "page": {"url": url},
           "error": {"message": msg, "stack": "at f (app.js:1:1)"}})
}

async fn stats_on_a_known_data_set(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let mut events = Vec::new();
    // /products/:id: page loads 100..1000 step 100 -> nearest-rank p50 500, p75 800, p95 1000.
    for i in 1..=10 {
        events.push(page_load(
            &format!("s{i}"),
            &format!("https://shop.example.com/products/{i}?utm=x"),
            i as f64 * 100.0,
        ));
    }
    // /blog/:slug via the configured pattern: two samples.
    events.push(page_load(
        "b1",
        "https://shop.example.com/blog/hello-world",
        300.0,
    ));
    events.push(page_load(
        "b2",
        "https://shop.example.com/blog/second-post",
        500.0,
    ));
    // API: 4 calls to one endpoint, one 500 and one network error (status 0) -> error share 0.5.
    for (status, d) in [(200, 50.0), (200, 70.0), (500, 90.0), (0, 110.0)] {
        events.push(api_call("https://api.example.com/users/42", status, d));
    }
    events.push(api_call("https://api.example.com/health", 200, 5.0));
    // Errors: 3 on /checkout from 2 sessions.
    events.push(error(
        "e1",
        "https://shop.example.com/checkout",
        "TypeError: a",
    ));
    events.push(error(
        "e1",
        "https://shop.example.com/checkout",
        "TypeError: a",
    ));
    events.push(error(
        "e2",
        "https://shop.example.com/checkout",
        "RangeError: b",
    ));
    // LCP on /: 1000, 2000, 3000, 5000 -> p75 (rank 3) 3000; good 2, ni 1, poor 1.
    for v in [1000.0, 2000.0, 3000.0, 5000.0] {
        events.push(vital("v", "https://shop.example.com/", "LCP", v));
    }
    let r = app.send(&json!({ "events": events })).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 24);

    let pages = app.stats("pages").await["pages"].clone();
    let products = pages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["route"] == "/products/:id")
        .expect("products route");
    assert_eq!(products["samples"], 10);
    support::assert_percentile(&products["p50_ms"], 500.0);
    support::assert_percentile(&products["p75_ms"], 800.0);
    support::assert_percentile(&products["p95_ms"], 1000.0);
    let blog = pages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["route"] == "/blog/:slug")
        .expect("blog route from the configured pattern");
    assert_eq!(blog["samples"], 2);

    let api = app.stats("api").await["api"].clone();
    assert_eq!(api[0]["endpoint"], "GET api.example.com/users/:id", "{api}");
    assert_eq!(api[0]["calls"], 4);
    assert_eq!(api[0]["error_share"], 0.5);
    assert_eq!(api[1]["endpoint"], "GET api.example.com/health");

    let errors = app.stats("errors").await["errors"].clone();
    assert_eq!(errors[0]["route"], "/checkout", "{errors}");
    assert_eq!(errors[0]["errors"], 3);
    assert_eq!(errors[0]["affected_sessions"], 2);
    assert_eq!(errors[0]["top_messages"][0]["message"], "TypeError: a");

    let vitals = app.stats("vitals").await["vitals"].clone();
    let lcp = &vitals[0];
    assert_eq!(
        (lcp["route"].as_str(), lcp["name"].as_str()),
        (Some("/"), Some("LCP"))
    );
    assert_eq!(lcp["samples"], 4);
    support::assert_percentile(&lcp["p75"], 3000.0);
    assert_eq!(lcp["good_share"], 0.5);
    assert_eq!(lcp["poor_share"], 0.25);

    // Stats need a read token; a wrong kind or site is a clear 4xx.
    let c = &app.client;
    let r = c
        .get(app.url("/v1/stats/pages?site=shop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(app.url("/v1/stats/nope?site=shop"))
        .bearer_auth(admin_token("read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(app.url("/v1/stats/pages?site=shop&window=forever"))
        .bearer_auth(admin_token("read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}

async fn restart_keeps_every_acknowledged_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    // Concurrent senders; every 202 is counted.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let client = app.client.clone();
        let url = app.url("/v1/events");
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u64;
            for b in 0..10 {
                let events: Vec<Value> = (0..20)
                    .map(|i| {
                        page_load(&format!("t{t}-{b}-{i}"), "https://shop.example.com/", 100.0)
                    })
                    .collect();
                let r = client
                    .post(&url)
                    .header("x-api-key", KEY)
                    .body(json!({ "events": events }).to_string())
                    .send()
                    .await
                    .unwrap();
                if r.status() == 202 {
                    acked += r.json::<Value>().await.unwrap()["accepted"]
                        .as_u64()
                        .unwrap();
                }
            }
            acked
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    assert_eq!(acked, 1600);
    app.stop().await;
    let app = spawn_app(&db, &Opts::default()).await;
    let pages = app.stats("pages").await;
    assert_eq!(pages["pages"][0]["samples"], 1600, "{pages}");
    app.stop().await;
}

/// Takes the database's write lock from another connection, so the store's writer waits.
enum Stall {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

async fn stall(db: &TestDb) -> Stall {
    match &db.sqlite_path {
        Some(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            Stall::Sqlite(c)
        }
        None => {
            let c = pg_client(&db.url).await;
            c.batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
                .await
                .unwrap();
            Stall::Postgres(c)
        }
    }
}

/// A server on `db` with a 100-event queue, its writer stalled and 80 events queued by a request that waits for
/// their commit (`first`): a request of more than 20 events gets 503 until the lock is released.
async fn stalled_with_80_queued(
    db: &TestDb,
) -> (TestApp, Stall, tokio::task::JoinHandle<reqwest::Response>) {
    let app = spawn_app(
        db,
        &Opts {
            queue_capacity: 100,
            ..Opts::default()
        },
    )
    .await;
    // Warm up (schema is there), then stall the writer.
    assert_eq!(
        app.send(&json!({"events": [page_load("w", "/", 1.0)]}))
            .await
            .status(),
        202
    );
    let lock = stall(db).await;
    // 80 events fill most of the queue; their request waits for the commit.
    let first = {
        let client = app.client.clone();
        let url = app.url("/v1/events");
        let events: Vec<Value> = (0..80)
            .map(|i| page_load(&format!("a{i}"), "/", 1.0))
            .collect();
        tokio::spawn(async move {
            client
                .post(url)
                .header("x-api-key", KEY)
                .body(json!({ "events": events }).to_string())
                .send()
                .await
                .unwrap()
        })
    };
    // Wait until those 80 events are queued (depth gauge).
    let mut queued = false;
    for _ in 0..200 {
        if app
            .metrics()
            .await
            .contains("vantage_ingest_store_queue_depth 80")
        {
            queued = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(queued, "first request's events reached the queue");
    (app, lock, first)
}

impl Stall {
    /// Lets the stalled writer go on.
    async fn release(self) {
        match self {
            Stall::Sqlite(c) => c.execute_batch("COMMIT").unwrap(),
            Stall::Postgres(c) => c.batch_execute("COMMIT").await.unwrap(),
        }
    }
}

async fn stalled_writer_answers_503_then_recovers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (app, lock, first) = stalled_with_80_queued(&db).await;
    // The next 40 do not fit: 503 + Retry-After.
    let events: Vec<Value> = (0..40)
        .map(|i| page_load(&format!("b{i}"), "/", 1.0))
        .collect();
    let busy = app.send(&json!({ "events": events })).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "2");
    lock.release().await;
    let r = first.await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 80);
    assert_eq!(
        app.send(&json!({"events": [page_load("c", "/", 1.0)]}))
            .await
            .status(),
        202
    );
    app.stop().await;
}

async fn admin_deletes_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let events: Vec<Value> = ["gone", "gone", "kept"]
        .iter()
        .map(|s| page_load(s, "https://shop.example.com/", 100.0))
        .collect();
    assert_eq!(app.send(&json!({ "events": events })).await.status(), 202);
    let del = |token: String| {
        app.client
            .delete(app.url("/v1/admin/sessions/shop/gone"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(del(admin_token("read")).await.unwrap().status(), 403);
    let r = del(admin_token("admin")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], 2);
    let path = db.sqlite_path.as_deref();
    assert_eq!(stored(&db.url, path, "gone").await, 0);
    assert_eq!(stored(&db.url, path, "kept").await, 1);
    // The page-load aggregates keep the deleted events' share: they hold no session id (rollup.rs).
    assert_eq!(app.stats("pages").await["pages"][0]["samples"], 3);
    app.stop().await;
}

/// Events of `session` stored, counted on the database directly (beside the running server).
async fn stored(url: &str, sqlite_path: Option<&std::path::Path>, session: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM events WHERE session_id = $1";
    match sqlite_path {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .query_row(&sql.replace('$', "?"), [session], |r| r.get(0))
            .unwrap(),
        None => pg_client(url)
            .await
            .query_one(sql, &[&session])
            .await
            .unwrap()
            .get(0),
    }
}

/// The real binary with `retention_days: 1` and a pass every 200 ms: events received two days ago go on
/// the first pass (PostgreSQL: their day partition is dropped), events received 12 hours ago and events just
/// posted stay through later passes.
async fn retention_loop_deletes_old_events_and_keeps_new_ones(backend: Backend) {
    use vantage_ingest::store::{EventRecord, Store, StoreConfig};
    const DAY_MS: i64 = 86_400_000;
    let db = TestDb::new(backend).await;
    let (url, path) = (db.url.clone(), db.sqlite_path.clone());
    // Seeded through the store itself, which records the receive time it is given.
    let store = Store::open(
        &StoreConfig::with_url(&db.url),
        &mut prometheus_client::registry::Registry::default(),
    )
    .await
    .unwrap();
    let seeded = |session: &str, received_ms: i64| -> Vec<EventRecord> {
        (0..30)
            .map(|_| EventRecord {
                received_ms,
                ..event_record("shop", session, "custom", received_ms)
            })
            .collect()
    };
    let now = now_ms();
    store.submit(seeded("old", now - 2 * DAY_MS)).await.unwrap();
    store
        .submit(seeded("recent", now - DAY_MS / 2))
        .await
        .unwrap();
    store.shutdown().await;
    drop(store);

    let ingest = Process::start(
        db,
        &Opts {
            storage_extra: "  retention_days: 1\n  retention_interval: 200ms\n".into(),
            ..Opts::default()
        },
    )
    .await;
    let passes = |ingest: &Process| -> Vec<serde_json::Value> {
        ingest
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["message"] == "retention pass")
            .collect()
    };
    let r = reqwest::Client::new()
        .post(ingest.url("/v1/events"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(
            json!({"events": [page_load("fresh", "https://shop.example.com/", 100.0)]}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let after_post = passes(&ingest).len();
    // Two more passes after the post: the loop runs periodically, and the fresh event went through one.
    ingest
        .wait_log(
            |_| passes(&ingest).len() >= after_post + 2,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|| panic!("no two retention passes: {:?}", ingest.logs()));
    let count = |field: &str| -> Vec<u64> {
        passes(&ingest)
            .iter()
            .map(|l| l[field].as_u64().unwrap())
            .collect()
    };
    let (deleted, dropped) = (count("deleted"), count("dropped_partitions"));
    match backend {
        Backend::Sqlite => assert_eq!(deleted.iter().sum::<u64>(), 30, "{deleted:?}"),
        // The old events' client day went whole, with the other days before the cutoff: no row deleted.
        Backend::Postgres => assert!(
            deleted.iter().sum::<u64>() == 0 && dropped.iter().sum::<u64>() >= 1,
            "{deleted:?} {dropped:?}"
        ),
    }
    assert_eq!(stored(&url, path.as_deref(), "old").await, 0);
    assert_eq!(stored(&url, path.as_deref(), "recent").await, 30);
    assert_eq!(stored(&url, path.as_deref(), "fresh").await, 1);
}

fn with_id(mut ev: Value, id: &str) -> Value {
    ev["event_id"] = json!(id);
    ev
}

async fn a_batch_sent_again_is_answered_once_and_counted_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let events: Vec<Value> = (0..3)
        .map(|i| {
            with_id(
                page_load("again", "https://shop.example.com/again", 400.0),
                &format!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b0{i}"),
            )
        })
        .collect();
    let batch = json!({"events": events, "batch_id": "5f0c2d1a-1111-4000-8000-00000000beef",
                       "dropped": {"queue": 2}});
    let r = app.send(&batch).await;
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(3), Some(0)),
        "{first}"
    );
    // Its answer was lost: the SDK sends it again, twice.
    for _ in 0..2 {
        let r = app.send(&batch).await;
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            b,
            json!({"accepted": 3, "duplicates": 3, "duplicate_batch": true})
        );
    }
    // Another site's batch with the same id is its own.
    let blog = json!({"events": [with_id(page_load("again", "https://blog.example.org/", 100.0),
                                         "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b09")],
                      "batch_id": "5f0c2d1a-1111-4000-8000-00000000beef"});
    let r = app
        .events()
        .header("x-api-key", OTHER_KEY)
        .body(blog.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(stored(&db.url, db.sqlite_path.as_deref(), "again").await, 4);
    let m = app.metrics().await;
    assert_eq!(
        metric_value(
            &m,
            r#"rum_events_total{site="shop",event_type="page_load",page="/again"}"#
        ),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            r#"rum_sdk_dropped_events_total{site="shop",reason="queue"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&m, r#"rum_batches_duplicate_total{site="shop"}"#),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&m, r#"rum_batches_duplicate_total{site="blog"}"#),
        None
    );
    app.stop().await;
}

async fn a_batch_answered_503_is_processed_when_it_comes_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (app, lock, first) = stalled_with_80_queued(&db).await;
    let events: Vec<Value> = (0..40)
        .map(|i| page_load("late", "https://shop.example.com/late", 10.0 + i as f64))
        .collect();
    let batch = json!({"events": events, "batch_id": "late-batch-1", "dropped": 5});
    let busy = app.send(&batch).await;
    assert_eq!(busy.status(), 503);
    lock.release().await;
    assert_eq!(first.await.unwrap().status(), 202);
    // Nothing of the refused attempt was kept: the retry is processed whole, a later one recognised.
    let r = app.send(&batch).await;
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["accepted"].as_u64(), b["duplicates"].as_u64()),
        (Some(40), Some(0)),
        "{b}"
    );
    assert_eq!(app.send(&batch).await.status(), 200);
    assert_eq!(stored(&db.url, db.sqlite_path.as_deref(), "late").await, 40);
    let m = app.metrics().await;
    assert_eq!(
        metric_value(
            &m,
            r#"rum_page_load_seconds_count{site="shop",page="/late"}"#
        ),
        Some(40.0),
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            r#"rum_sdk_dropped_events_total{site="shop",reason="unspecified"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        metric_value(&m, r#"rum_batches_duplicate_total{site="shop"}"#),
        Some(1.0)
    );
    app.stop().await;
}

/// POSTs `body` with `key`; the answer's `accepted` and `duplicates`.
async fn post_counts(app: &TestApp, key: &str, body: &Value) -> (Option<u64>, Option<u64>) {
    let r = app
        .events()
        .header("x-api-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let b: Value = r.json().await.unwrap();
    (b["accepted"].as_u64(), b["duplicates"].as_u64())
}

async fn an_event_id_is_stored_once_per_site_whatever_its_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn_app(&db, &Opts::default()).await;
    let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4c01";
    // A resent event carries its own timestamp (on PostgreSQL part of the key, schema migration 11).
    let ts = now_ms();
    let batch = |session: &str, url: &str| {
        let mut e = with_id(page_load(session, url, 250.0), id);
        e["timestamp"] = json!(ts);
        json!({ "events": [e] })
    };
    let shop = batch("renewed-1", "https://shop.example.com/x");
    assert_eq!(post_counts(&app, KEY, &shop).await, (Some(1), Some(0)));
    // Sent again after its session was renewed: the same event of the same site.
    let again = batch("renewed-2", "https://shop.example.com/x");
    assert_eq!(post_counts(&app, KEY, &again).await, (Some(1), Some(1)));
    // The same id from another site is that site's event.
    let blog = batch("renewed-2", "https://blog.example.org/x");
    assert_eq!(
        post_counts(&app, OTHER_KEY, &blog).await,
        (Some(1), Some(0))
    );
    for session in ["renewed-1", "renewed-2"] {
        assert_eq!(stored(&db.url, db.sqlite_path.as_deref(), session).await, 1);
    }
    app.stop().await;
}
