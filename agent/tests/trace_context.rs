//! Trace context on every probe request, seen from a real target that records request headers: a valid W3C
//! `traceparent` (fresh trace per run, one trace across a workflow's steps and redirects, a span per request), the
//! `User-Agent` naming the check, both turned off or overridden per check; and the run's trace id where people
//! look: the failure log line, the status API, the OpenMetrics exemplar (accepted by promtool in both formats),
//! `once --format json|junit`.

mod support;

use std::collections::HashSet;
use support::{run_bin, write_config, AgentProcess};
use vantage_agent::probe::workflow::{Workflow, WorkflowSpec};
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::trace::CheckIdentity;
use vantage_testkit::promtool;
use vantage_testkit::servers::{RecordedRequest, TestServer};

const ID: CheckIdentity<'static> = CheckIdentity {
    check: "api-health",
    region: "eu",
};

fn probe(yaml: &str) -> Probe {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    Probe::for_check(&ProbeSpec::from_yaml("http", v).unwrap(), ID).unwrap()
}

/// `traceparent` split into (trace id, span id), after checking its W3C shape: version 00, 32 and 16 lower-case
/// hex digits, neither all zero, flags 01 (sampled).
fn traceparent(r: &RecordedRequest) -> (String, String) {
    let v = r
        .header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent on {}: {:?}", r.path, r.headers));
    let parts: Vec<&str> = v.split('-').collect();
    assert_eq!(parts.len(), 4, "{v}");
    assert_eq!(parts[0], "00", "{v}");
    assert_eq!(parts[3], "01", "{v}");
    for (part, len) in [(parts[1], 32), (parts[2], 16)] {
        assert_eq!(part.len(), len, "{v}");
        assert!(
            part.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{v}"
        );
        assert!(part.chars().any(|c| c != '0'), "all-zero id in {v}");
    }
    (parts[1].to_string(), parts[2].to_string())
}

fn ua() -> String {
    format!(
        "Vantage/{} (+check=api-health; region=eu)",
        env!("CARGO_PKG_VERSION")
    )
}

#[tokio::test]
async fn every_request_of_a_run_carries_its_trace_and_a_span_of_its_own() {
    let target = TestServer::http().await;
    // Two redirects: three requests in one run.
    let p = probe(&format!("target: {}", target.url("/redirect/2")));
    let first = p.run().await;
    assert!(first.success(), "{first:?}");
    let second = p.run().await;
    let reqs = target.requests();
    assert_eq!(reqs.len(), 6, "{reqs:?}");
    let ids: Vec<(String, String)> = reqs.iter().map(traceparent).collect();
    let run1 = first
        .trace_id
        .expect("a traced run reports its trace")
        .to_hex();
    let run2 = second.trace_id.unwrap().to_hex();
    assert_ne!(run1, run2, "a fresh trace per run");
    assert!(ids[..3].iter().all(|(t, _)| *t == run1), "{ids:?}");
    assert!(ids[3..].iter().all(|(t, _)| *t == run2), "{ids:?}");
    let spans: HashSet<&String> = ids.iter().map(|(_, s)| s).collect();
    assert_eq!(spans.len(), 6, "a fresh span per request: {ids:?}");
    for r in &reqs {
        assert_eq!(r.header("user-agent"), Some(ua().as_str()), "{}", r.path);
    }
}

#[tokio::test]
async fn trace_context_and_user_agent_turn_off_or_give_way_to_headers() {
    let target = TestServer::http().await;
    let url = target.url("/ok");

    let off = probe(&format!(
        "{{target: {url}, trace_context: false, user_agent: false}}"
    ))
    .run()
    .await;
    assert!(off.success());
    assert_eq!(off.trace_id, None);
    let custom = probe(&format!("{{target: {url}, user_agent: \"synthetics/7\"}}"))
        .run()
        .await;
    assert!(custom.trace_id.is_some());
    let own = probe(&format!(
        "{{target: {url}, headers: {{user-agent: mine/1, traceparent: \
         00-11111111111111111111111111111111-2222222222222222-00}}}}"
    ))
    .run()
    .await;
    // The agent did not choose the trace, so it reports none.
    assert_eq!(own.trace_id, None);

    let reqs = target.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].header("traceparent"), None);
    assert_eq!(reqs[0].header("user-agent"), None);
    assert_eq!(reqs[1].header("user-agent"), Some("synthetics/7"));
    assert_eq!(traceparent(&reqs[1]).0, custom.trace_id.unwrap().to_hex());
    assert_eq!(reqs[2].header("user-agent"), Some("mine/1"));
    assert_eq!(
        reqs[2].header("traceparent"),
        Some("00-11111111111111111111111111111111-2222222222222222-00")
    );
    assert_eq!(reqs[2].headers.get_all("traceparent").iter().count(), 1);

    // A User-Agent that cannot be a header is a config error naming the field.
    let v: serde_norway::Value =
        serde_norway::from_str(&format!("{{target: {url}, user_agent: \"caf\u{e9}\"}}")).unwrap();
    let err = Probe::for_check(&ProbeSpec::from_yaml("http", v).unwrap(), ID)
        .err()
        .expect("a bad user_agent is refused");
    assert_eq!(err.field, "user_agent", "{err}");
}

fn workflow(yaml: &str) -> Workflow {
    let spec = WorkflowSpec::from_yaml(serde_norway::from_str(yaml).unwrap()).unwrap();
    Workflow::for_check(&spec, ID).unwrap()
}

#[tokio::test]
async fn a_workflow_run_is_one_trace_with_a_span_per_step_request() {
    let target = TestServer::http().await;
    let base = target.url("/");
    let yaml = format!(
        "steps:\n  - {{name: one, url: \"{base}json\"}}\n  - {{name: two, url: \"{base}ok\"}}\n  \
         - {{name: three, url: \"{base}ok\", headers: {{traceparent: \
         00-33333333333333333333333333333333-4444444444444444-01}}}}\n"
    );
    let run = workflow(&yaml).run().await;
    assert!(run.success(), "{run:?}");
    let again = workflow(&yaml).run().await;
    let reqs = target.requests();
    assert_eq!(reqs.len(), 6);
    let trace = run.trace_id.unwrap().to_hex();
    let (t1, s1) = traceparent(&reqs[0]);
    let (t2, s2) = traceparent(&reqs[1]);
    assert_eq!((t1.as_str(), t2.as_str()), (trace.as_str(), trace.as_str()));
    assert_ne!(s1, s2, "a span per step request");
    // A step's own traceparent wins for that step.
    assert_eq!(traceparent(&reqs[2]).0, "33333333333333333333333333333333");
    assert_eq!(traceparent(&reqs[3]).0, again.trace_id.unwrap().to_hex());
    assert_ne!(run.trace_id, again.trace_id);
    assert!(reqs
        .iter()
        .all(|r| r.header("user-agent") == Some(ua().as_str())));

    let quiet = workflow(&format!(
        "trace_context: false\nuser_agent: false\nsteps:\n  - {{name: one, url: \"{base}ok\"}}\n"
    ))
    .run()
    .await;
    assert_eq!(quiet.trace_id, None);
    let last = target.requests().pop().unwrap();
    assert_eq!(last.header("traceparent"), None);
    assert_eq!(last.header("user-agent"), None);
}

/// The exemplar of check `name` in an OpenMetrics scrape: (trace id, the bucket line).
fn exemplar<'a>(metrics: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let line = metrics.lines().find(|l| {
        l.starts_with("synthetic_request_duration_seconds_bucket{")
            && l.contains(&format!("endpoint=\"{name}\""))
            && l.contains(" # {")
    })?;
    let id = line.split("trace_id=\"").nth(1)?.split('"').next()?;
    Some((id, line))
}

async fn scrape(base: &str, accept: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_runs_trace_is_in_its_log_line_the_status_api_and_the_exemplar() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "region: eu\nchecks:\n  - name: api-health\n    type: http\n    target: {}\n    every: 2s\n",
            target.url("/status/503")
        ),
    );
    let mut agent = AgentProcess::spawn(&config, ("UNUSED", "")).await;

    // The exemplar names the last recorded run, whose failure was logged just after it was recorded.
    let (ct, metrics) = support::eventually(20, "an exemplar in /metrics", || {
        let base = agent.base.clone();
        async move {
            let (ct, m) = scrape(&base, "application/openmetrics-text;version=1.0.0").await;
            exemplar(&m, "api-health").is_some().then_some((ct, m))
        }
    })
    .await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let (trace, line) = exemplar(&metrics, "api-health").unwrap();
    let logged = agent
        .wait_for_log(10, "the failure log line of the exemplar's run", trace)
        .await;
    let log: serde_json::Value = serde_json::from_str(&logged).unwrap();
    let fields = log.get("fields").unwrap_or(&log);
    assert_eq!(fields["trace_id"], trace, "{logged}");
    assert_eq!(fields["error_type"], "http_status", "{logged}");
    assert!(line.contains("# {trace_id=\""), "{line}");

    // The target saw that trace.
    assert!(target.requests().iter().any(|r| traceparent(r).0 == trace));
    assert!(target
        .requests()
        .iter()
        .all(|r| r.header("user-agent") == Some(ua().as_str())));

    // The status API's last result carries the trace of the last run (which one was logged).
    let checks: serde_json::Value = serde_json::from_str(
        &support::get(&format!("{}/api/v1/checks", agent.base))
            .await
            .1,
    )
    .unwrap();
    let last_trace = checks["checks"][0]["last"]["trace_id"]
        .as_str()
        .expect("trace_id in the last result")
        .to_string();
    agent
        .wait_for_log(10, "the status API's trace in a log line", &last_trace)
        .await;

    // Both formats pass promtool with the exemplar present; only OpenMetrics has exemplars.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (ok, msg) = promtool::check_openmetrics(&metrics, now);
    assert!(ok, "promtool (OpenMetrics): {msg}\n{metrics}");
    let (ct, classic) = scrape(&agent.base, "text/plain;version=0.0.4").await;
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(!classic.contains(" # {"), "{classic}");
    let (ok, msg) = promtool::check_metrics(&classic);
    assert!(ok, "promtool (classic): {msg}");
    // A broken exemplar would be caught: the check is not a formality.
    let broken = metrics.replacen("# {trace_id=", "# {trace id=", 1);
    assert!(!promtool::check_openmetrics(&broken, now).0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_json_and_junit_carry_the_trace_id() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "region: eu\nchecks:\n  - {{name: down, type: http, target: \"{}\", every: 10s}}\n  \
             - {{name: untraced, type: http, target: \"{}\", every: 10s, trace_context: false}}\n",
            target.url("/status/500"),
            target.url("/ok")
        ),
    );
    let once = |format: &'static str| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            run_bin(&["once", "-c", &path, "--format", format], ("UNUSED", ""))
        })
    };
    let (code, json, stderr) = once("json").await.unwrap();
    assert_eq!(code, 1, "{json}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let by_name = |n: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    let trace = by_name("down")["trace_id"].as_str().unwrap().to_string();
    assert_eq!(by_name("untraced")["trace_id"], serde_json::Value::Null);
    let reqs = target.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let down = reqs.iter().find(|r| r.path == "/status/500").unwrap();
    assert_eq!(traceparent(down).0, trace);
    let untraced = reqs.iter().find(|r| r.path == "/ok").unwrap();
    assert_eq!(untraced.header("traceparent"), None);

    let (code, xml, _) = once("junit").await.unwrap();
    assert_eq!(code, 1);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("down"))
        .unwrap();
    let property = case
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("trace_id"))
        .expect("a trace_id property");
    let junit_trace = property.attribute("value").unwrap();
    assert_eq!(junit_trace.len(), 32);
    let out = case
        .descendants()
        .find(|n| n.has_tag_name("system-out"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(out.contains(&format!("trace_id: {junit_trace}")), "{out}");
    assert!(target
        .requests()
        .iter()
        .any(|r| r.headers.contains_key("traceparent") && traceparent(r).0 == junit_trace));

    let (_, table, _) = once("table").await.unwrap();
    let row = table.lines().find(|l| l.starts_with("down")).unwrap();
    assert!(row.contains("[trace_id="), "{row}");
}
