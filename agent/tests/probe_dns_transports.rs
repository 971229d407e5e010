//! DNS over UDP, TCP, TLS and HTTPS against the test kit's DNS server; `resolver` and `resolve_to` on HTTP
//! checks; Happy Eyeballs racing against a local address that never answers. Everything on 127.0.0.1 and ::1.

use std::net::SocketAddr;
use std::time::Duration;
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_testkit::blackhole::Blackhole;
use vantage_testkit::dns::DnsServer;
use vantage_testkit::servers::{TcpServer, TestServer};
use vantage_testkit::tls::TestPki;

/// One run, bounded as the scheduler would bound it: trying addresses one after another would hang on the
/// blackhole, and must fail the test rather than stall it.
async fn run(check_type: &str, yaml: &str) -> ProbeResult {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let spec = ProbeSpec::from_yaml(check_type, v).unwrap();
    let probe = Probe::new(&spec).unwrap();
    tokio::time::timeout(Duration::from_secs(5), probe.run())
        .await
        .unwrap_or_else(|_| panic!("{check_type} run did not finish in 5 s: {yaml}"))
}

fn spec_error(check_type: &str, yaml: &str) -> vantage_agent::probe::SpecError {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    match ProbeSpec::from_yaml(check_type, v) {
        Err(e) => e,
        Ok(spec) => Probe::new(&spec).err().expect("expected a config error"),
    }
}

fn failure(r: &ProbeResult) -> (ErrorType, String) {
    let e = r.error.clone().expect("expected a failure");
    (e.error_type, e.message)
}

const RECORDS: &[(&str, &str, &str)] = &[("api.test", "A", "127.0.0.7")];

#[tokio::test]
async fn every_transport_answers() {
    let pki = TestPki::new();
    let ca = pki.ca_file.display().to_string();
    let plain = DnsServer::start(RECORDS).await;
    let dot = DnsServer::start_tls(RECORDS, pki.valid_leaf().server_config_alpn(&[])).await;
    let doh = DnsServer::start_https(RECORDS, pki.valid_leaf().server_config_alpn(&[b"h2"])).await;
    let cases = [
        (format!("server: '{}'", plain.addr), &plain),
        (format!("server: '{}', transport: tcp", plain.addr), &plain),
        // The leaf is for 127.0.0.1 and localhost; an IP server is verified against its IP by default.
        (
            format!("server: '{}', transport: tls, tls: {{ca_file: '{ca}'}}", dot.addr),
            &dot,
        ),
        (
            format!(
                "server: '127.0.0.1:{}', transport: tls, tls: {{ca_file: '{ca}', server_name: localhost}}",
                dot.addr.port()
            ),
            &dot,
        ),
        (
            format!("server: '{}', transport: https, tls: {{ca_file: '{ca}'}}", doh.doh_url()),
            &doh,
        ),
        // A DoH server given by name is looked up with the system resolver (localhost: /etc/hosts).
        (
            format!(
                "server: 'https://localhost:{}/dns-query', transport: https, tls: {{ca_file: '{ca}'}}",
                doh.addr.port()
            ),
            &doh,
        ),
    ];
    for (server, srv) in cases {
        let before = srv.queries();
        let r = run(
            "dns",
            &format!("{{target: api.test, expect: [127.0.0.7], {server}}}"),
        )
        .await;
        assert!(r.success(), "{server}: {:?}", r.error);
        assert!(r.phases.get(Phase::Resolve).is_some(), "{server}");
        assert!(srv.queries() > before, "{server}: the server was asked");
    }
    // A wrong expectation over TLS is an assertion failure listing what came back.
    let yaml = format!(
        "{{target: api.test, server: '{}', transport: tls, tls: {{ca_file: '{ca}'}}, expect: [127.0.0.9]}}",
        dot.addr
    );
    let (t, msg) = failure(&run("dns", &yaml).await);
    assert_eq!(t, ErrorType::Assertion, "{msg}");
    assert!(msg.contains("127.0.0.7"), "{msg}");
}

#[tokio::test]
async fn an_untrusted_dns_server_fails_as_tls() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let dot = DnsServer::start_tls(RECORDS, pki.valid_leaf().server_config_alpn(&[])).await;
    let doh = DnsServer::start_https(RECORDS, pki.valid_leaf().server_config_alpn(&[b"h2"])).await;
    let wrong_ca = other.ca_file.display();
    for (transport, server) in [("tls", dot.addr.to_string()), ("https", doh.doh_url())] {
        let r = run(
            "dns",
            &format!("{{target: api.test, server: '{server}', transport: {transport}, tls: {{ca_file: '{wrong_ca}'}}}}"),
        )
        .await;
        let (t, msg) = failure(&r);
        assert_eq!(t, ErrorType::Tls, "{transport}: {msg}");
        assert!(msg.contains("certificate"), "{transport}: {msg}");
    }
    // Trusting anything works, as on HTTP checks.
    let r = run(
        "dns",
        &format!(
            "{{target: api.test, server: '{}', transport: tls, tls: {{insecure_skip_verify: true}}}}",
            dot.addr
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn dns_transport_config_errors_name_the_field() {
    let e = spec_error("dns", "{target: x, transport: quic}");
    assert_eq!(e.field, "transport", "{e}");
    let e = spec_error("dns", "{target: x, transport: tls}");
    assert_eq!(e.field, "server", "{e}");
    let e = spec_error("dns", "{target: x, server: dns.example}");
    assert_eq!(e.field, "server", "{e}");
    let e = spec_error(
        "dns",
        "{target: x, server: 'https://dns.example/dns-query', transport: https, tls: {ca_file: /nonexistent.pem}}",
    );
    assert_eq!(e.field, "tls.ca_file", "{e}");
    let e = spec_error("http", "{target: 'http://x/', resolve_to: {x: not-an-ip}}");
    assert_eq!(e.field, "resolve_to.x", "{e}");
    let e = spec_error(
        "http",
        "{target: 'http://x/', resolve_to: {'x:http': 127.0.0.1}}",
    );
    assert_eq!(e.field, "resolve_to.x:http", "{e}");
    let e = spec_error(
        "http",
        "{target: 'http://x/', resolver: {server: dns.example}}",
    );
    assert_eq!(e.field, "resolver.server", "{e}");
}

#[tokio::test]
async fn http_checks_resolve_with_their_own_resolver() {
    let dns = DnsServer::start(&[("shop.test", "A", "127.0.0.1")]).await;
    let srv = TestServer::http().await;
    let url = format!("http://shop.test:{}/ok", srv.addr.port());
    let r = run(
        "http",
        &format!("{{target: '{url}', resolver: '{}'}}", dns.addr),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.phases.get(Phase::Resolve).is_some());
    assert!(dns.queries() >= 1);
    // The long form, over TCP; and a name the server does not know is a dns failure naming it.
    let r = run(
        "http",
        &format!(
            "{{target: '{url}', resolver: {{server: '{}', transport: tcp}}}}",
            dns.addr
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    let r = run(
        "http",
        &format!(
            "{{target: 'http://gone.test:{}/ok', resolver: '{}'}}",
            srv.addr.port(),
            dns.addr
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Dns, "{msg}");
    assert!(msg.contains("gone.test"), "{msg}");
    // Workflow steps too, from the workflow's own keys.
    let r = run(
        "api_workflow",
        &format!(
            "{{resolver: '{}', resolve_to: {{pinned.test: 127.0.0.1}}, steps: [{{name: a, url: '{url}'}}, {{name: b, url: 'http://pinned.test:{}/ok'}}]}}",
            dns.addr,
            srv.addr.port()
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    // TCP checks take the same option.
    let tcp = TcpServer::start(Some("220 ready")).await;
    let r = run(
        "tcp",
        &format!(
            "{{target: 'shop.test:{}', resolver: '{}', expect: '^220'}}",
            tcp.addr.port(),
            dns.addr
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn resolve_to_pins_a_name_and_keeps_it_for_tls() {
    let pki = TestPki::new();
    let leaf = pki.leaf_with(
        &["api.pinned.test"],
        time::OffsetDateTime::now_utc() - time::Duration::days(1),
        time::OffsetDateTime::now_utc() + time::Duration::days(30),
        false,
    );
    let srv = TestServer::https(leaf.server_config()).await;
    let ca = pki.ca_file.display();
    let port = srv.addr.port();
    let url = format!("https://api.pinned.test:{port}/echo");
    let r = run(
        "http",
        &format!("{{target: '{url}', resolve_to: {{api.pinned.test: 127.0.0.1}}, tls: {{ca_file: '{ca}'}}}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(
        r.phases.get(Phase::Resolve).is_none(),
        "a pinned name needs no lookup"
    );
    assert!(r.tls.is_some());
    // host:port pins, and lists, work too.
    let r = run(
        "http",
        &format!("{{target: '{url}', resolve_to: {{'api.pinned.test:{port}': ['127.0.0.1']}}, tls: {{ca_file: '{ca}'}}}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    // The certificate is checked against the URL's name, not the pinned address: another name fails.
    let r = run(
        "http",
        &format!(
            "{{target: 'https://other.pinned.test:{port}/ok', resolve_to: {{other.pinned.test: 127.0.0.1}}, tls: {{ca_file: '{ca}'}}}}"
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls, "{msg}");
    assert!(msg.contains("other.pinned.test"), "{msg}");
    // TLS checks pin the same way.
    let r = run(
        "tls",
        &format!("{{target: 'api.pinned.test:{port}', resolve_to: {{api.pinned.test: 127.0.0.1}}, tls: {{ca_file: '{ca}'}}}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
}

/// HTTP and TCP servers on 127.0.0.1, each with a blackhole on the same port of ::1, the address the race starts
/// with. Where the machine has no IPv6 loopback, 127.0.0.2 stands in (same racing, one family) and a note says so.
async fn servers_with_blackholes() -> (TestServer, TcpServer, Vec<Blackhole>, &'static str) {
    let hole_ip: &'static str = if Blackhole::bind("[::1]:0".parse().unwrap()).await.is_some() {
        "::1"
    } else {
        eprintln!("no usable IPv6 loopback: racing 127.0.0.2 (blackholed) against 127.0.0.1");
        "127.0.0.2"
    };
    let beside = |port: u16| {
        let addr = SocketAddr::new(hole_ip.parse().unwrap(), port);
        Blackhole::bind(addr)
    };
    for _ in 0..20 {
        let http = TestServer::http().await;
        let Some(h) = beside(http.addr.port()).await else {
            continue;
        };
        let tcp = TcpServer::start(Some("220 ready")).await;
        let Some(t) = beside(tcp.addr.port()).await else {
            continue;
        };
        return (http, tcp, vec![h, t], hole_ip);
    }
    panic!("cannot set up a blackhole on {hole_ip} beside a test server");
}

#[tokio::test]
async fn happy_eyeballs_races_the_families() {
    let (http, tcp, _holes, hole) = servers_with_blackholes().await;
    let delay = Duration::from_millis(250);
    let connect = |r: &ProbeResult| r.phases.get(Phase::Connect).expect("connect phase");
    for (check_type, target) in [
        (
            "http",
            format!("'http://race.test:{}/ok'", http.addr.port()),
        ),
        ("tcp", format!("'race.test:{}'", tcp.addr.port())),
    ] {
        // IPv6 first (the first address's family), hanging: IPv4 starts after the attempt delay and wins.
        let r = run(
            check_type,
            &format!("{{target: {target}, resolve_to: {{race.test: ['{hole}', '127.0.0.1']}}}}"),
        )
        .await;
        assert!(r.success(), "{check_type}: {:?}", r.error);
        let took = connect(&r);
        assert!(
            took >= delay - Duration::from_millis(10) && took < delay * 3,
            "{check_type}: connect took {took:?}, expected about {delay:?}"
        );
        // IPv4 first: no wait.
        let r = run(
            check_type,
            &format!("{{target: {target}, resolve_to: {{race.test: ['127.0.0.1', '{hole}']}}}}"),
        )
        .await;
        assert!(r.success(), "{check_type}: {:?}", r.error);
        assert!(connect(&r) < delay, "{check_type}: {:?}", connect(&r));
        // An explicit family connects only over it: no wait for the hanging IPv6 address.
        if check_type == "http" && hole == "::1" {
            let r = run(
                check_type,
                &format!(
                    "{{target: {target}, ip_version: ip4, resolve_to: {{race.test: ['::1', '127.0.0.1']}}}}"
                ),
            )
            .await;
            assert!(r.success(), "{:?}", r.error);
            assert!(connect(&r) < delay, "{:?}", connect(&r));
        }
    }
}

#[tokio::test]
async fn a_refused_address_hands_over_at_once() {
    // Nothing listens on ::1 at this port: the refusal starts IPv4 without waiting for the delay.
    let srv = TestServer::http().await;
    let port = srv.addr.port();
    let r = run(
        "http",
        &format!("{{target: 'http://race.test:{port}/ok', resolve_to: {{race.test: ['::1', '127.0.0.1']}}}}"),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(
        r.phases.get(Phase::Connect).unwrap() < Duration::from_millis(200),
        "{:?}",
        r.phases.get(Phase::Connect)
    );
    // Every address refused: the error names them all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = run(
        "tcp",
        &format!(
            "{{target: 'race.test:{closed}', resolve_to: {{race.test: ['::1', '127.0.0.1']}}}}"
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Connect);
    assert!(
        msg.starts_with("cannot connect to any of 2 addresses: [::1]:")
            && msg.contains("127.0.0.1:"),
        "{msg}"
    );
}
