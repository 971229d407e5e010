//! Site tokens (EdDSA JWT) instead of API keys, and the attacks they must survive.

mod support;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use support::*;

struct Keys {
    private_pem: String,
    public_pem: String,
}

fn ed25519() -> Keys {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Keys {
        private_pem: kp.serialize_pem(),
        public_pem: kp.public_key_pem(),
    }
}

fn ed_token(k: &Keys, claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_pem(k.private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[tokio::test]
async fn site_tokens_and_jwt_attacks() {
    let keys = ed25519();
    let indented: String = keys
        .public_pem
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let db = TestDb::new(Backend::Sqlite).await;
    let app = spawn_app(
        &db,
        &Opts {
            extra: format!("site_tokens:\n  algorithm: EdDSA\n  public_key: |\n{indented}"),
            ..Opts::default()
        },
    )
    .await;
    let body = json!({"events": [page_load("s", "https://shop.example.com/", 100.0)]}).to_string();
    let send = |token: String, origin: Option<&'static str>| {
        let mut rb = app.events().bearer_auth(token).body(body.clone());
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        rb.send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();

    // A token issued after the server started works without a restart (stateless verification).
    let good = ed_token(&keys, json!({"site": "shop", "exp": exp(600)}));
    assert_eq!(status(send(good.clone(), Some(ORIGIN)).await.unwrap()), 202);
    assert_eq!(status(send(good, None).await.unwrap()), 202);
    // Token origins restrict further.
    let narrow = ed_token(
        &keys,
        json!({"site": "shop", "origins": ["https://eu.shop.example.com"], "exp": exp(600)}),
    );
    assert_eq!(
        status(
            send(narrow.clone(), Some("https://eu.shop.example.com"))
                .await
                .unwrap()
        ),
        202
    );
    assert_eq!(status(send(narrow, Some(ORIGIN)).await.unwrap()), 403);

    // Expired.
    let expired = ed_token(&keys, json!({"site": "shop", "exp": exp(-3600)}));
    let r = send(expired, None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));
    // Signed by another key.
    let other = ed25519();
    let forged = ed_token(&other, json!({"site": "shop", "exp": exp(600)}));
    assert_eq!(status(send(forged, None).await.unwrap()), 401);
    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(json!({"site": "shop", "exp": exp(600)})
            .to_string()
            .as_bytes())
    );
    assert_eq!(status(send(none, None).await.unwrap()), 401);
    // Wrong algorithm: HS256 "signed" with the public key as the secret (key confusion).
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &json!({"site": "shop", "exp": exp(600)}),
        &EncodingKey::from_secret(keys.public_pem.as_bytes()),
    )
    .unwrap();
    let r = send(confused, None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("algorithm"));
    // Unknown site; garbage.
    let stranger = ed_token(&keys, json!({"site": "nope", "exp": exp(600)}));
    assert_eq!(status(send(stranger, None).await.unwrap()), 401);
    assert_eq!(status(send("a.b.c".into(), None).await.unwrap()), 401);
    // No exp at all.
    let forever = ed_token(&keys, json!({"site": "shop"}));
    assert_eq!(status(send(forever, None).await.unwrap()), 401);
    // Not valid yet (nbf a day ahead), or issued a day in the future (iat): refused (issue #17).
    let later = ed_token(
        &keys,
        json!({"site": "shop", "nbf": exp(86_400), "exp": exp(2 * 86_400)}),
    );
    let r = send(later, None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not valid yet"));
    let future_iat = ed_token(
        &keys,
        json!({"site": "shop", "iat": exp(86_400), "exp": exp(2 * 86_400)}),
    );
    let r = send(future_iat, None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("issued in the future"));
    // Within the clock leeway (30 s), both are accepted, as is a token issued a while ago.
    let skewed = ed_token(
        &keys,
        json!({"site": "shop", "nbf": exp(10), "iat": exp(10), "exp": exp(600)}),
    );
    assert_eq!(status(send(skewed, None).await.unwrap()), 202);
    let older = ed_token(
        &keys,
        json!({"site": "shop", "nbf": exp(-3600), "iat": exp(-3600), "exp": exp(600)}),
    );
    assert_eq!(status(send(older, None).await.unwrap()), 202);

    // Admin tokens: the same attacks on the stats API.
    let stats = |token: String| {
        app.client
            .get(app.url("/v1/stats/pages?site=shop"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(status(stats(admin_token("read")).await.unwrap()), 200);
    let admin_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(json!({"scope": "admin", "exp": exp(600)})
            .to_string()
            .as_bytes())
    );
    assert_eq!(status(stats(admin_none).await.unwrap()), 401);
    let admin_expired = encode(
        &Header::new(Algorithm::HS256),
        &json!({"scope": "read", "exp": exp(-3600)}),
        &EncodingKey::from_secret(ADMIN_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(status(stats(admin_expired).await.unwrap()), 401);
    let admin_forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"scope": "read", "exp": exp(600)}),
        &EncodingKey::from_secret(b"not-the-admin-secret-but-long-enough-1234"),
    )
    .unwrap();
    assert_eq!(status(stats(admin_forged).await.unwrap()), 401);
    let site_token_as_admin = ed_token(&keys, json!({"scope": "admin", "exp": exp(600)}));
    assert_eq!(status(stats(site_token_as_admin).await.unwrap()), 401);
    let admin = |claims: serde_json::Value| {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(ADMIN_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let admin_later = admin(json!({"scope": "read", "nbf": exp(86_400), "exp": exp(2 * 86_400)}));
    assert_eq!(status(stats(admin_later).await.unwrap()), 401);
    let admin_future_iat =
        admin(json!({"scope": "read", "iat": exp(86_400), "exp": exp(2 * 86_400)}));
    assert_eq!(status(stats(admin_future_iat).await.unwrap()), 401);
    let admin_skewed =
        admin(json!({"scope": "read", "nbf": exp(10), "iat": exp(10), "exp": exp(600)}));
    assert_eq!(status(stats(admin_skewed).await.unwrap()), 200);
    app.stop().await;
}
