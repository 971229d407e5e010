//! `type: grpc` against a real gRPC health server (tonic-health, testkit): serving statuses, unknown service, no
//! health service, TLS, timeout, peers that are not gRPC, refused connections, and the metric families on
//! /metrics of a running agent (checked by promtool in both formats).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::{eventually, spawn_agent};
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult, ServingStatus};
use vantage_testkit::grpc::{self, GrpcHealthServer};
use vantage_testkit::promtool::check_metrics as promtool_check;
use vantage_testkit::servers::TestServer;
use vantage_testkit::tls::TestPki;

async fn run(yaml: &str) -> ProbeResult {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let spec = ProbeSpec::from_yaml("grpc", v).unwrap();
    Probe::new(&spec).unwrap().run().await
}

fn failure(r: &ProbeResult) -> (ErrorType, String) {
    let e = r.error.clone().expect("expected a failure");
    (e.error_type, e.message)
}

fn serving(r: &ProbeResult) -> Option<ServingStatus> {
    r.grpc.as_ref().and_then(|g| g.serving_status)
}

#[tokio::test]
async fn serving_server_and_service_pass_with_metadata_sent() {
    let srv = GrpcHealthServer::plaintext().await;
    srv.set("shop.Cart", grpc::ServingStatus::Serving).await;
    let r = run(&format!("{{target: '{}'}}", srv.target())).await;
    assert!(r.success(), "{:?}", r.error);
    let g = r.grpc.clone().unwrap();
    assert_eq!(
        (g.status_code, g.serving_status),
        (0, Some(ServingStatus::Serving))
    );
    assert!(r.tls.is_none());
    for p in [Phase::Connect, Phase::Processing] {
        assert!(r.phases.get(p).is_some(), "missing {p:?}");
    }
    assert!(
        r.phases.get(Phase::Resolve).is_none(),
        "an IP literal needs no lookup"
    );
    let r = run(&format!(
        "{{target: '{}', service: shop.Cart, metadata: {{x-tenant: acme, authorization: 'Bearer t0k'}}}}",
        srv.localhost_target()
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.phases.get(Phase::Resolve).is_some());
    assert_eq!(srv.last_header("x-tenant").as_deref(), Some("acme"));
    assert_eq!(
        srv.last_header("authorization").as_deref(),
        Some("Bearer t0k")
    );
}

#[tokio::test]
async fn not_serving_fails_naming_the_status() {
    let srv = GrpcHealthServer::plaintext().await;
    srv.set("shop.Cart", grpc::ServingStatus::NotServing).await;
    let r = run(&format!(
        "{{target: '{}', service: shop.Cart}}",
        srv.target()
    ))
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert_eq!(
        msg,
        "service \"shop.Cart\" is NOT_SERVING, expected SERVING"
    );
    assert_eq!(serving(&r), Some(ServingStatus::NotServing));
    // The whole server too.
    srv.set("", grpc::ServingStatus::NotServing).await;
    let r = run(&format!("{{target: '{}'}}", srv.target())).await;
    let (_, msg) = failure(&r);
    assert_eq!(
        msg,
        format!("server {} is NOT_SERVING, expected SERVING", srv.target())
    );
}

#[tokio::test]
async fn unknown_service_and_missing_health_service_fail_with_the_grpc_status() {
    let srv = GrpcHealthServer::plaintext().await;
    let r = run(&format!("{{target: '{}', service: no.Such}}", srv.target())).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(
        msg.starts_with("health check of service \"no.Such\" answered gRPC status NOT_FOUND"),
        "{msg}"
    );
    let g = r.grpc.clone().unwrap();
    assert_eq!((g.status_code, g.serving_status), (5, None));

    let bare = GrpcHealthServer::without_health_service().await;
    let r = run(&format!("{{target: '{}'}}", bare.target())).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(msg.contains("answered gRPC status UNIMPLEMENTED"), "{msg}");
    assert_eq!(r.grpc.unwrap().status_code, 12);
}

#[tokio::test]
async fn tls_trusted_via_ca_file_and_untrusted_fails_with_tls() {
    let pki = TestPki::new();
    let srv = GrpcHealthServer::tls(pki.valid_leaf().server_config_alpn(&[b"h2"])).await;
    let r = run(&format!(
        "{{target: '{}', tls: {{ca_file: '{}'}}}}",
        srv.localhost_target(),
        pki.ca_file.display()
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(serving(&r), Some(ServingStatus::Serving));
    let tls = r.tls.clone().unwrap();
    assert_eq!(tls.version, "TLS 1.3");
    assert!(tls.earliest_cert_expiry.is_some());
    for p in [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
    ] {
        assert!(r.phases.get(p).is_some(), "missing {p:?}");
    }
    // Without the CA: the test CA is unknown to the bundled roots.
    let r = run(&format!(
        "{{target: '{}', tls: {{}}}}",
        srv.localhost_target()
    ))
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    assert!(msg.contains("not trusted"), "{msg}");
    assert!(r.grpc.is_none());
    // Plaintext against a TLS port: no gRPC answer, never a pass.
    let r = run(&format!("{{target: '{}'}}", srv.target())).await;
    assert!(!r.success());
    assert!(r.grpc.is_none());
}

#[tokio::test]
async fn a_slow_answer_times_out_at_the_check_timeout() {
    let srv = GrpcHealthServer::plaintext().await;
    srv.delay_answers(Duration::from_secs(5));
    let text = format!(
        "region: test-1\nchecks:\n  - name: slow\n    type: grpc\n    target: '{}'\n    every: 10s\n    timeout: 300ms\n",
        srv.target()
    );
    let config = vantage_agent::config::parse(Path::new("a.yaml"), &text, |_| None, None).unwrap();
    let started = Instant::now();
    let r = vantage_agent::scheduler::run_check(&config.checks[0]).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Timeout);
    assert_eq!(msg, "no result within 300ms");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(srv.calls(), 1, "the call reached the server");
}

#[tokio::test]
async fn servers_that_are_not_grpc_fail_with_protocol() {
    // An HTTP/1 server answers the HTTP/2 preface with an HTTP/1 error and closes; whether the agent reads the
    // answer before the close depends on timing, both are `protocol` naming the target.
    let h1 = TestServer::http1_only().await;
    for _ in 0..5 {
        let r = run(&format!("{{target: '{}'}}", h1.addr)).await;
        let (t, msg) = failure(&r);
        assert_eq!(t, ErrorType::Protocol, "{msg}");
        assert!(msg.starts_with(&h1.addr.to_string()), "{msg}");
        assert!(r.grpc.is_none());
    }
    // An HTTP/2 web server answers, but not in gRPC.
    let h2 = TestServer::http().await;
    let r = run(&format!("{{target: '{}'}}", h2.addr)).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Protocol, "{msg}");
    assert_eq!(
        msg,
        format!(
            "{} is not a gRPC server: HTTP/2 answer 404 with no content type",
            h2.addr
        )
    );
}

#[tokio::test]
async fn a_refused_connection_fails_with_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = run(&format!("{{target: '{addr}'}}")).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Connect);
    assert!(msg.contains(&format!("cannot connect to {addr}")), "{msg}");
    assert!(r.phases.get(Phase::Processing).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_exports_grpc_families_and_keeps_metadata_secret() {
    const SECRET: &str = "grpc-m3ta-9a8b7c";
    let srv = GrpcHealthServer::plaintext().await;
    srv.set("shop.Cart", grpc::ServingStatus::NotServing).await;
    let yaml = format!(
        r#"region: test-1
checks:
  - name: grpc-up
    type: grpc
    target: '{t}'
    every: 1s
    metadata: {{authorization: "Bearer {SECRET}"}}
  - name: grpc-cart
    type: grpc
    target: '{t}'
    service: shop.Cart
    every: 1s
  - name: grpc-basic
    type: grpc
    target: '{t}'
    every: 1s
    metrics: basic
"#,
        t = srv.target()
    );
    let a = spawn_agent(&yaml).await;
    eventually(15, "a result from every check", || async {
        let checks = a.checks().await;
        let all = checks["checks"].as_array().unwrap().clone();
        all.iter().all(|c| !c["last"].is_null()).then_some(())
    })
    .await;
    let (_, metrics) = a.get("/metrics").await;
    let l = |name: &str| format!(r#"region="test-1",endpoint="{name}",check_type="grpc""#);
    for line in [
        format!(
            "probe_grpc_healthcheck_response{{{},serving_status=\"SERVING\"}} 1",
            l("grpc-up")
        ),
        format!(
            "probe_grpc_healthcheck_response{{{},serving_status=\"NOT_SERVING\"}} 0",
            l("grpc-up")
        ),
        format!(
            "probe_grpc_healthcheck_response{{{},serving_status=\"NOT_SERVING\"}} 1",
            l("grpc-cart")
        ),
        format!("probe_grpc_status_code{{{}}} 0", l("grpc-up")),
        format!(
            "probe_grpc_duration_seconds{{{},phase=\"processing\"}} ",
            l("grpc-up")
        ),
        format!(
            "synthetic_request_failure_total{{{},error_type=\"assertion\"}} ",
            l("grpc-cart")
        ),
        format!("probe_success{{{}}} 1", l("grpc-basic")),
    ] {
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    assert!(!metrics.contains(&format!("probe_grpc_status_code{{{}}}", l("grpc-basic"))));
    assert!(!metrics.contains(&format!("probe_http_duration_seconds{{{}", l("grpc-up"))));
    let (ok, msg) = promtool_check(&metrics);
    assert!(ok, "promtool check metrics failed: {msg}\n{metrics}");
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", a.base))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        om.ends_with("# EOF\n") && om.contains("# TYPE probe_grpc_healthcheck_response gauge"),
        "{om}"
    );
    let (_, checks) = a.get("/api/v1/checks").await;
    for text in [&metrics, &om, &checks] {
        assert!(!text.contains(SECRET));
    }
}
