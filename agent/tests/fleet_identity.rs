//! Secrets by field, identity verbatim, as a fleet deploys the agent (the real binary, everything from the
//! environment): a credential in a header and one in a workflow variable never reach /metrics, the status API or
//! the logs, even when a response quotes them back; the region and a label that come from the environment appear
//! as they are everywhere, even where the label's value is part of a check's name, and `promtool check metrics`
//! accepts the exposition.

mod support;

use support::{eventually, get, write_config, AgentProcess};
use vantage_testkit::servers::TestServer;

const REGION: &str = "eu-west-1";
const TEAM: &str = "api";
const HEADER_SECRET: &str = "hdr-5ecret-0b3f";
const VARIABLE_SECRET: &str = "var-5ecret-77aa";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stay_out_identity_stays_whole() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    // /echo answers with the request's headers and body, so failures quote the credentials back.
    let config = format!(
        r#"region: ${{VANTAGE_REGION}}
labels: {{team: "${{TEAM}}"}}
log_format: json
checks:
  - name: api-health
    type: http
    target: {echo}
    every: 1s
    headers: {{X-Api-Key: "${{HEADER_SECRET}}"}}
    assert: [{{body_contains: "never there"}}]
  - name: api-journey
    type: api_workflow
    every: 1s
    timeout: 900ms
    variables: {{base: "{base}", api_key: "${{VARIABLE_SECRET}}"}}
    steps:
      - name: call
        timeout: 800ms
        method: POST
        url: "{{{{base}}}}/echo"
        json: {{key: "{{{{api_key}}}}"}}
        assert: [{{body_contains: "never there"}}]
"#,
        echo = target.url("/echo"),
        base = target.url(""),
    );
    let path = write_config(dir.path(), &config);
    let mut agent = AgentProcess::spawn_with_env(
        &path,
        &[
            ("VANTAGE_REGION", REGION),
            ("TEAM", TEAM),
            ("HEADER_SECRET", HEADER_SECRET),
            ("VARIABLE_SECRET", VARIABLE_SECRET),
        ],
    )
    .await;
    let base = agent.base.clone();
    for check in ["api-health", "api-journey"] {
        agent
            .wait_for_log(30, "a failure log line", &format!("\"check\":\"{check}\""))
            .await;
    }
    let metrics = eventually(20, "both checks' failures in /metrics", || async {
        let (_, m) = get(&format!("{base}/metrics")).await;
        (m.contains("endpoint=\"api-health\"") && m.contains("endpoint=\"api-journey\""))
            .then_some(m)
    })
    .await;
    let (_, api) = get(&format!("{base}/api/v1/checks")).await;
    let logs = agent.stop();

    // The failures quote the response (which echoes the credentials), redacted.
    assert!(logs.contains("expected body to contain"), "{logs}");
    assert!(logs.contains("***"), "{logs}");
    for (what, text) in [("metrics", &metrics), ("api", &api), ("logs", &logs)] {
        for secret in [HEADER_SECRET, VARIABLE_SECRET] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
    // Identity is whole, wherever it came from.
    let labels =
        format!("region=\"{REGION}\",endpoint=\"api-health\",check_type=\"http\",team=\"{TEAM}\"");
    assert!(
        metrics.contains(&format!(
            "synthetic_request_failure_total{{{labels},error_type=\"assertion\"}}"
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("***"), "{metrics}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["region"], REGION);
    let names: Vec<&str> = api["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api-health", "api-journey"]);
    assert_eq!(api["checks"][0]["labels"]["team"], TEAM);
    assert!(logs.contains(&format!("\"region\":\"{REGION}\"")), "{logs}");
    assert!(logs.contains("\"check\":\"api-health\""), "{logs}");
    let (ok, msg) = vantage_testkit::promtool::check_metrics(&metrics);
    assert!(ok, "promtool check metrics: {msg}");
}
