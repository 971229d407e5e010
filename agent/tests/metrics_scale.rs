//! What lets one agent carry tens of thousands of checks, end to end against real local targets: `/metrics` served
//! gzip-compressed when asked (and still valid for promtool), `metrics: basic` in at most 10 series per HTTP
//! check, and a run that finds no file descriptor left counted as an agent error, not as the target being down
//! (the real binary under a low `RLIMIT_NOFILE`).

mod support;

use std::io::Read;
use std::time::Duration;
use support::{eventually, spawn_agent, write_config, AgentProcess};
use vantage_testkit::promtool::check_metrics as promtool_check;
use vantage_testkit::servers::TestServer;

/// `GET /metrics` with the given `Accept` and, when `gzip`, `Accept-Encoding: gzip`: (content type, whether the
/// body came compressed, the text).
async fn scrape(base: &str, accept: &str, gzip: bool) -> (String, bool, String) {
    // No transparent decompression: the test looks at what was on the wire.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut req = client
        .get(format!("{base}/metrics"))
        .header("accept", accept);
    if gzip {
        req = req.header("accept-encoding", "gzip, deflate");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let compressed = r
        .headers()
        .get("content-encoding")
        .map(|v| v == "gzip")
        .unwrap_or(false);
    let body = r.bytes().await.unwrap();
    let text = if compressed {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut s)
            .expect("a valid gzip stream");
        s
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    (content_type, compressed, text)
}

fn series_of<'a>(text: &'a str, check: &str) -> Vec<&'a str> {
    let needle = format!("endpoint=\"{check}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_gzip_and_basic_level_against_real_probes() {
    let target = TestServer::http().await;
    let yaml = format!(
        "region: test-1
metrics: basic
checks:
  - {{name: lean, type: http, target: '{ok}', every: 1s}}
  - {{name: lean-failing, type: http, target: '{bad}', every: 1s}}
  - {{name: rich, type: http, target: '{ok}', every: 1s, metrics: full}}
",
        ok = target.url("/ok"),
        bad = target.url("/status/503"),
    );
    let a = spawn_agent(&yaml).await;
    eventually(15, "a run of every check", || async {
        let (_, _, text) = scrape(&a.base, "*/*", false).await;
        ["lean", "lean-failing", "rich"]
            .iter()
            .all(|c| {
                text.contains(&format!(
                    "probe_success{{region=\"test-1\",endpoint=\"{c}\""
                ))
            })
            .then_some(())
    })
    .await;

    // What Prometheus sends: OpenMetrics, gzip.
    let (ct, gz, om) = scrape(
        &a.base,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        true,
    )
    .await;
    assert!(gz, "gzip asked for but not served");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.ends_with("# EOF\n"));
    // The classic format, gzip and plain: the same series, and promtool accepts it.
    let (ct, gz, classic) = scrape(&a.base, "text/plain", true).await;
    assert!(gz && ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let (ok, msg) = promtool_check(&classic);
    assert!(ok, "promtool check metrics: {msg}");
    let (_, gz, plain) = scrape(&a.base, "text/plain", false).await;
    assert!(!gz, "served gzip without being asked");
    assert!(plain.contains("# TYPE synthetic_request_success_total counter"));

    let lean = series_of(&classic, "lean");
    let failing = series_of(&classic, "lean-failing");
    let rich = series_of(&classic, "rich");
    assert!(
        lean.len() <= 10 && failing.len() <= 10,
        "{lean:#?}\n{failing:#?}"
    );
    assert!(
        failing
            .iter()
            .any(|l| l.starts_with("synthetic_request_failure_total{") && l.contains("http_status")),
        "{failing:#?}"
    );
    for l in [&lean, &failing] {
        assert!(l.iter().any(|s| s.starts_with("probe_success{")));
        assert!(l.iter().any(|s| s.contains("le=\"2.5\"")));
        assert!(!l
            .iter()
            .any(|s| s.starts_with("probe_http_duration_seconds{")));
    }
    // Full on the check that asks for it: the phases and the 14 default buckets.
    assert!(rich
        .iter()
        .any(|s| s.starts_with("probe_http_duration_seconds{") && s.contains("phase=\"connect\"")));
    assert!(rich.iter().any(|s| s.contains("le=\"60.0\"")));
    assert!(rich.len() > 20, "{rich:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_running_out_is_an_agent_error_not_a_target_failure() {
    // Every run holds its connection for 1 s: 400 checks every 4 s keep ~100 connections open at once on
    // average, well over the limit below whatever the machine's load, with 2 s to spare before the timeout.
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml =
        String::from("region: test-1\nlog_format: json\nmax_concurrency: 512\nchecks:\n");
    for i in 0..400 {
        yaml.push_str(&format!(
            "  - {{name: c{i}, type: http, target: '{}', every: 4s, timeout: 3s}}\n",
            target.url("/slow-headers/1000")
        ));
    }
    let config = write_config(dir.path(), &yaml);
    // Soft = hard = 64: the agent cannot raise it, and a few dozen sockets exhaust it.
    let mut agent = AgentProcess::spawn_with_fd_limit(&config, 64).await;
    let limit_line = agent
        .wait_for_log(10, "the open file limit", "open file limit")
        .await;
    assert!(
        limit_line.contains("\"soft\":64") && limit_line.contains("\"hard\":64"),
        "{limit_line}"
    );
    let base = agent.base.clone();
    // The agent's own server also runs short of descriptors now and then: retry the scrape.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let text = eventually(30, "fd_exhausted errors and successful runs", || {
        let client = client.clone();
        let base = base.clone();
        async move {
            let text = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let exhausted = text
                .lines()
                .find(|l| l.starts_with("vantage_agent_errors_total{reason=\"fd_exhausted\"}"))?
                .rsplit(' ')
                .next()?
                .parse::<f64>()
                .ok()?;
            let successes = text
                .lines()
                .filter(|l| l.starts_with("synthetic_request_success_total{"))
                .filter(|l| !l.ends_with(" 0"))
                .count();
            (exhausted > 0.0 && successes > 0).then_some(text)
        }
    })
    .await;
    // The target was never down: no run counted as failed, no check reports failure.
    assert!(
        !text.contains("synthetic_request_failure_total{"),
        "{}",
        text.lines()
            .filter(|l| l.starts_with("synthetic_request_failure_total{"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!text
        .lines()
        .any(|l| l.starts_with("probe_success{") && l.ends_with(" 0.0")));
    let logs = agent.stop();
    assert!(
        logs.contains("os error 24"),
        "the runs' warnings name the cause"
    );
    // The log line says whose fault it is (the agent's), not the check's error class.
    assert!(
        logs.lines()
            .any(|l| l.contains("agent error, not a check failure")
                && l.contains("\"reason\":\"fd_exhausted\"")),
        "no agent-error line with reason fd_exhausted"
    );
}
