//! Moving off blackbox_exporter at one's own pace, on the real binary against local servers:
//! - `convert-blackbox` turns module x target into Vantage checks, and `once` on the converted config passes and
//!   fails exactly where `vantage-agent blackbox`'s `/probe` does for the same module and target;
//! - an agent whose config names `blackbox_modules:` answers `/probe` beside its own checks;
//! - blackbox_exporter's flags: unknown and unimplemented ones, a bad module file, `--config.check`.

mod support;

use std::collections::BTreeMap;
use support::{run_bin, write_config, AgentProcess};
use vantage_testkit::servers::{TcpServer, TestServer};

const MODULES: &str = r#"
modules:
  http_2xx:
    prober: http
    http: {preferred_ip_protocol: ip4}
  http_404:
    prober: http
    http: {preferred_ip_protocol: ip4, valid_status_codes: [404]}
  body_forbid:
    prober: http
    http:
      preferred_ip_protocol: ip4
      fail_if_body_matches_regexp: ['"status":\s*"up"']
  header_forbid:
    prober: http
    http:
      preferred_ip_protocol: ip4
      fail_if_header_matches: [{header: Content-Type, regexp: json}]
  header_require:
    prober: http
    http:
      preferred_ip_protocol: ip4
      fail_if_header_not_matches: [{header: X-Id, regexp: '^abc', allow_missing: true}]
  versions:
    prober: http
    http: {preferred_ip_protocol: ip4, valid_http_versions: ["HTTP/2.0"]}
  tls_only:
    prober: http
    http: {preferred_ip_protocol: ip4, fail_if_not_ssl: true}
  no_redirects:
    prober: http
    http: {preferred_ip_protocol: ip4, follow_redirects: false}
  post:
    prober: http
    http:
      preferred_ip_protocol: ip4
      method: POST
      headers: {Content-Type: application/json, X-Token: "${PROBE_TOKEN:-s3cr3t-value}"}
      body: '{"ping": 1}'
  banner:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      query_response: [{expect: "^SSH-2.0-"}]
  banner_mismatch:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response: [{expect: "^220 "}]
"#;

/// `once --format json`'s results by check name.
fn once_results(config: &str) -> BTreeMap<String, bool> {
    let (code, out, err) = run_bin(
        &["once", "-c", config, "--format", "json"],
        ("PROBE_TOKEN", "s3cr3t-value"),
    );
    assert!(code == 0 || code == 1, "once exited {code}: {err}\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["result"] == "success",
            )
        })
        .collect()
}

fn probe_success(body: &str) -> bool {
    body.lines().any(|l| l == "probe_success 1")
}

#[tokio::test]
async fn converted_checks_pass_and_fail_where_probe_does() {
    let http = TestServer::http().await;
    let tcp = TcpServer::start(Some("SSH-2.0-vantage")).await;
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(&modules, MODULES).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("http_2xx", http.url("/ok")),
        ("http_2xx", http.url("/status/500")),
        ("http_404", http.url("/status/404")),
        ("body_forbid", http.url("/ok")),
        ("body_forbid", http.url("/json")),
        ("header_forbid", http.url("/headers")),
        ("header_forbid", http.url("/json")),
        ("header_require", http.url("/headers")),
        ("header_require", http.url("/ok")),
        ("versions", http.url("/ok")),
        ("tls_only", http.url("/ok")),
        ("no_redirects", http.url("/redirect/1")),
        ("no_redirects", http.url("/ok")),
        ("post", http.url("/echo")),
        ("banner", tcp.addr.to_string()),
        ("banner_mismatch", tcp.addr.to_string()),
    ];
    let targets: String = cases.iter().map(|(m, t)| format!("{m} {t}\n")).collect();
    let targets_file = dir.path().join("targets.txt");
    std::fs::write(&targets_file, format!("# module target\n{targets}")).unwrap();

    let (code, yaml, err) = run_bin(
        &[
            "convert-blackbox",
            modules.to_str().unwrap(),
            "--targets",
            targets_file.to_str().unwrap(),
            "--interval",
            "30s",
        ],
        ("PROBE_TOKEN", "s3cr3t-value"),
    );
    assert_eq!(code, 0, "convert-blackbox failed: {err}");
    // The secret stays a reference (run_bin sets PROBE_TOKEN in the environment).
    assert!(yaml.contains("X-Token: ${PROBE_TOKEN}"), "{yaml}");
    assert!(!yaml.contains("s3cr3t-value"), "{yaml}");
    let config = write_config(dir.path(), &format!("region: test\n{yaml}"));
    let (code, out, err) = run_bin(
        &["check-config", "-c", &config],
        ("PROBE_TOKEN", "s3cr3t-value"),
    );
    assert_eq!(code, 0, "the converted config is not valid: {err}\n{yaml}");
    assert!(out.contains(&format!("{} checks", cases.len())), "{out}");

    // The servers run on this test's runtime: `once` is waited for off it.
    let converted = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || once_results(&config))
            .await
            .unwrap()
    };
    let exporter = AgentProcess::spawn_blackbox(modules.to_str().unwrap(), &[]).await;
    let client = reqwest::Client::new();
    let mut mismatches = Vec::new();
    for (module, target) in &cases {
        let body = client
            .get(format!("{}/probe", exporter.base))
            .query(&[("module", *module), ("target", target.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let bare = target.trim_start_matches("http://");
        let (name, passed) = converted
            .iter()
            .find(|(n, _)| {
                n.starts_with(&format!("{module}/")) && n.ends_with(bare.trim_end_matches('/'))
            })
            .unwrap_or_else(|| panic!("no converted check for {module} {target} in {converted:?}"));
        if probe_success(&body) != *passed {
            mismatches.push(format!(
                "{module} {target}: /probe success {} but check {name} {}",
                probe_success(&body),
                if *passed { "passed" } else { "failed" }
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n\nconverted:\n{yaml}",
        mismatches.join("\n")
    );
    // Both outcomes occur, so agreement is not trivially all-pass or all-fail.
    assert!(
        converted.values().any(|p| *p) && converted.values().any(|p| !*p),
        "{converted:?}"
    );
}

#[test]
fn a_module_option_without_an_equivalent_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(
        &modules,
        "modules:\n  gz:\n    prober: http\n    http: {compression: gzip}\n",
    )
    .unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(&targets, "https://example.test/\n").unwrap();
    let (code, out, err) = run_bin(
        &[
            "convert-blackbox",
            modules.to_str().unwrap(),
            "--targets",
            targets.to_str().unwrap(),
        ],
        ("X", "x"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("line 1: module gz: http.compression has no Vantage check equivalent"),
        "{err}"
    );
    std::fs::write(&targets, "nope https://example.test/\n").unwrap();
    let (code, _, err) = run_bin(
        &[
            "convert-blackbox",
            modules.to_str().unwrap(),
            "--targets",
            targets.to_str().unwrap(),
        ],
        ("X", "x"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("line 1: no module named \"nope\""), "{err}");
}

#[tokio::test]
async fn an_agent_with_blackbox_modules_answers_probe_beside_its_checks() {
    let http = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(&modules, MODULES).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "region: test\nblackbox_modules: {}\nchecks:\n  - name: own\n    type: http\n    target: {}\n    every: 1s\n",
            modules.display(),
            http.url("/ok")
        ),
    );
    let agent = AgentProcess::spawn(&config, ("X", "x")).await;
    let (status, body) = support::get(&format!(
        "{}/probe?module=http_404&target={}",
        agent.base,
        http.url("/status/404")
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(probe_success(&body), "{body}");
    assert!(body.contains("probe_http_status_code 404"), "{body}");
    let (status, body) = support::get(&format!("{}/probe?module=nope&target=x", agent.base)).await;
    assert_eq!((status, body.trim()), (400, "Unknown module \"nope\""));
    // The agent's own check runs as before.
    support::eventually(10, "the agent's own check to run", || async {
        let (_, m) = support::get(&format!("{}/metrics", agent.base)).await;
        m.contains("endpoint=\"own\"").then_some(())
    })
    .await;

    // A module file with an error is a config error at `blackbox_modules`, with the module file's own position.
    std::fs::write(
        &modules,
        "modules:\n  a:\n    prober: tcp\n    tcp: {source_ip_address: 10.0.0.1}\n",
    )
    .unwrap();
    let (code, _, err) = run_bin(&["check-config", "-c", &config], ("X", "x"));
    assert_eq!(code, 1);
    assert!(err.contains("blackbox_modules: "), "{err}");
    assert!(
        err.contains("blackbox.yml:4:11: modules.a.tcp.source_ip_address: a blackbox_exporter option Vantage does not implement"),
        "{err}"
    );
}

#[test]
fn blackbox_exporters_flags() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(&modules, MODULES).unwrap();
    let file = modules.to_str().unwrap();
    let (code, out, _) = run_bin(
        &["blackbox", "--config.file", file, "--config.check"],
        ("X", "x"),
    );
    assert_eq!(code, 0);
    assert!(out.contains("OK: 11 modules"), "{out}");
    let (code, _, err) = run_bin(
        &[
            "blackbox",
            "--config.file",
            file,
            "--web.config.file",
            "web.yml",
        ],
        ("X", "x"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("--web.config.file is a blackbox_exporter flag vantage-agent blackbox does not implement"), "{err}");
    let (code, _, err) = run_bin(
        &["blackbox", "--config.file", file, "--no-such-flag"],
        ("X", "x"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("--no-such-flag"), "{err}");
    std::fs::write(
        &modules,
        "modules:\n  a:\n    prober: http\n    http:\n      valid_status_code: [200]\n",
    )
    .unwrap();
    let (code, _, err) = run_bin(&["blackbox", "--config.file", file], ("X", "x"));
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "blackbox.yml:5:7: modules.a.http.valid_status_code: unknown field `valid_status_code`"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_probe_ends_by_the_scrapes_timeout_minus_the_offset() {
    let http = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(&modules, MODULES).unwrap();
    let exporter =
        AgentProcess::spawn_blackbox(modules.to_str().unwrap(), &["--timeout-offset", "0.5"]).await;
    let started = std::time::Instant::now();
    let body = reqwest::Client::new()
        .get(format!("{}/probe", exporter.base))
        .query(&[
            ("module", "http_2xx"),
            ("target", http.url("/hang").as_str()),
        ])
        .header("X-Prometheus-Scrape-Timeout-Seconds", "1.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    assert!(body.contains("probe_success 0"), "{body}");
    let duration: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("probe_duration_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    // 1.5 s - 0.5 s: the module sets no timeout of its own.
    assert!(
        (0.95..1.4).contains(&duration),
        "probe_duration_seconds {duration}"
    );
    assert!(took < 1.45, "answered after {took:.2} s");
    let (status, body) =
        support::get(&format!("{}/probe?module=http_2xx&target=x", exporter.base)).await;
    assert_eq!(status, 200, "{body}");
    let status = reqwest::Client::new()
        .get(format!("{}/probe?module=http_2xx&target=x", exporter.base))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "soon")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 500);
}

/// config/blackbox.yml, the example shipped (and copied into the image), loads in both exporters.
#[test]
fn the_shipped_module_file_loads_here_and_in_blackbox_exporter() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/blackbox.yml");
    let (code, out, err) = run_bin(
        &["blackbox", "--config.file", file, "--config.check"],
        ("X", "x"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK: 9 modules"), "{out}");
    let real = std::process::Command::new("/usr/bin/prometheus-blackbox-exporter")
        .args(["--config.file", file, "--config.check"])
        .output()
        .expect("prometheus-blackbox-exporter is installed by scripts/test.sh");
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
}
