//! Remote write into a real Prometheus (`--web.enable-remote-write-receiver`), through a forwarder that can
//! inject faults: every series of a check, queried back through Prometheus's HTTP API at the time of a run,
//! equals what the agent's own `/metrics` showed for that run; a receiver answering 500 for 10 s loses nothing
//! (every run of a check every second is there, the failed batches retried unchanged); a 400 is not retried; an
//! endpoint that never answers overflows its own bounded queue without holding up the other; a check removed by
//! a reload ends at once.

use anyhow::{bail, ensure, Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vantage_agent::remote_write::samples::SeriesCache;
use vantage_e2e::process::free_port;
use vantage_e2e::servers::SwitchableTarget;
use vantage_e2e::stack::{query, query_at, start_agent_process, start_prometheus_with, Service};
use vantage_e2e::wait::until;
use vantage_testkit::fleet::FaultyForwarder;

const REGION: &str = "ap-south-1";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn get(url: &str) -> Result<String> {
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

/// The samples of one check in a text exposition (read by the agent's own reader): (name, labels) -> value.
fn check_samples(text: &str, check: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    SeriesCache::default()
        .parse(text, 0, &[])
        .expect("the agent's exposition parses")
        .into_iter()
        .filter(|s| s.series.get("endpoint").as_deref() == Some(check))
        .map(|s| {
            let mut labels: BTreeMap<String, String> = s.series.labels().into_iter().collect();
            let name = labels.remove("__name__").unwrap_or_default();
            ((name, labels), s.value)
        })
        .collect()
}

fn selector(name: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// A run of `check` the agent has finished and not yet followed by another: (its /metrics samples, the time the
/// run ended, Unix seconds).
async fn settled_run(
    agent: &Service,
    check: &str,
) -> Result<(BTreeMap<(String, BTreeMap<String, String>), f64>, f64)> {
    let last = |api: &serde_json::Value| -> Option<(String, f64, bool)> {
        let c = api["checks"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == check)?;
        Some((
            c["last"]["started"].as_str()?.to_string(),
            c["last"]["duration_seconds"].as_f64()?,
            c["running"].as_bool()?,
        ))
    };
    for _ in 0..50 {
        let before: serde_json::Value =
            serde_json::from_str(&get(&format!("{}/api/v1/checks", agent.base)).await?)?;
        let metrics = get(&format!("{}/metrics", agent.base)).await?;
        let after: serde_json::Value =
            serde_json::from_str(&get(&format!("{}/api/v1/checks", agent.base)).await?)?;
        if let (Some(a), Some(b)) = (last(&before), last(&after)) {
            if a == b && !a.2 {
                let started = chrono_like_parse(&a.0)?;
                return Ok((check_samples(&metrics, check), started + a.1));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no settled run of {check}")
}

/// RFC 3339 with milliseconds and `Z` (what the agent's API writes) -> Unix seconds.
fn chrono_like_parse(s: &str) -> Result<f64> {
    let t = humantime::parse_rfc3339(s).with_context(|| format!("time {s:?}"))?;
    Ok(t.duration_since(UNIX_EPOCH)?.as_secs_f64())
}

async fn agent_metric(agent: &Service, prefix: &str) -> Result<f64> {
    let text = get(&format!("{}/metrics", agent.base)).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_series_equal_the_agents_own_and_survive_receiver_faults() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = SwitchableTarget::start().await?;
    let prom_port = free_port();
    let prometheus = start_prometheus_with(
        dir.path(),
        prom_port,
        "global: {scrape_interval: 1m}\n",
        &["--web.enable-remote-write-receiver"],
    )
    .await?;
    let prom = prometheus.base.clone();
    let forwarder = FaultyForwarder::start(prometheus.addr.parse()?).await;
    let config = format!(
        r#"region: ${{VANTAGE_REGION}}
remote_write:
  - url: {write}
    name: central
    refresh_interval: 1s
    queue: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}
  - url: http://127.0.0.1:1/api/v1/write
    name: down
    queue: {{capacity: 1000, max_samples_per_send: 100, batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}
checks:
  - name: rw-exact
    type: http
    target: {target}
    every: 5s
  - name: rw-steady
    type: http
    target: {target}
    every: 1s
"#,
        write = forwarder.url("/api/v1/write"),
        target = target.url("/ok"),
    );
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, config)?;
    let agent = start_agent_process(
        dir.path(),
        "agent-push",
        path.to_str().context("path")?,
        &[("VANTAGE_REGION", REGION)],
        &[],
    )
    .await?;

    // 1. What Prometheus holds at the time of a run is what /metrics showed for it, series by series.
    until(
        "pushed series in Prometheus",
        Duration::from_secs(60),
        || async {
            Ok(!query(&prom, "probe_success{endpoint=\"rw-exact\"}")
                .await?
                .is_empty())
        },
    )
    .await?;
    let (samples, ended) = settled_run(&agent, "rw-exact").await?;
    ensure!(samples.len() > 20, "few samples: {samples:?}");
    until(
        "Prometheus to have the settled run",
        Duration::from_secs(30),
        || async {
            let r = query_at(
                &prom,
                "probe_duration_seconds{endpoint=\"rw-exact\"}",
                ended + 0.5,
            )
            .await?;
            Ok(r.len() == 1)
        },
    )
    .await?;
    for ((name, labels), value) in &samples {
        assert_eq!(labels.get("region").map(String::as_str), Some(REGION));
        let got = query_at(&prom, &selector(name, labels), ended + 0.5).await?;
        ensure!(got.len() == 1, "{name}{labels:?}: {got:?}");
        ensure!(
            got[0].value == *value,
            "{name}{labels:?}: Prometheus has {} where /metrics showed {value}",
            got[0].value
        );
        ensure!(
            got[0].labels.len() == labels.len() + 1,
            "extra labels on {:?}",
            got[0].labels
        );
    }
    // The agent's own metrics arrive too, with its region.
    ensure!(
        !query(
            &prom,
            &format!("vantage_agent_build_info{{region=\"{REGION}\"}}")
        )
        .await?
        .is_empty(),
        "no self-metrics"
    );

    // 2. The receiver fails with 500 for 10 s, then recovers: nothing is lost. The 1 s check must have run
    // a few times first, so that the window below starts on one of its samples: a counter's first sample
    // is 1, not 0, and a window opening before it counts one run less.
    let steady = "synthetic_request_success_total{region=\"ap-south-1\",endpoint=\"rw-steady\"";
    until(
        "a few runs of the 1 s check",
        Duration::from_secs(30),
        || async { Ok(agent_metric(&agent, steady).await? >= 3.0) },
    )
    .await?;
    let count_at_start = agent_metric(&agent, steady).await?;
    let fault_start = now();
    forwarder.fault(Some(500));
    tokio::time::sleep(Duration::from_secs(10)).await;
    forwarder.fault(None);
    let fault_end = now();
    let count_at_end = agent_metric(&agent, steady).await?;
    // The runs the agent made while the receiver failed (fewer than one a second on a loaded machine).
    let runs_in_fault = count_at_end - count_at_start;
    ensure!(
        runs_in_fault >= 5.0,
        "only {runs_in_fault} runs of a 1 s check in 10 s"
    );
    until(
        "Prometheus to catch up",
        Duration::from_secs(60),
        || async {
            let r = query(
                &prom,
                "synthetic_request_success_total{endpoint=\"rw-steady\"}",
            )
            .await?;
            Ok(r.first().is_some_and(|s| s.value >= count_at_end))
        },
    )
    .await?;
    let window = (fault_end - fault_start + 4.0).ceil() as u64;
    let at = fault_end + 2.0;
    let sel = "synthetic_request_success_total{endpoint=\"rw-steady\"}";
    let spread = query_at(
        &prom,
        &format!("max_over_time({sel}[{window}s]) - min_over_time({sel}[{window}s])"),
        at,
    )
    .await?;
    let changes = query_at(&prom, &format!("changes({sel}[{window}s])"), at).await?;
    let (spread, changes) = (spread[0].value, changes[0].value);
    // The window holds every run made during the fault, and a few around it.
    ensure!(
        spread >= runs_in_fault,
        "the counter rose by {spread} in the {window}s window around the fault; the agent ran {runs_in_fault} times during it"
    );
    ensure!(
        spread == changes,
        "runs lost during the outage: the counter rose by {spread} but only {changes} of its samples arrived"
    );
    let bodies = forwarder.bodies();
    let failed: Vec<&bytes::Bytes> = bodies
        .iter()
        .filter(|(_, s)| *s == 500)
        .map(|(b, _)| b)
        .collect();
    ensure!(failed.len() >= 3, "only {} requests failed", failed.len());
    ensure!(
        bodies.iter().any(|(b, s)| *s == 204 && b == failed[0]),
        "the first failed batch was never sent again"
    );
    ensure!(
        agent_metric(
            &agent,
            "vantage_agent_remote_write_samples_dropped_total{remote=\"central\"}"
        )
        .await?
            == 0.0
    );
    // The endpoint that never answers overflowed its own queue without holding up the other.
    ensure!(
        agent_metric(
            &agent,
            "vantage_agent_remote_write_samples_dropped_total{remote=\"down\"}"
        )
        .await?
            > 0.0
    );

    // 3. A 400 is final: each refused batch is sent once, counted as failed.
    let before = forwarder.bodies().len();
    forwarder.fault(Some(400));
    tokio::time::sleep(Duration::from_secs(3)).await;
    forwarder.fault(None);
    let refused: Vec<bytes::Bytes> = forwarder.bodies()[before..]
        .iter()
        .filter(|(_, s)| *s == 400)
        .map(|(b, _)| b.clone())
        .collect();
    ensure!(refused.len() >= 2, "{} refused", refused.len());
    let distinct: HashSet<&bytes::Bytes> = refused.iter().collect();
    ensure!(
        distinct.len() == refused.len(),
        "a refused batch was retried"
    );
    until("refused samples counted", Duration::from_secs(10), || async {
        Ok(agent_metric(
            &agent,
            "vantage_agent_remote_write_samples_failed_total{remote=\"central\",reason=\"http_4xx\"}",
        )
        .await?
            > 0.0)
    })
    .await?;
    // 4. A check removed by a reload ends at once (a staleness marker), not after Prometheus's 5-minute lookback.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)?.replace("  - name: rw-exact\n", "  - name: rw-renamed\n"),
    )?;
    until(
        "the removed check's series to end",
        Duration::from_secs(30),
        || async {
            Ok(query(&prom, "probe_success{endpoint=\"rw-exact\"}")
                .await?
                .is_empty()
                && !query(&prom, "probe_success{endpoint=\"rw-renamed\"}")
                    .await?
                    .is_empty())
        },
    )
    .await?;
    let mut agent = agent;
    agent.process.ensure_running()?;
    let log = agent.process.output();
    ensure!(
        failures_logged_at_most_every_10s(&log)?,
        "failures logged too often:\n{log}"
    );
    ensure!(log.contains("remote write recovered"), "{log}");
    Ok(())
}

/// Whether each remote's "failing" lines within one failure (until its "recovered" line) are at least the
/// sender's 10 s apart. Read from the log's own timestamps, so a slow run (more 10 s periods) is no excuse
/// and no false alarm.
fn failures_logged_at_most_every_10s(log: &str) -> anyhow::Result<bool> {
    let mut last: std::collections::HashMap<String, std::time::SystemTime> = Default::default();
    let mut failing_lines = 0;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let (Some(message), Some(remote), Some(at)) = (
            v["message"].as_str(),
            v["remote"].as_str(),
            v["timestamp"].as_str(),
        ) else {
            continue;
        };
        let at = humantime::parse_rfc3339(at)?;
        if message.starts_with("remote write recovered") {
            last.remove(remote);
        } else if message.starts_with("remote write failing") {
            failing_lines += 1;
            if let Some(prev) = last.insert(remote.to_string(), at) {
                if at.duration_since(prev).unwrap_or_default() < Duration::from_millis(9_900) {
                    return Ok(false);
                }
            }
        }
    }
    ensure!(failing_lines > 0, "no failure was logged at all:\n{log}");
    Ok(true)
}
