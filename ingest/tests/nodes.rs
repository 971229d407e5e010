//! Several ingest nodes on one PostgreSQL database, as deployed behind a load balancer (docs/deploying.md): two
//! real `vantage-ingest` processes on a fresh database of the test server.
//! - started at the same moment on an empty database, the migrations are applied once and both become ready;
//! - the same batches sent to both nodes at once, several times (a retry that lands on the other node), store
//!   each event once and acknowledge it as new exactly once: the `(site, event_id)` key dedupes across nodes,
//!   where each node's `batch_id` memory cannot;
//! - the stats answer the same from either node;
//! - rate limits are per node: a site at its limit on one node is still accepted on the other;
//! - SIGTERM to a node under load loses no acknowledged event, the node exits 0, and the other keeps serving.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use support::ingest_process::{Answer, IngestProcess, Load, Sent, PATIENCE};
use support::{Backend, Opts, TestDb};
use uuid::Uuid;

/// The migrations this build applies (`store/schema.rs`), one log line each.
const APPLIED: &str = "applied postgres schema migration";

/// Two nodes (`a`, `b`) on one fresh database, each with its own directory for its config and log.
struct Nodes {
    a: IngestProcess,
    b: IngestProcess,
    db: TestDb,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Nodes {
    /// Both started at once, the same config; `/readyz` 200 on both.
    async fn start(o: &Opts) -> Nodes {
        let db = TestDb::new(Backend::Postgres).await;
        let config = support::config_text(&db.url, o);
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = tokio::join!(
            IngestProcess::start(dirs.0.path(), &config),
            IngestProcess::start(dirs.1.path(), &config)
        );
        for node in [&a, &b] {
            node.wait_for("/readyz 200", || async { node.readyz().await == 200 })
                .await;
        }
        Nodes {
            a,
            b,
            db,
            _dirs: dirs,
        }
    }

    async fn sql(&self) -> tokio_postgres::Client {
        support::pg_client(&self.db.url).await
    }

    /// Event id -> rows holding it, for the site `shop`.
    async fn stored(&self) -> HashMap<Uuid, i64> {
        support::stored_ids(&self.db.url, Some("shop")).await
    }

    async fn count(&self) -> i64 {
        self.sql()
            .await
            .query_one("SELECT COUNT(*) FROM events WHERE site = 'shop'", &[])
            .await
            .unwrap()
            .get(0)
    }

    fn logs(&self) -> String {
        format!("node A:\n{}\nnode B:\n{}", self.a.output(), self.b.output())
    }
}

fn opts() -> Opts {
    Opts::default()
}

// ---------------------------------------------------------------------------------------------------------
// a. Started together on an empty database.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_together_migrate_once_and_both_become_ready() {
    let nodes = Nodes::start(&opts()).await;
    let versions: Vec<(i64, i64)> = nodes
        .sql()
        .await
        .query(
            "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Versions need not be consecutive (9 is left to the rollups' migration); each is recorded once.
    let recorded = versions.len();
    assert!(recorded >= 8, "{versions:?}");
    assert_eq!(versions[0].0, 1, "{versions:?}");
    assert!(
        versions.iter().all(|&(_, n)| n == 1),
        "every version recorded once: {versions:?}"
    );
    // Each node migrates in one transaction under `pg_advisory_xact_lock`: the second to take the lock finds
    // every version recorded and applies nothing (it neither fails on the first's tables nor applies them again).
    let applied = [nodes.a.logged(APPLIED).len(), nodes.b.logged(APPLIED).len()];
    assert!(
        applied == [recorded, 0] || applied == [0, recorded],
        "migrations applied by node A, node B: {applied:?}; one node should apply all {recorded}\n{}",
        nodes.logs()
    );
    // Both take writes.
    for node in [&nodes.a, &nodes.b] {
        let (a, _) = node.post("ready", 20).await;
        assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// b. Retries across nodes.

/// Batch `i`: 20 events of all the kinds the stats read (page loads on several routes, API calls, errors,
/// web vitals), fresh ids, and a `batch_id`. Its values depend only on `i`.
fn mixed_batch(i: usize) -> (Value, Vec<Uuid>) {
    let now = support::now_ms();
    let session = format!("nodes-{}", i % 7);
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    let page = |k: usize| format!("https://shop.example.com/products/{}", (i + k) % 5);
    let mut events = Vec::new();
    for k in 0..20 {
        let base = json!({"session_id": session, "timestamp": now - k as i64, "user_agent": ua});
        let mut e = match k % 5 {
            0 | 1 => json!({"type": "page_load", "page": {"url": page(k), "referrer": ""},
                           "metrics": {"ttfb": 50 + (i * 7 + k) % 90, "total": 300 + (i * 13 + k * 17) % 900}}),
            2 => json!({"type": "api_call", "page": {"url": page(k)},
                        "api": {"method": "GET", "endpoint": format!("https://api.example.com/items/{}", i % 3),
                                "duration": 20 + (i * 11 + k) % 200, "status": if i.is_multiple_of(4) { 500 } else { 200 }}}),
            3 => json!({"type": "error", "page": {"url": page(k)},
                        "error": {"message": format!("TypeError: thing {} is undefined", i % 3),
                                  "stack": format!("at render (https://shop.example.com/app.js:1:{})", 100 + i % 3)}}),
            _ => json!({"type": "web_vital", "page": {"url": page(k)},
                        "name": VITALS[(i + k) % 3],
                        "value": if (i + k) % 3 == 1 { 0.05 * ((i % 5) as f64) } else { 800.0 + (i * 37 % 3000) as f64 }}),
        };
        let obj = e.as_object_mut().unwrap();
        obj.extend(base.as_object().unwrap().clone());
        obj.insert("event_id".into(), Uuid::new_v4().to_string().into());
        events.push(e);
    }
    let ids = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().parse().unwrap())
        .collect();
    (
        json!({"batch_id": Uuid::new_v4().to_string(), "events": events}),
        ids,
    )
}

const VITALS: [&str; 3] = ["LCP", "CLS", "INP"];
const BATCHES: usize = 50;
const EVENTS_PER_BATCH: usize = 20;
/// How many times each batch is sent to each node (all at once).
const ATTEMPTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_across_nodes_store_each_event_once() {
    let nodes = Nodes::start(&opts()).await;
    let batches: Vec<(Value, Vec<Uuid>)> = (0..BATCHES).map(mixed_batch).collect();
    // What node B gets: the same batches with their events in reverse order (same ids, same `batch_id`), so
    // that the two nodes insert the same keys in opposite orders at the same moment. Before each write group
    // was sorted by key, that deadlocked the two inserts now and then (40P01: a 503, and the node refusing
    // everything until its writer reconnected).
    let reversed: Vec<Value> = batches
        .iter()
        .map(|(body, _)| {
            let mut body = body.clone();
            body["events"].as_array_mut().unwrap().reverse();
            body
        })
        .collect();
    let ids: HashSet<Uuid> = batches.iter().flat_map(|(_, ids)| ids.clone()).collect();
    assert_eq!(ids.len(), BATCHES * EVENTS_PER_BATCH);
    // Every attempt of every batch to both nodes in flight at once: retries meet on one node (both miss its
    // batch memory, then race in its store) and across nodes (only the database's key can tell).
    let mut sends = Vec::new();
    for attempt in 0..ATTEMPTS {
        for i in 0..BATCHES {
            for (name, node, body) in [
                ("A", &nodes.a, &batches[i].0),
                ("B", &nodes.b, &reversed[i]),
            ] {
                let (client, base, body) = (node.client.clone(), node.base.clone(), body.clone());
                sends.push(tokio::spawn(async move {
                    let answer = support::ingest_process::send(&client, &base, &body).await;
                    (name, i, attempt, answer)
                }));
            }
        }
    }
    let mut answers = Vec::new();
    for s in sends {
        answers.push(s.await.unwrap());
    }
    // Each answer says all 20 accepted; how many of them were new to the store is `accepted - duplicates`.
    let mut new_events = 0;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (node, i, attempt, a) in &answers {
        *by_status.entry(a.status).or_default() += 1;
        let what = format!("batch {i} attempt {attempt} to node {node}: {a:?}");
        match a.status {
            202 => {
                assert_eq!(a.body["rejected"], json!([]), "{what}");
            }
            200 => assert_eq!(a.body["duplicate_batch"], true, "{what}"),
            _ => panic!("{what}\n{}", nodes.logs()),
        }
        assert_eq!(a.accepted, EVENTS_PER_BATCH as u64, "{what}");
        let duplicates = a.body["duplicates"].as_u64().expect("duplicates");
        new_events += a.accepted - duplicates;
    }
    assert_eq!(
        new_events as usize,
        ids.len(),
        "events acknowledged as new, over all {} answers {by_status:?}; each should be once",
        answers.len()
    );
    let rows = nodes.stored().await;
    let doubled: Vec<_> = rows.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    let stored: HashSet<Uuid> = rows.keys().copied().collect();
    assert_eq!(stored, ids, "the events stored are the events sent");
    assert_eq!(nodes.count().await as usize, ids.len(), "rows for the site");
}

// ---------------------------------------------------------------------------------------------------------
// c. The same stats from either node.

async fn stats(node: &IngestProcess, kind: &str) -> Value {
    let r = node
        .client
        .get(node.url(&format!("/v1/stats/{kind}?site=shop&window=24h")))
        .bearer_auth(support::admin_token("read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "stats/{kind} from {}", node.base);
    let mut v: Value = r.json().await.unwrap();
    // Where the window starts: now minus 24 h, as each node's clock reads now.
    assert!(
        v.as_object_mut().unwrap().remove("since_ms").is_some(),
        "{v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_the_same_from_either_node() {
    let nodes = Nodes::start(&opts()).await;
    // Half the batches through each node.
    for i in 0..20_usize {
        let node = if i.is_multiple_of(2) {
            &nodes.a
        } else {
            &nodes.b
        };
        let a = node.send(&mixed_batch(i).0).await;
        assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
    }
    for kind in ["pages", "api", "errors", "vitals"] {
        let (a, b) = (stats(&nodes.a, kind).await, stats(&nodes.b, kind).await);
        let rows = match kind {
            "errors" => a["groups"].as_array().map_or(0, Vec::len),
            _ => a[kind].as_array().map_or(0, Vec::len),
        };
        assert!(rows > 0, "stats/{kind} has rows: {a}");
        assert_eq!(a, b, "stats/{kind}: node A, node B");
    }
}

// ---------------------------------------------------------------------------------------------------------
// d. Rate limits are per node.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_per_node() {
    // Two batches of 20 per node, then one event every 100 s: no refill within the test.
    let nodes = Nodes::start(&Opts {
        rate: 0.01,
        burst: 40.0,
        max_events: 20,
        ..Opts::default()
    })
    .await;
    let limited = |node: &'static str, a: &Answer, expect_limited: bool| {
        if expect_limited {
            assert_eq!(
                (a.status, a.retry_after.is_some()),
                (429, true),
                "node {node}: {a:?}"
            );
        } else {
            assert_eq!((a.status, a.accepted), (202, 20), "node {node}: {a:?}");
        }
    };
    for _ in 0..2 {
        limited("A", &nodes.a.post("limit-a", 20).await.0, false);
    }
    limited("A", &nodes.a.post("limit-a", 20).await.0, true);
    // Node A has used up the site's bucket; node B has a bucket of its own.
    for _ in 0..2 {
        limited("B", &nodes.b.post("limit-b", 20).await.0, false);
    }
    limited("B", &nodes.b.post("limit-b", 20).await.0, true);
    limited("A", &nodes.a.post("limit-a", 20).await.0, true);
    assert_eq!(
        nodes.count().await,
        80,
        "twice the per-node burst stored across the two nodes"
    );
}

// ---------------------------------------------------------------------------------------------------------
// e. SIGTERM under load.

/// Ids of the events whose request got a 2xx.
fn acknowledged(sent: &[Sent]) -> HashSet<Uuid> {
    sent.iter()
        .filter(|(a, _)| (200..300).contains(&a.status))
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_acknowledged() {
    let mut nodes = Nodes::start(&opts()).await;
    let mut acked = HashSet::new();
    for round in 1..=3 {
        let on_a = Load::start(&nodes.a.base, 4, 20, Duration::from_millis(5));
        let on_b = Load::start(&nodes.b.base, 2, 20, Duration::from_millis(5));
        // Under way: node A has stored some of this round's events.
        let before = nodes.count().await;
        nodes
            .a
            .wait_for("node A to store under load", || async {
                nodes.count().await >= before + 200
            })
            .await;
        nodes.a.signal(libc::SIGTERM);
        let status = nodes.a.wait_exit(PATIENCE).await.unwrap_or_else(|| {
            panic!(
                "round {round}: node A still running {PATIENCE:?} after SIGTERM\n{}",
                nodes.a.output()
            )
        });
        assert!(
            status.success(),
            "round {round}: node A exited with {status}\n{}",
            nodes.a.output()
        );
        // Node B serves on while A is gone.
        let (b, ids) = nodes.b.post("while-a-is-down", 20).await;
        assert_eq!((b.status, b.accepted), (202, 20), "round {round}: {b:?}");
        acked.extend(ids);
        let (sent_a, sent_b) = (on_a.stop().await, on_b.stop().await);
        let refused_b: Vec<_> = sent_b.iter().filter(|(a, _)| a.status != 202).collect();
        assert!(
            refused_b.is_empty(),
            "round {round}: node B answered {refused_b:?}\n{}",
            nodes.b.output()
        );
        let acked_a = acknowledged(&sent_a);
        assert!(
            !acked_a.is_empty(),
            "round {round}: node A acknowledged nothing"
        );
        acked.extend(acked_a);
        acked.extend(acknowledged(&sent_b));
        support::assert_stored_once(
            &nodes.db.url,
            Some("shop"),
            &acked,
            &format!("round {round}, node A's log:\n{}\n", nodes.a.output()),
        )
        .await;
        assert_eq!(
            nodes
                .a
                .logged("shutdown: store drained and committed")
                .len(),
            round,
            "round {round}: node A drained its store at exit"
        );
        nodes.a.restart().await;
        nodes
            .a
            .wait_for("node A ready again", || async {
                nodes.a.readyz().await == 200
            })
            .await;
    }
}
