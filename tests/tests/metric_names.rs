//! No rule or dashboard panel points at a metric that does not exist: every metric name referenced by
//! `config/prometheus/rules/*.yml` and `config/grafana/dashboards/*.json` must appear in the real `/metrics` of a
//! running agent (HTTP, HTTPS, workflow, gRPC and ICMP checks, passing and failing) or ingest (after a batch with every
//! event type and an invalid one). Names defined by recording rules and Prometheus's own series (`up`, `ALERTS`) are
//! exempt. The label names they select or group by must exist on those series too. Also: every dashboard query is
//! valid PromQL for a real Prometheus.

use anyhow::{ensure, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use vantage_e2e::exposition::{sample_labels, sample_names};
use vantage_e2e::monitoring::{
    dashboard_files, load_dashboard_exprs, load_rules, rule_files, Expr,
};
use vantage_e2e::process::{free_port, workspace_root};
use vantage_e2e::promql::{label_uses, metric_names};
use vantage_e2e::stack::{query, start_agent, start_ingest, start_prometheus, SHOP_KEY};
use vantage_testkit::grpc::GrpcHealthServer;
use vantage_testkit::servers::TestServer;
use vantage_testkit::tls::TestPki;

/// Series Prometheus makes itself.
const PROMETHEUS_OWN: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE"];

/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// Every expression of the rules and dashboards, and the names defined by recording rules.
fn expressions() -> Result<(Vec<Expr>, BTreeSet<String>)> {
    let root = workspace_root();
    let rules = load_rules(&rule_files(&root)?)?;
    let mut exprs: Vec<Expr> = rules.exprs.clone();
    exprs.extend(load_dashboard_exprs(&dashboard_files(&root)?)?);
    Ok((exprs, rules.recorded))
}

/// Referenced metric name -> where it is used.
fn referenced() -> Result<BTreeMap<String, Vec<String>>> {
    let (exprs, recorded) = expressions()?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &exprs {
        for name in metric_names(&e.expr) {
            if recorded.contains(&name) || PROMETHEUS_OWN.contains(&name.as_str()) {
                continue;
            }
            out.entry(name).or_default().push(e.origin.clone());
        }
    }
    Ok(out)
}

/// Label names used by the expressions that the exposed series do not have: in a selector, the label must exist on
/// that metric; in a `by (...)`/`on (...)` list of an expression over raw metrics only, on one of them.
fn unknown_labels(labels: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>> {
    let (exprs, recorded) = expressions()?;
    let mut bad = Vec::new();
    for e in &exprs {
        let names = metric_names(&e.expr);
        let derived = names
            .iter()
            .any(|n| recorded.contains(n) || PROMETHEUS_OWN.contains(&n.as_str()));
        let mut available: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for n in &names {
            available.extend(labels.get(n).into_iter().flatten().map(String::as_str));
        }
        for (metric, label) in label_uses(&e.expr) {
            let ok = match &metric {
                Some(m) if recorded.contains(m) || PROMETHEUS_OWN.contains(&m.as_str()) => true,
                Some(m) => {
                    TARGET_LABELS.contains(&label.as_str())
                        || labels.get(m).is_some_and(|l| l.contains(&label))
                }
                None => derived || available.contains(label.as_str()),
            };
            if !ok {
                bad.push(format!(
                    "label {label} of {} (used by {})",
                    metric.as_deref().unwrap_or("the result"),
                    e.origin
                ));
            }
        }
    }
    bad.sort();
    bad.dedup();
    Ok(bad)
}

fn workflow_check(base: &str) -> String {
    format!(
        r#"  - name: e2e-workflow
    type: workflow
    every: 1s
    timeout: 800ms
    steps:
      - name: read
        timeout: 400ms
        method: GET
        url: "{base}/json"
        assert: [{{json: "$.name", equals: "vantage"}}]
      - name: verify
        timeout: 400ms
        method: GET
        url: "{base}/json"
        assert: [{{json: "$.name", equals: "something-else"}}]
"#
    )
}

fn tls_check(url: &str, ca_file: &str) -> String {
    format!(
        "  - name: e2e-https\n    type: http\n    target: {url}\n    every: 1s\n    timeout: 800ms\n    tls: {{ca_file: '{ca_file}'}}\n"
    )
}

fn grpc_check(target: &str) -> String {
    format!("  - name: e2e-grpc\n    type: grpc\n    target: '{target}'\n    every: 1s\n    timeout: 800ms\n")
}

/// ICMP to 127.0.0.1 (the test runs as root: raw sockets), for the `probe_icmp_*` families.
fn icmp_check() -> &'static str {
    "  - name: e2e-icmp\n    type: icmp\n    target: 127.0.0.1\n    every: 1s\n    timeout: 800ms\n    packets: 2\n    packet_interval: 10ms\n    reply_timeout: 300ms\n"
}

/// A batch with every event type the ingest knows, one event with an unknown type (rejected) among them.
fn every_event_type() -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let page = serde_json::json!({"url": "https://shop.example.com/products/123", "referrer": ""});
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    let base = |t: &str| serde_json::json!({"type": t, "session_id": "e2e-1", "timestamp": now, "user_agent": ua, "page": page});
    let with = |t: &str, extra: serde_json::Value| {
        let mut e = base(t);
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let mut events = vec![
        with(
            "page_load",
            serde_json::json!({"metrics": {"dns_lookup": 12, "tcp_connection": 20, "tls_negotiation": 15,
            "ttfb": 120, "content_download": 30, "dom_processing": 200, "dom_complete": 450, "onload": 480, "total": 520}}),
        ),
        with(
            "api_call",
            serde_json::json!({"api": {"method": "GET", "endpoint": "https://api.shop.example.com/users/42/cart", "duration": 85, "status": 200}}),
        ),
        with(
            "api_call",
            serde_json::json!({"api": {"method": "POST", "endpoint": "https://api.shop.example.com/orders", "duration": 300, "status": 503}}),
        ),
        with(
            "resource_load",
            serde_json::json!({"resource": {"name": "https://cdn.example.com/app.js", "type": "script", "duration": 40, "size": 12000}}),
        ),
        with(
            "long_task",
            serde_json::json!({"duration": 120, "attribution": [{"name": "self"}]}),
        ),
        with(
            "user_interaction",
            serde_json::json!({"interaction": {"action": "click", "target": "button#buy", "duration": 16}}),
        ),
        with(
            "error",
            serde_json::json!({"error": {"message": "TypeError: cart is undefined", "stack": "at render (app.js:10:5)"}}),
        ),
        with("route_change", serde_json::json!({"duration": 35})),
        with(
            "custom",
            serde_json::json!({"name": "add_to_cart", "props": {"sku": "A-1", "qty": 2}}),
        ),
        with("no_such_type", serde_json::json!({})),
    ];
    for (name, value) in [
        ("LCP", 1830.0),
        ("INP", 120.0),
        ("CLS", 0.05),
        ("FCP", 900.0),
        ("TTFB", 200.0),
    ] {
        events.push(with(
            "web_vital",
            serde_json::json!({"name": name, "value": value, "rating": "good"}),
        ));
    }
    // What the SDK lost before sending (rum_sdk_dropped_events_total), as it reports it with a batch.
    serde_json::json!({ "events": events, "dropped": {"queue": 2, "retry": 1} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_used_by_rules_and_dashboards_exists() -> Result<()> {
    let root = workspace_root();
    let refs = referenced()?;
    ensure!(
        refs.len() > 20,
        "suspiciously few metric names found: {refs:?}"
    );
    let dir = tempfile::tempdir()?;

    // Agent: a passing check, a failing one, HTTPS (certificate, TLS version), a workflow with a failing step, a
    // gRPC health check and ICMP.
    let http = TestServer::http().await;
    let grpc = GrpcHealthServer::plaintext().await;
    let pki = TestPki::new();
    let https = TestServer::https(pki.valid_leaf().server_config()).await;
    // Remote write to a receiver that accepts everything, so the remote-write series exist.
    let extra = format!(
        "{}{}{}{}remote_write:\n  - url: {}\n    refresh_interval: 1s\n    queue: {{batch_send_deadline: 200ms}}\n",
        tls_check(
            &https.localhost_url("/ok"),
            &pki.ca_file.display().to_string()
        ),
        workflow_check(&http.url("")),
        grpc_check(&grpc.target()),
        icmp_check(),
        http.url("/ok"),
    );
    let checks = [
        ("e2e-ok", http.url("/ok")),
        ("e2e-failing", http.url("/status/500")),
    ];
    let mut agent = start_agent(dir.path(), "eu-west-1", &checks, &extra).await?;

    // Ingest: one batch with every event type (and an invalid event).
    let mut ingest = start_ingest(&root, dir.path()).await?;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events", ingest.base))
        .header("X-API-Key", SHOP_KEY)
        .json(&every_event_type())
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    ensure!(status.as_u16() == 202, "ingest answered {status}: {body}");

    // Poll both /metrics until every referenced name shows up (runs need a few seconds) or time runs out.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut labels = BTreeMap::new();
    let missing = loop {
        agent.process.ensure_running()?;
        ingest.process.ensure_running()?;
        let mut names = BTreeSet::new();
        labels.clear();
        for base in [&agent.base, &ingest.base] {
            let text = client
                .get(format!("{base}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            names.extend(sample_names(&text));
            labels.extend(sample_labels(&text));
        }
        let missing: Vec<(&String, &Vec<String>)> =
            refs.iter().filter(|(n, _)| !names.contains(*n)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing
                .iter()
                .map(|(n, used)| format!("{n} (used by {})", used.join("; ")))
                .collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(
        missing.is_empty(),
        "metrics referenced but not exposed by agent or ingest:\n  {}",
        missing.join("\n  ")
    );
    let bad = unknown_labels(&labels)?;
    ensure!(
        bad.is_empty(),
        "labels referenced but not on the exposed series:\n  {}",
        bad.join("\n  ")
    );
    Ok(())
}

/// Grafana variables replaced by values a plain Prometheus query accepts.
fn without_grafana_variables(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("$__rate_interval", "1m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
    ] {
        e = e.replace(var, value);
    }
    regex::Regex::new(r"\$[A-Za-z_]+")
        .unwrap()
        .replace_all(&e, ".*")
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_is_valid_promql() -> Result<()> {
    let root = workspace_root();
    let exprs = load_dashboard_exprs(&dashboard_files(&root)?)?;
    ensure!(
        exprs.len() > 20,
        "suspiciously few dashboard queries: {}",
        exprs.len()
    );
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = "global: {scrape_interval: 1s}\nscrape_configs: []\n";
    let prometheus = start_prometheus(dir.path(), port, config).await?;
    let mut bad = Vec::new();
    for e in &exprs {
        let q = without_grafana_variables(&e.expr);
        if let Err(err) = query(&prometheus.base, &q).await {
            bad.push(format!("{}: {err}", e.origin));
        }
    }
    ensure!(
        bad.is_empty(),
        "invalid dashboard queries:\n  {}",
        bad.join("\n  ")
    );
    Ok(())
}
