//! A SQLite store that cannot write, against the real binary on real file systems: its disk fills up (a
//! tmpfs), its device fails with I/O errors (ext2 on a loop device), another process holds its write lock.
//! Each answers 503 with Retry-After (never 500), `/readyz` answers 503 while it lasts, a handful of log lines
//! tell it however long it lasts, and 202 and `/readyz` 200 come back by themselves, without traffic; every
//! acknowledged event is stored.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::ingest_process::{IngestProcess, Load};
use support::mounts::{fill, free_bytes, LoopFs, Tmpfs};
use support::KEY;
use uuid::Uuid;

const UNAVAILABLE: &str =
    "event store unavailable: requests are answered 503 with Retry-After until it is back";
const BACK: &str = "event store available again";

fn config(db: &Path) -> String {
    format!(
        "storage:\n  url: sqlite://{}\n  busy_retry_after_secs: 2\n  write_timeout: 1s\n\
         sites:\n  - id: shop\n    api_key: {KEY}\n    rate_limit: {{ events_per_second: 1000000, burst: 1000000 }}\n",
        db.display()
    )
}

fn stored_ids(db: &Path) -> HashSet<Uuid> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM events").unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|id| Uuid::from_slice(&id.unwrap()).unwrap())
        .collect()
}

/// One batch that must be refused with 503 and `Retry-After: 2`.
async fn assert_refused(ingest: &IngestProcess, session: &str) {
    let (a, _) = ingest.post(session, 20).await;
    assert_eq!(a.status, 503, "{a:?}\n{}", ingest.output());
    assert_eq!(a.retry_after.as_deref(), Some("2"), "{a:?}");
}

/// Waits until `/readyz` is 200 with no traffic at all, then one batch must be stored.
async fn assert_recovers(ingest: &IngestProcess, acked: &mut HashSet<Uuid>) {
    ingest
        .wait_for("/readyz 200 again, without traffic", || async {
            ingest.readyz().await == 200
        })
        .await;
    let (a, ids) = ingest.post("after", 20).await;
    assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
    acked.extend(ids);
    ingest
        .wait_for("the line that says the store is back", || async {
            !ingest.logged(BACK).is_empty()
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_answers_503_logs_a_few_lines_and_recovers_when_space_is_back() {
    let fs = Tmpfs::mount(24);
    // Config and log outside the full file system.
    let dir = tempfile::tempdir().unwrap();
    let db = fs.path.join("rum.db");
    let ingest = IngestProcess::start(dir.path(), &config(&db)).await;
    let mut acked = HashSet::new();
    for i in 0..5 {
        let (a, ids) = ingest.post(&format!("before-{i}"), 20).await;
        assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
        acked.extend(ids);
    }

    let filler = fill(&fs.path);
    assert!(free_bytes(&fs.path) < 4096, "the tmpfs is full");
    let load = Load::start(&ingest.base, 2, 20, Duration::from_millis(20));
    ingest
        .wait_for("the store to report that it cannot write", || async {
            !ingest.logged(UNAVAILABLE).is_empty()
        })
        .await;
    let lines = ingest.log_lines();
    let first = lines
        .iter()
        .position(|l| l["message"] == UNAVAILABLE)
        .unwrap();
    assert!(
        lines[first]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("full")),
        "{}",
        lines[first]
    );
    // Ten seconds of failure under load: readiness says so every time, and the log stays quiet.
    let window = Instant::now();
    let mut ready = Vec::new();
    while window.elapsed() < Duration::from_secs(10) {
        ready.push(ingest.readyz().await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logged = ingest.log_lines().len() - first;
    let answers = load.stop().await;
    assert!(
        logged < 10,
        "{logged} log lines in 10 s of failure:\n{}",
        ingest.output()
    );
    assert!(
        ready.iter().all(|s| *s == 503),
        "/readyz during the failure: {ready:?}"
    );
    let mut refused = 0;
    for (a, ids) in &answers {
        match a.status {
            202 => {
                assert_eq!(a.accepted, 20, "{a:?}");
                acked.extend(ids);
            }
            503 => {
                assert_eq!(a.retry_after.as_deref(), Some("2"), "{a:?}");
                refused += 1;
            }
            _ => panic!("only 202 or 503 with Retry-After, got {a:?}"),
        }
    }
    // Once the failure was reported, nothing more was taken while the disk stayed full.
    let late: Vec<_> = answers
        .iter()
        .filter(|(a, _)| a.at > window && a.status != 503)
        .collect();
    assert!(late.is_empty(), "answers after the failure began: {late:?}");
    assert!(
        refused > 10,
        "the load met the full disk: {refused} refused"
    );

    std::fs::remove_file(filler).unwrap();
    assert_recovers(&ingest, &mut acked).await;
    let stored = stored_ids(&db);
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing",
        missing.len()
    );
    assert_eq!(ingest.logged(UNAVAILABLE).len(), 1, "one outage, one line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_errors_answer_503_and_recover_when_the_device_works_again() {
    let fs = LoopFs::mount(32);
    let dir = tempfile::tempdir().unwrap();
    let db = fs.path.join("rum.db");
    let ingest = IngestProcess::start(dir.path(), &config(&db)).await;
    let mut acked = HashSet::new();
    let (a, ids) = ingest.post("before", 20).await;
    assert_eq!((a.status, a.accepted), (202, 20), "{a:?}");
    acked.extend(ids);

    fs.break_device();
    assert_refused(&ingest, "during").await;
    ingest
        .wait_for("/readyz 503 while the device fails", || async {
            ingest.readyz().await == 503
        })
        .await;
    let line = &ingest.logged(UNAVAILABLE)[0];
    assert!(
        line["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Input/output error") || r.contains("I/O error")),
        "{line}"
    );
    assert_refused(&ingest, "during-2").await;

    fs.repair();
    assert_recovers(&ingest, &mut acked).await;
    let stored = stored_ids(&db);
    assert!(acked.iter().all(|id| stored.contains(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_lock_held_past_the_write_timeout_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rum.db");
    let ingest = IngestProcess::start(dir.path(), &config(&db)).await;
    let mut acked = HashSet::new();
    let (a, ids) = ingest.post("before", 20).await;
    assert_eq!(a.status, 202, "{a:?}");
    acked.extend(ids);

    // Another process's connection takes the write lock and keeps it (SQLITE_BUSY for the writer).
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    assert_refused(&ingest, "locked").await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "refused only after the write timeout (1s): {:?}",
        started.elapsed()
    );
    ingest
        .wait_for("/readyz 503 while the lock is held", || async {
            ingest.readyz().await == 503
        })
        .await;
    assert!(ingest.logged(UNAVAILABLE)[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("write lock held by another connection")));

    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    assert_recovers(&ingest, &mut acked).await;
    let stored = stored_ids(&db);
    assert!(acked.iter().all(|id| stored.contains(id)));
}
