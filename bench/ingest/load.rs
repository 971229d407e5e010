//! Load generator for `bench/ingest/run.sh`: keep-alive connections, each posting corpus batches back to back
//! (closed loop, one request in flight per connection, as wrk does), every event stamped per request the way
//! `bench.lua` stamps them (current timestamps, a session of its own per request, event ids as rum-sdk.js
//! makes them), on one thread by default like `wrk -t1`.
//!
//! Why not wrk alone: building each 20-event body in wrk's Lua cost ~6 us of CPU per event (bench/README.md,
//! ingest-perf7), a fifth of what the machine spent per event, on the two cores the server needs. Here a
//! body is a few copies of pre-split byte pieces plus 20 formatted ids.
//!
//! Prints one line, in the format `run.sh` reads from wrk's `bench.lua`:
//! `RESULT requests=N duration_us=N errors=N p50_us=N p99_us=N events=N cpu_us=N`, where `requests` and
//! `events` count only 202 answers whose `accepted` equals the batch's events, and `cpu_us` is this
//! process's own user+system time over the run.
//!
//! `cargo run --release -p vantage-ingest --example bench-ingest-load -- --corpus FILE --url URL
//!  [--connections 32] [--duration 15s] [--ids sdk|event|v7|v4|none] [--api-key KEY] [--threads 1]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use vantage_ingest::clock::now_ms;

#[derive(Parser, Debug)]
struct Args {
    /// One JSON batch per line (`make_corpus.py`).
    #[arg(long)]
    corpus: std::path::PathBuf,
    /// Where to POST, e.g. http://127.0.0.1:19480/v1/events (loopback only).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// A request that takes longer counts as an error and its connection is opened again.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[arg(long, value_enum, default_value_t = Ids::Sdk)]
    ids: Ids,
    /// Sent as `X-API-Key` (none when empty).
    #[arg(long, default_value = "")]
    api_key: String,
    /// Runtime threads (1 = a current-thread runtime, like `wrk -t1`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// How event ids are made (see `bench.lua`, which this mirrors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ids {
    /// As rum-sdk.js stamps them (since 2026-12-04): when the batch is cut, shortly before it is sent, all of a
    /// batch's ids in one millisecond.
    Sdk,
    /// Stamped when each event happened, over the ~5 s a batch is buffered (rum-sdk.js before 2026-12-04).
    Event,
    /// All of a request's ids stamped at send time, spread over the second by a counter.
    V7,
    /// Random.
    V4,
    /// No `event_id`: the server assigns one.
    None,
}

/// One corpus line split where each request stamps its own values.
struct Template {
    /// Per event: the text up to its session id's closing quote, and its timestamp's offset in the batch.
    events: Vec<(Vec<u8>, i64)>,
    /// After the last timestamp.
    tail: Vec<u8>,
}

const SESSION_KEY: &[u8] = b"\"session_id\":\"";
const TIMESTAMP_KEY: &[u8] = b"\"timestamp\":";

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl Template {
    /// `make_corpus.py` writes each event's `"session_id":"…",` just before its `"timestamp":N`.
    fn parse(line: &[u8]) -> Result<Self, String> {
        let mut events = Vec::new();
        let (mut pos, mut base) = (0, None);
        while let Some(ts) = find(line, TIMESTAMP_KEY, pos) {
            let head = &line[pos..ts];
            let Some(head) = head.strip_suffix(b"\",") else {
                return Err("each timestamp must follow a session_id".into());
            };
            if find(head, SESSION_KEY, 0).is_none() {
                return Err("an event has no session_id before its timestamp".into());
            }
            let digits_at = ts + TIMESTAMP_KEY.len();
            let digits = line[digits_at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let value: i64 = std::str::from_utf8(&line[digits_at..digits_at + digits])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("timestamp is not a whole number")?;
            let base = *base.get_or_insert(value);
            events.push((head.to_vec(), value - base));
            pos = digits_at + digits;
        }
        if events.is_empty() {
            return Err("no events".into());
        }
        Ok(Self {
            events,
            tail: line[pos..].to_vec(),
        })
    }
}

/// xorshift64*: fast, and good enough to make ids that do not collide.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        out
    }
}

/// A UUIDv7 stamped at `ms` (ms since the epoch), its other bits random.
fn v7(ms: i64, rng: &mut Rng) -> uuid::Uuid {
    uuid::Builder::from_unix_timestamp_millis(ms as u64, &rng.bytes()).into_uuid()
}

/// Writes request number `sent` of batch `t` into `out`.
fn build_body(t: &Template, ids: Ids, sent: u64, rng: &mut Rng, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let now = now_ms();
    let base = now - 5000 + rng.below(1000) as i64;
    let cut = now - rng.below(200) as i64;
    for (k, (head, offset)) in t.events.iter().enumerate() {
        out.extend_from_slice(head);
        // The corpus line's session plus this request's number: a session of its own per request.
        let _ = write!(out, "-{sent}\",");
        let id = match ids {
            Ids::None => None,
            Ids::Sdk => Some(v7(cut, rng)),
            Ids::Event => Some(v7(base + k as i64 * 250 + rng.below(250) as i64, rng)),
            Ids::V7 => Some(v7(now + (sent as i64 * 20 + k as i64) % 1000, rng)),
            Ids::V4 => Some(uuid::Builder::from_random_bytes(rng.bytes()).into_uuid()),
        };
        if let Some(id) = id {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            out.extend_from_slice(b"\"event_id\":\"");
            out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
            out.extend_from_slice(b"\",");
        }
        let _ = write!(out, "\"timestamp\":{}", now + offset);
    }
    out.extend_from_slice(&t.tail);
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    requests: u64,
    events: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// The number after `"accepted":` in a 202 body.
fn accepted(body: &[u8]) -> Option<u64> {
    let at = find(body, b"\"accepted\":", 0)? + b"\"accepted\":".len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

struct Shared {
    templates: Vec<Template>,
    sent: AtomicU64,
    args: Args,
    authority: String,
    path: String,
    addr: std::net::SocketAddr,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(s: &Shared) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(s.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One connection's closed loop until `deadline`.
async fn drive(s: Arc<Shared>, seed: u64, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed | 1);
    let mut body = Vec::with_capacity(32 << 10);
    let mut sender: Option<Sender> = None;
    while Instant::now() < deadline {
        let tx = match sender.as_mut() {
            Some(tx) => tx,
            None => match connect(&s).await {
                Ok(tx) => sender.insert(tx),
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let n = s.sent.fetch_add(1, Ordering::Relaxed);
        let t = &s.templates[(n % s.templates.len() as u64) as usize];
        build_body(t, s.args.ids, n, &mut rng, &mut body);
        let mut req = hyper::Request::post(&s.path)
            .header(hyper::header::HOST, &s.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if !s.args.api_key.is_empty() {
            req = req.header("x-api-key", &s.args.api_key);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(&body)))
            .expect("request");
        let started = Instant::now();
        let answer = tokio::time::timeout(s.args.timeout, async {
            let res = tx.send_request(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let elapsed = started.elapsed();
        match answer {
            Ok(Ok((status, res_body))) if status == hyper::StatusCode::ACCEPTED => {
                let events = t.events.len() as u64;
                match accepted(&res_body) {
                    Some(a) if a != events => tally.errors += 1,
                    // Without the field (the hello-world baseline), the server is taken at its word.
                    _ => {
                        tally.requests += 1;
                        tally.events += events;
                        tally
                            .latencies_us
                            .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
                    }
                }
            }
            Ok(Ok(_)) => tally.errors += 1,
            Ok(Err(_)) | Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

/// This process's user + system CPU time, microseconds.
fn cpu_us() -> u64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let url = url::Url::parse(&args.url).map_err(|e| format!("--url: {e}"))?;
    let host = url.host_str().ok_or("--url needs a host")?;
    let addr: std::net::SocketAddr = format!("{host}:{}", url.port().unwrap_or(80))
        .parse()
        .map_err(|_| "--url must name a loopback IP address and port")?;
    if !addr.ip().is_loopback() {
        return Err("--url must be a loopback address: this benchmark sends nowhere else".into());
    }
    let text = std::fs::read(&args.corpus)
        .map_err(|e| format!("cannot read {}: {e}", args.corpus.display()))?;
    let templates = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| Template::parse(l).map_err(|e| format!("corpus line {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if templates.is_empty() {
        return Err("the corpus is empty".into());
    }
    let shared = Arc::new(Shared {
        templates,
        sent: AtomicU64::new(0),
        authority: format!("{host}:{}", addr.port()),
        path: url.path().to_string(),
        addr,
        args,
    });
    let runtime = if shared.args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(shared.args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let cpu_before = cpu_us();
    let started = Instant::now();
    let deadline = started + shared.args.duration;
    let seed = now_ms() as u64;
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = (0..shared.args.connections)
            .map(|c| {
                tokio::spawn(drive(
                    shared.clone(),
                    seed.wrapping_mul(c as u64 + 1),
                    deadline,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("connection task"));
        }
        out
    });
    let wall = started.elapsed();
    let cpu = cpu_us() - cpu_before;
    let mut all = Tally::default();
    for t in tallies {
        all.requests += t.requests;
        all.events += t.events;
        all.errors += t.errors;
        all.latencies_us.extend(t.latencies_us);
    }
    all.latencies_us.sort_unstable();
    println!(
        "RESULT requests={} duration_us={} errors={} p50_us={} p99_us={} events={} cpu_us={}",
        all.requests,
        wall.as_micros(),
        all.errors,
        percentile(&all.latencies_us, 50.0),
        percentile(&all.latencies_us, 99.0),
        all.events,
        cpu
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_stamped_json() {
        let line = br#"{"events":[{"type":"custom","session_id":"s-1","timestamp":1000,"name":"a"},{"type":"custom","session_id":"s-1","timestamp":1002,"name":"b"}]}"#;
        let t = Template::parse(line).unwrap();
        assert_eq!(t.events.len(), 2);
        let mut rng = Rng(7);
        for ids in [Ids::Sdk, Ids::Event, Ids::V7, Ids::V4, Ids::None] {
            let mut out = Vec::new();
            build_body(&t, ids, 42, &mut rng, &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let evs = v["events"].as_array().unwrap();
            assert_eq!(evs[0]["session_id"], "s-1-42");
            let ts0 = evs[0]["timestamp"].as_i64().unwrap();
            assert_eq!(evs[1]["timestamp"].as_i64().unwrap() - ts0, 2);
            assert!((ts0 - now_ms()).abs() < 5_000);
            match ids {
                Ids::None => assert!(evs[0].get("event_id").is_none()),
                _ => {
                    let id = evs[0]["event_id"].as_str().unwrap();
                    let version = uuid::Uuid::parse_str(id).map(|u| u.get_version_num());
                    assert_eq!(version, Ok(if ids == Ids::V4 { 4 } else { 7 }), "{id}");
                    assert_ne!(id, evs[1]["event_id"].as_str().unwrap());
                }
            }
        }
    }
}
