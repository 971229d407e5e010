//! Agent benchmark: N HTTP checks every 10 s against a local target in its own process (this binary started
//! again with `--serve-target`), measured from outside the agent process (CPU from /proc, peak RSS, probes/s and
//! scheduler lateness from /metrics) while `/metrics` is scraped every 15 s as Prometheus does (OpenMetrics,
//! gzip), then the same probe rate through Debian's prometheus-blackbox-exporter driven by a scraper, for the
//! CPU-per-probe ratio. Each case also reports series per check, the scrape's bytes (plain and gzip) and time,
//! and memory per check over an agent with no checks.
//!
//! `--metrics basic|full` sets the agent-wide metric level of the checks (default: the agent's default, full).
//!
//! With `--remote-write`, each case also runs with a `remote_write` endpoint (a receiver in this process that
//! decodes and counts every sample) beside the scrape, in the same run, for its extra CPU and RSS.
//!
//! Run (release): `cargo run --release -p vantage-agent --example bench-agent -- [--secs 60] [--checks 1000,10000]
//! [--remote-write] [--metrics basic] [--no-blackbox] [--type http|https|http3|grpc|icmp]`
//!
//! `--type https` probes an HTTPS (HTTP/1.1 over TLS) target and `--type http3` the same over QUIC (`http_version:
//! "3"`), both with `insecure_skip_verify` (the test certificate is the target process's); blackbox_exporter has no
//! HTTP/3, so that case runs the agent alone.
//!
//! `--type icmp` runs ICMP checks to 127.0.0.1 instead (one echo request per run; raw sockets as root), and
//! blackbox_exporter's `icmp` prober on the same address.
//!
//! `--type grpc` runs gRPC health checks instead (`type: grpc`, plaintext) against a tonic-health server in the
//! target process, and blackbox_exporter's `grpc` prober on the same target.
//!
//! `--memory SECS` instead runs the agent for SECS with one healthy check and one whose target sends an endless
//! body (the agent reads `max_body_bytes`, 10 MiB, and gives up), both every second, and prints its RSS every
//! 30 s: memory must stay flat (issue #17: it rose from 9.6 MB to 43-50 MB in ~10 MB steps).
//!
//! `--probe-rate` instead measures the HTTP `Probe` alone, in this process: 5,000 runs, 50 at a time, on one
//! core (a single-threaded runtime on its own thread; the target runs on the main runtime's threads).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vantage_testkit::grpc::GrpcHealthServer;
use vantage_testkit::h3::H3Server;
use vantage_testkit::servers::TestServer;
use vantage_testkit::tls::TestPki;

const INTERVAL_SECS: u64 = 10;
/// How often the bench scrapes the agent while measuring (a common Prometheus scrape interval).
const SCRAPE_SECS: u64 = 15;
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";

struct Args {
    secs: u64,
    checks: Vec<usize>,
    agent: PathBuf,
    remote_write: bool,
    memory: Option<u64>,
    probe_rate: bool,
    /// `--metrics basic|full`: the agent-wide level (None: the agent's default).
    metrics: Option<String>,
    /// `--history-runs N`: the agent's `history.runs` (None: the agent's default, 100).
    history_runs: Option<usize>,
    blackbox: bool,
    /// `--type http|grpc`: the kind of check measured.
    check_type: String,
}

fn args() -> Args {
    let mut a = Args {
        secs: 60,
        checks: vec![1_000, 10_000],
        agent: std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("vantage-agent"),
        remote_write: false,
        memory: None,
        probe_rate: false,
        metrics: None,
        history_runs: None,
        blackbox: true,
        check_type: "http".into(),
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--remote-write") {
        a.remote_write = true;
        argv.remove(i);
    }
    if let Some(i) = argv.iter().position(|a| a == "--no-blackbox") {
        a.blackbox = false;
        argv.remove(i);
    }
    if let Some(i) = argv.iter().position(|a| a == "--probe-rate") {
        a.probe_rate = true;
        argv.remove(i);
    }
    for w in argv.chunks(2) {
        match (w[0].as_str(), w.get(1)) {
            ("--secs", Some(v)) => a.secs = v.parse().expect("--secs N"),
            ("--checks", Some(v)) => {
                a.checks = v
                    .split(',')
                    .map(|n| n.parse().expect("--checks N,M"))
                    .collect()
            }
            ("--agent", Some(v)) => a.agent = PathBuf::from(v),
            ("--memory", Some(v)) => a.memory = Some(v.parse().expect("--memory SECS")),
            ("--metrics", Some(v)) => a.metrics = Some(v.clone()),
            ("--history-runs", Some(v)) => {
                a.history_runs = Some(v.parse().expect("--history-runs N"))
            }
            ("--type", Some(v))
                if matches!(v.as_str(), "http" | "https" | "http3" | "grpc" | "icmp") =>
            {
                a.check_type = v.clone()
            }
            _ => panic!(
                "usage: bench-agent [--secs 60] [--checks 1000,10000] [--agent PATH] [--remote-write] [--metrics basic|full] [--history-runs N] [--no-blackbox] [--memory SECS] [--probe-rate] [--type http|https|http3|grpc|icmp]"
            ),
        }
    }
    a
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// A `/proc/PID/status` memory field (`VmRSS:`, `VmHWM:`) in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(url: &str) {
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(url).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

/// The sum of every sample of `family` (classic text format), optionally only lines containing `filter`.
fn sum(metrics: &str, family: &str, filter: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']) && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Cumulative histogram buckets (le, count).
fn buckets(metrics: &str, family: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{family}_bucket{{le=\"");
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, tail) = rest.split_once('"')?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, tail.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// Quantile from the difference of two cumulative bucket snapshots (linear within a bucket, as PromQL does).
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let d: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (*le, a - b))
        .collect();
    let total = d.last().map(|(_, c)| *c).unwrap_or(0.0);
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for (le, c) in &d {
        if *c >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            return prev.0 + (le - prev.0) * (rank - prev.1) / (c - prev.1).max(1e-9);
        }
        prev = (*le, *c);
    }
    prev.0
}

struct AgentFigures {
    probes_per_sec: f64,
    failures: f64,
    cpu_per_1000: f64,
    rss_mb: f64,
    p50_ms: f64,
    p99_ms: f64,
    skipped: f64,
    startup_secs: f64,
    /// Samples the remote-write receiver got per second (0 without remote write).
    pushed_per_sec: f64,
    /// Per-check series in the last scrape, per check.
    series_per_check: f64,
    /// The last scrape as Prometheus makes it (OpenMetrics, gzip): bytes on the wire and decompressed.
    gzip_bytes: usize,
    plain_bytes: usize,
    /// Median time of the gzip scrapes during the measurement, and of one plain scrape after it.
    gzip_scrape_secs: f64,
    plain_scrape_secs: f64,
}

/// One scrape of `/metrics`: the text, the bytes on the wire and how long it took (request to last byte).
struct Scrape {
    text: String,
    wire_bytes: usize,
    secs: f64,
}

/// Scrapes as Prometheus does (`Accept: application/openmetrics-text`, `Accept-Encoding: gzip`), or plain.
async fn scrape(base: &str, gzip: bool) -> Scrape {
    use std::io::Read;
    // No transparent decompression: the bench counts the compressed bytes and inflates them itself.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut req = client.get(format!("{base}/metrics")).header(
        "accept",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let t = Instant::now();
    let r = req.send().await.unwrap();
    let compressed = r.headers().get("content-encoding").is_some();
    let body = r.bytes().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        compressed, gzip,
        "gzip asked for: {gzip}, served: {compressed}"
    );
    let text = if compressed {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    Scrape {
        text,
        wire_bytes: body.len(),
        secs,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Peak RSS (MB) of an agent with no checks after two scrapes: what per-check memory is measured over.
async fn empty_agent_rss(args: &Args, dir: &Path) -> f64 {
    let config = dir.join("agent-empty.yaml");
    std::fs::write(&config, "region: bench\nlog_format: json\nchecks: []\n").unwrap();
    let (mut child, base) = start_agent(args, &config).await;
    for _ in 0..2 {
        scrape(&base, true).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss = peak_rss_mb(child.id());
    stop(&mut child);
    rss
}

/// A remote-write receiver: decodes every request and counts its samples.
async fn start_receiver() -> (String, Arc<AtomicU64>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let samples = Arc::new(AtomicU64::new(0));
    let count = samples.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let count = count.clone();
                        async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let status = match vantage_agent::remote_write::wire::decode(&body) {
                                Ok(w) => {
                                    let n: usize =
                                        w.timeseries.iter().map(|t| t.samples.len()).sum();
                                    count.fetch_add(n as u64, Ordering::Relaxed);
                                    204
                                }
                                Err(_) => 400,
                            };
                            let mut r = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::new(),
                            ));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/api/v1/write"), samples)
}

async fn bench_agent(
    args: &Args,
    dir: &Path,
    target: &str,
    n: usize,
    remote_write: Option<(&str, &Arc<AtomicU64>)>,
) -> AgentFigures {
    let mut yaml = String::from("region: bench\nlog_format: json\nmax_concurrency: 1024\n");
    if let Some(level) = &args.metrics {
        yaml.push_str(&format!("metrics: {level}\n"));
    }
    if let Some(runs) = args.history_runs {
        yaml.push_str(&format!("history:\n  runs: {runs}\n"));
    }
    if let Some((url, _)) = remote_write {
        yaml.push_str(&format!("remote_write:\n  - url: {url}\n"));
    }
    yaml.push_str("checks:\n");
    let keys = check_keys(args, target);
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: check-{i}\n{keys}    every: {INTERVAL_SECS}s\n    timeout: 5s\n"
        ));
    }
    let config = dir.join(format!("agent-{n}.yaml"));
    std::fs::write(&config, yaml).unwrap();
    let started = Instant::now();
    let (mut child, base) = start_agent(args, &config).await;
    let startup_secs = started.elapsed().as_secs_f64();
    // Warm up one full interval so every check has its phase and connections exist.
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS + 2)).await;
    let pushed = || remote_write.map_or(0, |(_, n)| n.load(Ordering::Relaxed));
    // The window runs from the start of the first scrape to the start of the last: the counters are read at the
    // start of a scrape (the agent writes them first), and a 50,000-check scrape takes seconds.
    let (c0, t0, p0) = (cpu_secs(child.id()), Instant::now(), pushed());
    let first = scrape(&base, true).await;
    let end = t0 + Duration::from_secs(args.secs);
    // Scraped every SCRAPE_SECS meanwhile, as Prometheus would; the last scrape ends the measurement.
    let mut times = vec![first.secs];
    let mut next = t0 + Duration::from_secs(SCRAPE_SECS);
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        times.push(scrape(&base, true).await.secs);
        next += Duration::from_secs(SCRAPE_SECS);
    }
    tokio::time::sleep_until(end.into()).await;
    let (c1, elapsed, p1) = (cpu_secs(child.id()), t0.elapsed().as_secs_f64(), pushed());
    let last = scrape(&base, true).await;
    times.push(last.secs);
    let rss_mb = peak_rss_mb(child.id());
    // After the peak is read: a plain scrape holds the whole text in the agent's memory.
    let plain = scrape(&base, false).await;
    stop(&mut child);
    let (m0, m1) = (&first.text, &last.text);
    let series = m1
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("endpoint=\""))
        .count();
    let ok = sum(m1, "synthetic_request_success_total", "")
        - sum(m0, "synthetic_request_success_total", "");
    let failures = sum(m1, "synthetic_request_failure_total", "")
        - sum(m0, "synthetic_request_failure_total", "");
    let probes = ok + failures;
    let lat = "vantage_agent_scheduler_lateness_seconds";
    let (b0, b1) = (buckets(m0, lat), buckets(m1, lat));
    AgentFigures {
        probes_per_sec: probes / elapsed,
        failures,
        cpu_per_1000: (c1 - c0) / probes * 1000.0,
        rss_mb,
        p50_ms: quantile(&b0, &b1, 0.5) * 1000.0,
        p99_ms: quantile(&b0, &b1, 0.99) * 1000.0,
        skipped: sum(m1, "synthetic_runs_skipped_total", "")
            - sum(m0, "synthetic_runs_skipped_total", ""),
        startup_secs,
        pushed_per_sec: (p1 - p0) as f64 / elapsed,
        series_per_check: series as f64 / n.max(1) as f64,
        gzip_bytes: last.wire_bytes,
        plain_bytes: last.text.len(),
        gzip_scrape_secs: median(times),
        plain_scrape_secs: plain.secs,
    }
}

/// Starts the agent under test on `config` (warnings only, stderr dropped) and waits until it is ready: the
/// process and its base URL.
async fn start_agent(args: &Args, config: &Path) -> (Child, String) {
    let port = free_port();
    let child = Command::new(&args.agent)
        .args([
            "run",
            "-c",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.agent.display()));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/readyz")).await;
    (child, base)
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Most /probe requests the driver keeps open at once; beyond, a due probe is not sent and counted as missed
/// (blackbox_exporter is not keeping up), so the bench never runs out of descriptors.
const BLACKBOX_IN_FLIGHT: usize = 4096;

struct BlackboxFigures {
    probes_per_sec: f64,
    failures: u64,
    /// Due probes not sent because BLACKBOX_IN_FLIGHT were still open.
    missed: u64,
    cpu_per_1000: f64,
    rss_mb: f64,
}

/// Drives blackbox_exporter's /probe at `rate` per second (as Prometheus would with N targets every 10 s).
async fn bench_blackbox(
    args: &Args,
    dir: &Path,
    target: &str,
    rate: f64,
) -> Option<BlackboxFigures> {
    if !Path::new(BLACKBOX).exists() {
        println!("  blackbox_exporter: SKIPPED ({BLACKBOX} not installed: apt-get install prometheus-blackbox-exporter)");
        return None;
    }
    let config = dir.join("blackbox.yml");
    let target = icmp_or(args, target);
    let module = match args.check_type.as_str() {
        "grpc" => "grpc_plain:\n    prober: grpc\n    timeout: 5s\n    grpc: {tls: false}\n",
        "icmp" => "icmp:\n    prober: icmp\n    timeout: 5s\n",
        "https" => "http_tls:\n    prober: http\n    timeout: 5s\n    http:\n      tls_config: {insecure_skip_verify: true}\n",
        "http3" => {
            println!("  blackbox_exporter: SKIPPED (it has no HTTP/3 prober)");
            return None;
        }
        _ => "http_2xx:\n    prober: http\n    timeout: 5s\n",
    };
    std::fs::write(&config, format!("modules:\n  {module}")).unwrap();
    let module = module.split(':').next().unwrap();
    let port = free_port();
    let mut child = Command::new(BLACKBOX)
        .args([
            &format!("--config.file={}", config.display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/healthy")).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()
        .unwrap();
    let url = format!("{base}/probe?module={module}&target={target}");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let missed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BLACKBOX_IN_FLIGHT));
    let drive = |secs: u64| {
        let (client, url, done, failed) =
            (client.clone(), url.clone(), done.clone(), failed.clone());
        let (missed, in_flight) = (missed.clone(), in_flight.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < end {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    missed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (client, url, done, failed) =
                    (client.clone(), url.clone(), done.clone(), failed.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let ok = match client.get(&url).send().await {
                        Ok(r) => r
                            .text()
                            .await
                            .map(|b| b.contains("probe_success 1"))
                            .unwrap_or(false),
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
    };
    drive(5).await; // warm up
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (d0, f0, m0) = (
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        missed.load(Ordering::Relaxed),
    );
    let (c0, t0) = (cpu_secs(child.id()), Instant::now());
    drive(args.secs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c1, elapsed) = (cpu_secs(child.id()), t0.elapsed().as_secs_f64());
    let probes = (done.load(Ordering::Relaxed) - d0) as f64;
    let rss_mb = peak_rss_mb(child.id());
    stop(&mut child);
    Some(BlackboxFigures {
        probes_per_sec: probes / elapsed,
        failures: failed.load(Ordering::Relaxed) - f0,
        missed: missed.load(Ordering::Relaxed) - m0,
        cpu_per_1000: (c1 - c0) / probes * 1000.0,
        rss_mb,
    })
}

/// RSS over `secs` with a healthy check and an endless-body check, every second each.
async fn bench_memory(args: &Args, dir: &Path, server: &TestServer, secs: u64) {
    let yaml = format!(
        "region: bench\nlog_format: json\nchecks:\n  - name: healthy\n    type: http\n    target: {}\n    every: 1s\n  - name: endless-body\n    type: http\n    target: {}\n    every: 1s\n    timeout: 900ms\n",
        server.url("/ok"),
        server.url("/large-chunked/1000000000000")
    );
    let config = dir.join("agent-memory.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (mut child, base) = start_agent(args, &config).await;
    println!("agent memory: a healthy check and an endless-body check, every 1s each, for {secs}s");
    println!(
        "  {:>6}  {:>8}  {:>8}  {:>12}",
        "t (s)", "RSS MB", "peak MB", "body errors"
    );
    let start = Instant::now();
    let mut at_60 = None;
    let mut t = 0;
    while t < secs {
        t = (t + 30).min(secs);
        tokio::time::sleep_until((start + Duration::from_secs(t)).into()).await;
        let rss = status_mb(child.id(), "VmRSS:");
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body_errors = sum(&m, "synthetic_request_failure_total", "endless-body");
        println!(
            "  {t:>6}  {rss:>8.1}  {:>8.1}  {body_errors:>12}",
            peak_rss_mb(child.id())
        );
        if t >= 60 && at_60.is_none() {
            at_60 = Some(rss);
        }
    }
    let end = status_mb(child.id(), "VmRSS:");
    stop(&mut child);
    if let Some(a) = at_60 {
        println!(
            "  RSS at 60 s {a:.1} MB, at {secs} s {end:.1} MB: {:+.1}% (target: within 10%)",
            (end / a - 1.0) * 100.0
        );
    }
}

/// Runs of a plain HTTP `Probe` per second on one core against `url`: (runs, elapsed, failures).
fn probe_rate(url: &str) -> (usize, Duration, usize) {
    use vantage_agent::probe::{Probe, ProbeSpec};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&format!("target: {url}")).unwrap();
    let probe = Arc::new(Probe::new(&ProbeSpec::from_yaml("http", v).unwrap()).unwrap());
    let total = 5_000usize;
    let concurrency = 50usize;
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let probe = probe.clone();
            tasks.push(tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..total / concurrency {
                    if !probe.run().await.success() {
                        failed += 1;
                    }
                }
                failed
            }));
        }
        let mut failures = 0;
        for t in tasks {
            failures += t.await.unwrap();
        }
        (total, start.elapsed(), failures)
    })
}

/// `--serve-target http|grpc`: the target in a process of its own, so it does not share the bench's runtime;
/// prints its URL (gRPC: `host:port`) and serves until killed.
/// A bench check's type-specific keys (indented as a check's), for `--type`.
fn check_keys(args: &Args, target: &str) -> String {
    let insecure = "    tls: {insecure_skip_verify: true}\n";
    match args.check_type.as_str() {
        "https" => format!("    type: http\n    target: '{target}'\n{insecure}"),
        "http3" => format!(
            "    type: http\n    target: '{target}'\n    http_version: \"3\"\n    ip_version: ip4\n{insecure}"
        ),
        // ICMP checks ping the loopback address; the others probe the target process.
        t => format!("    type: {t}\n    target: '{}'\n", icmp_or(args, target)),
    }
}

/// What `--type icmp` checks ping instead of the target process: the loopback address.
fn icmp_or<'a>(args: &Args, target: &'a str) -> &'a str {
    if args.check_type == "icmp" {
        "127.0.0.1"
    } else {
        target
    }
}

/// The servers `--serve-target` keeps alive until it is killed.
#[allow(dead_code)]
enum Target {
    Http(TestServer),
    Https(TestServer, TestPki),
    Http3(H3Server, TestPki),
    Grpc(GrpcHealthServer),
}

fn serve_target(check_type: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Kept alive until the process is killed.
        let _servers = match check_type {
            "grpc" => {
                let server = GrpcHealthServer::plaintext().await;
                println!("{}", server.target());
                Target::Grpc(server)
            }
            "https" => {
                let pki = TestPki::new();
                let server = TestServer::https(pki.valid_leaf().server_config()).await;
                println!("{}", server.url("/ok"));
                Target::Https(server, pki)
            }
            "http3" => {
                let pki = TestPki::new();
                let server = H3Server::start(&pki.valid_leaf()).await;
                println!("{}", server.url("/ok"));
                Target::Http3(server, pki)
            }
            _ => {
                let server = TestServer::http().await;
                println!("{}", server.url("/ok"));
                Target::Http(server)
            }
        };
        std::future::pending::<()>().await;
    });
}

/// Starts `--serve-target` and reads its URL.
fn start_target(check_type: &str) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve-target", check_type])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

fn main() {
    // Thousands of checks hold thousands of sockets in the target and in blackbox_exporter's driver.
    let limit = vantage_agent::app::raise_fd_limit().expect("raise RLIMIT_NOFILE");
    if std::env::args().nth(1).as_deref() == Some("--serve-target") {
        return serve_target(&std::env::args().nth(2).unwrap_or_default());
    }
    println!(
        "open file limit: {} (hard {}; was {})",
        limit.soft, limit.hard, limit.soft_before
    );
    tokio::runtime::Runtime::new().unwrap().block_on(bench());
}

async fn bench() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::http().await;
    if let Some(secs) = args.memory {
        bench_memory(&args, dir.path(), &server, secs).await;
        return;
    }
    if args.probe_rate {
        let url = server.url("/ok");
        let (total, elapsed, failures) = tokio::task::spawn_blocking(move || probe_rate(&url))
            .await
            .unwrap();
        let rate = total as f64 / elapsed.as_secs_f64();
        println!("http probe: {total} runs in {elapsed:.2?} on one core = {rate:.0} probes/s ({failures} failed)");
        return;
    }
    let (mut target_process, target) = start_target(&args.check_type);
    println!("agent benchmark: {} checks every {INTERVAL_SECS}s against {}, {}s measured per case, /metrics scraped every {SCRAPE_SECS}s (OpenMetrics, gzip)", args.check_type, icmp_or(&args, &target), args.secs);
    println!(
        "machine: {} CPUs; the target runs in its own process, the load driver and scraper in this one; metrics: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.metrics.as_deref().unwrap_or("agent default")
    );
    let empty = empty_agent_rss(&args, dir.path()).await;
    println!("empty agent (no checks): peak RSS {empty:.1} MB");
    for &n in &args.checks {
        let rate = n as f64 / INTERVAL_SECS as f64;
        println!("\n== {n} checks (expected {rate:.0} probes/s)");
        let a = bench_agent(&args, dir.path(), &target, n, None).await;
        println!(
            "  vantage-agent:     {:8.1} probes/s  {:6.3} CPU s/1000 probes  peak RSS {:6.1} MB  lateness p50 {:.2} ms p99 {:.2} ms  failures {}  skipped {}  startup {:.1}s",
            a.probes_per_sec, a.cpu_per_1000, a.rss_mb, a.p50_ms, a.p99_ms, a.failures, a.skipped, a.startup_secs
        );
        println!(
            "  memory: {:.2} KB per check over the empty agent  series: {:.1} per check  /metrics: {:.1} MB plain, {:.2} MB gzip; scrape {:.0} ms gzip (median), {:.0} ms plain",
            (a.rss_mb - empty) * 1024.0 / n as f64,
            a.series_per_check,
            a.plain_bytes as f64 / 1e6,
            a.gzip_bytes as f64 / 1e6,
            a.gzip_scrape_secs * 1000.0,
            a.plain_scrape_secs * 1000.0
        );
        if args.remote_write {
            let (url, samples) = start_receiver().await;
            let r = bench_agent(&args, dir.path(), &target, n, Some((&url, &samples))).await;
            println!(
                "  + remote_write:    {:8.1} probes/s  {:6.3} CPU s/1000 probes  peak RSS {:6.1} MB  lateness p50 {:.2} ms p99 {:.2} ms  failures {}  skipped {}  pushed {:.0} samples/s",
                r.probes_per_sec, r.cpu_per_1000, r.rss_mb, r.p50_ms, r.p99_ms, r.failures, r.skipped, r.pushed_per_sec
            );
            println!(
                "  CPU with remote_write / scrape only: {:.2}  RSS {:+.1} MB",
                r.cpu_per_1000 / a.cpu_per_1000,
                r.rss_mb - a.rss_mb
            );
        }
        if !args.blackbox {
            continue;
        }
        if let Some(b) = bench_blackbox(&args, dir.path(), &target, rate).await {
            println!(
                "  blackbox_exporter: {:8.1} probes/s  {:6.3} CPU s/1000 probes  peak RSS {:6.1} MB  failures {}  not sent (over {BLACKBOX_IN_FLIGHT} open) {}",
                b.probes_per_sec, b.cpu_per_1000, b.rss_mb, b.failures, b.missed
            );
            if b.probes_per_sec < rate * 0.95 {
                println!(
                    "  blackbox_exporter does NOT keep up on this machine: {:.0} of {rate:.0} probes/s",
                    b.probes_per_sec
                );
            }
            println!(
                "  CPU per probe, agent / blackbox_exporter: {:.2}",
                a.cpu_per_1000 / b.cpu_per_1000
            );
        }
    }
    stop(&mut target_process);
}
