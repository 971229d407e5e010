//! Stats API benchmark helper (`bench/ingest/stats.sh` drives it): fills a store in bulk with SDK-shaped events,
//! times the stats endpoints of a running server, and times the raw-event query they still make (a group's sample).
//!
//! ```text
//! bench-ingest-stats fill    --url sqlite:///tmp/x/rum.db|postgres://... --events 1000000
//! bench-ingest-stats measure --base http://127.0.0.1:9481 --secret S --backend sqlite --events 1000000 [--reps 7]
//! bench-ingest-stats explain --url ... [--window 7d]
//! ```
//!
//! `fill` opens the store once through `Store::open` (schema and migrations as the server makes them), shuts it
//! down, appends the events directly, and then has the store roll them up as it does after an upgrade
//! (backfill, then folding; timed and printed as `ROLLUPS`; then `ANALYZE rollups` on PostgreSQL). The
//! appends: rusqlite in 200,000-row transactions through one prepared statement, or
//! PostgreSQL `COPY ... FROM STDIN` (text format), then `VACUUM ANALYZE` (what autovacuum would have done to a
//! store this old). Events are spread evenly over the last 7 days and written in receive order, as the server
//! appends them: SQLite's stats scan the rowid range of their window and count on that order
//! (`store/sqlite/reader.rs`), and PostgreSQL's heap is then ordered the way a real store's is. A store is
//! therefore filled from empty for each size, not topped up: older rows written after newer ones would break both.
//!
//! The mix follows `bench/ingest/make_corpus.py`: 20-event batches, one session each, three sites (`shop`
//! ~80%, `blog`, `docs`), ~330 routes with a skewed popularity, page loads, API calls (24 endpoints), resources,
//! web vitals (rated as the server rates them), long tasks, interactions and errors (40 fingerprints, releases,
//! stacks); raw JSON of 400-800 bytes (~520 on average). Deterministic: a seeded generator, only the time base
//! changes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use futures::SinkExt;
use prometheus_client::registry::Registry;
use vantage_ingest::store::{Store, StoreConfig};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates the schema and appends `--events` events (the store must be empty).
    Fill {
        #[arg(long)]
        url: String,
        #[arg(long)]
        events: u64,
    },
    /// Times each stats endpoint and window against a running server; prints one table row per pair.
    Measure {
        #[arg(long)]
        base: String,
        /// The server's `admin.secret` (HS256).
        #[arg(long)]
        secret: String,
        #[arg(long, default_value = "shop")]
        site: String,
        /// For the table only.
        #[arg(long)]
        backend: String,
        #[arg(long)]
        events: u64,
        /// Timed requests per endpoint and window (after one warm-up)...
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// ...but no more once a pair has taken this long and has 3 runs (big stores on a shared machine).
        #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
        budget: Duration,
    },
    /// Runs the one raw-event query the stats endpoints still make (the errors endpoint's sample per group)
    /// once per error group directly on the database, prints each one's time, and the plan of the slowest
    /// (`EXPLAIN ANALYZE` / `EXPLAIN QUERY PLAN`).
    Explain {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "shop")]
        site: String,
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        window: Duration,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Fill { url, events } => fill(&url, events).await,
        Cmd::Measure {
            base,
            secret,
            site,
            backend,
            events,
            reps,
            budget,
        } => measure(&base, &secret, &site, &backend, events, reps, budget).await,
        Cmd::Explain { url, site, window } => explain(&url, &site, window).await,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Events

/// The span the events' receive times cover, ending a minute before the fill starts.
const SPAN_MS: i64 = 7 * 86_400_000 - 20 * 60_000;
const BATCH: u64 = 20;

/// splitmix64: fast, seeded, good enough for a data mix.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// An index in `0..n` with a skewed popularity (the first few most likely).
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * u) * n as f64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// One user agent as the server would have parsed it: (UA, browser, os, device).
const AGENTS: &[(&str, &str, &str, &str)] = &[
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari", "Mac OSX", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox", "Windows", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome", "Linux", "desktop"),
];

/// (site, host, share in per mille).
const SITES: &[(&str, &str, u64)] = &[
    ("shop", "shop.example.com", 800),
    ("blog", "blog.example.com", 120),
    ("docs", "docs.example.com", 80),
];

const KINDS: &[&str] = &[
    "page_load",
    "page_load",
    "api_call",
    "api_call",
    "api_call",
    "api_call",
    "api_call",
    "api_call",
    "resource_load",
    "resource_load",
    "resource_load",
    "resource_load",
    "resource_load",
    "web_vital",
    "web_vital",
    "web_vital",
    "web_vital",
    "long_task",
    "user_interaction",
    "error",
];

const API_PATHS: &[&str] = &[
    "/api/cart",
    "/api/cart/items",
    "/api/products/:id",
    "/api/products/:id/reviews",
    "/api/search",
    "/api/users/:id/orders",
    "/api/recommendations",
    "/api/checkout",
    "/api/session",
    "/api/inventory/:id",
    "/api/prices",
    "/api/wishlist",
];

const ERRORS: &[&str] = &[
    "TypeError: Cannot read properties of undefined (reading 'price')",
    "TypeError: x is undefined",
    "NetworkError when attempting to fetch resource.",
    "ReferenceError: gtag is not defined",
    "Error: Request failed with status code 500",
    "TypeError: Failed to fetch",
    "SyntaxError: Unexpected token '<'",
    "Error: ResizeObserver loop limit exceeded",
];

/// The routes of a site, most visited first: ~330 for the shop, fewer for the others.
fn routes(site: usize) -> Vec<String> {
    let mut r: Vec<String> = match site {
        0 => [
            "/",
            "/products/:id",
            "/search",
            "/cart",
            "/checkout",
            "/account/orders",
            "/account",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        1 => vec!["/".into(), "/blog/:slug".into()],
        _ => vec!["/".into(), "/docs/*".into()],
    };
    let (prefix, n) = match site {
        0 => ("/category/", 320),
        1 => ("/tag/", 60),
        _ => ("/guide/", 120),
    };
    r.extend((0..n).map(|i| format!("{prefix}section-{i}")));
    r
}

struct Event {
    id: uuid::Uuid,
    site: &'static str,
    session: String,
    kind: &'static str,
    client_ts: i64,
    received: i64,
    route: String,
    url: String,
    agent: usize,
    value: Option<f64>,
    name: Option<String>,
    endpoint: Option<String>,
    status: Option<i32>,
    rating: Option<&'static str>,
    raw: String,
    release: Option<String>,
    fingerprint: Option<String>,
    stack: Option<String>,
}

fn rating(name: &str, v: f64) -> &'static str {
    let (good, poor) = match name {
        "LCP" => (2500.0, 4000.0),
        "INP" => (200.0, 500.0),
        "CLS" => (0.1, 0.25),
        "FCP" => (1800.0, 3000.0),
        _ => (800.0, 1800.0),
    };
    if v <= good {
        "good"
    } else if v <= poor {
        "needs-improvement"
    } else {
        "poor"
    }
}

/// Makes the events of the store's batches `from..to` (each `BATCH` events, in receive order) of a store of
/// `batches` batches whose last one is received at `end_ms`.
struct Generator {
    routes: Vec<Vec<String>>,
    batches: u64,
    end_ms: i64,
}

impl Generator {
    fn new(events: u64, end_ms: i64) -> Self {
        Self {
            routes: (0..SITES.len()).map(routes).collect(),
            batches: events.div_ceil(BATCH),
            end_ms,
        }
    }

    fn batch(&self, b: u64, out: &mut Vec<Event>) {
        let mut rng = Rng(b.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5151);
        let received =
            self.end_ms - SPAN_MS + (b as i128 * SPAN_MS as i128 / self.batches as i128) as i64;
        let per_mille = rng.below(1000);
        let site = if per_mille < SITES[0].2 {
            0
        } else if per_mille < SITES[0].2 + SITES[1].2 {
            1
        } else {
            2
        };
        let (site_id, host, _) = SITES[site];
        let session = uuid::Builder::from_random_bytes(rng.next_bytes())
            .into_uuid()
            .to_string();
        let agent = rng.below(AGENTS.len() as u64) as usize;
        let ua = AGENTS[agent].0;
        let release = format!("{site_id}@1.{}.{}", 4 + rng.below(2), rng.below(10));
        let routes = &self.routes[site];
        let mut route_i = rng.skewed(routes.len());
        let ids_rand = rng.next_bytes();
        for i in 0..BATCH {
            // A page change now and then within the batch.
            if rng.below(8) == 0 {
                route_i = rng.skewed(routes.len());
            }
            let route = &routes[route_i];
            let path = route
                .replace(":id", &(1 + rng.below(5000)).to_string())
                .replace(":slug", "post-title")
                .replace('*', "install");
            let url = format!("https://{host}{path}");
            let client_ts = received - 5_000 + (i as i64) * 240 + rng.below(200) as i64;
            let kind = *rng.pick(KINDS);
            let mut id_bytes = ids_rand;
            id_bytes[9] = i as u8; // consecutive ids per batch, as rum-sdk.js stamps them at the cut
            let id = uuid::Builder::from_unix_timestamp_millis(
                received as u64,
                &id_bytes[..10].try_into().expect("10 bytes"),
            )
            .into_uuid();
            let head = format!(
                r#"{{"type":"{kind}","event_id":"{id}","session_id":"{session}","timestamp":{client_ts},"release":"{release}","user_agent":"{ua}","viewport":{{"width":1280,"height":720}},"page":{{"url":"{url}","referrer":""}}"#
            );
            let mut e = Event {
                id,
                site: site_id,
                session: session.clone(),
                kind,
                client_ts,
                received,
                route: route.clone(),
                url,
                agent,
                value: None,
                name: None,
                endpoint: None,
                status: None,
                rating: None,
                raw: String::new(),
                release: Some(release.clone()),
                fingerprint: None,
                stack: None,
            };
            let body = match kind {
                "page_load" => {
                    let ttfb = 50 + rng.below(400);
                    let total = ttfb + 500 + rng.below(3000) + (route_i as u64 % 7) * 150;
                    e.value = Some(total as f64);
                    format!(
                        r#","metrics":{{"dns_lookup":{},"tcp_connection":{},"tls_negotiation":{},"ttfb":{ttfb},"content_download":{},"dom_processing":{},"dom_complete":{},"onload":{},"total":{total}}}"#,
                        rng.below(30),
                        rng.below(40),
                        rng.below(40),
                        rng.below(80),
                        100 + rng.below(600),
                        total - 100,
                        total - 20
                    )
                }
                "api_call" => {
                    let method = *rng.pick(&["GET", "GET", "GET", "POST"]);
                    let p = API_PATHS[rng.skewed(API_PATHS.len())];
                    let concrete = p.replace(":id", &(1 + rng.below(10_000)).to_string());
                    let duration =
                        (10.0 + rng.unit() * 400.0 * (1.0 + (p.len() % 3) as f64)).round();
                    let status = *rng.pick(&[
                        200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 204, 304,
                        404, 500, 0,
                    ]);
                    e.value = Some(duration);
                    e.status = Some(status);
                    e.endpoint = Some(format!("{method} api.{host}{p}"));
                    format!(
                        r#","api":{{"method":"{method}","endpoint":"https://api.{host}{concrete}","duration":{duration},"status":{status}}}"#
                    )
                }
                "resource_load" => {
                    let d = (rng.unit() * 300.0).round();
                    e.value = Some(d);
                    format!(
                        r#","resource":{{"name":"https://cdn.{host}/static/app.{}.js","type":"script","duration":{d},"size":{}}}"#,
                        rng.below(50),
                        1000 + rng.below(300_000)
                    )
                }
                "web_vital" => {
                    let name = *rng.pick(&["LCP", "INP", "CLS", "FCP", "TTFB"]);
                    let v = if name == "CLS" {
                        (rng.unit() * 0.4 * 1000.0).round() / 1000.0
                    } else {
                        (rng.unit() * 5000.0).round()
                    };
                    let r = rating(name, v);
                    e.value = Some(v);
                    e.name = Some(name.into());
                    e.rating = Some(r);
                    format!(r#","name":"{name}","value":{v},"rating":"{r}""#)
                }
                "long_task" => {
                    let d = 50 + rng.below(300);
                    e.value = Some(d as f64);
                    format!(
                        r#","duration":{d},"attribution":[{{"name":"self","entryType":"taskattribution","startTime":0,"duration":0}}]"#
                    )
                }
                "user_interaction" => {
                    let d = rng.below(200);
                    e.value = Some(d as f64);
                    format!(
                        r#","interaction":{{"action":"click","target":"button#add-to-cart","duration":{d}}}"#
                    )
                }
                _ => {
                    let g = rng.skewed(40);
                    let message = ERRORS[g % ERRORS.len()];
                    let stack = format!(
                        "{message}\n    at render{g} (https://cdn.{host}/static/app.{g}.js:{}:{})\n    at commit (https://cdn.{host}/static/vendor.js:2:{})\n    at main (https://cdn.{host}/static/app.js:1:1)",
                        10 + g, 5 + g, 1000 + g * 7
                    );
                    e.name = Some(message.into());
                    e.fingerprint = Some(fingerprint(g));
                    let json_stack = stack.replace('\n', "\\n");
                    e.stack = Some(stack);
                    format!(r#","error":{{"message":"{message}","stack":"{json_stack}"}}"#)
                }
            };
            e.raw = format!("{head}{body}}}");
            out.push(e);
        }
    }
}

/// Error group `g`'s fingerprint (16 hex digits, as the server makes them).
fn fingerprint(g: usize) -> String {
    format!(
        "{:016x}",
        (g as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

impl Rng {
    fn next_bytes(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        b
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fill

/// Events per transaction (SQLite) or per `COPY` (PostgreSQL).
const CHUNK: u64 = 200_000;

async fn fill(url: &str, events: u64) -> anyhow::Result<()> {
    // The schema exactly as the server makes it.
    let store = Store::open(&StoreConfig::with_url(url), &mut Registry::default())
        .await
        .context("Store::open")?;
    let existing = store.count_events(None).await?;
    store.shutdown().await;
    drop(store);
    if existing != 0 {
        bail!("the store holds {existing} events already: fill an empty one (rows must go in in receive order)");
    }
    let end_ms = vantage_ingest::clock::now_ms() - 60_000;
    let generator = Generator::new(events, end_ms);
    let started = Instant::now();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || fill_sqlite(&path, &generator, events)).await??;
    } else {
        fill_postgres(url, &generator, events).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "FILL events={events} secs={secs:.1} events_per_sec={:.0}",
        events as f64 / secs
    );
    rollups(url, events).await
}

/// The bulk fill bypassed the writer, so nothing is rolled up: the store's own upgrade path (schema
/// migrations 9 and 12's backfills, straight into minute, hour and day rows) rolls up every event, timed, as
/// a store upgraded with this much data would.
async fn rollups(url: &str, events: u64) -> anyhow::Result<()> {
    let zero_id = if url.starts_with("sqlite://") {
        "0"
    } else {
        "00000000-0000-0000-0000-000000000000"
    };
    let reset = format!(
        "UPDATE rollup_backfill SET until_ms = {}, cursor_site = '', cursor_id = '{zero_id}', done = 0",
        vantage_ingest::clock::now_ms() + 86_400_000
    );
    if let Some(path) = url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)?.execute_batch(&reset)?;
    } else {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&reset).await?;
    }
    let store = Store::open(&StoreConfig::with_url(url), &mut Registry::default())
        .await
        .context("Store::open")?;
    let started = Instant::now();
    store.maintain_rollups().await?;
    let secs = started.elapsed().as_secs_f64();
    store.shutdown().await;
    let count = "SELECT COUNT(*) FROM rollups";
    let rows: i64 = if let Some(path) = url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)?.query_row(count, [], |r| r.get(0))?
    } else {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // As for the events: what autovacuum would have done by now to a table that grew from empty. Without
        // statistics the planner expects a row or so from each level's index range and sorts the count-only
        // kinds' rows (spilling to disk) where it would hash them.
        client.batch_execute("ANALYZE rollups").await?;
        client.query_one(count, &[]).await?.get(0)
    };
    println!(
        "ROLLUPS events={events} rollup_rows={rows} secs={secs:.1} events_per_sec={:.0}",
        events as f64 / secs
    );
    Ok(())
}

/// Batches `from..to` of the store, and how many of their events to keep (the last batch may be partial).
fn chunk_events(g: &Generator, from: u64, to: u64, events: u64, out: &mut Vec<Event>) {
    out.clear();
    for b in from..to {
        g.batch(b, out);
    }
    out.truncate((events - from * BATCH).min((to - from) * BATCH) as usize);
}

fn fill_sqlite(path: &str, g: &Generator, events: u64) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    // A bench fill: no journal, no fsync, a big cache; back to WAL (the server's mode) at the end.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -1_000_000)?;
    let sql = "INSERT INTO events (event_id, site, session_id, event_type, client_ts_ms, received_ms, route, url, \
               browser, os, device, value, name, endpoint, status, rating, raw, release, fingerprint, stack) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";
    let mut buf = Vec::new();
    let batches_per_chunk = CHUNK / BATCH;
    let mut b = 0;
    while b * BATCH < events {
        let to = (b + batches_per_chunk).min(g.batches);
        chunk_events(g, b, to, events, &mut buf);
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(sql)?;
            for e in &buf {
                let (_, browser, os, device) = AGENTS[e.agent];
                stmt.execute(rusqlite::params![
                    e.id.as_bytes().as_slice(),
                    e.site,
                    e.session,
                    e.kind,
                    e.client_ts,
                    e.received,
                    e.route,
                    e.url,
                    browser,
                    os,
                    device,
                    e.value,
                    e.name,
                    e.endpoint,
                    e.status,
                    e.rating,
                    e.raw,
                    e.release,
                    e.fingerprint,
                    e.stack,
                ])?;
            }
        }
        tx.commit()?;
        b = to;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

async fn fill_postgres(url: &str, g: &Generator, events: u64) -> anyhow::Result<()> {
    use std::fmt::Write;
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute("SET synchronous_commit = off").await?;
    let mut buf = Vec::new();
    let batches_per_chunk = CHUNK / BATCH;
    let mut b = 0;
    while b * BATCH < events {
        let to = (b + batches_per_chunk).min(g.batches);
        chunk_events(g, b, to, events, &mut buf);
        let sink = client
            .copy_in(
                "COPY events (event_id, site, session_id, event_type, client_ts_ms, received_ms, route, url, \
                 browser, os, device, value, name, endpoint, status, rating, raw, release, fingerprint, stack) \
                 FROM STDIN",
            )
            .await?;
        futures::pin_mut!(sink);
        let mut text = String::with_capacity(4 << 20);
        for e in &buf {
            let (_, browser, os, device) = AGENTS[e.agent];
            let opt = |o: Option<&str>, text: &mut String| match o {
                Some(s) => copy_text(text, s),
                None => text.push_str("\\N"),
            };
            write!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t",
                e.id, e.site, e.session, e.kind, e.client_ts, e.received
            )?;
            for s in [e.route.as_str(), &e.url, browser, os, device] {
                copy_text(&mut text, s);
                text.push('\t');
            }
            match e.value {
                Some(v) => write!(text, "{v}")?,
                None => text.push_str("\\N"),
            }
            text.push('\t');
            opt(e.name.as_deref(), &mut text);
            text.push('\t');
            opt(e.endpoint.as_deref(), &mut text);
            text.push('\t');
            match e.status {
                Some(v) => write!(text, "{v}")?,
                None => text.push_str("\\N"),
            }
            text.push('\t');
            opt(e.rating, &mut text);
            text.push('\t');
            copy_text(&mut text, &e.raw);
            text.push('\t');
            opt(e.release.as_deref(), &mut text);
            text.push('\t');
            opt(e.fingerprint.as_deref(), &mut text);
            text.push('\t');
            opt(e.stack.as_deref(), &mut text);
            text.push('\n');
            if text.len() >= 4 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut text)))
                    .await?;
            }
        }
        if !text.is_empty() {
            sink.send(bytes::Bytes::from(text)).await?;
        }
        sink.finish().await?;
        b = to;
    }
    let vacuum = Instant::now();
    client.batch_execute("VACUUM ANALYZE events").await?;
    println!("VACUUM ANALYZE secs={:.1}", vacuum.elapsed().as_secs_f64());
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Measure

const ENDPOINTS: &[&str] = &["pages", "api", "errors", "vitals"];
const WINDOWS: &[&str] = &["24h", "7d"];

async fn measure(
    base: &str,
    secret: &str,
    site: &str,
    backend: &str,
    events: u64,
    reps: usize,
    budget: Duration,
) -> anyhow::Result<()> {
    let exp = vantage_ingest::clock::now_ms() / 1000 + 4 * 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"scope": "read", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    for endpoint in ENDPOINTS {
        for window in WINDOWS {
            let url = format!("{base}/v1/stats/{endpoint}?site={site}&window={window}");
            let once = || async {
                let t = Instant::now();
                let r = http.get(&url).bearer_auth(&token).send().await?;
                let status = r.status();
                let body: serde_json::Value = r.json().await?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if !status.is_success() {
                    bail!("{url}: {status} {body}");
                }
                let rows = body[*endpoint].as_array().map_or(0, Vec::len)
                    + body["groups"].as_array().map_or(0, Vec::len);
                anyhow::Ok((ms, rows))
            };
            let (_, rows) = once().await?; // warm-up
            let started = Instant::now();
            let mut times = Vec::with_capacity(reps);
            while times.len() < reps && (times.len() < 3 || started.elapsed() < budget) {
                times.push(once().await?.0);
            }
            times.sort_by(f64::total_cmp);
            let n = times.len();
            let p50 = times[n.div_ceil(2) - 1];
            // p95 (nearest rank) with 20 runs or more, else the slowest run.
            let (tail, tail_name) = if n >= 20 {
                (times[(95 * n).div_ceil(100) - 1], "p95")
            } else {
                (times[n - 1], "max")
            };
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load1 = load.split_whitespace().next().unwrap_or("?");
            println!(
                "| {backend} | {events} | {endpoint} | {window} | {n} | {p50:.1} | {tail:.1} ({tail_name}) | {rows} | {load1} |"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Explain

/// A query's time in ms since `started`, printed and kept for [`slowest`].
fn query_timed(name: String, rows: usize, started: Instant) -> (f64, String) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("QUERY {name} rows={rows} ms={ms:.1}");
    (ms, name)
}

/// The slowest of the timed queries, announced with how its plan (`explain`) follows; its fingerprint.
fn slowest(timed: &mut [(f64, String)], fingerprints: &[String], explain: &str) -> String {
    timed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (ms, name) = &timed[0];
    println!("SLOWEST {name} ({ms:.1} ms), {explain}:");
    let i = name
        .rsplit('#')
        .next()
        .and_then(|i| i.parse::<usize>().ok());
    fingerprints[i.unwrap_or(0)].clone()
}

/// What the errors endpoint still reads from raw events: each group's latest occurrence (its sample), one
/// query per group, through the errors' index. Times it for every group of the fill (40), then explains the
/// slowest. The other stats read rollups.
async fn explain(url: &str, site: &str, window: Duration) -> anyhow::Result<()> {
    let now = vantage_ingest::clock::now_ms();
    let since = now - window.as_millis() as i64;
    // As the store narrows the scan (store module docs, "Time base"): max_future's 10 minutes before it.
    let received_bound = since - StoreConfig::DEFAULT_MAX_CLIENT_AHEAD_MS;
    let fingerprints: Vec<String> = (0..40).map(fingerprint).collect();
    let name = |i: usize| format!("OCCURRENCES_SQL limit 1 group #{i}");
    let mut timed = Vec::new();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path)?;
        // The store's own search for the first rowid received at or after the bound.
        let first_rowid = vantage_ingest::store::stats_rowid_bound(&conn, received_bound)?;
        // The query as the store runs it (ingest/src/store/error_groups.rs), never a copy of its text.
        let sql = vantage_ingest::store::occurrences_sql_as_run(true);
        for (i, fp) in fingerprints.iter().enumerate() {
            let t = Instant::now();
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params![site, since, first_rowid, fp, 1], |_| {
                    Ok(())
                })?
                .count();
            timed.push(query_timed(name(i), rows, t));
        }
        let fp = slowest(&mut timed, &fingerprints, "EXPLAIN QUERY PLAN");
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let plan = stmt.query_map(rusqlite::params![site, since, first_rowid, fp, 1], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in plan {
            let (id, parent, detail) = row?;
            println!("  {id} {parent} {detail}");
        }
    } else {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let sql = vantage_ingest::store::occurrences_sql_as_run(false);
        for (i, fp) in fingerprints.iter().enumerate() {
            let t = Instant::now();
            let rows = client
                .query(&sql, &[&site, &since, &received_bound, fp, &1i64])
                .await?
                .len();
            timed.push(query_timed(name(i), rows, t));
        }
        let fp = slowest(&mut timed, &fingerprints, "EXPLAIN (ANALYZE, BUFFERS)");
        for row in client
            .query(
                &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
                &[&site, &since, &received_bound, &fp, &1i64],
            )
            .await?
        {
            println!("  {}", row.get::<_, String>(0));
        }
    }
    Ok(())
}
