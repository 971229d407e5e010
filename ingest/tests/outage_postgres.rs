//! A PostgreSQL store whose server goes away, against the real binary and a PostgreSQL cluster of the test's
//! own (stopped, restarted as a standby, frozen; never the machine's shared server):
//! - each way PostgreSQL can be unable to take a write (refused, lost connection, starting up, failover,
//!   no answer) is a 503 with Retry-After, `/readyz` 503 while it lasts, and 202 again by itself after,
//!   for every batch once `/readyz` says so;
//! - with the spool, a 10 s stop under load is not seen by senders at all, and every acknowledged event is
//!   in PostgreSQL once after the drain; without it, senders get only 503 with Retry-After meanwhile;
//! - kill -9 in the middle of a drain, or a spool that replays events PostgreSQL already has, loses and
//!   doubles nothing;
//! - a spool that is full, too old, or whose own disk is full refuses with 503 and Retry-After.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::ingest_process::{IngestProcess, Load, Sent};
use support::mounts::{fill, Tmpfs};
use support::pg_cluster::PgCluster;
use support::{assert_stored_once, KEY};
use uuid::Uuid;

const UNAVAILABLE: &str =
    "event store unavailable: requests are answered 503 with Retry-After until it is back";
const SPOOLING: &str = "event store unavailable: events go to the local spool until it is back";
const STILL: &str = "event store still unavailable";
const BACK: &str = "event store available again";

/// The ingest config: `storage_extra` is indented under `storage:`.
fn config(url: &str, storage_extra: &str) -> String {
    format!(
        "storage:\n  url: {url}\n  busy_retry_after_secs: 2\n{storage_extra}\
         sites:\n  - id: shop\n    api_key: {KEY}\n    rate_limit: {{ events_per_second: 1000000, burst: 1000000 }}\n"
    )
}

fn spool(path: &Path, more: &str) -> String {
    format!("  spool:\n    path: {}\n{more}", path.display())
}

async fn blocking(f: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(f).await.unwrap();
}

async fn assert_refused(ingest: &IngestProcess, session: &str) {
    let (a, _) = ingest.post(session, 20).await;
    assert_eq!(a.status, 503, "{a:?}\n{}", ingest.output());
    assert_eq!(a.retry_after.as_deref(), Some("2"), "{a:?}");
}

async fn assert_ready(ingest: &IngestProcess, status: u16) {
    ingest
        .wait_for(&format!("/readyz {status}"), || async {
            ingest.readyz().await == status
        })
        .await;
}

/// `/readyz` back to 200 without traffic, then a batch is stored.
async fn assert_recovers(ingest: &IngestProcess, acked: &mut HashSet<Uuid>) {
    assert_ready(ingest, 200).await;
    let (a, ids) = ingest.post("after", 20).await;
    assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
    acked.extend(ids);
}

/// The reason given by the first outage line, or by a later summary line (which carries the latest).
async fn wait_for_reason(ingest: &IngestProcess, first: &str, want: &str) {
    ingest
        .wait_for(
            &format!("an outage line with the reason {want:?}"),
            || async {
                ingest
                    .log_lines()
                    .iter()
                    .filter(|l| l["message"] == first || l["message"] == STILL)
                    .any(|l| l["reason"].as_str().is_some_and(|r| r.contains(want)))
            },
        )
        .await;
}

struct Setup {
    pg: std::sync::Arc<PgCluster>,
    url: String,
    ingest: IngestProcess,
    acked: HashSet<Uuid>,
    /// The ingest's config, log and (in these tests) spool.
    dir: tempfile::TempDir,
}

/// A fresh cluster and an ingest on it (`storage_extra` under `storage:`), one batch stored.
async fn setup(storage_extra: impl FnOnce(&Path) -> String) -> Setup {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PgCluster::start).await.unwrap());
    let url = pg.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let extra = storage_extra(dir.path());
    let ingest = IngestProcess::start(dir.path(), &config(&url, &extra)).await;
    let (a, ids) = ingest.post("first", 20).await;
    assert_eq!(a.status, 202, "{a:?}");
    Setup {
        pg,
        url,
        ingest,
        acked: ids.into_iter().collect(),
        dir,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Each transient failure class: 503 with Retry-After (no spool), /readyz 503, back by itself.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_answers_503() {
    let mut s = setup(|_| "  write_timeout: 5s\n".into()).await;
    let pg = s.pg.clone();
    blocking(move || pg.stop()).await;
    assert_refused(&s.ingest, "down").await;
    assert_ready(&s.ingest, 503).await;
    wait_for_reason(&s.ingest, UNAVAILABLE, "refused").await;
    let pg = s.pg.clone();
    blocking(move || pg.start_again()).await;
    assert_recovers(&s.ingest, &mut s.acked).await;
    assert_stored_once(&s.url, None, &s.acked, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lost_mid_write_answers_503() {
    let mut s = setup(|_| "  write_timeout: 60s\n".into()).await;
    // Hold the table so the writer's insert waits inside PostgreSQL, then kill its backend.
    let lock = support::pg_client(&s.url).await;
    lock.batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let pending = {
        let (client, base) = (s.ingest.client.clone(), s.ingest.base.clone());
        tokio::spawn(async move { support::ingest_process::post(&client, &base, "lost", 20).await })
    };
    let admin = support::pg_client(&s.url).await;
    s.ingest
        .wait_for("the insert to wait for the lock", || async {
            admin
                .query_one(
                    // The group's COPY, or its INSERT after a COPY met a stored key.
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'vantage-ingest' \
                     AND wait_event_type = 'Lock' \
                     AND (query LIKE 'COPY events%' OR query LIKE 'INSERT INTO events%')",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
        })
        .await;
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'vantage-ingest' AND wait_event_type = 'Lock'",
        )
        .await
        .unwrap();
    let (a, _) = pending.await.unwrap();
    assert_eq!(a.status, 503, "{a:?}\n{}", s.ingest.output());
    assert_eq!(a.retry_after.as_deref(), Some("2"));
    wait_for_reason(&s.ingest, UNAVAILABLE, "57P01").await;
    lock.batch_execute("COMMIT").await.unwrap();
    assert_recovers(&s.ingest, &mut s.acked).await;
    assert_stored_once(&s.url, None, &s.acked, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_up_57p03_answers_503() {
    // A standby without hot standby refuses every connection with 57P03, as a server does while it starts.
    standby_answers_503(false, "starting", "SQLSTATE 57P03").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_read_only_server_answers_503() {
    // The address now leads to a hot standby: connections work, writes get 25006.
    standby_answers_503(true, "read-only", "SQLSTATE 25006").await;
}

/// The server restarted as a standby (`hot`: taking connections read-only): writes from `session` get 503,
/// `reason` is logged, /readyz says 503, and once it is a primary again everything acknowledged is stored once.
async fn standby_answers_503(hot: bool, session: &str, reason: &str) {
    let mut s = setup(|_| "  write_timeout: 5s\n".into()).await;
    let pg = s.pg.clone();
    blocking(move || pg.restart_as_standby(hot)).await;
    assert_refused(&s.ingest, session).await;
    assert_ready(&s.ingest, 503).await;
    wait_for_reason(&s.ingest, UNAVAILABLE, reason).await;
    let pg = s.pg.clone();
    blocking(move || {
        pg.stop();
        pg.start_again();
    })
    .await;
    assert_recovers(&s.ingest, &mut s.acked).await;
    assert_stored_once(&s.url, None, &s.acked, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_within_the_write_timeout_answers_503() {
    let mut s = setup(|_| "  write_timeout: 2s\n".into()).await;
    let frozen = s.pg.freeze();
    // The insert gets no answer: refused after the write timeout...
    let started = Instant::now();
    assert_refused(&s.ingest, "hung").await;
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    wait_for_reason(&s.ingest, UNAVAILABLE, "did not answer").await;
    // ...and while new connections time out in the background (a pool that cannot hand one out), requests
    // are refused at once instead of waiting for one.
    let started = Instant::now();
    assert_refused(&s.ingest, "hung-2").await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "waited {:?} for a dead server",
        started.elapsed()
    );
    assert_ready(&s.ingest, 503).await;
    drop(frozen);
    assert_recovers(&s.ingest, &mut s.acked).await;
    assert_stored_once(&s.url, None, &s.acked, "").await;
}

/// Once `/readyz` says the store is back, every batch is stored, whichever writer takes it: the two writers'
/// background reconnects do not finish together, and one still waiting to retry must not refuse a group.
/// Frozen for different lengths, so the thaw lands in different phases of their reconnect attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_after_a_freeze_every_batch_is_stored() {
    let mut s = setup(|_| "  write_timeout: 2s\n".into()).await;
    for (round, hold_ms) in [4_300, 4_700, 5_100, 5_500, 5_900].into_iter().enumerate() {
        let frozen = s.pg.freeze();
        let started = Instant::now();
        assert_refused(&s.ingest, &format!("hung-{round}")).await;
        tokio::time::sleep(Duration::from_millis(hold_ms).saturating_sub(started.elapsed())).await;
        drop(frozen);
        assert_ready(&s.ingest, 200).await;
        for n in 0..6 {
            let (a, ids) = s.ingest.post(&format!("after-{round}-{n}"), 20).await;
            assert_eq!(
                (a.status, a.accepted),
                (202, 20),
                "round {round}, batch {n} after /readyz 200: {a:?}\n{}",
                s.ingest.output()
            );
            s.acked.extend(ids);
        }
    }
    assert_stored_once(&s.url, None, &s.acked, "").await;
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL stopped for 10 s under load.

/// 4 senders of 20-event batches; PostgreSQL stopped for 10 s after 2 s; 3 s more after it is back.
async fn stop_under_load(s: &Setup) -> Vec<Sent> {
    let load = Load::start(&s.ingest.base, 4, 20, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg = s.pg.clone();
    blocking(move || pg.stop()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pg = s.pg.clone();
    blocking(move || pg.start_again()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_10s_under_load_with_the_spool_senders_see_nothing_and_nothing_is_lost() {
    let mut s = setup(|dir| {
        format!(
            "  write_timeout: 5s\n{}",
            spool(
                &dir.join("spool/spool.db"),
                "    drain_events_per_second: 20000\n"
            )
        )
    })
    .await;
    let answers = stop_under_load(&s).await;
    let refused: Vec<_> = answers.iter().filter(|(a, _)| a.status != 202).collect();
    assert!(
        refused.is_empty(),
        "{} of {} answers were not 202, e.g. {:?}",
        refused.len(),
        answers.len(),
        refused[0].0
    );
    for (a, ids) in &answers {
        assert_eq!(a.accepted, 20, "{a:?}");
        s.acked.extend(ids);
    }
    s.ingest
        .wait_for("the spool to be drained", || async {
            s.ingest.metric("vantage_ingest_spool_events").await == Some(0.0)
        })
        .await;
    let spooled = s
        .ingest
        .metric("vantage_ingest_spool_spooled_events_total")
        .await
        .unwrap();
    assert!(spooled >= 20.0, "the outage went through the spool");
    assert_eq!(
        s.ingest
            .metric("vantage_ingest_spool_drained_events_total")
            .await,
        Some(spooled)
    );
    assert_eq!(
        s.ingest
            .metric("vantage_ingest_spool_drain_errors_total")
            .await,
        Some(0.0),
        "{}",
        s.ingest.output()
    );
    assert_eq!(
        s.ingest
            .metric("vantage_ingest_spool_oldest_age_seconds")
            .await,
        Some(0.0)
    );
    assert_stored_once(&s.url, None, &s.acked, "").await;
    // The log: one line when it went, one when it came back (with the count), summaries in between.
    s.ingest
        .wait_for("the line that says postgres is back", || async {
            !s.ingest.logged(BACK).is_empty()
        })
        .await;
    assert_eq!(s.ingest.logged(SPOOLING).len(), 1, "{}", s.ingest.output());
    let back = &s.ingest.logged(BACK)[0];
    assert!(back["spooled_requests"].as_u64().unwrap() > 0, "{back}");
    assert_eq!(back["refused_requests"], 0, "{back}");
    assert!(s.ingest.logged(STILL).len() <= 2, "{}", s.ingest.output());
    s.ingest
        .wait_for("one line when the drain is done", || async {
            s.ingest.logged("spool drained into postgres").len() == 1
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_10s_under_load_without_the_spool_only_503_with_retry_after() {
    let mut s = setup(|_| "  write_timeout: 5s\n".into()).await;
    let answers = stop_under_load(&s).await;
    let mut refused = 0;
    for (a, ids) in &answers {
        match a.status {
            202 => {
                assert_eq!(a.accepted, 20, "{a:?}");
                s.acked.extend(ids);
            }
            503 => {
                assert_eq!(a.retry_after.as_deref(), Some("2"), "{a:?}");
                refused += 1;
            }
            _ => panic!("only 202, or 503 with Retry-After: {a:?}"),
        }
    }
    assert!(refused > 10, "the outage was met: {refused} refused");
    assert_stored_once(&s.url, None, &s.acked, "").await;
    s.ingest
        .wait_for("the line that says postgres is back", || async {
            !s.ingest.logged(BACK).is_empty()
        })
        .await;
    assert_eq!(
        s.ingest.logged(UNAVAILABLE).len(),
        1,
        "{}",
        s.ingest.output()
    );
    assert!(
        s.ingest.logged(BACK)[0]["refused_requests"]
            .as_u64()
            .unwrap()
            > 0
    );
}

// ---------------------------------------------------------------------------------------------------------
// The drain: kill -9 in the middle, and a spool replayed into a PostgreSQL that has its events already.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_drain_and_a_replayed_spool_lose_and_double_nothing() {
    let mut s = setup(|dir| {
        // Slow enough to be caught in the middle.
        format!(
            "  write_timeout: 5s\n{}",
            spool(&dir.join("spool.db"), "    drain_events_per_second: 1000\n")
        )
    })
    .await;
    let spool_path = s.dir.path().join("spool.db");
    let pg = s.pg.clone();
    blocking(move || pg.stop()).await;
    // 10,000 events while PostgreSQL is away: all acknowledged from the spool.
    let senders = (0..4).map(|t| {
        let (client, base) = (s.ingest.client.clone(), s.ingest.base.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for b in 0..50 {
                let (a, batch) =
                    support::ingest_process::post(&client, &base, &format!("k{t}-{b}"), 50).await;
                assert_eq!((a.status, a.accepted), (202, 50), "{a:?}");
                ids.extend(batch);
            }
            ids
        })
    });
    for t in senders.collect::<Vec<_>>() {
        s.acked.extend(t.await.unwrap());
    }
    assert_eq!(
        s.ingest.metric("vantage_ingest_spool_events").await,
        Some(10_000.0)
    );

    let pg = s.pg.clone();
    blocking(move || pg.start_again()).await;
    s.ingest
        .wait_for("the drain to have moved some chunks", || async {
            s.ingest
                .metric("vantage_ingest_spool_drained_events_total")
                .await
                .is_some_and(|n| n >= 2_000.0)
        })
        .await;
    s.ingest.kill9().await;
    let in_pg = support::stored_ids(&s.url, None).await.len();
    assert!(
        in_pg < s.acked.len(),
        "killed in the middle of the drain: {in_pg} of {} in postgres",
        s.acked.len()
    );

    // Keep the spool as the kill left it, to replay it later.
    let copy = spool_path.with_extension("copy");
    std::fs::copy(&spool_path, &copy).unwrap();
    let wal = spool_path.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, copy.with_extension("copy-wal")).unwrap();
    }

    s.ingest.restart().await;
    assert!(!s
        .ingest
        .logged("spool holds events from an earlier run; they are drained into postgres once it takes writes")
        .is_empty());
    s.ingest
        .wait_for("the spool to be drained after the restart", || async {
            s.ingest.metric("vantage_ingest_spool_events").await == Some(0.0)
        })
        .await;
    assert_stored_once(&s.url, None, &s.acked, "").await;

    // As if PostgreSQL had committed every chunk and the spool's deletes were all lost: drained again,
    // nothing is stored twice.
    s.ingest.kill9().await;
    for suffix in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(spool_path.with_extension(suffix));
    }
    std::fs::copy(&copy, &spool_path).unwrap();
    if copy.with_extension("copy-wal").exists() {
        std::fs::copy(copy.with_extension("copy-wal"), &wal).unwrap();
    }
    s.ingest.restart().await;
    s.ingest
        .wait_for("the replayed spool to be drained", || async {
            s.ingest.metric("vantage_ingest_spool_events").await == Some(0.0)
        })
        .await;
    assert_stored_once(&s.url, None, &s.acked, "").await;
    // One drain finished after the first restart, one after the replay.
    s.ingest
        .wait_for("the replay's drain line", || async {
            s.ingest.logged("spool drained into postgres").len() == 2
        })
        .await;
    let drained = s.ingest.logged("spool drained into postgres");
    let last = drained.last().unwrap();
    assert!(last["events"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(last["new_events"], 0, "{last}");
    // The pace held: 1000 events a second, so each 1000-event chunk but the last took a second at least.
    let chunks = last["events"].as_u64().unwrap().div_ceil(1000);
    assert!(
        last["secs"].as_f64().unwrap() >= (chunks - 1) as f64 - 0.1,
        "drained faster than drain_events_per_second: {last}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// The spool's own limits.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_full_too_old_or_its_disk_full_answers_503() {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PgCluster::start).await.unwrap());
    let url = pg.url("postgres");
    {
        let pg = pg.clone();
        blocking(move || pg.stop()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(16);
    let mut acked = HashSet::new();
    // Three nodes that start while PostgreSQL is away (they spool from the start).
    let start = |name: &str, spool_extra: String| {
        let node = dir.path().join(name);
        std::fs::create_dir(&node).unwrap();
        let text = config(&url, &format!("  write_timeout: 5s\n{spool_extra}"));
        async move { (IngestProcess::start(&node, &text).await, node) }
    };
    let (full, full_dir) = start(
        "full",
        spool(&dir.path().join("full/spool.db"), "    max_bytes: 40000\n"),
    )
    .await;
    let (old, _) = start(
        "old",
        spool(&dir.path().join("old/spool.db"), "    max_age: 2s\n"),
    )
    .await;
    let (disk, _) = start("disk", spool(&fs.path.join("spool.db"), "")).await;
    for node in [&full, &old, &disk] {
        assert_ready(node, 200).await;
        assert_eq!(node.logged(SPOOLING).len(), 1, "{}", node.output());
    }

    // Full: some batches fit, then 503.
    let mut taken = 0;
    loop {
        let (a, ids) = full.post("fill", 20).await;
        if a.status != 202 {
            assert_eq!(a.status, 503, "{a:?}");
            assert_eq!(a.retry_after.as_deref(), Some("2"));
            break;
        }
        acked.extend(ids);
        taken += 1;
        assert!(taken < 100, "max_bytes never reached");
    }
    assert!(taken > 0);
    assert_ready(&full, 503).await;
    let bytes = full.metric("vantage_ingest_spool_bytes").await.unwrap();
    assert!(bytes > 0.0 && bytes <= 40_000.0, "spool bytes {bytes}");
    assert_eq!(
        full.metric("vantage_ingest_spool_events").await,
        Some(20.0 * taken as f64)
    );
    assert!(full_dir.join("spool.db").exists());

    // Too old: one batch, then its age passes max_age.
    let (a, ids) = old.post("aging", 20).await;
    assert_eq!(a.status, 202, "{a:?}");
    acked.extend(ids);
    assert_ready(&old, 503).await;
    let age = old
        .metric("vantage_ingest_spool_oldest_age_seconds")
        .await
        .unwrap();
    assert!(age > 2.0, "oldest spooled event {age}s old");
    assert_refused(&old, "too-late").await;

    // Its own disk full: refused until there is room again.
    let (a, ids) = disk.post("before-full", 20).await;
    assert_eq!(a.status, 202, "{a:?}");
    acked.extend(ids);
    let filler = fill(&fs.path);
    assert_refused(&disk, "disk-full").await;
    assert_ready(&disk, 503).await;
    std::fs::remove_file(filler).unwrap();
    assert_ready(&disk, 200).await;
    let (a, ids) = disk.post("room-again", 20).await;
    assert_eq!(a.status, 202, "{a:?}");
    acked.extend(ids);

    // PostgreSQL back: every node drains what it acknowledged.
    {
        let pg = pg.clone();
        blocking(move || pg.start_again()).await;
    }
    for node in [&full, &old, &disk] {
        node.wait_for("the spool to be drained", || async {
            node.metric("vantage_ingest_spool_events").await == Some(0.0)
        })
        .await;
        assert_ready(node, 200).await;
    }
    assert_stored_once(&url, None, &acked, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_example_config_spools_by_default() {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PgCluster::start).await.unwrap());
    let url = pg.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/ingest-postgres.yaml"
    ))
    .unwrap();
    let spool = dir.path().join("spool.db");
    let ingest = IngestProcess::start_with_env(
        dir.path(),
        &example,
        &[
            ("RUM_STORAGE_URL", &url),
            ("RUM_SPOOL_PATH", spool.to_str().unwrap()),
            ("RUM_SHOP_KEY", KEY),
        ],
    )
    .await;
    {
        let pg = pg.clone();
        blocking(move || pg.stop()).await;
    }
    let (a, ids) = ingest.post("example", 20).await;
    assert_eq!(
        (a.status, a.accepted),
        (202, 20),
        "{a:?}\n{}",
        ingest.output()
    );
    assert_eq!(
        ingest.metric("vantage_ingest_spool_events").await,
        Some(20.0)
    );
    assert!(spool.exists());
    {
        let pg = pg.clone();
        blocking(move || pg.start_again()).await;
    }
    ingest
        .wait_for("the spool to be drained", || async {
            ingest.metric("vantage_ingest_spool_events").await == Some(0.0)
        })
        .await;
    assert_stored_once(&url, None, &ids.into_iter().collect(), "").await;
}
