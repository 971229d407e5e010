//! JWT minting in workflow steps: tokens signed with keys made here (HS256, RS256, ES256) are accepted by the
//! demo API; a token signed with the wrong key is refused, failing the step with the API's 401.

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::io::Write;
use vantage_agent::probe::workflow::{Workflow, WorkflowSpec};
use vantage_agent::result::ErrorType;
use vantage_testkit::demo_api::{self, DemoApiConfig};

/// Small keys: RSA key generation is slow in unoptimised test builds, and strength does not matter here.
const RSA_BITS: usize = 1024;

/// A workflow that creates and deletes an assignment with a minted service token.
fn minting_workflow(base: &str, jwt: &str) -> Workflow {
    let yaml = format!(
        r#"
variables: {{base: "{base}"}}
steps:
  - name: create
    method: POST
    url: "{{{{base}}}}/v1/assignments"
    auth: {{jwt: {jwt}}}
    json: {{title: "minted {{{{uuid}}}}", assignee: svc}}
    expect_status: 201
    extract: {{id: "$.id"}}
teardown:
  - name: delete
    method: DELETE
    url: "{{{{base}}}}/v1/assignments/{{{{id}}}}"
    auth: {{jwt: {jwt}}}
"#
    );
    let spec = WorkflowSpec::from_yaml(serde_norway::from_str(&yaml).unwrap()).unwrap();
    Workflow::new(&spec).unwrap()
}

#[tokio::test]
async fn hs256_tokens_with_the_shared_secret_are_accepted() {
    let api = demo_api::spawn(DemoApiConfig {
        service_hs256_secret: Some("shared-hs256-secret".into()),
        ..Default::default()
    });
    let jwt = "{algorithm: HS256, key: shared-hs256-secret, claims: {sub: synthetic, aud: demo, run: '{{uuid}}'}, expires_in: 1m}";
    let r = minting_workflow(&api.url(), jwt).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(r.steps[0].status, Some(201));
    assert_eq!(api.store_len(), 0);

    let wrong = "{algorithm: HS256, key: not-the-secret, claims: {sub: synthetic, aud: demo}}";
    let r = minting_workflow(&api.url(), wrong).run().await;
    let e = r.error.unwrap();
    assert_eq!(e.error_type, ErrorType::HttpStatus);
    assert!(
        e.message
            .starts_with("step create: expected status 201, got 401"),
        "{}",
        e.message
    );
    assert!(e.message.contains("invalid token"), "{}", e.message);
    // Wrong audience: the API checks `aud`.
    let r = minting_workflow(
        &api.url(),
        "{algorithm: HS256, key: shared-hs256-secret, claims: {aud: other}}",
    )
    .run()
    .await;
    assert!(r.error.unwrap().message.contains("got 401"));
    assert_eq!(api.store_len(), 0);
}

#[tokio::test]
async fn rs256_tokens_from_a_key_file_are_accepted() {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).unwrap();
    let private_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(private_pem.as_bytes()).unwrap();
    let api = demo_api::spawn(DemoApiConfig {
        service_rs256_public_pem: Some(public_pem),
        ..Default::default()
    });
    let jwt = format!(
        "{{algorithm: RS256, key_file: '{}', claims: {{sub: synthetic, aud: demo}}, kid: test-key}}",
        file.path().display()
    );
    let r = minting_workflow(&api.url(), &jwt).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(api.store_len(), 0);

    // Another RSA key is refused.
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).unwrap();
    let other_pem = other.to_pkcs8_pem(LineEnding::LF).unwrap();
    let mut other_file = tempfile::NamedTempFile::new().unwrap();
    other_file.write_all(other_pem.as_bytes()).unwrap();
    let jwt = format!(
        "{{algorithm: RS256, key_file: '{}', claims: {{aud: demo}}}}",
        other_file.path().display()
    );
    let r = minting_workflow(&api.url(), &jwt).run().await;
    assert!(r.error.unwrap().message.contains("got 401"));
}

#[tokio::test]
async fn es256_tokens_are_accepted() {
    let key = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256, PKCS#8
    let api = demo_api::spawn(DemoApiConfig {
        service_es256_public_pem: Some(key.public_key_pem()),
        ..Default::default()
    });
    let pem = key.serialize_pem().replace('\n', "\\n");
    let jwt =
        format!("{{algorithm: ES256, key: \"{pem}\", claims: {{sub: synthetic, aud: demo}}}}");
    let r = minting_workflow(&api.url(), &jwt).run().await;
    assert!(r.success(), "{:?}", r.error);
    assert_eq!(api.store_len(), 0);
}

#[test]
fn bad_keys_are_config_errors() {
    let parse = |jwt: &str| {
        let yaml =
            format!("steps: [{{name: a, url: 'http://127.0.0.1:9/', auth: {{jwt: {jwt}}}}}]");
        WorkflowSpec::from_yaml(serde_norway::from_str(&yaml).unwrap()).unwrap_err()
    };
    let e = parse("{algorithm: RS256, key: not-a-pem}");
    assert_eq!(e.field, "steps[0].auth.jwt");
    assert!(
        e.message.contains("not an RSA private key"),
        "{}",
        e.message
    );
    let e = parse("{algorithm: ES256, key_file: /nonexistent/k.pem}");
    assert!(e.message.contains("cannot read key_file"), "{}", e.message);
    let e = parse("{algorithm: HS256, key: k, claims: {sub: '{{who}}'}}");
    assert_eq!(e.field, "steps[0].auth");
    assert!(
        e.message.contains("unknown variable `{{who}}`"),
        "{}",
        e.message
    );
}
