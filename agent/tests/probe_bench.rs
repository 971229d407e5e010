//! Throughput of a plain HTTP `Probe` on one core (a single-threaded runtime; the target runs on its own
//! thread). Ignored by default; run with
//! `cargo test -p vantage-agent --release --test probe_bench -- --ignored --nocapture`.

use std::time::Instant;
use vantage_agent::probe::{Probe, ProbeSpec};

#[test]
#[ignore]
fn http_probe_runs_per_second_on_one_core() {
    // The target on its own runtime and thread, so the probe's core is the measured one.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let srv = vantage_testkit::servers::TestServer::http().await;
            tx.send(srv.url("/ok")).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&format!("target: {url}")).unwrap();
    let probe = std::sync::Arc::new(Probe::new(&ProbeSpec::from_yaml("http", v).unwrap()).unwrap());
    let total = 5_000usize;
    let concurrency = 50usize;
    let (elapsed, failures) = rt.block_on(async {
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
        (start.elapsed(), failures)
    });
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("http probe: {total} runs in {elapsed:.2?} on one core = {rate:.0} probes/s ({failures} failed)");
    assert_eq!(failures, 0);
}
