//! The real `vantage-agent` binary: `check-config` errors with file:line:col for each invalid case, `once` exit
//! codes and table, and `run` with JSON logs (secrets absent), SIGHUP reload and the shipped example config.

mod support;

use std::path::Path;
use support::{eventually, get, run_bin, write_config as write, AgentProcess};
use vantage_testkit::servers::TestServer;

const SECRET: &str = "cli-s3cret-4711";

/// Runs the binary with the test secret in the environment; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_bin(args, ("CLI_TEST_TOKEN", SECRET))
}

const HEAD: &str = "region: r\nchecks:\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n";

#[test]
fn check_config_names_line_column_and_field_for_each_invalid_case() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(String, &str); 7] = [
        (format!("{HEAD}    every: 10s\n    tiemout: 2s\n"), ":7:5: checks[0].tiemout: unknown field `tiemout`"),
        (
            "region: r\nchecks:\n  - name: h\n    type: http\n    target: http://127.0.0.1:1/\n    every: 10s\n    methd: GET\n".into(),
            ":7:5: checks[0].methd: unknown field `methd`",
        ),
        (format!("{HEAD}    schedule: \"*/5 * * *\"\n"), ":6:5: checks[0].schedule: cron expression \"*/5 * * *\" has 4 fields"),
        (format!("{HEAD}    schedule: \"99 * * * *\"\n"), ":6:5: checks[0].schedule: invalid cron expression"),
        (
            format!("{HEAD}    every: 10s\n  - name: a\n    type: tcp\n    target: 127.0.0.1:9\n    every: 5s\n"),
            ":7:5: checks[1].name: duplicate check name \"a\"",
        ),
        (format!("{HEAD}    every: 10 sekunden\n"), ":6:5: checks[0].every: invalid duration"),
        (format!("{HEAD}    every: 10s\n    labels: {{owner: \"${{NOT_SET_ANYWHERE}}\"}}\n"), ":7:22: environment variable NOT_SET_ANYWHERE is not set"),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), &text);
        let (code, stdout, stderr) = run(&["check-config", "-c", &path]);
        assert_eq!(code, 1, "{text}\nstdout: {stdout}\nstderr: {stderr}");
        let line = stderr.lines().next().unwrap_or("");
        assert!(
            line.starts_with(&format!("{path}{expected}")),
            "expected {expected:?}, got {stderr:?}\n{text}"
        );
    }
    // A credential in an invalid secret field stays hidden in the error...
    let path = write(
        dir.path(),
        "region: r\nchecks:\n  - name: h\n    type: http\n    target: http://127.0.0.1:1/\n    every: 10s\n    basic_auth: \"${CLI_TEST_TOKEN}\"\n",
    );
    let (code, _, stderr) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("checks[0].basic_auth: invalid type") && !stderr.contains(SECRET),
        "{stderr}"
    );
    // ... while a value from the environment in an identity field is shown as it is.
    let path = write(
        dir.path(),
        &format!("{HEAD}    every: 10s\n  - name: \"${{CLI_TEST_TOKEN}}\"\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n    labels: {{\"bad-label\": x}}\n"),
    );
    let (code, _, stderr) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 1);
    assert!(stderr.contains("checks[1].labels.bad-label"), "{stderr}");
    // Valid: exit 0 with a summary.
    let path = write(dir.path(), &format!("{HEAD}    every: 10s\n"));
    let (code, stdout, _) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("OK: region r, 1 checks (1 run in this region)"),
        "{stdout}"
    );
}

#[test]
fn check_config_lists_the_checks_of_a_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "region: ${VANTAGE_REGION}\nchecks:\n  - {name: everywhere, type: tcp, target: '127.0.0.1:9', every: 10s}\n  - {name: eu-only, type: tcp, target: '127.0.0.1:9', every: 10s, regions: [eu-*]}\n  - {name: off, type: tcp, target: '127.0.0.1:9', every: 10s, enabled: false}\n",
    );
    let (code, stdout, stderr) = run(&["check-config", "-c", &path, "--region", "us-east-1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("OK: region us-east-1, 3 checks (1 run in this region)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  everywhere [tcp] every 10s\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  eu-only [tcp] every 10s (not in us-east-1: regions eu-*)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  off [tcp] every 10s (disabled)"),
        "{stdout}"
    );
    let (code, stdout, _) = run_bin(
        &["check-config", "-c", &path],
        ("VANTAGE_REGION", "eu-west-1"),
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("OK: region eu-west-1, 3 checks (2 run in this region)"),
        "{stdout}"
    );
    // Without a region anywhere, the error says where to give one.
    let (code, _, stderr) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("environment variable VANTAGE_REGION is not set"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/agent.yaml");
    let (code, stdout, stderr) = run(&["check-config", "-c", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_prints_a_table_and_exits_by_result() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &format!(
            "region: r\nchecks:\n  - name: good\n    type: http\n    target: {}\n    every: 10s\n  - name: bad\n    type: http\n    target: {}\n    every: 10s\n    headers: {{x-token: \"${{CLI_TEST_TOKEN}}\"}}\n",
            target.url("/ok"),
            target.url("/status/503?t=${CLI_TEST_TOKEN}"),
        ),
    );
    let p = path.clone();
    let (code, stdout, _) =
        tokio::task::spawn_blocking(move || run(&["once", "-c", &p, "--check", "good"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("CHECK") && stdout.contains("good") && stdout.contains(" ok "),
        "{stdout}"
    );
    assert!(stdout.contains("processing"), "phases listed: {stdout}");
    let p = path.clone();
    let (code, stdout, _) = tokio::task::spawn_blocking(move || run(&["once", "-c", &p]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("http_status"),
        "{stdout}"
    );
    assert!(stdout.contains("2 checks, 1 passed, 1 failed"), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    let p = path.clone();
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || run(&["once", "-c", &p, "--check", "nope"]))
            .await
            .unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains("no check named \"nope\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_logs_failures_without_secrets_and_reloads_on_sighup() {
    let target = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let failing = format!(
        "region: r\nlog_format: json\nchecks:\n  - name: bad\n    type: http\n    target: {}\n    every: 1s\n    retries: 1\n    basic_auth: {{username: u, password: \"${{CLI_TEST_TOKEN}}\"}}\n",
        target.url("/status/500?token=${CLI_TEST_TOKEN}"),
    );
    let path = write(dir.path(), &failing);
    let mut agent = AgentProcess::spawn(&path, ("CLI_TEST_TOKEN", SECRET)).await;
    let base = agent.base.clone();
    let failure = agent
        .wait_for_log(20, "a failure log line", "\"check\":\"bad\"")
        .await;
    let v: serde_json::Value = serde_json::from_str(&failure).unwrap();
    assert_eq!(v["level"], "WARN");
    assert_eq!(v["error_type"], "http_status");
    assert_eq!(v["attempts"], 2);
    assert!(v["message"].as_str().unwrap().contains("500"), "{failure}");
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);

    // Add a check and send SIGHUP.
    std::fs::write(
        &path,
        format!(
            "{failing}  - name: added\n    type: http\n    target: {}\n    every: 1s\n",
            target.url("/ok")
        ),
    )
    .unwrap();
    assert!(agent.signal("-HUP"));
    let api = eventually(20, "the added check after SIGHUP", || async {
        let (_, body) = get(&format!("{base}/api/v1/checks")).await;
        body.contains("\"name\": \"added\"").then_some(body)
    })
    .await;
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    let all = agent.stop();
    assert!(
        all.contains("SIGHUP: reloading config") && all.contains("config reloaded"),
        "{all}"
    );
    for (what, text) in [("logs", &all), ("api", &api), ("metrics", &metrics)] {
        assert!(!text.contains(SECRET), "secret in {what}: {text}");
    }
}

/// A check whose attempts (timeout x (retries + 1), plus backoff) outlast its interval would skip most runs
/// while its target fails: `check-config` and `run` warn, naming the check and the worst-case run time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_whose_retries_outlast_the_interval_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let text = "region: r\nchecks:\n  - name: slow-retrier\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n    timeout: 4s\n    retries: 2\n  - name: fits\n    type: tcp\n    target: 127.0.0.1:9\n    every: 10s\n    timeout: 3s\n    retries: 1\n";
    let path = write(dir.path(), text);
    let (code, stdout, stderr) = run(&["check-config", "-c", &path]);
    assert_eq!(code, 0, "a warning, not an error: {stdout}{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    // 3 attempts x 4s + 250ms + 500ms of backoff.
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("\"slow-retrier\"")
            && warnings[0].contains("can take 12s 750ms")
            && warnings[0].contains("interval (10s)"),
        "{stderr}"
    );
    let mut agent = AgentProcess::spawn(&path, ("CLI_TEST_TOKEN", SECRET)).await;
    let line = agent
        .wait_for_log(30, "the overrun warning", "slow-retrier")
        .await;
    assert!(
        line.contains("\"level\":\"WARN\"") && line.contains("12s 750ms"),
        "{line}"
    );
    assert!(!agent.stop().contains("\"fits\""));
}
