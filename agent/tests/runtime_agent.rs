//! The running agent end to end with real probes against real local targets: /metrics (checked by promtool),
//! /api/v1/checks, /healthz, /readyz, secrets kept out of every answer, timeouts, retries, and reload.

mod support;

use std::time::Duration;
use support::{eventually, load_config, spawn_agent};
use vantage_agent::reload::Reloaded;
use vantage_testkit::promtool::check_metrics as promtool_check;
use vantage_testkit::servers::{TcpServer, TestServer};

const SECRET: &str = "tok-9f8e7d6c5b4a";

fn set_secret() {
    // Only this test binary reads it; the value is what must never show.
    std::env::set_var("RUNTIME_TEST_TOKEN", SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status_api_from_real_probes() {
    set_secret();
    let target = TestServer::http().await;
    let tcp = TcpServer::start(None).await;
    let yaml = format!(
        r#"region: test-1
labels: {{team: sre}}
checks:
  - name: web-ok
    type: http
    target: {ok}
    every: 1s
    labels: {{tier: "1"}}
  - name: web-500
    type: http
    target: {bad}
    every: 1s
    retries: 1
    headers: {{x-api-key: "${{RUNTIME_TEST_TOKEN}}"}}
    bearer_token: ${{RUNTIME_TEST_TOKEN}}
  - name: tcp-port
    type: tcp
    target: {tcp}
    every: 1s
  - name: off
    type: tcp
    target: 127.0.0.1:9
    every: 1s
    enabled: false
"#,
        ok = target.url("/ok"),
        bad = target
            .url(&format!("/status/500?key={SECRET}").replace(SECRET, "${RUNTIME_TEST_TOKEN}")),
        tcp = tcp.addr,
    );
    let a = spawn_agent(&yaml).await;
    assert_eq!(a.get("/healthz").await.0, 200);
    assert_eq!(a.get("/readyz").await.0, 200);
    assert_eq!(a.get("/nope").await.0, 404);

    // Wait until every enabled check has a result.
    eventually(15, "a result from every check", || async {
        let checks = a.checks().await;
        let all = checks["checks"].as_array().unwrap().clone();
        all.iter()
            .filter(|c| c["enabled"] == true)
            .all(|c| !c["last"].is_null())
            .then_some(())
    })
    .await;
    let ok = a.check("web-ok").await.unwrap();
    assert_eq!(ok["type"], "http");
    assert_eq!(ok["last"]["success"], true, "{ok}");
    assert_eq!(ok["last"]["http_status"], 200);
    assert_eq!(ok["labels"]["tier"], "1");
    assert_eq!(ok["labels"]["team"], "sre");
    assert!(ok["last"]["phases"]["connect"].as_f64().is_some(), "{ok}");
    assert!(ok["next_run"].as_str().is_some());
    let bad = a.check("web-500").await.unwrap();
    assert_eq!(bad["last"]["success"], false);
    assert_eq!(bad["last"]["error_type"], "http_status");
    assert_eq!(bad["last"]["attempts"], 2, "one retry: {bad}");
    assert_eq!(a.check("tcp-port").await.unwrap()["last"]["success"], true);
    let off = a.check("off").await.unwrap();
    assert_eq!(off["enabled"], false);
    assert!(off["last"].is_null());

    let (status, metrics) = a.get("/metrics").await;
    assert_eq!(status, 200);
    let ok_labels = r#"region="test-1",endpoint="web-ok",check_type="http",team="sre",tier="1""#;
    let bad_labels = r#"region="test-1",endpoint="web-500",check_type="http",team="sre""#;
    for expected in [
        format!("synthetic_request_success_total{{{ok_labels}}} "),
        format!("synthetic_request_duration_seconds_bucket{{le=\"0.005\",{ok_labels}}}"),
        format!("probe_success{{{ok_labels}}} 1.0"),
        format!("probe_http_status_code{{{ok_labels}}} 200.0"),
        format!("probe_http_duration_seconds{{{ok_labels},phase=\"processing\"}}"),
        format!("probe_http_content_length{{{ok_labels}}} 2.0"),
        format!("synthetic_request_failure_total{{{bad_labels},error_type=\"http_status\"}} "),
        format!("probe_success{{{bad_labels}}} 0.0"),
        format!("synthetic_probe_attempts{{{bad_labels}}} 2.0"),
        r#"probe_success{region="test-1",endpoint="tcp-port",check_type="tcp",team="sre"} 1.0"#
            .to_string(),
        "vantage_agent_checks_configured 3".to_string(),
        "vantage_agent_build_info{version=".to_string(),
        "vantage_agent_scheduler_lateness_seconds_count ".to_string(),
    ] {
        assert!(
            metrics.contains(&expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("endpoint=\"off\""));
    let (ok, msg) = promtool_check(&metrics);
    assert!(ok, "promtool check metrics failed: {msg}\n{metrics}");
    // Prometheus asks for OpenMetrics and gets it.
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", a.base))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let om = om.text().await.unwrap();
    assert!(
        om.ends_with("# EOF\n") && om.contains("# TYPE synthetic_request_success counter"),
        "{om}"
    );
    assert!(!om.contains(SECRET));

    // The secret went out in requests (header, token, query) but shows nowhere.
    let api = a.get("/api/v1/checks").await.1;
    assert!(
        !api.contains(SECRET) && !metrics.contains(SECRET),
        "secret leaked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_retries_with_real_targets() {
    let target = TestServer::http().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"region: t
checks:
  - name: hangs
    type: http
    target: {hang}
    every: 10s
    timeout: 1s
  - name: closed
    type: tcp
    target: {closed}
    every: 10s
    retries: 2
"#,
        hang = target.url("/hang"),
    );
    let a = spawn_agent(&yaml).await;
    let cfg = load_config(&a.config).await;
    let results = vantage_agent::app::once(&cfg, None).await.unwrap();
    let hang = &results[0].1;
    let e = hang.error.as_ref().unwrap();
    assert_eq!(e.error_type.as_str(), "timeout");
    assert_eq!(e.message, "no result within 1s");
    assert!(hang.duration >= Duration::from_millis(900), "{hang:?}");
    let closed = &results[1].1;
    assert_eq!(
        closed.error.as_ref().unwrap().error_type.as_str(),
        "connect"
    );
    assert_eq!(closed.attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_file_change_and_on_request() {
    let target = TestServer::http().await;
    let check = |name: &str, path: &str| {
        format!(
            "  - name: {name}\n    type: http\n    target: {}\n    every: 1s\n",
            target.url(path)
        )
    };
    let v1 = format!(
        "region: r\nchecks:\n{}{}",
        check("keep", "/ok"),
        check("drop", "/ok")
    );
    let a = spawn_agent(&v1).await;
    let first_run = eventually(10, "keep and drop ran", || async {
        let keep = a.check("keep").await?;
        a.check("drop").await?["last"].as_object()?;
        keep["last"]["started"].as_str().map(String::from)
    })
    .await;

    // A valid edit: drop removed, add added, keep unchanged (same state: its earlier results are retained).
    let keep_state = a.agent.scheduler.check("keep").unwrap();
    let v2 = format!(
        "region: r\nchecks:\n{}{}",
        check("keep", "/ok"),
        check("add", "/status/503")
    );
    std::fs::write(&a.config, &v2).unwrap();
    eventually(10, "the file change to apply", || async {
        a.check("add").await.map(|_| ())
    })
    .await;
    assert!(a.check("drop").await.is_none());
    assert!(std::sync::Arc::ptr_eq(
        &keep_state,
        &a.agent.scheduler.check("keep").unwrap()
    ));
    let metrics = eventually(10, "the added check's failure", || async {
        let m = a.get("/metrics").await.1;
        m.contains(r#"probe_success{region="r",endpoint="add",check_type="http"} 0.0"#)
            .then_some(m)
    })
    .await;
    assert!(
        !metrics.contains("endpoint=\"drop\""),
        "removed check's series remain"
    );
    assert!(
        metrics.contains(r#"vantage_agent_config_reloads_total{result="success"} 1"#),
        "{metrics}"
    );
    let _ = first_run;

    // An invalid edit is rejected; the running config stays.
    std::fs::write(&a.config, v2.replace("every: 1s", "every: often")).unwrap();
    eventually(10, "the failed reload to be counted", || async {
        let m = a.get("/metrics").await.1;
        m.contains(r#"vantage_agent_config_reloads_total{result="failure"} 1"#)
            .then_some(())
    })
    .await;
    assert!(a.check("add").await.is_some() && a.check("keep").await.is_some());
    let err = a.agent.reloader.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("agent.yaml:6:5: checks[0].every: invalid duration"),
        "{err}"
    );

    // The SIGHUP path (same call) with a valid config.
    std::fs::write(
        &a.config,
        format!("region: r\nchecks:\n{}", check("keep", "/ok")),
    )
    .unwrap();
    let Reloaded::Applied(applied) = a.agent.reloader.reload().await.unwrap() else {
        panic!("the changed file was not applied");
    };
    assert_eq!((applied.unchanged, applied.removed), (1, 1));
    assert!(a.check("add").await.is_none());
}
