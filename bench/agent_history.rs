//! Memory of the per-check run history (`agent/src/history.rs`): 10,000 checks, each with a full ring of 100
//! runs, in a few shapes (all passing, 10% failing, always failing the same way, failing with a new message
//! every run, a 3-step workflow). Bytes come from a counting global allocator (exact heap bytes asked for, the
//! ring's own struct included); the process RSS growth is printed beside it as a cross-check.
//!
//! `cargo run --release -p vantage-agent --example bench-agent-history [-- CHECKS RUNS]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vantage_agent::history::History;
use vantage_agent::result::{
    ErrorType, HttpFacts, Phase, Phases, ProbeError, ProbeResult, StepResult,
};
use vantage_common::Redactor;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn phases(i: u64) -> Phases {
    let mut p = Phases::default();
    p.add(Phase::Resolve, Duration::from_micros(300 + i % 50));
    p.add(Phase::Connect, Duration::from_micros(900 + i % 70));
    p.add(Phase::Tls, Duration::from_micros(4000 + i % 90));
    p.add(Phase::Processing, Duration::from_micros(20_000 + i % 900));
    p.add(Phase::Transfer, Duration::from_micros(150 + i % 30));
    p
}

fn passing(i: u64) -> ProbeResult {
    ProbeResult {
        duration: Duration::from_micros(25_000 + i % 1000),
        phases: phases(i),
        http: Some(HttpFacts {
            status: 200,
            version: "HTTP/1.1",
            ..Default::default()
        }),
        attempts: 1,
        ..Default::default()
    }
}

fn failing(message: String) -> ProbeResult {
    ProbeResult {
        error: Some(ProbeError::new(ErrorType::HttpStatus, message)),
        ..passing(7)
    }
}

fn workflow(i: u64) -> ProbeResult {
    let step = |name: &str, extracted: &[&str]| StepResult {
        name: name.into(),
        teardown: false,
        success: true,
        skipped: false,
        duration: Duration::from_micros(8000 + i % 500),
        phases: phases(i),
        status: Some(200),
        error: None,
        extracted: extracted.iter().map(|s| s.to_string()).collect(),
    };
    ProbeResult {
        steps: vec![
            step("login", &["token"]),
            step("create-item", &["item_id"]),
            step("delete-item", &[]),
        ],
        ..passing(i)
    }
}

type Shape = (&'static str, fn(u64) -> ProbeResult);

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let checks = args.first().copied().unwrap_or(10_000);
    let runs = args.get(1).copied().unwrap_or(100);
    let shapes: [Shape; 5] = [
        ("all passing (HTTP, 5 phases)", passing),
        ("10% failing, same message", |i| {
            if i % 10 == 3 {
                failing("expected status 2xx, got 503 Service Unavailable".into())
            } else {
                passing(i)
            }
        }),
        ("always failing, same message", |_| {
            failing("expected status 2xx, got 503 Service Unavailable".into())
        }),
        ("always failing, new message each run", |i| {
            failing(format!(
                "expected body to match /\"status\":\"up\"/, got {{\"status\":\"degraded\",\"seq\":{i}}}"
            ))
        }),
        ("workflow, 3 steps passing", workflow),
    ];
    let redactor = Redactor::default();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    println!(
        "history memory: {checks} checks x {runs} runs (record: {} bytes, History struct: {} bytes)",
        std::mem::size_of::<vantage_agent::history::RunRecord>(),
        std::mem::size_of::<std::sync::Mutex<History>>()
    );
    println!(
        "{:<40} {:>14} {:>12} {:>16}",
        "shape", "bytes/check", "bytes/run", "RSS growth/check"
    );
    let floor = (runs * std::mem::size_of::<vantage_agent::history::RunRecord>()) as f64;
    for (name, make) in shapes {
        let before = LIVE.load(Ordering::Relaxed);
        let rss_before = rss_kb();
        let mut all: Vec<std::sync::Mutex<History>> = Vec::with_capacity(checks);
        for _ in 0..checks {
            let mut h = History::new(runs);
            // Twice round the ring, so the figure is the steady state after the oldest runs left.
            for i in 0..(2 * runs as u64) {
                let started: SystemTime = t0 + Duration::from_secs(30 * i);
                h.record(&make(i), started, false, &redactor);
            }
            all.push(std::sync::Mutex::new(h));
        }
        let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / checks as f64;
        let rss = (rss_kb() - rss_before) as f64 * 1024.0 / checks as f64;
        println!(
            "{name:<40} {bytes:>14.0} {:>12.1} {rss:>16.0}   ({:.2}x the bare records)",
            bytes / runs as f64,
            bytes / floor
        );
        drop(all);
    }
}
