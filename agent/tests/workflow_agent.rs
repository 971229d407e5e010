//! Workflows through the whole agent: `check-config` static errors, `vantage-agent once` printing each step with
//! phases and extracted variable names, and a running agent's /metrics, /api/v1/checks and failure log line
//! naming the failing step, with the password (from the environment) and the extracted token kept out of all.

mod support;

use support::{eventually, get, run_bin, write_config as write, AgentProcess};
use vantage_testkit::demo_api::{self, DemoApi, DemoApiConfig};
use vantage_testkit::promtool::check_metrics as promtool_check;

const PASSWORD: &str = "wf-agent-pw-93c1";
const ENV: &str = "WORKFLOW_TEST_PASSWORD";

fn api() -> DemoApi {
    demo_api::spawn(DemoApiConfig {
        password: PASSWORD.into(),
        ..Default::default()
    })
}

/// The journey from the issue, against `base`, with the password from the environment.
fn config(base: &str) -> String {
    format!(
        r#"region: test-1
checks:
  - name: journey
    type: api_workflow
    every: 2s
    timeout: 1900ms
    variables: {{base: "{base}", password: "${{{ENV}}}"}}
    steps:
      - name: login
        timeout: 400ms
        method: POST
        url: "{{{{base}}}}/auth/token"
        json: {{username: synthetic, password: "{{{{password}}}}"}}
        extract: {{token: "$.access_token"}}
      - name: create
        timeout: 400ms
        method: POST
        url: "{{{{base}}}}/v1/assignments"
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
        json: {{title: "synthetic {{{{uuid}}}}", assignee: "probe@example.com"}}
        expect_status: [201]
        extract: {{id: "$.id", title: "$.title"}}
      - name: read
        timeout: 400ms
        method: GET
        url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
        assert: [{{json: "$.title", equals: "{{{{title}}}}"}}]
    teardown:
      - name: delete
        timeout: 400ms
        method: DELETE
        url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
"#
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_bin(args, (ENV, PASSWORD))
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "password in {what}: {text}");
    assert!(!text.contains("eyJ"), "a token in {what}: {text}");
}

#[test]
fn check_config_reports_workflow_errors_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = config("http://127.0.0.1:9");
    let cases = [
        (
            good.replace(
                "assignments/{{id}}\"\n        headers",
                "assignments/{{ident}}\"\n        headers",
            ),
            "checks[0].steps[2].url: unknown variable `{{ident}}`",
        ),
        (
            good.replace("$.access_token", "$.access_token[?"),
            "checks[0].steps[0].extract.token: bad JSON path",
        ),
        (
            good.replace("\"{{title}}\"}]", "\"{{title}\"}]"),
            "checks[0].steps[2].assert[0]: unclosed `{{`",
        ),
        (
            good.replace("      - name: read\n        timeout: 400ms\n", "      - name: read\n        timeout: 1s\n"),
            "checks[0].timeout: timeout 1s 900ms is shorter than the step timeouts added up (2s 200ms)",
        ),
        (
            good.replace("    timeout: 1900ms\n", "").replace("timeout: 400ms", "timeout: 1s"),
            "checks[0].steps: the step timeouts add up to 4s, not shorter than the interval (2s)",
        ),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), &text);
        let (code, stdout, stderr) = run(&["check-config", "-c", &path]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert!(stderr.starts_with(&format!("{path}:")), "{stderr}");
        assert_no_secret("check-config", &stderr);
    }
    let path = write(dir.path(), &good);
    let (code, stdout, stderr) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_prints_each_step_with_phases_and_extracted_names() {
    let api = api();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &config(&api.url()));
    let p = path.clone();
    let (code, stdout, stderr) =
        tokio::task::spawn_blocking(move || run(&["once", "-c", &p, "--check", "journey"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("- {name} ")))
            .unwrap_or_else(|| panic!("no line for step {name}: {stdout}"))
            .to_string()
    };
    assert!(
        line("login").contains("processing") && line("login").contains("connect"),
        "{stdout}"
    );
    assert!(line("login").contains("extracted: token"), "{stdout}");
    assert!(line("create").contains("extracted: id, title"), "{stdout}");
    assert!(line("read").contains(" ok "), "{stdout}");
    assert!(line("delete").contains(" ok "), "{stdout}");
    assert_no_secret("once output", &stdout);
    assert_eq!(api.store_len(), 0);

    api.set_wrong_title(true);
    let p = path.clone();
    let (code, stdout, _) = tokio::task::spawn_blocking(move || run(&["once", "-c", &p]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{stdout}");
    assert!(
        line_with(&stdout, "journey").contains("assertion: step read: expected $.title"),
        "{stdout}"
    );
    assert!(
        stdout.contains("got \"\\\"wrong\\\"\"") || stdout.contains("\"wrong\""),
        "{stdout}"
    );
    assert_no_secret("once output", &stdout);
    assert_eq!(api.store_len(), 0, "teardown deleted the assignment");
}

fn line_with(text: &str, start: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_agent_exposes_steps_without_secrets() {
    let api = api();
    api.set_wrong_title(true);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &config(&api.url()));
    let mut agent = AgentProcess::spawn(&path, (ENV, PASSWORD)).await;
    let base = agent.base.clone();
    let failure = agent
        .wait_for_log(
            30,
            "a failure log line for the workflow",
            "\"check\":\"journey\"",
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&failure).unwrap();
    assert_eq!(v["error_type"], "assertion", "{failure}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("step read: expected $.title"),
        "{failure}"
    );

    let metrics = eventually(20, "step failure series", || async {
        let (_, body) = get(&format!("{base}/metrics")).await;
        body.contains("synthetic_step_failure_total{")
            .then_some(body)
    })
    .await;
    let has = |needle: &str| {
        metrics
            .lines()
            .any(|l| l.contains(needle) && l.contains("endpoint=\"journey\""))
    };
    assert!(has("check_type=\"api_workflow\""), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("synthetic_step_success{")
                && l.contains("step=\"read\"")
                && (l.ends_with(" 0") || l.ends_with(" 0.0"))),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("synthetic_step_success{")
                && l.contains("step=\"login\"")
                && (l.ends_with(" 1") || l.ends_with(" 1.0"))),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("synthetic_step_failure_total{")
                && l.contains("step=\"read\"")
                && l.contains("error_type=\"assertion\"")),
        "{metrics}"
    );
    assert!(has("synthetic_step_duration_seconds_bucket{"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("synthetic_request_failure_total{")
                && l.contains("error_type=\"assertion\"")
                && l.contains("check_type=\"api_workflow\"")),
        "{metrics}"
    );
    let (ok, msg) = promtool_check(&metrics);
    assert!(ok, "promtool: {msg}");

    let (_, checks) = get(&format!("{base}/api/v1/checks")).await;
    assert!(checks.contains("step read: expected $.title"), "{checks}");
    assert!(checks.contains("\"delete\""), "{checks}");

    let all_logs = agent.stop();
    assert_no_secret("/metrics", &metrics);
    assert_no_secret("/api/v1/checks", &checks);
    assert_no_secret("logs", &all_logs);
    assert_eq!(api.store_len(), 0, "teardown deleted every assignment");
}

/// The commented workflow example at the end of `config/agent.yaml`, uncommented and pointed at a demo API,
/// passes every step: the example people copy must keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_workflow_in_agent_yaml_passes_against_the_demo_api() {
    let api = demo_api::spawn(DemoApiConfig::default());
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.yaml"))
            .unwrap();
    let start = example
        .find("  # - name: assignment-journey")
        .expect("the workflow example in config/agent.yaml");
    let uncommented: String = example[start..]
        .lines()
        .map(|l| {
            l.strip_prefix("  # ")
                .map(|rest| format!("  {rest}\n"))
                .unwrap_or_default()
        })
        .collect();
    let text = format!("{}{}", &example[..start], uncommented)
        .replace("http://127.0.0.1:9490", &api.url());
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &text);
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run(&["once", "-c", &path, "--check", "assignment-journey"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    for step in ["login", "create", "read", "delete"] {
        assert!(
            line_with(&stdout, &format!("  - {step}")).contains(" ok "),
            "{stdout}"
        );
    }
    assert_eq!(api.store_len(), 0, "teardown deleted the assignment");
}

/// A step whose URL renders, at run time, to something that is no URL (an extracted title) fails the run with
/// `error_type="template"`, counted in /metrics like any other failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_template_error_is_counted_as_error_type_template() {
    let api = api();
    let dir = tempfile::tempdir().unwrap();
    let good = config(&api.url());
    let text = good.replace(
        "url: \"{{base}}/v1/assignments/{{id}}\"\n        headers: {Authorization: \"Bearer {{token}}\"}\n        assert",
        "url: \"{{title}}\"\n        headers: {Authorization: \"Bearer {{token}}\"}\n        assert",
    );
    assert_ne!(text, good, "the read step's URL was replaced");
    let path = write(dir.path(), &text);
    let mut agent = AgentProcess::spawn(&path, (ENV, PASSWORD)).await;
    let base = agent.base.clone();
    let metrics = eventually(20, "a template failure counted", || async {
        let (_, body) = get(&format!("{base}/metrics")).await;
        body.lines()
            .any(|l| {
                l.starts_with("synthetic_request_failure_total{")
                    && l.contains("endpoint=\"journey\"")
                    && l.contains("error_type=\"template\"")
            })
            .then_some(body)
    })
    .await;
    let (ok, msg) = promtool_check(&metrics);
    assert!(ok, "promtool: {msg}");
    let failure = agent
        .wait_for_log(10, "the failure log line", "\"check\":\"journey\"")
        .await;
    let v: serde_json::Value = serde_json::from_str(&failure).unwrap();
    assert_eq!(v["error_type"], "template", "{failure}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("step read: url \"synthetic "),
        "{failure}"
    );
    let all_logs = agent.stop();
    assert_no_secret("/metrics", &metrics);
    assert_no_secret("logs", &all_logs);
    assert_eq!(api.store_len(), 0, "teardown deleted every assignment");
}
