//! HTTP probe and exchange against real local servers: success, each failure class, phases, redirects, auth.

use std::time::Duration;
use vantage_agent::probe::http::exchange::{ClientOptions, ExchangeRequest, HttpClient, Session};
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_testkit::servers::TestServer;

fn probe(yaml: &str) -> Probe {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    Probe::new(&ProbeSpec::from_yaml("http", v).unwrap()).unwrap()
}

fn spec_err(yaml: &str) -> vantage_agent::probe::SpecError {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    match ProbeSpec::from_yaml("http", v) {
        Err(e) => e,
        Ok(spec) => Probe::new(&spec).err().expect("expected a spec error"),
    }
}

async fn run(yaml: &str) -> ProbeResult {
    probe(yaml).run().await
}

fn error_type(r: &ProbeResult) -> Option<ErrorType> {
    r.error.as_ref().map(|e| e.error_type)
}

#[tokio::test]
async fn ok_request_reports_status_version_and_phases() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/ok"))).await;
    assert!(r.success(), "{:?}", r.error);
    let http = r.http.unwrap();
    assert_eq!(
        (
            http.status,
            http.version,
            http.redirects,
            http.content_length
        ),
        (200, "HTTP/1.1", 0, 2)
    );
    assert!(
        r.phases.get(Phase::Resolve).is_none(),
        "no DNS for an IP literal"
    );
    assert!(r.phases.get(Phase::Tls).is_none(), "no TLS for http");
    for p in [Phase::Connect, Phase::Processing, Phase::Transfer] {
        assert!(r.phases.get(p).is_some(), "missing {p:?}");
    }
    assert!(r.tls.is_none());
}

#[tokio::test]
async fn hostname_target_has_resolve_phase() {
    let srv = TestServer::http().await;
    let r = run(&format!(
        "{{target: 'http://localhost:{}/ok', ip_version: ip4}}",
        srv.addr.port()
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.phases.get(Phase::Resolve).is_some());
    assert_eq!(r.dns_lookup, r.phases.get(Phase::Resolve));
}

#[tokio::test]
async fn closed_port_is_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(&format!("target: http://127.0.0.1:{port}/")).await;
    assert_eq!(error_type(&r), Some(ErrorType::Connect));
    assert!(r
        .error
        .unwrap()
        .message
        .contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test]
async fn unresolvable_name_is_dns_error() {
    let t = std::time::Instant::now();
    let r = run("target: http://no-such-host.invalid/").await;
    assert_eq!(error_type(&r), Some(ErrorType::Dns));
    assert!(r.error.unwrap().message.contains("no-such-host.invalid"));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn http_tcp_and_tls_probes_resolve_alike() {
    // One resolver for every probe that dials: the same error for an `.invalid` name, whichever the probe.
    for (check_type, target) in [
        ("http", "http://no-such-host.invalid:80/"),
        ("tcp", "no-such-host.invalid:80"),
        ("tls", "no-such-host.invalid:80"),
    ] {
        let v =
            serde_norway::Value::Mapping([("target".into(), target.into())].into_iter().collect());
        let r = Probe::new(&ProbeSpec::from_yaml(check_type, v).unwrap())
            .unwrap()
            .run()
            .await;
        let e = r.error.expect("an .invalid name cannot resolve");
        assert_eq!(e.error_type, ErrorType::Dns, "{check_type}");
        assert_eq!(
            e.message, "cannot resolve no-such-host.invalid: name does not exist (.invalid)",
            "{check_type}"
        );
    }
}

#[tokio::test]
async fn no_address_of_the_wanted_family_is_a_clear_dns_error() {
    let srv = TestServer::http().await;
    let r = run(&format!(
        "{{target: '{}', ip_version: ip6}}",
        srv.url("/ok")
    ))
    .await;
    let e = r.error.expect("127.0.0.1 has no IPv6 address");
    assert_eq!(e.error_type, ErrorType::Dns);
    assert_eq!(e.message, "127.0.0.1 has no IPv6 address (ip_version: ip6)");
    assert!(
        r.phases.get(Phase::Connect).is_none(),
        "nothing was dialled"
    );
}

#[tokio::test]
async fn unexpected_status_is_http_status_error() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/status/503"))).await;
    assert_eq!(
        r.error.as_ref().unwrap().message,
        "expected status 2xx, got 503"
    );
    assert_eq!(error_type(&r), Some(ErrorType::HttpStatus));
    assert_eq!(r.http.unwrap().status, 503);
    let r = run(&format!(
        "{{target: '{}', expected_status: [404, 5xx]}}",
        srv.url("/status/503")
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn slow_headers_show_in_processing() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/slow-headers/200"))).await;
    assert!(r.success(), "{:?}", r.error);
    let processing = r.phases.get(Phase::Processing).unwrap();
    let transfer = r.phases.get(Phase::Transfer).unwrap();
    assert!(
        processing >= Duration::from_millis(180) && processing < Duration::from_millis(1000),
        "{processing:?}"
    );
    assert!(transfer < Duration::from_millis(100), "{transfer:?}");
}

#[tokio::test]
async fn slow_body_shows_in_transfer() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/slow-body/200"))).await;
    assert!(r.success(), "{:?}", r.error);
    let processing = r.phases.get(Phase::Processing).unwrap();
    let transfer = r.phases.get(Phase::Transfer).unwrap();
    assert!(
        transfer >= Duration::from_millis(180) && transfer < Duration::from_millis(1000),
        "{transfer:?}"
    );
    assert!(processing < Duration::from_millis(100), "{processing:?}");
}

#[tokio::test]
async fn redirects_are_followed_counted_and_limited() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/redirect/3"))).await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.http.as_ref().unwrap().redirects, 3);
    assert_eq!(r.http.unwrap().status, 200);

    let r = run(&format!(
        "{{target: '{}', max_redirects: 2}}",
        srv.url("/redirect/3")
    ))
    .await;
    assert_eq!(error_type(&r), Some(ErrorType::Redirect));
    assert!(r.error.unwrap().message.contains("too many redirects"));

    let r = run(&format!(
        "{{target: '{}', follow_redirects: false, expected_status: 302}}",
        srv.url("/redirect/3")
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn redirect_loop_is_redirect_error() {
    let srv = TestServer::http().await;
    let r = run(&format!("target: {}", srv.url("/loop"))).await;
    assert_eq!(error_type(&r), Some(ErrorType::Redirect));
    assert!(r.error.unwrap().message.contains("redirect loop"));
}

#[tokio::test]
async fn body_too_large_stops_reading() {
    let srv = TestServer::http().await;
    // Content-Length announced larger than the limit.
    let r = run(&format!(
        "{{target: '{}', max_body_bytes: 1000}}",
        srv.url("/large/5000")
    ))
    .await;
    assert_eq!(error_type(&r), Some(ErrorType::BodyTooLarge));
    // No Content-Length (chunked): reading stops once the limit is crossed, even for a huge body.
    let r = run(&format!(
        "{{target: '{}', max_body_bytes: 100000}}",
        srv.url("/large-chunked/1000000000")
    ))
    .await;
    assert_eq!(error_type(&r), Some(ErrorType::BodyTooLarge));
    assert!(r.error.unwrap().message.contains("stopped reading"));
    // A body within the limit is read whole.
    let r = run(&format!(
        "{{target: '{}', max_body_bytes: 5000}}",
        srv.url("/large/5000")
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.http.unwrap().content_length, 5000);
}

#[tokio::test]
async fn method_headers_body_and_basic_auth_are_sent() {
    let srv = TestServer::http().await;
    let r = run(&format!(
        r#"
target: {}
method: post
headers: {{x-trace: abc}}
body: '{{"a":1}}'
basic_auth: {{username: alice, password: wonderland}}
assert:
  - {{json: $.method, equals: POST}}
  - {{json: $.body, equals: '{{"a":1}}'}}
  - {{json: "$.headers['x-trace']", equals: abc}}
  - {{json: "$.headers.authorization", equals: "Basic YWxpY2U6d29uZGVybGFuZA=="}}
"#,
        srv.url("/echo")
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
    let r = run(&format!(
        "{{target: '{}', bearer_token: t0k3n, assert: [{{json: $.headers.authorization, equals: 'Bearer t0k3n'}}]}}",
        srv.url("/echo")
    ))
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn assertions_pass() {
    let srv = TestServer::http().await;
    let cases = [
        ("/json", "{status: 200}"),
        ("/json", "{status: [201, 2xx]}"),
        ("/headers", "{header: x-id, exists: true}"),
        ("/headers", "{header: x-missing, exists: false}"),
        ("/headers", "{header: x-id, equals: abc123}"),
        ("/headers", "{header: content-type, matches: '^text/plain'}"),
        ("/ok", "{body_contains: ok}"),
        ("/json", r#"{body_regex: '"id":\d+'}"#),
        ("/json", "{json: $.status, equals: up}"),
        ("/json", "{json: $.id, equals: 42}"),
        ("/json", "{json: $.id, equals: '42'}"),
        ("/json", "{json: '$.items[1]', equals: 2}"),
        ("/json", "{json: $.name, exists: true}"),
        ("/json", "{json: $.nope, exists: false}"),
        ("/ok", "{duration_under: 2s}"),
        ("/ok", "{body_not_regex: 'error|fail'}"),
        ("/headers", "{header: content-type, not_matches: json}"),
        (
            "/headers",
            "{header: x-missing, matches: '.', allow_missing: true}",
        ),
        (
            "/headers",
            "{header: x-missing, not_matches: '.', allow_missing: true}",
        ),
        ("/ok", "{http_version: ['HTTP/1.1', 'HTTP/2.0']}"),
        ("/ok", "{tls: false}"),
    ];
    for (path, assertion) in cases {
        let r = run(&format!(
            "{{target: '{}', assert: [{assertion}]}}",
            srv.url(path)
        ))
        .await;
        assert!(r.success(), "{assertion} on {path}: {:?}", r.error);
    }
}

#[tokio::test]
async fn assertions_fail_with_specific_messages() {
    let srv = TestServer::http().await;
    let cases = [
        ("/json", "{status: 201}", "expected status 201, got 200"),
        (
            "/headers",
            "{header: x-missing, exists: true}",
            "expected header x-missing to be present, it is missing",
        ),
        (
            "/headers",
            "{header: x-id, exists: false}",
            "expected header x-id to be absent, got \"abc123\"",
        ),
        (
            "/headers",
            "{header: x-id, equals: nope}",
            "expected header x-id = \"nope\", got \"abc123\"",
        ),
        (
            "/headers",
            "{header: content-type, matches: json}",
            "expected header content-type to match /json/, got \"text/plain; charset=utf-8\"",
        ),
        (
            "/ok",
            "{body_contains: healthy}",
            "expected body to contain \"healthy\", got \"ok\"",
        ),
        (
            "/ok",
            "{body_regex: 'v\\d+'}",
            "expected body to match /v\\d+/, got \"ok\"",
        ),
        (
            "/json",
            "{body_not_regex: '\"status\":\\s*\"\\w+\"'}",
            "expected body not to match /\"status\":\\s*\"\\w+\"/, found \"\\\"status\\\":\\\"up\\\"\"",
        ),
        (
            "/headers",
            "{header: content-type, not_matches: text}",
            "expected header content-type not to match /text/, got \"text/plain; charset=utf-8\"",
        ),
        (
            "/headers",
            "{header: x-missing, not_matches: '.'}",
            "expected header x-missing not to match /./, header is missing",
        ),
        (
            "/ok",
            "{http_version: ['HTTP/2']}",
            "expected HTTP version HTTP/2, got HTTP/1.1",
        ),
        ("/ok", "{tls: true}", "expected the answer over TLS, got it over plain HTTP from http://127.0.0.1:"),
        (
            "/json",
            "{json: $.status, equals: down}",
            "expected $.status = \"down\", got \"\\\"up\\\"\"",
        ),
        (
            "/json",
            "{json: $.nope, equals: 1}",
            "expected $.nope = 1, path matched nothing",
        ),
        (
            "/json",
            "{json: $.nope, exists: true}",
            "expected $.nope to exist, path matched nothing",
        ),
        (
            "/json",
            "{json: $.id, exists: false}",
            "expected $.id to be absent, it matched 1 value(s)",
        ),
        (
            "/ok",
            "{json: $.id, exists: true}",
            "expected a JSON body, got \"ok\"",
        ),
        (
            "/slow-headers/100",
            "{duration_under: 50ms}",
            "expected response time under 50ms, took ",
        ),
        (
            "/ok",
            "{cert_valid_days: 14}",
            "expected a certificate valid for 14 days, but no certificate was presented",
        ),
    ];
    for (path, assertion, want) in cases {
        let r = run(&format!(
            "{{target: '{}', assert: [{assertion}]}}",
            srv.url(path)
        ))
        .await;
        let e = r
            .error
            .unwrap_or_else(|| panic!("{assertion} on {path} should fail"));
        assert_eq!(e.error_type, ErrorType::Assertion, "{assertion}");
        assert!(
            e.message.starts_with(want),
            "{assertion}: {:?} does not start with {want:?}",
            e.message
        );
    }
}

#[test]
fn config_errors_name_the_field() {
    let e = spec_err("{target: 'http://x/', bogus: 1}");
    assert!(e.message.contains("unknown field `bogus`"), "{e:?}");
    let e = spec_err("{target: 'http://x/', assert: [{status: 200}, {body_regex: '('}]}");
    assert_eq!(e.field, "assert[1].body_regex");
    let e = spec_err("{target: 'http://x/', assert: [{status: 200}, {header: a, nope: 1}]}");
    assert_eq!(e.field, "assert[1].nope", "{e:?}");
    let e = spec_err("{target: 'http://x/', expected_status: 9xx}");
    assert_eq!(e.field, "expected_status");
    let e = spec_err("target: 'ftp://x/'");
    assert_eq!(e.field, "target");
    let e = spec_err("{target: 'https://x/', tls: {ca_file: /nonexistent/ca.pem}}");
    assert_eq!(e.field, "tls.ca_file");
    let e = spec_err("{target: 'http://x/', ip_version: ip5}");
    assert_eq!(e.field, "ip_version");
    let e = spec_err("{target: 'http://x/', proxy_url: 'socks5://p:1'}");
    assert_eq!(e.field, "proxy_url");
}

#[tokio::test]
async fn hanging_server_exchange_is_cancellable() {
    let srv = TestServer::http().await;
    let p = probe(&format!("target: {}", srv.url("/hang")));
    let t = std::time::Instant::now();
    let out = tokio::time::timeout(Duration::from_millis(200), p.run()).await;
    assert!(out.is_err(), "the hanging request must not complete");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The server still answers others: nothing is wedged.
    assert!(run(&format!("target: {}", srv.url("/ok"))).await.success());
}

#[tokio::test]
async fn session_keeps_cookies_and_reuses_the_connection() {
    let srv = TestServer::http().await;
    let client = HttpClient::new(&ClientOptions::default()).unwrap();
    let mut session = Session::new();
    let url = |p: &str| srv.url(p).parse().unwrap();
    let first = client
        .exchange(ExchangeRequest::get(url("/set-cookie")), Some(&mut session))
        .await
        .unwrap();
    assert!(first.phases.get(Phase::Connect).is_some());
    let second = client
        .exchange(ExchangeRequest::get(url("/echo")), Some(&mut session))
        .await
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(echo["headers"]["cookie"], "session=s3cr3t");
    assert!(
        second.phases.get(Phase::Connect).is_none(),
        "reused connection has no connect phase"
    );
    assert_eq!(srv.connections(), 1);
    // Without a session every exchange connects anew and sends no cookie.
    let third = client
        .exchange(ExchangeRequest::get(url("/echo")), None)
        .await
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&third.body).unwrap();
    assert!(echo["headers"].get("cookie").is_none());
    assert_eq!(srv.connections(), 2);
}
