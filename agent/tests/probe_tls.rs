//! TLS through the HTTP probe and the handshake-only TLS probe, against real rustls servers with rcgen certs.

use std::time::{Duration, SystemTime};
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, Phase, ProbeResult};
use vantage_testkit::servers::TestServer;
use vantage_testkit::tls::TestPki;

async fn run(check_type: &str, yaml: &str) -> ProbeResult {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let spec = ProbeSpec::from_yaml(check_type, v).unwrap();
    Probe::new(&spec).unwrap().run().await
}

fn failure(r: &ProbeResult) -> (ErrorType, String) {
    let e = r.error.clone().expect("expected a failure");
    (e.error_type, e.message)
}

fn days_from_now(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::now()) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64),
    }
}

#[tokio::test]
async fn https_trusted_via_ca_file() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.valid_leaf().server_config()).await;
    let ca = pki.ca_file.display();
    let r = run(
        "http",
        &format!("{{target: '{}', tls: {{ca_file: '{ca}'}}}}", srv.url("/ok")),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    let tls = r.tls.clone().unwrap();
    assert_eq!(tls.version, "TLS 1.3");
    // The leaf (90 days) expires before the CA (10 years): earliest expiry is the leaf's.
    let days = days_from_now(tls.earliest_cert_expiry.unwrap());
    assert!((88..=90).contains(&days), "{days}");
    assert_eq!(
        r.http.as_ref().unwrap().version,
        "HTTP/2",
        "h2 negotiated by ALPN"
    );
    for p in [
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
        Phase::Transfer,
    ] {
        assert!(r.phases.get(p).is_some(), "missing {p:?}");
    }
    // By name too (DNS SAN `localhost`, resolve phase present).
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{ca_file: '{ca}'}}}}",
            srv.localhost_url("/ok")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert!(r.phases.get(Phase::Resolve).is_some());
}

#[tokio::test]
async fn http1_only_server_is_spoken_to_in_http1() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.valid_leaf().server_config_alpn(&[b"http/1.1"])).await;
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{ca_file: '{}'}}}}",
            srv.url("/ok"),
            pki.ca_file.display()
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.http.unwrap().version, "HTTP/1.1");
}

#[tokio::test]
async fn self_signed_rejected_without_ca_file() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.valid_leaf().server_config()).await;
    let r = run("http", &format!("target: {}", srv.url("/ok"))).await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    assert!(msg.contains("not trusted"), "{msg}");
}

#[tokio::test]
async fn expired_certificate_names_the_date() {
    let pki = TestPki::new();
    let leaf = pki.expired_leaf();
    let srv = TestServer::https(leaf.server_config()).await;
    let ca = pki.ca_file.display();
    let r = run(
        "http",
        &format!("{{target: '{}', tls: {{ca_file: '{ca}'}}}}", srv.url("/ok")),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    let date = leaf.not_after.date().to_string();
    assert!(
        msg.contains("expired 3 days ago") && msg.contains(&format!("(notAfter {date})")),
        "{msg}"
    );

    // insecure_skip_verify accepts it, and still reports when it expired.
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{insecure_skip_verify: true}}}}",
            srv.url("/ok")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(
        days_from_now(r.tls.unwrap().earliest_cert_expiry.unwrap()),
        -3
    );
}

#[tokio::test]
async fn wrong_host_certificate_is_rejected() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.wrong_host_leaf().server_config()).await;
    let ca = pki.ca_file.display();
    let r = run(
        "http",
        &format!("{{target: '{}', tls: {{ca_file: '{ca}'}}}}", srv.url("/ok")),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    assert!(msg.contains("not valid for host 127.0.0.1"), "{msg}");
    // server_name makes SNI and verification use the certificate's name.
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{ca_file: '{ca}', server_name: wrong.example}}}}",
            srv.url("/ok")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
}

#[tokio::test]
async fn cert_valid_days_assertion() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.leaf_expiring_in(10).server_config()).await;
    let ca = pki.ca_file.display();
    let target = srv.url("/ok");
    let r = run(
        "http",
        &format!(
            "{{target: '{target}', tls: {{ca_file: '{ca}'}}, assert: [{{cert_valid_days: 7}}]}}"
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    let r = run(
        "http",
        &format!(
            "{{target: '{target}', tls: {{ca_file: '{ca}'}}, assert: [{{cert_valid_days: 14}}]}}"
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(
        msg.starts_with("expected certificate valid for at least 14 days, it expires in 9 days"),
        "{msg}"
    );
}

#[tokio::test]
async fn client_certificate_for_mutual_tls() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.mtls_server_config(&pki.valid_leaf())).await;
    let (cert, key) = pki.client_leaf().write(pki.dir.path(), "client");
    let ca = pki.ca_file.display();
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{ca_file: '{ca}', client_cert: '{}', client_key: '{}'}}}}",
            srv.url("/ok"),
            cert.display(),
            key.display()
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    let r = run(
        "http",
        &format!("{{target: '{}', tls: {{ca_file: '{ca}'}}}}", srv.url("/ok")),
    )
    .await;
    assert!(
        !r.success(),
        "a server requiring a client certificate must refuse us without one"
    );
}

#[tokio::test]
async fn tls_only_probe() {
    let pki = TestPki::new();
    let ca = pki.ca_file.display();
    let good = TestServer::https(pki.valid_leaf().server_config()).await;
    let r = run(
        "tls",
        &format!(
            "{{target: '127.0.0.1:{}', tls: {{ca_file: '{ca}'}}}}",
            good.addr.port()
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.tls.as_ref().unwrap().version, "TLS 1.3");
    assert!(r.phases.get(Phase::Tls).unwrap() < Duration::from_secs(2));
    assert!(r.http.is_none());

    let r = run(
        "tls",
        &format!(
            "{{target: 'localhost:{}', tls: {{ca_file: '{ca}'}}, cert_valid_days: 120}}",
            good.addr.port()
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    assert!(msg.contains("less than cert_valid_days 120"), "{msg}");

    let expired = TestServer::https(pki.expired_leaf().server_config()).await;
    let r = run(
        "tls",
        &format!(
            "{{target: '127.0.0.1:{}', tls: {{ca_file: '{ca}'}}}}",
            expired.addr.port()
        ),
    )
    .await;
    assert!(failure(&r).1.contains("expired 3 days ago"));

    let wrong = TestServer::https(pki.wrong_host_leaf().server_config()).await;
    let r = run(
        "tls",
        &format!(
            "{{target: 'localhost:{}', tls: {{ca_file: '{ca}'}}}}",
            wrong.addr.port()
        ),
    )
    .await;
    assert!(failure(&r).1.contains("not valid for host localhost"));

    let r = run("tls", &format!("target: '127.0.0.1:{}'", good.addr.port())).await;
    assert!(failure(&r).1.contains("not trusted"));
}

#[tokio::test]
async fn proxy_connect_for_https_and_absolute_form_for_http() {
    use vantage_testkit::servers::ProxyServer;
    let pki = TestPki::new();
    let https = TestServer::https(pki.valid_leaf().server_config()).await;
    let http = TestServer::http().await;
    let proxy = ProxyServer::start().await;
    let ca = pki.ca_file.display();
    let p = format!("http://{}", proxy.addr);
    let r = run(
        "http",
        &format!(
            "{{target: '{}', proxy_url: '{p}', tls: {{ca_file: '{ca}'}}}}",
            https.url("/ok")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(proxy.requests(), 1);
    let r = run(
        "http",
        &format!(
            "{{target: '{}', proxy_url: '{p}', assert: [{{json: $.path, equals: /echo}}]}}",
            http.url("/echo")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(proxy.requests(), 2);
    // no_proxy bypasses it.
    let r = run(
        "http",
        &format!(
            "{{target: '{}', proxy_url: '{p}', no_proxy: [127.0.0.1]}}",
            http.url("/ok")
        ),
    )
    .await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(proxy.requests(), 2);
}

/// With verification off, a certificate that expired 30 days ago fails `cert_valid_days` saying so: the
/// remaining time is negative, where it used to say "expires in 0 days" (issue #17).
#[tokio::test]
async fn cert_valid_days_reports_a_long_expired_certificate_as_expired() {
    let pki = TestPki::new();
    let srv = TestServer::https(pki.leaf_expired_days_ago(30).server_config()).await;
    let r = run(
        "http",
        &format!(
            "{{target: '{}', tls: {{insecure_skip_verify: true}}, assert: [{{cert_valid_days: 14}}]}}",
            srv.url("/ok")
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Assertion);
    assert!(
        msg.starts_with(
            "expected certificate valid for at least 14 days, it expired 30 days ago (notAfter "
        ),
        "{msg}"
    );
    assert_eq!(
        days_from_now(r.tls.unwrap().earliest_cert_expiry.unwrap()),
        -30
    );
    let r = run(
        "tls",
        &format!(
            "{{target: '127.0.0.1:{}', tls: {{insecure_skip_verify: true}}, cert_valid_days: 14}}",
            srv.addr.port()
        ),
    )
    .await;
    let (t, msg) = failure(&r);
    assert_eq!(t, ErrorType::Tls);
    assert!(
        msg.contains("127.0.0.1 expired 30 days ago (notAfter ")
            && msg.ends_with("less than cert_valid_days 14"),
        "{msg}"
    );
}
