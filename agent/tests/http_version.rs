//! `http_version` on HTTP checks and workflows against real servers: unset keeps HTTP/1.1 (h2 when TLS ALPN agrees),
//! `"1.1"` stays on HTTP/1.1, `"2"` speaks HTTP/2 by prior knowledge over cleartext (hyper's h2c server) and by ALPN
//! `h2` alone over TLS, and fails with a clear `protocol` error where the server does not speak it; `"3"` speaks
//! HTTP/3 over QUIC to the testkit's quinn + h3 server, every run through the agent's one QUIC endpoint.

use std::sync::Arc;
use std::time::Duration;
use vantage_agent::config::CheckConfig;
use vantage_agent::metrics::Metrics;
use vantage_agent::probe::workflow::{Workflow, WorkflowSpec};
use vantage_agent::probe::{Probe, ProbeSpec, Runner};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_agent::schedule::Schedule;
use vantage_testkit::h3::H3Server;
use vantage_testkit::servers::{TcpServer, TestServer};
use vantage_testkit::tls::TestPki;

async fn run(yaml: &str) -> ProbeResult {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    Probe::new(&ProbeSpec::from_yaml("http", v).unwrap())
        .unwrap()
        .run()
        .await
}

fn version(r: &ProbeResult) -> &str {
    assert!(r.success(), "{:?}", r.error);
    r.http.as_ref().unwrap().version
}

#[tokio::test]
async fn cleartext_http2_by_prior_knowledge_only_when_asked() {
    let srv = TestServer::http().await;
    let url = srv.url("/redirect/1");
    assert_eq!(version(&run(&format!("target: {url}")).await), "HTTP/1.1");
    assert_eq!(
        version(&run(&format!("{{target: {url}, http_version: \"1.1\"}}")).await),
        "HTTP/1.1"
    );
    // Unquoted YAML numbers work too; redirects stay on HTTP/2.
    let h2 = run(&format!("{{target: {url}, http_version: 2}}")).await;
    assert_eq!(version(&h2), "HTTP/2");
    assert_eq!(h2.http.as_ref().unwrap().redirects, 1);
}

#[tokio::test]
async fn http2_over_tls_needs_alpn_h2() {
    let pki = TestPki::new();
    let ca = pki.ca_file.display().to_string();
    let both = TestServer::https(pki.valid_leaf().server_config()).await;
    let check = |url: String, v: &str| format!("{{target: '{url}', tls: {{ca_file: '{ca}'}}{v}}}");
    assert_eq!(version(&run(&check(both.url("/ok"), "")).await), "HTTP/2");
    assert_eq!(
        version(&run(&check(both.url("/ok"), ", http_version: '1.1'")).await),
        "HTTP/1.1"
    );
    assert_eq!(
        version(&run(&check(both.url("/ok"), ", http_version: '2'")).await),
        "HTTP/2"
    );
    // A TLS server without ALPN: HTTP/1.1 by default, a clear failure when HTTP/2 is required.
    let no_alpn = TestServer::https(pki.valid_leaf().server_config_alpn(&[])).await;
    assert_eq!(
        version(&run(&check(no_alpn.url("/ok"), "")).await),
        "HTTP/1.1"
    );
    let r = run(&check(no_alpn.url("/ok"), ", http_version: '2'")).await;
    let e = r.error.expect("no h2, no success");
    assert_eq!(e.error_type, ErrorType::Protocol, "{e}");
    assert!(e.message.contains("did not agree to HTTP/2"), "{e}");
    // A server that offers only http/1.1 refuses the handshake outright (no common protocol).
    let h1 = TestServer::https(pki.valid_leaf().server_config_alpn(&[b"http/1.1"])).await;
    let r = run(&check(h1.url("/ok"), ", http_version: '2'")).await;
    assert!(!r.success());
}

#[tokio::test]
async fn http2_to_a_server_that_does_not_speak_it_fails_clearly() {
    // A line-echo server: it answers the HTTP/2 preface with text.
    let srv = TcpServer::start(None).await;
    let r = run(&format!(
        "{{target: 'http://{}/', http_version: '2'}}",
        srv.addr
    ))
    .await;
    let e = r.error.expect("not HTTP/2");
    assert_eq!(e.error_type, ErrorType::Protocol, "{e}");
    assert!(e.message.contains("h2c"), "{e}");
}

#[tokio::test]
async fn versions_are_validated_and_workflows_take_one_too() {
    for (v, needle) in [
        ("'1.0'", "unknown HTTP version"),
        ("[2]", "unknown HTTP version"),
    ] {
        let value: serde_norway::Value =
            serde_norway::from_str(&format!("{{target: 'http://x/', http_version: {v}}}")).unwrap();
        let e = ProbeSpec::from_yaml("http", value).expect_err("refused");
        assert_eq!(e.field, "http_version", "{e}");
        assert!(e.message.contains(needle), "{e}");
    }
    let srv = TestServer::http().await;
    let spec = WorkflowSpec::from_yaml(
        serde_norway::from_str(&format!(
            "http_version: '2'\nsteps:\n  - {{name: one, url: '{}'}}\n  - {{name: two, url: '{}'}}\n",
            srv.url("/json"),
            srv.url("/ok")
        ))
        .unwrap(),
    )
    .unwrap();
    let r = Workflow::new(&spec).unwrap().run().await;
    assert_eq!(version(&r), "HTTP/2");
    // Both steps shared one HTTP/2 connection.
    assert_eq!(srv.connections(), 1);
}

#[tokio::test]
async fn http3_over_quic_with_phases_tls_facts_redirects_and_trace_context() {
    let pki = TestPki::new();
    let srv = H3Server::start(&pki.valid_leaf()).await;
    let ca = pki.ca_file.display();
    // By name (resolve phase, DNS SAN); ip4 because the server listens on 127.0.0.1 and QUIC tries one address.
    let r = run(&format!(
        "{{target: '{}', http_version: '3', ip_version: ip4, tls: {{ca_file: '{ca}'}}}}",
        srv.localhost_url("/redirect/2")
    ))
    .await;
    assert_eq!(version(&r), "HTTP/3");
    let http = r.http.as_ref().unwrap();
    assert_eq!(
        (http.status, http.redirects, http.content_length),
        (200, 2, 2)
    );
    let tls = r.tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLS 1.3");
    assert!(tls.earliest_cert_expiry.is_some());
    // The QUIC handshake is one `connect` phase (transport and TLS together); no `tls` phase.
    for p in [
        Phase::Resolve,
        Phase::Connect,
        Phase::Processing,
        Phase::Transfer,
    ] {
        assert!(r.phases.get(p).is_some(), "missing {p:?}: {:?}", r.phases);
    }
    assert_eq!(r.phases.get(Phase::Tls), None);
    // probe_http_version reports 3, as blackbox_exporter does.
    let metrics = Metrics::new();
    let check = CheckConfig::new(
        "h3",
        "http",
        Schedule::Every(Duration::from_secs(10)),
        Runner::new(|| Box::pin(async { ProbeResult::default() })),
    );
    metrics.add_check("eu", &check).record(&Arc::new(r.clone()));
    let text = metrics.encode();
    assert!(
        text.lines()
            .any(|l| l.starts_with("probe_http_version{") && l.ends_with("} 3.0")),
        "{text}"
    );
    // Every request carried the run's trace.
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let trace = r.trace_id.unwrap().to_hex();
    for q in &reqs {
        let tp = q.header("traceparent").unwrap();
        assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");
    }
    // Status failures and untrusted certificates fail as they do over TCP.
    let r = run(&format!(
        "{{target: '{}', http_version: '3', tls: {{ca_file: '{ca}'}}}}",
        srv.url("/status/503")
    ))
    .await;
    assert_eq!(r.error.unwrap().error_type, ErrorType::HttpStatus);
    assert_eq!(r.http.unwrap().status, 503);
    let r = run(&format!(
        "{{target: '{}', http_version: '3'}}",
        srv.url("/ok")
    ))
    .await;
    let e = r.error.expect("self-signed CA not trusted");
    assert_eq!(e.error_type, ErrorType::Tls, "{e}");
    // HTTP/3 needs https and no proxy: config errors naming the field.
    for (yaml, field) in [
        ("{target: 'http://x/', http_version: 3}", "http_version"),
        (
            "{target: 'https://x/', http_version: 3, proxy_url: 'http://127.0.0.1:1'}",
            "proxy_url",
        ),
    ] {
        let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let e = Probe::new(&ProbeSpec::from_yaml("http", v).unwrap())
            .err()
            .expect("refused");
        assert_eq!(e.field, field, "{e}");
    }
}

/// Every HTTP/3 run goes out through the agent's one QUIC endpoint, whichever runtime runs it: the target sees one
/// client address for runs in parallel and in sequence (an endpoint per run shows one per run), and a runtime
/// that has ended does not take the endpoint with it (the agent's probes, tests and benches each run their own).
#[test]
fn http3_runs_share_one_quic_endpoint_across_runtimes() {
    let pki = TestPki::new();
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let srv = server_rt.block_on(H3Server::start(&pki.valid_leaf()));
    let yaml = format!(
        "{{target: '{}', http_version: '3', tls: {{ca_file: '{}'}}}}",
        srv.url("/ok"),
        pki.ca_file.display()
    );
    for round in 0..3 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let results = rt.block_on(futures::future::join_all((0..5).map(|_| run(&yaml))));
        for r in results {
            assert!(r.success(), "round {round}: {:?}", r.error);
        }
    }
    assert_eq!(srv.requests().len(), 15);
    let clients = srv.client_addrs();
    assert_eq!(
        clients.len(),
        1,
        "one client endpoint expected: {clients:?}"
    );
}

/// A server may answer before it has read the whole request and stop the client's sending (RFC 9114, 4.1.1): the
/// response counts. 4 MB is more than QUIC flow control lets the client send before the server reads any of it,
/// so the client's sending is always cut (this is what failed about one HTTP/3 run in a thousand in the bench).
#[tokio::test]
async fn http3_a_response_sent_before_the_request_body_is_read_counts() {
    let pki = TestPki::new();
    let srv = H3Server::start(&pki.valid_leaf()).await;
    let r = run(&format!(
        "{{target: '{}', method: POST, body: '{}', http_version: '3', tls: {{ca_file: '{}'}}}}",
        srv.url("/early"),
        "x".repeat(4 << 20),
        pki.ca_file.display()
    ))
    .await;
    assert_eq!(version(&r), "HTTP/3");
    assert_eq!(r.http.unwrap().status, 200);
}

/// A step may speak another HTTP version than its workflow (here HTTP/3 between two HTTP/1.1 steps): it gets a
/// client of its own version, and connections are kept per origin and version. A bad version names the step.
#[tokio::test]
async fn a_workflow_step_takes_its_own_http_version() {
    let pki = TestPki::new();
    let h3 = H3Server::start(&pki.valid_leaf()).await;
    let srv = TestServer::http().await;
    let yaml = |two: &str| {
        format!(
            "tls: {{ca_file: '{}'}}\nsteps:\n  - {{name: one, url: '{}'}}\n  - {{name: two, url: '{}', http_version: {two}}}\n  - {{name: three, url: '{}'}}\n",
            pki.ca_file.display(),
            srv.url("/ok"),
            h3.url("/ok"),
            srv.url("/json")
        )
    };
    let spec = WorkflowSpec::from_yaml(serde_norway::from_str(&yaml("'3'")).unwrap()).unwrap();
    let r = Workflow::new(&spec).unwrap().run().await;
    assert!(r.success(), "{:?}", r.error);
    assert!(
        r.steps.iter().all(|s| s.status == Some(200)),
        "{:?}",
        r.steps
    );
    assert_eq!(h3.requests().len(), 1);
    // Steps one and three shared one HTTP/1.1 connection.
    assert_eq!(srv.requests().len(), 2);
    assert_eq!(srv.connections(), 1);
    let e = WorkflowSpec::from_yaml(serde_norway::from_str(&yaml("'4'")).unwrap())
        .expect_err("refused");
    assert_eq!(e.field, "steps[1].http_version", "{e}");
    assert!(e.message.contains("unknown HTTP version"), "{e}");
}
