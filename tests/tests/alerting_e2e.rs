//! A fleet of regional agents end to end, as deployed, with real processes only. Three `vantage-agent`s whose
//! region comes only from the environment (eu-west-1, us-east-1, ap-south-1) load one config from a URL served
//! here (with a bearer token). Two are scraped by a real Prometheus (`config/prometheus/prometheus.yml`, local
//! targets, 1s intervals); the third is behind "NAT" and pushes by remote write (the config's `remote_write` entry
//! is for `regions: [ap-south-1]`). Prometheus evaluates the real rule files with their durations scaled by 1/60
//! (`vantage_e2e::monitoring::scale_durations`: `for: 2m` -> `2s`, `[5m]` -> `[5s]`); a real Alertmanager with
//! `config/alertmanager/alertmanager.yml` (receivers pointed at a webhook served here) notifies.
//!
//! - A fault only one region sees (the check probes `/health/${VANTAGE_REGION}` and only us-east-1's path fails)
//!   fires the single-region warning, never the multi-region page; healing resolves it.
//! - The target failing for everyone pages with SyntheticCheckFailingMultiRegion naming the three regions; the
//!   per-region alert fires in Prometheus for each; healing resolves it.
//! - A check with `regions: [eu-*]` runs (and has series) in eu-west-1 only.
//!
//! The rules are loaded once Prometheus has its targets, as in production where Prometheus runs long before an
//! agent starts: loaded at once, `absent(up{job="vantage-agent"})` is true for the few seconds Prometheus takes to
//! discover its targets (its discovery sends the first targets after up to 5 s), which is as long as
//! VantageAgentAbsent's scaled `for: 5m`, and it sometimes notified while everything was healthy.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use vantage_e2e::monitoring::{
    local_alertmanager_config, local_prometheus_config, rule_files, scale_durations, LocalTargets,
};
use vantage_e2e::process::{free_port, workspace_root};
use vantage_e2e::servers::{FaultyPaths, WebhookSink};
use vantage_e2e::stack::{
    prometheus_alerts, query, start_agent_process, start_alertmanager, start_ingest,
    start_prometheus_with, Service,
};
use vantage_e2e::wait::until;
use vantage_testkit::fleet::ConfigServer;

const CHECK: &str = "fleet-api";
const EU_ONLY: &str = "fleet-eu-only";
/// The first two are scraped, the last one pushes.
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const TOKEN: &str = "fleet-config-token-1e9";
/// Generous bounds for a loaded 2-core machine; the scaled rules need about 10 s each way.
const FIRE_WITHIN: Duration = Duration::from_secs(120);
const RESOLVE_WITHIN: Duration = Duration::from_secs(120);
const SCALE: u64 = 60;

/// The one config every agent loads from the URL.
fn fleet_config(target: &FaultyPaths, prometheus_port: u16) -> String {
    format!(
        r#"region: ${{VANTAGE_REGION}}
log_format: json
remote_write:
  - url: http://127.0.0.1:{prometheus_port}/api/v1/write
    name: central
    regions: [ap-south-1]
    refresh_interval: 1s
    queue: {{batch_send_deadline: 250ms, min_backoff: 50ms, max_backoff: 1s}}
checks:
  - name: {CHECK}
    type: http
    target: {health}/${{VANTAGE_REGION}}
    every: 1s
    timeout: 800ms
  - name: {EU_ONLY}
    type: http
    target: {eu}
    every: 1s
    timeout: 800ms
    regions: [eu-*]
"#,
        health = target.url("/health"),
        eu = target.url("/eu"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_tells_one_region_from_all_and_resolves() -> Result<()> {
    let root = workspace_root();
    let dir = tempfile::tempdir()?;
    let target = FaultyPaths::start().await?;
    let webhook = WebhookSink::start().await?;
    let prom_port = free_port();
    let config_server = ConfigServer::start(&fleet_config(&target, prom_port), Some(TOKEN)).await;

    // The agents: region and token from the environment only, config from the URL.
    let mut agents: Vec<Service> = Vec::new();
    for region in REGIONS {
        agents.push(
            start_agent_process(
                dir.path(),
                &format!("agent-{region}"),
                &config_server.url("/fleet/agent.yaml"),
                &[("VANTAGE_REGION", region), ("VANTAGE_CONFIG_TOKEN", TOKEN)],
                &["--config-poll", "1s"],
            )
            .await?,
        );
    }
    let ingest = start_ingest(&root, dir.path()).await?;
    let alertmanager = start_alertmanager(
        dir.path(),
        &local_alertmanager_config(&root, &webhook.url())?,
    )
    .await?;

    // Prometheus scrapes two agents and receives the third's pushes; the rules come once it has its targets.
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    let jobs = [
        (
            "vantage-agent",
            agents[..2].iter().map(|a| a.addr.clone()).collect(),
        ),
        ("vantage-ingest", vec![ingest.addr.clone()]),
        ("prometheus", vec![format!("127.0.0.1:{prom_port}")]),
    ];
    let config = local_prometheus_config(
        &root,
        &LocalTargets {
            jobs: &jobs,
            alertmanager: alertmanager.addr.clone(),
            rule_files: vec![rules_dir.join("*.yml")],
            interval: "1s",
        },
    )?;
    let mut prometheus = start_prometheus_with(
        dir.path(),
        prom_port,
        &config,
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ],
    )
    .await?;
    let prom = prometheus.base.clone();
    until(
        "every target scraped and the pushing agent's series in",
        Duration::from_secs(90),
        || async {
            let up = query(&prom, "up").await?;
            let pushed = query(&prom, "probe_success{region=\"ap-south-1\"}").await?;
            Ok(up.len() == jobs.iter().map(|j| j.1.len()).sum::<usize>()
                && up.iter().all(|s| s.value == 1.0)
                && !pushed.is_empty())
        },
    )
    .await
    .with_context(|| diagnostics(&mut prometheus, &agents))?;
    for file in rule_files(&root)? {
        let text = std::fs::read_to_string(&file)?;
        let out = rules_dir.join(file.file_name().context("rule file name")?);
        std::fs::write(&out, scale_durations(&text, SCALE)?)?;
    }
    reqwest::Client::new()
        .post(format!("{prom}/-/reload"))
        .send()
        .await?
        .error_for_status()?;

    // Baseline: the check healthy in all three regions; the eu-only check in eu-west-1 only; nothing notified.
    let ratio =
        format!("region_endpoint:synthetic_request_failure:ratio_rate5m{{endpoint=\"{CHECK}\"}}");
    until(
        "the check healthy in all three regions",
        Duration::from_secs(90),
        || async {
            let healthy = query(&prom, &ratio).await?;
            let regions: BTreeSet<String> = healthy
                .iter()
                .filter_map(|s| s.labels.get("region").cloned())
                .collect();
            Ok(regions == REGIONS.iter().map(|r| r.to_string()).collect()
                && healthy.iter().all(|s| s.value == 0.0))
        },
    )
    .await
    .with_context(|| diagnostics(&mut prometheus, &agents))?;
    let eu_only: BTreeSet<String> = query(
        &prom,
        &format!("synthetic_request_success_total{{endpoint=\"{EU_ONLY}\"}}"),
    )
    .await?
    .iter()
    .filter_map(|s| s.labels.get("region").cloned())
    .collect();
    ensure!(
        eu_only == BTreeSet::from(["eu-west-1".to_string()]),
        "{EU_ONLY} series from {eu_only:?}"
    );
    ensure!(
        webhook.notifications().is_empty(),
        "notified while healthy: {:#?}",
        webhook.notifications()
    );

    // 1. A fault only us-east-1 sees: the single-region warning, never the page.
    target.fail("/health/us-east-1");
    let down_at = Instant::now();
    let warned = webhook
        .wait_for("SyntheticCheckFailing for us-east-1", FIRE_WITHIN, |a| {
            a.is(
                "SyntheticCheckFailing",
                "firing",
                &[("endpoint", CHECK), ("region", "us-east-1")],
            )
        })
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;
    println!(
        "SyntheticCheckFailing (us-east-1) notified {:?} after the fault",
        down_at.elapsed()
    );
    ensure!(warned.labels.get("severity").map(String::as_str) == Some("warning"));
    // Long enough for the page to fire, had two regions crossed the threshold.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let paged = |status: &'static str| {
        move |a: &vantage_e2e::servers::NotifiedAlert| {
            a.is(
                "SyntheticCheckFailingMultiRegion",
                status,
                &[("endpoint", CHECK)],
            )
        }
    };
    ensure!(
        !webhook
            .notifications()
            .iter()
            .flat_map(|n| n.alerts.iter())
            .any(paged("firing")),
        "a one-region fault paged: {:#?}",
        webhook.notifications()
    );
    ensure!(
        !prometheus_alerts(&prom)
            .await?
            .iter()
            .any(|(name, _, _)| name == "SyntheticCheckFailingMultiRegion"),
        "the multi-region alert is pending or firing for a one-region fault"
    );
    target.heal();
    webhook
        .wait_for(
            "SyntheticCheckFailing for us-east-1 resolved",
            RESOLVE_WITHIN,
            |a| {
                a.is(
                    "SyntheticCheckFailing",
                    "resolved",
                    &[("endpoint", CHECK), ("region", "us-east-1")],
                )
            },
        )
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;

    // 2. The target fails for everyone: the page names the three regions, scraped and pushed alike.
    target.fail("/health/");
    let down_at = Instant::now();
    let fired = webhook
        .wait_for(
            "SyntheticCheckFailingMultiRegion firing",
            FIRE_WITHIN,
            paged("firing"),
        )
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;
    println!(
        "SyntheticCheckFailingMultiRegion notified {:?} after the target went down",
        down_at.elapsed()
    );
    ensure!(fired.labels.get("severity").map(String::as_str) == Some("critical"));
    ensure!(fired.labels.get("check_type").map(String::as_str) == Some("http"));
    ensure!(
        fired.annotations.get("regions").map(String::as_str)
            == Some("ap-south-1,eu-west-1,us-east-1"),
        "{fired:#?}"
    );
    ensure!(fired
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
    target.heal();
    let up_at = Instant::now();
    webhook
        .wait_for(
            "SyntheticCheckFailingMultiRegion resolved",
            RESOLVE_WITHIN,
            paged("resolved"),
        )
        .await
        .with_context(|| diagnostics(&mut prometheus, &agents))?;
    println!(
        "SyntheticCheckFailingMultiRegion resolved {:?} after the target came back",
        up_at.elapsed()
    );

    // Nothing about the fleet itself (agents, remote write, config) fired: only the check's own alerts, its SLO
    // burn included (at 1/60 scale the outages above burn a real share of its error budget).
    let unexpected: Vec<String> = webhook
        .notifications()
        .iter()
        .flat_map(|n| n.alerts.iter())
        .filter(|a| a.status == "firing")
        .filter(|a| a.labels.get("endpoint").map(String::as_str) != Some(CHECK))
        .filter_map(|a| a.labels.get("alertname").cloned())
        .collect();
    ensure!(
        unexpected.is_empty(),
        "unexpected alerts notified: {unexpected:?}"
    );
    for a in &mut agents {
        a.process.ensure_running()?;
        ensure!(
            !a.process.output().contains(TOKEN),
            "{} logged the config token",
            a.process.name
        );
    }
    let mut ingest = ingest;
    ingest.process.ensure_running()?;
    prometheus.process.ensure_running()?;
    Ok(())
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
