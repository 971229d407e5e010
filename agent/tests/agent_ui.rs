//! The agent page's server side against real targets: the history JSON, the page's HTML and headers, and run-now
//! (off by default, token auth, the concurrency limit, its own counter).

mod support;

use serde_json::Value;
use support::{eventually, spawn_agent, TestAgent};
use vantage_testkit::servers::TestServer;

/// A cron schedule that does not come due during a test (1 January), so only run-now runs the check.
const NEVER: &str = "schedule: '0 0 1 1 *'";
const TOKEN: &str = "ui-test-token-0123456789";

async fn post(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn history(agent: &TestAgent, name: &str) -> (u16, Value) {
    let (status, body) = agent.get(&format!("/api/v1/checks/{name}/history")).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The value of the first series line starting with `prefix` in the agent's /metrics (0 when absent).
async fn metric(agent: &TestAgent, prefix: &str) -> f64 {
    let text = agent.get("/metrics").await.1;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn history_json_and_pages_show_passing_and_failing_checks() {
    let target = TestServer::http().await;
    let yaml = format!(
        "region: test\nhistory: {{runs: 3}}\nchecks:\n\
  - {{name: up, type: http, target: '{}', every: 1s}}\n\
  - {{name: down, type: http, target: '{}', every: 1s}}\n\
  - {{name: off, type: http, target: '{}', every: 1s, enabled: false}}\n",
        target.url("/ok?api_key=qwerty-secret-value"),
        target.url("/status/503"),
        target.url("/ok"),
    );
    let agent = spawn_agent(&yaml).await;
    // Four runs each, so the ring (3) has turned over.
    let h = eventually(15, "four runs of each check", || async {
        let (_, up) = history(&agent, "up").await;
        let (_, down) = history(&agent, "down").await;
        let full = |h: &Value| h["runs"][0]["id"].as_u64().unwrap_or(0) >= 4;
        (full(&up) && full(&down)).then_some((up, down))
    })
    .await;
    let (up, down) = h;
    assert_eq!(up["check"], "up");
    assert_eq!(up["capacity"], 3);
    assert_eq!(up["kept"], 3);
    let runs = up["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    // Newest first, ids consecutive.
    let ids: Vec<u64> = runs.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids[0], ids[1] + 1);
    assert_eq!(ids[1], ids[2] + 1);
    let r = &runs[0];
    assert_eq!(r["success"], true);
    assert_eq!(r["manual"], false);
    assert_eq!(r["http_status"], 200);
    assert!(r["phases"]["connect"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["phases"]["processing"].as_f64().is_some(), "{r}");
    assert!(
        r["phases"].get("tls").is_none(),
        "plain HTTP has no tls phase: {r}"
    );
    assert_eq!(up["failing_since"], Value::Null);
    let d = &down["runs"][0];
    assert_eq!(d["success"], false);
    assert_eq!(d["error_type"], "http_status");
    assert!(d["message"].as_str().unwrap().contains("503"), "{d}");
    assert!(down["failing_since"].as_str().is_some(), "{down}");
    assert_eq!(down["successes"], 0);

    // Unknown and not-running checks.
    let (status, body) = history(&agent, "nope").await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (404, "no check named \"nope\"")
    );
    let (status, body) = history(&agent, "off").await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("does not run"),
        "{body}"
    );

    // The list: every check with its state, the target redacted, a strict CSP and no inline script or style.
    let r = reqwest::get(format!("{}/", agent.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    for want in [
        "data-check=\"up\"",
        "data-check=\"down\"",
        "data-state=\"passing\"",
        "data-state=\"failing\"",
        "data-state=\"disabled\"",
        "/ok?***",
        "src=\"/ui/app.js",
    ] {
        assert!(html.contains(want), "{want} missing in {html}");
    }
    assert!(!html.contains("qwerty-secret-value"));
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "inline code: {html}"
    );
    // The same redaction in the status API.
    let (_, checks) = agent.get("/api/v1/checks").await;
    assert!(checks.contains("/ok?***") && !checks.contains("qwerty-secret-value"));

    // A check's page: the selected run's waterfall; an older run by id.
    let (status, page) = agent.get("/checks/up").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-phase=\"connect\"") && page.contains("Waterfall"),
        "{page}"
    );
    let (_, page) = agent.get(&format!("/checks/down?run={}", ids[2])).await;
    assert!(
        page.contains("class=\"error\"><b>http_status</b>"),
        "{page}"
    );
    let (status, page) = agent.get("/checks/nope").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("No check named “nope”") && page.contains("href=\"/ui/app.css"),
        "{page}"
    );
    for asset in ["/ui/app.css", "/ui/app.js", "/ui/favicon.svg"] {
        assert_eq!(agent.get(asset).await.0, 200, "{asset}");
    }
}

#[tokio::test]
async fn the_list_is_bounded_and_filters_by_name() {
    let mut yaml = String::from("region: test\nchecks:\n");
    for i in 0..205 {
        yaml.push_str(&format!(
            "  - {{name: svc-{i:03}, type: tcp, target: '127.0.0.1:9', every: 1m, enabled: false}}\n"
        ));
    }
    let agent = spawn_agent(&yaml).await;
    let (status, html) = agent.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr class=\"row ").count(), 200);
    assert!(html.contains("Showing 200 of 205 checks"), "{html}");
    assert!(html.contains("<b>205</b> disabled"), "{html}");
    let (_, html) = agent.get("/?q=svc-20").await;
    let rows: Vec<&str> = html
        .match_indices("data-check=\"")
        .map(|(i, _)| &html[i + 12..i + 19])
        .collect();
    assert_eq!(
        rows,
        ["svc-200", "svc-201", "svc-202", "svc-203", "svc-204"]
    );
    assert!(html.contains("value=\"svc-20\""));
    let (_, html) = agent.get("/?q=%3Cb%3Enope").await;
    assert!(
        html.contains("No check name contains “&lt;b&gt;nope”"),
        "{html}"
    );
}

#[tokio::test]
async fn run_now_is_off_by_default() {
    let target = TestServer::http().await;
    let agent = spawn_agent(&format!(
        "region: test\nchecks:\n  - {{name: a, type: http, target: '{}', {NEVER}}}\n",
        target.url("/ok")
    ))
    .await;
    let (status, body) = post(&format!("{}/api/v1/checks/a/run", agent.base), None).await;
    assert_eq!(status, 403);
    assert!(
        body["error"].as_str().unwrap().contains("ui.allow_run_now"),
        "{body}"
    );
    assert_eq!(agent.get("/api/v1/checks/a/run").await.0, 405);
    let (_, h) = history(&agent, "a").await;
    assert_eq!(h["kept"], 0);
    // The page offers no button.
    assert!(!agent.get("/checks/a").await.1.contains("id=\"run-now\""));
}

#[tokio::test]
async fn run_now_needs_the_token_and_counts_apart() {
    let target = TestServer::http().await;
    let agent = spawn_agent(&format!(
        "region: test\nui: {{admin_token: {TOKEN}}}\nchecks:\n\
  - {{name: a, type: http, target: '{}', {NEVER}}}\n\
  - {{name: gone, type: http, target: '{}', {NEVER}, enabled: false}}\n",
        target.url("/ok"),
        target.url("/ok"),
    ))
    .await;
    let url = format!("{}/api/v1/checks/a/run", agent.base);
    let (status, body) = post(&url, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&url, Some("ui-test-token-0123456788")).await;
    assert_eq!(status, 401);
    let (status, _) = post(&url, Some("short")).await;
    assert_eq!(status, 401);
    assert!(agent
        .get("/checks/a")
        .await
        .1
        .contains("data-token=\"required\""));

    let scheduled = "synthetic_request_success_total{region=\"test\",endpoint=\"a\"";
    assert_eq!(metric(&agent, scheduled).await, 0.0);
    let (status, body) = post(&url, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["check"], "a");
    assert_eq!(body["run"]["success"], true);
    assert_eq!(body["run"]["manual"], true);
    assert_eq!(body["run"]["http_status"], 200);
    let (status, _) = post(&url, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let (_, h) = history(&agent, "a").await;
    assert_eq!(h["kept"], 2);
    assert!(h["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["manual"] == true));
    // Its own counter; the check's series (the rates alerts use) untouched.
    let own = "vantage_agent_run_now_total{endpoint=\"a\",result=\"success\"}";
    assert_eq!(metric(&agent, own).await, 2.0);
    assert_eq!(metric(&agent, scheduled).await, 0.0);
    assert_eq!(metric(&agent, "probe_success{").await, 0.0);

    let (status, _) = post(
        &format!("{}/api/v1/checks/gone/run", agent.base),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &format!("{}/api/v1/checks/nope/run", agent.base),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn run_now_waits_for_the_concurrency_limit_and_never_overlaps_itself() {
    let target = TestServer::http().await;
    let agent = spawn_agent(&format!(
        "region: test\nmax_concurrency: 1\nui: {{allow_run_now: true}}\nchecks:\n\
  - {{name: slow, type: http, target: '{}', {NEVER}}}\n\
  - {{name: fast, type: http, target: '{}', {NEVER}}}\n",
        target.url("/slow-headers/1500"),
        target.url("/ok"),
    ))
    .await;
    let base = agent.base.clone();
    let slow =
        tokio::spawn(async move { post(&format!("{base}/api/v1/checks/slow/run"), None).await });
    eventually(10, "the slow run to start", || async {
        let c = agent.check("slow").await?;
        (c["running"] == true).then_some(())
    })
    .await;
    // The same check again: refused at once rather than queued behind itself.
    let (status, body) = post(&format!("{}/api/v1/checks/slow/run", agent.base), None).await;
    assert_eq!(status, 409, "{body}");
    // Another check waits for the only slot.
    let (status, fast) = post(&format!("{}/api/v1/checks/fast/run", agent.base), None).await;
    assert_eq!(status, 200);
    let (status, slow) = slow.await.unwrap();
    assert_eq!(status, 200);
    let started = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["run"]["started"].as_str().unwrap()).unwrap()
    };
    let slow_end = started(&slow)
        + chrono::Duration::microseconds(
            (slow["run"]["duration_seconds"].as_f64().unwrap() * 1e6) as i64,
        );
    // Millisecond precision of `started` on both sides.
    assert!(
        started(&fast) + chrono::Duration::milliseconds(2) >= slow_end,
        "fast started {} before slow ended {slow_end}",
        started(&fast)
    );
}
