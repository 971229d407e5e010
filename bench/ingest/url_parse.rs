//! URL parsing on the shaping path: `shape.rs`'s own slicing (`url_path`, `url_host`, `stored_url`) against
//! the `url` crate doing the same work (parse, or join a relative URL to a placeholder base; path; host with
//! port; URL without query and fragment), per URL, over the page and API URLs a RUM batch carries. Then, for
//! inputs where the two differ, what each makes of them.
//!
//! `cargo run --release -p vantage-ingest --example bench-ingest-url -- [--rounds 200000] [--runs 7]`
//! prints ns per URL for each (best and median of the runs: the machine is shared and noisy).

use std::hint::black_box;
use std::time::Instant;
use url::Url;
use vantage_ingest::shape::{stored_url, url_host, url_path};

/// What a batch carries: page URLs (absolute, with queries and fragments) and API endpoints (absolute,
/// relative, protocol-relative).
const CORPUS: [&str; 10] = [
    "https://shop.example.com/products/123?ref=x#top",
    "https://shop.example.com/",
    "https://shop.example.com/checkout/3f2b8c1e-9a4d-4e2b-8f1a-0c9d8e7f6a5b/pay?step=2&utm_source=news",
    "https://eu.shop.example.com:8443/blog/summer-sale-2024#comments",
    "https://api.example.com/v2/users/42/orders?limit=20&cursor=aZ3kP9qL2mX8vB7n",
    "/api/cart",
    "/api/search?q=red+shoes&page=3",
    "//cdn.example.com/assets/0123456789abcdef0123/app.js",
    "https://shop.example.com/c/women/shoes/sneakers?size=38&color=white&sort=price_asc#grid",
    "http://localhost:3000/account/settings",
];

fn ours(u: &str) -> usize {
    let path = url_path(u);
    let host = url_host(u);
    let stored = stored_url(u, false);
    black_box(path).len() + black_box(host).map_or(0, |h| h.len()) + black_box(stored).len()
}

fn with_url_crate(u: &str, base: &Url) -> usize {
    let Ok(mut parsed) = Url::parse(u).or_else(|_| base.join(u)) else {
        return 0;
    };
    let path_len = black_box(parsed.path()).len();
    let host = parsed.host_str().map(|h| match parsed.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    });
    parsed.set_fragment(None);
    parsed.set_query(None);
    let stored = parsed.to_string();
    path_len + black_box(host).map_or(0, |h| h.len()) + black_box(stored).len()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a whole number"))
}

/// ns per URL for each run.
fn measure(rounds: usize, runs: usize, mut f: impl FnMut(&str) -> usize) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut sum = 0;
            for _ in 0..rounds {
                for u in CORPUS {
                    sum += f(black_box(u));
                }
            }
            black_box(sum);
            start.elapsed().as_nanos() as f64 / (rounds * CORPUS.len()) as f64
        })
        .collect()
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let rounds = arg("--rounds", 200_000);
    let runs = arg("--runs", 7);
    let base = Url::parse("https://placeholder.invalid/").expect("base URL");
    // Warm up both (caches, branch predictors), then alternate so that noise hits both alike.
    measure(rounds / 10, 1, ours);
    measure(rounds / 10, 1, |u| with_url_crate(u, &base));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.extend(measure(rounds, 1, ours));
        b.extend(measure(rounds, 1, |u| with_url_crate(u, &base)));
    }
    let (a_best, a_med) = summary(a);
    let (b_best, b_med) = summary(b);
    println!(
        "URL parsing on the shaping path: {} URLs x {rounds} rounds, {runs} runs each, alternating",
        CORPUS.len()
    );
    println!("  shape.rs slicing: best {a_best:7.1} ns/URL  median {a_med:7.1} ns/URL");
    println!("  url crate:        best {b_best:7.1} ns/URL  median {b_med:7.1} ns/URL");
    println!("  url crate / shape.rs (median): {:.1}x", b_med / a_med);
    println!();
    println!("where they differ (path | host):");
    for u in [
        "/caf\u{e9}/men\u{fc}",
        "/a\tb/c\r\nd",
        "/a/../admin/./x",
        "https://api.example.com:443/x",
        "https://API.Example.com/x",
        "https://b\u{fc}cher.example/x",
        "https://exa mple.com/x",
    ] {
        let theirs = Url::parse(u).or_else(|_| base.join(u));
        let theirs = match &theirs {
            Ok(p) => format!("{:?} | {:?}", p.path(), p.host_str().map(|h| (h, p.port()))),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "  {u:?}\n    shape.rs:  {:?} | {:?}\n    url crate: {theirs}",
            url_path(u),
            url_host(u)
        );
    }
}
