//! TCP and DNS probes against a local banner/echo server and a local authoritative DNS server.

use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_testkit::servers::{DnsServer, TcpServer};

async fn run(check_type: &str, yaml: &str) -> ProbeResult {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let spec = ProbeSpec::from_yaml(check_type, v).unwrap();
    Probe::new(&spec).unwrap().run().await
}

fn failure(r: &ProbeResult) -> (ErrorType, String) {
    let e = r.error.clone().expect("expected a failure");
    (e.error_type, e.message)
}

#[tokio::test]
async fn tcp_connect_banner_and_send_expect() {
    let srv = TcpServer::start(Some("220 vantage ready")).await;
    let target = srv.addr;
    let r = run("tcp", &format!("target: '{target}'")).await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.phases.get(Phase::Connect).is_some());

    let r = run("tcp", &format!("{{target: '{target}', expect: '^220 '}}")).await;
    assert!(r.success(), "{:?}", r.error);

    let r = run(
        "tcp",
        &format!("{{target: '{target}', send: PING, expect: 'echo: PING'}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);

    let r = run(
        "tcp",
        &format!("{{target: '{target}', send: PING, expect: 'PONG', max_read_bytes: 16}}"),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(
        msg.starts_with("expected reply matching /PONG/, got"),
        "{msg}"
    );
}

#[tokio::test]
async fn tcp_closed_port_and_bad_target() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = run("tcp", &format!("target: '127.0.0.1:{port}'")).await;
    assert_eq!(failure(&r).0, ErrorType::Connect);
    let r = run("tcp", "target: 'nothing.invalid:25'").await;
    assert_eq!(failure(&r).0, ErrorType::Dns);
    let v: serde_norway::Value = serde_norway::from_str("target: no-port").unwrap();
    let err = Probe::new(&ProbeSpec::from_yaml("tcp", v).unwrap())
        .err()
        .unwrap();
    assert_eq!(err.field, "target");
}

#[tokio::test]
async fn dns_records_and_expectations() {
    let dns = DnsServer::start(&[
        ("api.test", "A", "127.0.0.7"),
        ("api.test", "A", "127.0.0.8"),
        ("api.test", "AAAA", "::1"),
        ("api.test", "TXT", "v=spf1 -all"),
        ("api.test", "MX", "10 mail.test."),
    ])
    .await;
    let server = dns.addr;
    let base = format!("target: api.test, server: '{server}'");
    let r = run(
        "dns",
        &format!("{{{base}, expect: [127.0.0.7, 127.0.0.8]}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.dns_lookup.is_some());
    for (rt, value) in [
        ("AAAA", "::1"),
        ("TXT", "v=spf1 -all"),
        ("MX", "10 mail.test"),
    ] {
        let r = run(
            "dns",
            &format!("{{{base}, record_type: {rt}, expect: ['{value}']}}"),
        )
        .await;
        assert!(r.success(), "{rt}: {:?}", r.error);
    }
    let r = run("dns", &format!("{{{base}, expect: [127.0.0.9]}}")).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(
        msg.contains("127.0.0.9") && msg.contains("127.0.0.7"),
        "{msg}"
    );

    let r = run(
        "dns",
        &format!("{{target: missing.test, server: '{server}'}}"),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Dns);
    assert!(msg.contains("missing.test"), "{msg}");
    assert!(dns.queries() >= 6, "every run asks the server (no cache)");

    let v: serde_norway::Value = serde_norway::from_str("{target: x, record_type: BOGUS}").unwrap();
    let err = Probe::new(&ProbeSpec::from_yaml("dns", v).unwrap())
        .err()
        .unwrap();
    assert_eq!(err.field, "record_type");
}
