//! What rum-sdk.js's lean events cost the ingest: a body of 100 `api_call` events as the SDK sends them (the first
//! whole, the others without the fields their batch shares, see `ingest/src/shared_fields.rs`) against the same
//! events each written whole, as older SDKs sent them. Per round: the body parsed into its events, then each
//! validated (and a lean one given the shared fields, its JSON copied with them) and its stored text made, which
//! is the work that differs; shaping and storing are the same for both.
//!
//! `cargo run --release -p vantage-ingest --example bench-ingest-shared -- [--rounds 20000] [--runs 7]`
//! prints ns per event and bytes per body for each (best and median of the runs: the machine is shared and noisy).

use serde_json::json;
use std::hint::black_box;
use std::time::Instant;
use vantage_ingest::config::Limits;
use vantage_ingest::event::{self, Batch};
use vantage_ingest::shared_fields::Shared;

const EVENTS: usize = 100;

/// One body as rum-sdk.js writes it (`lean`) or with every event whole.
fn body(lean: bool, now: i64) -> String {
    let shared = json!({
        "session_id": "0193a5f2-7c1e-7b3a-9f4d-2e8c6b1a0d9f",
        "viewport": {"width": 1280, "height": 720},
        "page": {"url": "https://shop.example.com/products/123", "referrer": "https://www.example.org/"},
        "release": "shop@1.4.2",
    });
    let events: Vec<_> = (0..EVENTS)
        .map(|i| {
            let mut e = json!({
                "type": "api_call",
                "timestamp": now + i as i64,
                "api": {"method": "GET", "endpoint": format!("https://api.example.com/v1/items/{}", i % 7),
                        "duration": 42.5, "status": 200},
                "event_id": format!("0193a5f2-7c1e-7b3a-9f4d-2e8c6b{}", 100_000 + i),
            });
            if i == 0 || !lean {
                for (k, v) in shared.as_object().unwrap() {
                    e[k] = v.clone();
                }
            }
            e
        })
        .collect();
    json!({ "events": events, "batch_id": "0193a5f2-7c1e-7b3a-9f4d-2e8c6b1a0d9f" }).to_string()
}

/// Parses `body` and validates its events; the bytes of stored text, so that nothing is optimised away.
fn run(body: &str, limits: &Limits, now: i64) -> usize {
    let batch: Batch = serde_json::from_str(body).expect("a valid body");
    let mut shared = Shared::default();
    batch
        .events
        .iter()
        .map(|raw| {
            event::validate(raw, limits, now, &mut shared)
                .expect("a valid event")
                .raw
                .len()
        })
        .sum()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let rounds = arg("--rounds", 20_000);
    let runs = arg("--runs", 7);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let limits = Limits::default();
    let bodies = [("whole", body(false, now)), ("lean", body(true, now))];
    // Both store the same text.
    assert_eq!(
        run(&bodies[0].1, &limits, now),
        run(&bodies[1].1, &limits, now)
    );
    println!("{EVENTS} api_call events a body, {rounds} bodies a run, {runs} runs, alternating");
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); bodies.len()];
    for _ in 0..runs {
        for (i, (_, b)) in bodies.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..rounds {
                black_box(run(black_box(b), &limits, now));
            }
            times[i].push(t.elapsed().as_nanos() as f64 / (rounds * EVENTS) as f64);
        }
    }
    for ((name, b), t) in bodies.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "{name:>5}: {:>6} bytes a body, {:>6.0} ns per event (best {:.0})",
            b.len(),
            t[t.len() / 2],
            t[0]
        );
    }
}
