//! `vantage-agent once --format json|junit` against real local servers: both outputs parsed (serde_json,
//! roxmltree) for structure and failure messages, the exit codes 0/1/2, and a secret header value never printed.

mod support;

use support::{run_bin, write_config};
use vantage_testkit::servers::TestServer;

const SECRET: &str = "report-s3cret-0815";

/// Runs `once` with the secret in the environment; (exit code, stdout, stderr), the secret absent from both.
async fn once(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = ["once"].iter().chain(args).map(|a| a.to_string()).collect();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(&args, ("REPORT_TEST_TOKEN", SECRET))
    })
    .await
    .unwrap();
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "secret printed:\n{stdout}\n{stderr}"
    );
    (code, stdout, stderr)
}

/// A passing HTTP check, a failing one (its assertion names the secret header's value and XML markup), and a
/// workflow whose second step fails, so the third is skipped.
fn config(target: &TestServer) -> String {
    format!(
        r#"region: ci-1
checks:
  - name: good
    type: http
    target: {ok}
    every: 10s
  - name: bad
    type: http
    target: {ok}
    every: 10s
    headers: {{x-token: "${{REPORT_TEST_TOKEN}}"}}
    assert: [{{body_contains: "<${{REPORT_TEST_TOKEN}} & more>"}}]
  - name: journey
    type: api_workflow
    every: 10s
    variables: {{base: "{base}"}}
    steps:
      - name: fetch
        timeout: 2s
        url: "{{{{base}}}}/json"
        headers: {{x-token: "${{REPORT_TEST_TOKEN}}"}}
        extract: {{id: "$.id"}}
      - name: update
        timeout: 2s
        url: "{{{{base}}}}/status/500"
      - name: verify
        timeout: 2s
        url: "{{{{base}}}}/ok"
"#,
        ok = target.url("/ok"),
        base = target.url("").trim_end_matches('/'),
    )
}

const BAD_MESSAGE: &str = "expected body to contain \"<*** & more>\", got \"ok\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_has_one_object_per_check_and_exit_codes() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&target));

    let (code, stdout, stderr) = once(&["-c", &path, "--check", "good", "--format", "json"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["summary"],
        serde_json::json!({"checks": 1, "passed": 1, "failed": 0})
    );
    let good = &v["checks"][0];
    assert_eq!(good["name"], "good");
    assert_eq!(good["type"], "http");
    assert_eq!(good["region"], "ci-1");
    assert_eq!(good["result"], "success");
    assert_eq!(good["attempts"], 1);
    assert!(good["duration"].as_f64().unwrap() > 0.0, "{good}");
    assert!(good["phases"]["processing"].as_f64().is_some(), "{good}");
    assert!(good["error_type"].is_null() && good["message"].is_null());

    let (code, stdout, stderr) = once(&["-c", &path, "--format", "json"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["summary"],
        serde_json::json!({"checks": 3, "passed": 1, "failed": 2})
    );
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good", "bad", "journey"]);
    let bad = &v["checks"][1];
    assert_eq!(bad["result"], "failure");
    assert_eq!(bad["error_type"], "assertion");
    assert_eq!(bad["message"], BAD_MESSAGE);
    let journey = &v["checks"][2];
    assert_eq!(journey["type"], "api_workflow");
    assert_eq!(journey["result"], "failure");
    assert_eq!(journey["error_type"], "http_status");
    let steps = journey["steps"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("fetch", "success"),
            ("update", "failure"),
            ("verify", "skipped")
        ]
    );
    assert_eq!(steps[0]["http_status"], 200);
    assert_eq!(steps[0]["extracted"], serde_json::json!(["id"]));
    assert!(
        steps[0]["phases"]["connect"].as_f64().is_some(),
        "{journey}"
    );
    assert_eq!(steps[1]["http_status"], 500);
    assert_eq!(steps[1]["error_type"], "http_status");
    assert!(
        steps[1]["message"].as_str().unwrap().contains("500"),
        "{journey}"
    );

    // Exit 2: a config error, or a --check naming no check; nothing on stdout for a parser to misread.
    let (code, stdout, stderr) = once(&["-c", &path, "--check", "nope", "--format", "json"]).await;
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("no check named \"nope\""), "{stderr}");
    let broken = write_config(
        dir.path(),
        "region: r\nchecks:\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n    tiemout: 2s\n",
    );
    let (code, stdout, stderr) = once(&["-c", &broken, "--format", "json"]).await;
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains("checks[0].tiemout: unknown field"),
        "{stderr}"
    );
    let (code, _, stderr) = once(&["-c", &broken, "--format", "xml"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("invalid value 'xml' for '--format <FORMAT>'")
            && stderr.contains("[possible values: table, json, junit]"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_report_parses_with_one_testcase_per_check() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&target));

    let (code, stdout, stderr) = once(&["-c", &path, "--format", "junit"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let doc = roxmltree::Document::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1, "{stdout}");
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some("vantage"));
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    assert!(suite.attribute("time").unwrap().parse::<f64>().unwrap() > 0.0);
    let region = suite
        .descendants()
        .find(|n| n.has_tag_name("property"))
        .unwrap();
    assert_eq!(
        (region.attribute("name"), region.attribute("value")),
        (Some("region"), Some("ci-1"))
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let ids: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| {
            (
                c.attribute("classname").unwrap(),
                c.attribute("name").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("vantage.http", "good"),
            ("vantage.http", "bad"),
            ("vantage.api_workflow", "journey")
        ]
    );
    for c in &cases {
        assert!(c.attribute("time").unwrap().parse::<f64>().is_ok());
    }
    let failure = |i: usize| cases[i].children().find(|n| n.has_tag_name("failure"));
    let system_out = |i: usize| {
        cases[i]
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_string()
    };
    assert!(failure(0).is_none());
    assert!(
        system_out(0).starts_with("attempts: 1\nphases: "),
        "{stdout}"
    );
    let bad = failure(1).unwrap();
    assert_eq!(bad.attribute("type"), Some("assertion"));
    assert_eq!(bad.attribute("message"), Some(BAD_MESSAGE));
    assert_eq!(
        bad.text(),
        Some(format!("assertion: {BAD_MESSAGE}\nattempts: 1").as_str())
    );
    let journey = failure(2).unwrap();
    assert_eq!(journey.attribute("type"), Some("http_status"));
    let steps = system_out(2);
    let line = |prefix: &str| {
        steps
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in {steps}"))
    };
    assert!(
        steps.starts_with("attempts: 1\n") && steps.contains("\nsteps:\n"),
        "{steps}"
    );
    let fetch = line("  success fetch: ");
    assert!(
        fetch.contains(", HTTP 200 (") && fetch.ends_with("; extracted: id"),
        "{steps}"
    );
    assert!(
        line("  failure update: ")
            .ends_with("; http_status: step update: expected status 2xx, got 500: status 500"),
        "{steps}"
    );
    line("  skipped verify: ");

    let (code, stdout, stderr) = once(&["-c", &path, "--check", "good", "--format", "junit"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc = roxmltree::Document::parse(&stdout).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        (suite.attribute("tests"), suite.attribute("failures")),
        (Some("1"), Some("0"))
    );
}
