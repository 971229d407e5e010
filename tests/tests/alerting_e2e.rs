//! Alerting end to end, with real processes only: two `vantage-agent`s (regions eu-west-1 and us-east-1) probe a
//! local HTTP target; the `vantage-ingest` server runs beside them; a real Prometheus scrapes them with
//! `config/prometheus/prometheus.yml` (local targets, 1s intervals) and evaluates the real rule files with their
//! durations scaled by 1/60 (`vantage_e2e::monitoring::scale_durations`: `for: 2m` -> `2s`, `[5m]` -> `[5s]`);
//! a real Alertmanager with `config/alertmanager/alertmanager.yml` (receivers pointed at a webhook served here)
//! notifies. Taking the target down must page with SyntheticCheckFailingMultiRegion for the check and both
//! regions; bringing it back must resolve it.

use anyhow::{ensure, Context, Result};
use std::time::{Duration, Instant};
use vantage_e2e::monitoring::{
    local_alertmanager_config, local_prometheus_config, rule_files, scale_durations, LocalTargets,
};
use vantage_e2e::process::{free_port, workspace_root};
use vantage_e2e::servers::{SwitchableTarget, WebhookSink};
use vantage_e2e::stack::{
    prometheus_alerts, query, start_agent, start_alertmanager, start_ingest, start_prometheus,
    Service,
};

const CHECK: &str = "e2e-target";
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
/// Generous bounds for a loaded 2-core machine; the scaled rules need about 10 s each way.
const FIRE_WITHIN: Duration = Duration::from_secs(120);
const RESOLVE_WITHIN: Duration = Duration::from_secs(120);
const SCALE: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_pages_with_check_and_regions_then_resolves() -> Result<()> {
    let root = workspace_root();
    let dir = tempfile::tempdir()?;
    let mut target = SwitchableTarget::start().await?;
    let webhook = WebhookSink::start().await?;

    // The Vantage processes.
    let mut agents: Vec<Service> = Vec::new();
    for region in REGIONS {
        agents.push(start_agent(dir.path(), region, &[(CHECK, target.url("/health"))], "").await?);
    }
    let ingest = start_ingest(&root, dir.path()).await?;

    // Alertmanager with the real routes and inhibitions, every receiver -> our webhook.
    let alertmanager = start_alertmanager(
        dir.path(),
        &local_alertmanager_config(&root, &webhook.url())?,
    )
    .await?;

    // Prometheus with the real rules, durations scaled down.
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    let mut scaled = Vec::new();
    for file in rule_files(&root)? {
        let text = std::fs::read_to_string(&file)?;
        let out = rules_dir.join(file.file_name().context("rule file name")?);
        std::fs::write(&out, scale_durations(&text, SCALE)?)?;
        scaled.push(out);
    }
    let prom_port = free_port();
    let jobs = [
        (
            "vantage-agent",
            agents.iter().map(|a| a.addr.clone()).collect(),
        ),
        ("vantage-ingest", vec![ingest.addr.clone()]),
        ("prometheus", vec![format!("127.0.0.1:{prom_port}")]),
    ];
    let config = local_prometheus_config(
        &root,
        &LocalTargets {
            jobs: &jobs,
            alertmanager: alertmanager.addr.clone(),
            rule_files: scaled,
            interval: "1s",
        },
    )?;
    let mut prometheus = start_prometheus(dir.path(), prom_port, &config).await?;
    let prom = prometheus.base.clone();

    // Baseline: every target up, and the check's failure ratio known (0) in both regions.
    let ratio =
        format!("region_endpoint:synthetic_request_failure:ratio_rate5m{{endpoint=\"{CHECK}\"}}");
    wait_until(
        "all targets up and the check healthy in both regions",
        Duration::from_secs(90),
        || async {
            let up = query(&prom, "up").await?;
            let healthy = query(&prom, &ratio).await?;
            Ok(up.len() == jobs.iter().map(|j| j.1.len()).sum::<usize>()
                && up.iter().all(|s| s.value == 1.0)
                && healthy.len() == 2
                && healthy.iter().all(|s| s.value == 0.0))
        },
    )
    .await
    .with_context(|| diagnostics(&mut prometheus, &agents))?;
    ensure!(
        webhook.notifications().is_empty(),
        "notified while healthy: {:#?}",
        webhook.notifications()
    );

    // Outage: the target's port closes; both regions fail.
    target.stop().await;
    let down_at = Instant::now();
    let fired = webhook
        .wait_for(
            "SyntheticCheckFailingMultiRegion firing",
            FIRE_WITHIN,
            |a| {
                a.is(
                    "SyntheticCheckFailingMultiRegion",
                    "firing",
                    &[("endpoint", CHECK)],
                )
            },
        )
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;
    println!(
        "SyntheticCheckFailingMultiRegion notified {:?} after the target went down",
        down_at.elapsed()
    );
    assert_eq!(
        fired.labels.get("severity").map(String::as_str),
        Some("critical")
    );
    assert_eq!(
        fired.labels.get("check_type").map(String::as_str),
        Some("http")
    );
    assert_eq!(
        fired.annotations.get("regions").map(String::as_str),
        Some("eu-west-1,us-east-1")
    );
    assert!(fired
        .annotations
        .get("runbook")
        .is_some_and(|r| r == "docs/runbooks.md#syntheticcheckfailingmultiregion"));
    // The per-region alert fires in Prometheus for each region (Alertmanager inhibits its notification).
    let alerts = prometheus_alerts(&prom).await?;
    for region in REGIONS {
        ensure!(
            alerts
                .iter()
                .any(|(name, state, l)| name == "SyntheticCheckFailing"
                    && state == "firing"
                    && l.get("region").map(String::as_str) == Some(region)
                    && l.get("endpoint").map(String::as_str) == Some(CHECK)),
            "SyntheticCheckFailing not firing for {region}: {alerts:#?}"
        );
    }

    // Recovery: the target listens again on the same port; the alert resolves.
    target.restart().await?;
    let up_at = Instant::now();
    webhook
        .wait_for(
            "SyntheticCheckFailingMultiRegion resolved",
            RESOLVE_WITHIN,
            |a| {
                a.is(
                    "SyntheticCheckFailingMultiRegion",
                    "resolved",
                    &[("endpoint", CHECK)],
                )
            },
        )
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;
    println!(
        "SyntheticCheckFailingMultiRegion resolved {:?} after the target came back",
        up_at.elapsed()
    );

    // Nothing in the stack broke along the way.
    for a in &mut agents {
        a.process.ensure_running()?;
    }
    let mut ingest = ingest;
    ingest.process.ensure_running()?;
    prometheus.process.ensure_running()?;
    Ok(())
}

/// Polls `cond` every 500 ms until it holds or `timeout` passes.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, cond: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match cond().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what}: not reached within {timeout:?} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn diagnostics(prometheus: &mut Service, agents: &[Service]) -> String {
    let mut s = format!("prometheus log:\n{}\n", prometheus.process.tail(20));
    for a in agents {
        s.push_str(&format!(
            "{} log:\n{}\n",
            a.process.name,
            a.process.tail(10)
        ));
    }
    s
}
