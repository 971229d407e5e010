//! `vantage-agent blackbox` behind a real Prometheus, configured exactly as blackbox_exporter's README documents
//! (`metrics_path: /probe`, `params: {module: [...]}`, targets relabelled into `__param_target` and `instance`,
//! `__address__` replaced by the exporter's): Prometheus stores `probe_success{instance="<target>"}` for every
//! target, 1 for the ones that are up and 0 for the failing one, for an http_2xx job and a tcp_connect job.

use anyhow::{bail, ensure, Result};
use std::collections::BTreeMap;
use std::time::Duration;
use vantage_e2e::process::{free_port, workspace_binary, ChildProcess};
use vantage_e2e::stack::{query, start_prometheus_with, Service, READY_TIMEOUT};
use vantage_e2e::wait::until;
use vantage_testkit::servers::{TcpServer, TestServer};

/// The module file: blackbox_exporter's canonical `http_2xx` (no options) and a TCP connect.
const MODULES: &str = "modules:
  http_2xx:
    prober: http
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
";

/// `vantage-agent blackbox` on 127.0.0.1:0, the address read from its "blackbox exporter started" line.
async fn start_vantage_blackbox(dir: &std::path::Path) -> Result<Service> {
    let config = dir.join("blackbox.yml");
    std::fs::write(&config, MODULES)?;
    let args: Vec<String> = [
        "blackbox",
        "--config.file",
        &config.display().to_string(),
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "info",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut process = ChildProcess::spawn(
        "vantage-blackbox",
        &workspace_binary("vantage-agent")?,
        &args,
        &[],
        dir,
    )?;
    let addr = process
        .wait_for_log_field("blackbox exporter started", "listen", READY_TIMEOUT)
        .await?;
    let base = format!("http://{addr}");
    process
        .wait_ready(&format!("{base}/-/healthy"), READY_TIMEOUT)
        .await?;
    Ok(Service {
        process,
        base,
        addr,
    })
}

/// One scrape job as blackbox_exporter's README writes it, probing `targets` with `module` through `exporter`.
fn job(name: &str, module: &str, targets: &[String], exporter: &str) -> String {
    let list: String = targets
        .iter()
        .map(|t| format!("          - '{t}'\n"))
        .collect();
    format!(
        "  - job_name: {name}
    metrics_path: /probe
    params:
      module: [{module}]
    static_configs:
      - targets:
{list}    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: '{exporter}'
"
    )
}

/// `probe_success` by instance for `job`, as Prometheus stores it now.
async fn probe_success(prometheus: &str, job: &str) -> Result<BTreeMap<String, f64>> {
    Ok(
        query(prometheus, &format!("probe_success{{job=\"{job}\"}}"))
            .await?
            .into_iter()
            .map(|s| {
                (
                    s.labels.get("instance").cloned().unwrap_or_default(),
                    s.value,
                )
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_probe_success_per_target() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let http = TestServer::http().await;
    let tcp = TcpServer::start(None).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let vantage = start_vantage_blackbox(dir.path()).await?;

    // Two targets up, one answering 500 (not 2xx); a listening TCP port and a closed one.
    let http_expected: BTreeMap<String, f64> = [
        (http.url("/ok"), 1.0),
        (http.url("/json"), 1.0),
        (http.url("/status/500"), 0.0),
    ]
    .into_iter()
    .collect();
    let tcp_expected: BTreeMap<String, f64> = [
        (tcp.addr.to_string(), 1.0),
        (format!("127.0.0.1:{closed}"), 0.0),
    ]
    .into_iter()
    .collect();
    let keys = |m: &BTreeMap<String, f64>| m.keys().cloned().collect::<Vec<_>>();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("blackbox", "http_2xx", &keys(&http_expected), &vantage.addr),
        job(
            "blackbox_tcp",
            "tcp_connect",
            &keys(&tcp_expected),
            &vantage.addr
        ),
    );
    let port = free_port();
    let prometheus = start_prometheus_with(dir.path(), port, &config, &[]).await?;

    for (job, expected) in [
        ("blackbox", &http_expected),
        ("blackbox_tcp", &tcp_expected),
    ] {
        let last = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let result = until(
            &format!("Prometheus stores probe_success for every {job} target"),
            Duration::from_secs(60),
            || {
                let (prom, last) = (prometheus.base.clone(), last.clone());
                async move {
                    let got = probe_success(&prom, job).await?;
                    let done = &got == expected;
                    *last.lock().unwrap() = got;
                    Ok(done)
                }
            },
        )
        .await;
        if let Err(e) = result {
            let seen = last.lock().unwrap().clone();
            let targets = reqwest::get(format!("{}/api/v1/targets", prometheus.base))
                .await?
                .text()
                .await?;
            bail!(
                "{e}\n{job}: want probe_success {expected:?}, Prometheus has {seen:?}\ntargets: {targets}\n\
                 vantage log:\n{}",
                vantage.process.tail(40)
            );
        }
        // Every scrape of the exporter itself worked, the failing target's included.
        let up = query(&prometheus.base, &format!("up{{job=\"{job}\"}}")).await?;
        ensure!(
            up.len() == expected.len() && up.iter().all(|s| s.value == 1.0),
            "{job}: up {up:?}"
        );
    }
    Ok(())
}
