//! One agent with every check type configured against real local servers (HTTP/1.1, HTTP/2, HTTP/3, TCP, TLS,
//! DNS over UDP and over HTTPS, ICMP, gRPC, a workflow): each type's families are in `/metrics`, and Prometheus's
//! own parsers accept the exposition in both formats (classic with `promtool check metrics`, OpenMetrics with
//! its exemplars through Prometheus's OpenMetrics parser; see `vantage_testkit::promtool`).

mod support;

use support::{eventually, spawn_agent};
use vantage_testkit::dns::DnsServer;
use vantage_testkit::grpc::GrpcHealthServer;
use vantage_testkit::h3::H3Server;
use vantage_testkit::promtool;
use vantage_testkit::servers::{TcpServer, TestServer};
use vantage_testkit::tls::TestPki;

async fn scrape(base: &str, accept: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_type_exports_metrics_promtool_accepts_in_both_formats() {
    let pki = TestPki::new();
    let ca = pki.ca_file.display().to_string();
    let http = TestServer::http().await;
    let https = TestServer::https(pki.valid_leaf().server_config_alpn(&[b"h2", b"http/1.1"])).await;
    let h3 = H3Server::start(&pki.valid_leaf()).await;
    let tcp = TcpServer::start(None).await;
    let records: &[(&str, &str, &str)] = &[("api.test", "A", "127.0.0.7")];
    let dns = DnsServer::start(records).await;
    let doh = DnsServer::start_https(records, pki.valid_leaf().server_config_alpn(&[b"h2"])).await;
    let grpc = GrpcHealthServer::plaintext().await;
    let yaml = format!(
        r#"region: every-type
checks:
  - {{name: http1, type: http, target: '{http1}', every: 1s}}
  - {{name: http2, type: http, target: '{https2}', http_version: "2", tls: {{ca_file: '{ca}'}}, every: 1s}}
  - {{name: http3, type: http, target: '{h3}', http_version: "3", ip_version: ip4, tls: {{ca_file: '{ca}'}}, every: 1s}}
  - {{name: failing, type: http, target: '{failing}', every: 1s}}
  - {{name: tcp, type: tcp, target: '{tcp}', every: 1s}}
  - {{name: tls, type: tls, target: '{tls}', tls: {{ca_file: '{ca}'}}, every: 1s}}
  - {{name: dns-udp, type: dns, target: api.test, server: '{dns}', expect: [127.0.0.7], every: 1s}}
  - {{name: dns-doh, type: dns, target: api.test, transport: https, server: '{doh}', tls: {{ca_file: '{ca}'}}, every: 1s}}
  - {{name: icmp, type: icmp, target: 127.0.0.1, packets: 2, packet_interval: 10ms, reply_timeout: 300ms, every: 1s, timeout: 800ms}}
  - {{name: grpc, type: grpc, target: '{grpc}', every: 1s}}
  - name: journey
    type: api_workflow
    every: 1s
    timeout: 900ms
    steps:
      - {{name: read, url: '{http1}', timeout: 500ms}}
"#,
        http1 = http.url("/ok"),
        https2 = https.localhost_url("/ok"),
        h3 = h3.url("/ok"),
        failing = http.url("/status/503"),
        tcp = tcp.addr,
        tls = https.addr,
        dns = dns.addr,
        doh = doh.doh_url(),
        grpc = grpc.target(),
    );
    let agent = spawn_agent(&yaml).await;
    let checks = eventually(20, "a result from every check", || async {
        let checks = agent.checks().await;
        let all = checks["checks"].as_array().unwrap().clone();
        all.iter().all(|c| !c["last"].is_null()).then_some(all)
    })
    .await;
    for c in &checks {
        let expected = c["name"] != "failing";
        assert_eq!(c["last"]["success"], expected, "{c}");
    }

    let om = scrape(
        &agent.base,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .await;
    for family in [
        "probe_http_version{region=\"every-type\",endpoint=\"http3\",check_type=\"http\"} 3",
        "probe_http_version{region=\"every-type\",endpoint=\"http2\",check_type=\"http\"} 2",
        "probe_http_status_code{region=\"every-type\",endpoint=\"http1\"",
        "probe_ssl_earliest_cert_expiry{region=\"every-type\",endpoint=\"tls\"",
        "probe_dns_lookup_time_seconds{region=\"every-type\",endpoint=\"dns-doh\"",
        "probe_icmp_packets_received{region=\"every-type\",endpoint=\"icmp\",check_type=\"icmp\"} 2",
        "probe_icmp_rtt_seconds{region=\"every-type\",endpoint=\"icmp\"",
        "probe_grpc_healthcheck_response{region=\"every-type\",endpoint=\"grpc\",check_type=\"grpc\",serving_status=\"SERVING\"} 1",
        "synthetic_step_success{region=\"every-type\",endpoint=\"journey\"",
        "probe_success{region=\"every-type\",endpoint=\"failing\",check_type=\"http\"} 0",
    ] {
        assert!(om.contains(family), "missing {family:?} in\n{om}");
    }
    // The failing check's run carries its trace id as an exemplar.
    assert!(
        om.lines().any(
            |l| l.starts_with("synthetic_request_duration_seconds_bucket{")
                && l.contains("endpoint=\"failing\"")
                && l.contains(" # {trace_id=\"")
        ),
        "no exemplar in\n{om}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (ok, msg) = promtool::check_openmetrics(&om, now);
    assert!(ok, "promtool (OpenMetrics): {msg}\n{om}");
    let classic = scrape(&agent.base, "text/plain;version=0.0.4").await;
    let (ok, msg) = promtool::check_metrics(&classic);
    assert!(ok, "promtool check metrics (classic): {msg}\n{classic}");
}
