//! Store benchmark: the event store alone (no HTTP), many tasks submitting 20-event page loads at once, against
//! SQLite (a temporary directory) and PostgreSQL (a fresh database, dropped at the end). Prints events/s
//! committed, commits, average events per commit, the mean time from a group's start to its being durable (SQLite
//! overlaps groups with the running fsync, so these add up to more than the wall time) and the `Busy` answers.
//!
//! `cargo run --release -p vantage-ingest --example bench-ingest-store -- [--backend sqlite|postgres|both]
//!  [--tasks 256] [--submits-per-task 100] [--ids v4|sdk]`
//!
//! `--ids v4` (the default): random ids, every event in one session. `--ids sdk`: as browsers send them, each
//! submit a session of its own and its ids UUIDv7 stamped when each event happened, over the ~5 s rum-sdk.js
//! buffers a batch (`bench/ingest/load.rs` does the same over HTTP). `--ids batch`: sessions as with `sdk`, but
//! a submit's ids stamped together when it is made, consecutive (as if the SDK gave a batch its ids when it
//! cuts it), so they sit side by side in an index on the id.
//!
//! PostgreSQL: `VANTAGE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) names the
//! server (loopback only); the benchmark creates `vantage_bench_<uuid>` there and drops it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use prometheus_client::registry::Registry;
use vantage_ingest::store::{EventRecord, Store, StoreConfig, SubmitError};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    backend: Which,
    /// Tasks submitting at once (as many as HTTP requests in flight).
    #[arg(long, default_value_t = 256)]
    tasks: usize,
    /// 20-event submits each task makes.
    #[arg(long, default_value_t = 100)]
    submits_per_task: usize,
    /// Event ids and sessions: `v4` random ids in one session, `event` stamped when each event happened over the
    /// ~5 s a batch is buffered (rum-sdk.js before 2026-12-04), `batch` stamped together per submit (as rum-sdk.js
    /// stamps them now, when it cuts the batch).
    #[arg(long, value_enum, default_value = "v4")]
    ids: Ids,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ids {
    V4,
    Event,
    Batch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

const EVENTS_PER_SUBMIT: usize = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if matches!(args.backend, Which::Sqlite | Which::Both) {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("rum.db").display());
        run("sqlite", &url, &args).await?;
    }
    if matches!(args.backend, Which::Postgres | Which::Both) {
        let server = std::env::var("VANTAGE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("vantage_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&server).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let url = {
            let mut u = url::Url::parse(&server)?;
            u.set_path(&name);
            u.to_string()
        };
        let result = run("postgres", &url, &args).await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        result?;
    }
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| "PostgreSQL must be reachable (VANTAGE_TEST_POSTGRES_URL)")?;
    tokio::spawn(conn);
    Ok(client)
}

/// A page load as the HTTP pipeline stores it, with a realistic raw body.
fn page_load() -> EventRecord {
    let now = vantage_ingest::clock::now_ms();
    EventRecord {
        event_id: uuid::Uuid::new_v4(),
        site: "shop".into(),
        session_id: "3f1c0a9e-5d1b-4c7e-9a0e-2b8f6f1d7c11".into(),
        event_type: "page_load".into(),
        client_ts_ms: now,
        received_ms: now,
        route: "/products/:id".into(),
        url: "https://shop.example.com/products/123".into(),
        browser: "Chrome".into(),
        os: "Linux".into(),
        device: "desktop".into(),
        value: Some(1234.5),
        name: None,
        endpoint: None,
        status: None,
        rating: None,
        raw: r#"{"type":"page_load","session_id":"3f1c0a9e-5d1b-4c7e-9a0e-2b8f6f1d7c11","timestamp":1700000000000,"user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","viewport":{"width":1920,"height":1080},"page":{"url":"https://shop.example.com/products/123","referrer":""},"metrics":{"dns_lookup":1,"tcp_connection":2,"tls_negotiation":3,"ttfb":120,"content_download":20,"dom_processing":300,"dom_complete":900,"total":1234.5}}"#.into(),
        release: None,
        fingerprint: None,
        stack: None,
    }
}

/// One submit's events: random ids in the template's session (`v4`), or a session of its own with ids
/// stamped over the 5 s before now, 250 ms apart with jitter, as rum-sdk.js stamps a batch's events (`sdk`).
fn submit_events(template: &EventRecord, ids: Ids) -> Vec<EventRecord> {
    match ids {
        Ids::V4 => (0..EVENTS_PER_SUBMIT)
            .map(|_| EventRecord {
                event_id: uuid::Uuid::new_v4(),
                ..template.clone()
            })
            .collect(),
        Ids::Event => {
            let session: vantage_ingest::store::Text = uuid::Uuid::new_v4().to_string().into();
            let random = || *uuid::Uuid::new_v4().as_bytes();
            let jitter = |n: u64| u64::from(random()[0]) * n / 256;
            let base = vantage_ingest::clock::now_ms() as u64 - 5_000 + jitter(1_000);
            (0..EVENTS_PER_SUBMIT as u64)
                .map(|k| EventRecord {
                    event_id: uuid::Builder::from_unix_timestamp_millis(
                        base + k * 250 + jitter(250),
                        &random()[..10].try_into().expect("10 bytes"),
                    )
                    .into_uuid(),
                    session_id: session.clone(),
                    ..template.clone()
                })
                .collect()
        }
        Ids::Batch => {
            let session: vantage_ingest::store::Text = uuid::Uuid::new_v4().to_string().into();
            let random = *uuid::Uuid::new_v4().as_bytes();
            let now = vantage_ingest::clock::now_ms() as u64;
            let base = u64::from_be_bytes(random[8..16].try_into().expect("8 bytes"));
            (0..EVENTS_PER_SUBMIT as u64)
                .map(|k| {
                    let mut counter = [0u8; 10];
                    counter[..2].copy_from_slice(&random[..2]);
                    counter[2..].copy_from_slice(&base.wrapping_add(k).to_be_bytes());
                    EventRecord {
                        event_id: uuid::Builder::from_unix_timestamp_millis(now, &counter)
                            .into_uuid(),
                        session_id: session.clone(),
                        ..template.clone()
                    }
                })
                .collect()
        }
    }
}

async fn run(backend: &str, url: &str, args: &Args) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let cfg = StoreConfig {
        queue_capacity: 100_000,
        max_batch_events: 5_000,
        ..StoreConfig::with_url(url)
    };
    let store = Store::open(&cfg, &mut registry).await?;
    let template = Arc::new(page_load());
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..args.tasks {
        let (s, t, submits, ids) = (
            store.clone(),
            template.clone(),
            args.submits_per_task,
            args.ids,
        );
        handles.push(tokio::spawn(async move {
            let mut busy = 0u64;
            let mut done = 0;
            while done < submits {
                let batch = submit_events(&t, ids);
                match s.submit(batch).await {
                    Ok(o) if o.inserted == EVENTS_PER_SUBMIT => done += 1,
                    Ok(o) => anyhow::bail!("{} of {EVENTS_PER_SUBMIT} inserted", o.inserted),
                    Err(SubmitError::Busy { .. }) => {
                        busy += 1;
                        // What a sender told to retry does, shortened: the point is the writer's rate.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(busy)
        }));
    }
    let mut busy = 0;
    for h in handles {
        busy += h.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let events = (args.tasks * args.submits_per_task * EVENTS_PER_SUBMIT) as f64;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    let sample = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let commits = sample("vantage_ingest_store_commits_total");
    let writing = sample("vantage_ingest_store_commit_seconds_sum");
    println!(
        "store bench {backend}: {events} events in {elapsed:.2}s = {:.0} events/s committed \
         ({} tasks x {EVENTS_PER_SUBMIT}-event submits, ids {:?}, {commits} commits, avg {:.0} events/commit, \
         mean commit {:.1} ms from group start to durable, {busy} busy answers)",
        events / elapsed,
        args.tasks,
        args.ids,
        events / commits.max(1.0),
        1000.0 * writing / commits.max(1.0)
    );
    let stored = store.count_events(None).await? as f64;
    store.shutdown().await;
    anyhow::ensure!(stored == events, "{stored} events stored, {events} sent");
    Ok(())
}
