//! One config for a whole fleet, served over HTTP: the agent loads it with its bearer token, follows changes by
//! polling with ETags, rejects invalid or unreachable ones keeping the running config (each failure counted by
//! reason), and starts from its last good copy when the URL is unreachable at boot.

mod support;

use support::{eventually, run_bin, spawn_agent_from, TestAgent};
use vantage_agent::source::ConfigSource;
use vantage_testkit::fleet::ConfigServer;
use vantage_testkit::servers::TestServer;

const TOKEN: &str = "cfg-token-8c1f";

fn config(target: &TestServer, checks: &[&str]) -> String {
    let mut text = "region: ${VANTAGE_REGION}\nchecks:\n".to_string();
    for name in checks {
        text.push_str(&format!(
            "  - name: {name}\n    type: http\n    target: {}\n    every: 1s\n",
            target.url("/ok")
        ));
    }
    text
}

async fn start(server: &ConfigServer, state: &tempfile::TempDir, token: &str) -> TestAgent {
    let source =
        ConfigSource::parse(&server.url("/agent.yaml"), Some(token.into()), state.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    spawn_agent_from(source, Some("eu-west-1"), dir, state.path().to_path_buf()).await
}

async fn metric(a: &TestAgent, needle: &str) -> Option<String> {
    let m = a.get("/metrics").await.1;
    m.lines()
        .find(|l| l.starts_with(needle))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_config_url_and_keeps_the_last_good_config() {
    let target = TestServer::http().await;
    let v1 = config(&target, &["a"]);
    let server = ConfigServer::start(&v1, Some(TOKEN)).await;
    let state = tempfile::tempdir().unwrap();
    let a = start(&server, &state, TOKEN).await;

    assert_eq!(a.checks().await["region"], "eu-west-1");
    let hash = vantage_agent::config::config_hash(&v1);
    assert!(
        metric(
            &a,
            &format!("vantage_agent_config_info{{hash=\"{hash}\"}} 1")
        )
        .await
        .is_some(),
        "{}",
        a.get("/metrics").await.1
    );
    assert!(metric(
        &a,
        "vantage_agent_config_last_reload_success_timestamp_seconds "
    )
    .await
    .is_some());

    // A change is picked up at the next poll; unchanged polls are answered 304.
    server.set(&config(&target, &["a", "b"]));
    eventually(15, "check b from the new config", || async {
        a.check("b").await
    })
    .await;
    eventually(15, "a poll answered 304", || async {
        (server.requests().1 > 0).then_some(())
    })
    .await;
    assert!(
        metric(
            &a,
            r#"vantage_agent_config_reloads_total{result="success"} 1"#
        )
        .await
        .is_some(),
        "{}",
        a.get("/metrics").await.1
    );

    // An invalid config is rejected; the running one stays.
    server.set(&config(&target, &["a", "b"]).replace("every: 1s", "every: sometimes"));
    eventually(15, "the invalid config counted", || async {
        metric(
            &a,
            r#"vantage_agent_config_reload_failures_total{reason="invalid"}"#,
        )
        .await
    })
    .await;
    assert!(a.check("b").await.is_some());

    // An error status, then an unreachable server: counted by reason, nothing changes.
    server.fail_with(Some(503));
    eventually(15, "the 503 counted", || async {
        metric(
            &a,
            r#"vantage_agent_config_reload_failures_total{reason="http_status"}"#,
        )
        .await
    })
    .await;
    drop(server);
    eventually(15, "the unreachable URL counted", || async {
        metric(
            &a,
            r#"vantage_agent_config_reload_failures_total{reason="fetch"}"#,
        )
        .await
    })
    .await;
    assert!(a.check("a").await.is_some() && a.check("b").await.is_some());
    let logs_ok = a.get("/api/v1/checks").await.1;
    assert!(!logs_ok.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_from_the_last_good_copy_when_the_url_is_down() {
    let target = TestServer::http().await;
    let server = ConfigServer::start(&config(&target, &["kept"]), Some(TOKEN)).await;
    let state = tempfile::tempdir().unwrap();
    let url = server.url("/agent.yaml");
    {
        let first = start(&server, &state, TOKEN).await;
        assert!(first.check("kept").await.is_some());
    }

    drop(server);
    let source = ConfigSource::parse(&url, Some(TOKEN.into()), state.path()).unwrap();
    let again = spawn_agent_from(
        source,
        Some("us-east-1"),
        tempfile::tempdir().unwrap(),
        state.path().into(),
    )
    .await;
    assert!(again.check("kept").await.is_some());
    assert_eq!(again.checks().await["region"], "us-east-1");
    assert!(metric(
        &again,
        r#"vantage_agent_config_reload_failures_total{reason="fetch"} 1"#
    )
    .await
    .is_some());

    // check-config reports what the URL serves (never the copy), with the URL in the message.
    let state_arg = state.path().to_str().unwrap();
    let (code, _, stderr) = run_bin(
        &[
            "check-config",
            "-c",
            &url,
            "--region",
            "r",
            "--state-dir",
            state_arg,
        ],
        ("VANTAGE_CONFIG_TOKEN", TOKEN),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("{url}: cannot fetch the config: cannot connect")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reads_a_url_with_its_token() {
    let target = TestServer::http().await;
    let server = ConfigServer::start(&config(&target, &["a"]), Some(TOKEN)).await;
    let url = server.url("/agent.yaml");
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap().to_string();
    let (u, s) = (url.clone(), state_arg.clone());
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_bin(
            &[
                "check-config",
                "-c",
                &u,
                "--region",
                "eu-west-1",
                "--state-dir",
                &s,
            ],
            ("VANTAGE_CONFIG_TOKEN", TOKEN),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!("{url}: OK: region eu-west-1, 1 checks")),
        "{stdout}"
    );
    // Another variable, named by --config-token-env, holding a wrong token.
    let (u, s) = (url.clone(), state_arg.clone());
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        run_bin(
            &[
                "check-config",
                "-c",
                &u,
                "--region",
                "r",
                "--state-dir",
                &s,
                "--config-token-env",
                "MY_TOKEN",
            ],
            ("MY_TOKEN", "wrong"),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("the server answered HTTP 401"), "{stderr}");
    assert!(!stderr.contains("wrong"), "{stderr}");
}
