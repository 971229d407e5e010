//! `auth: {jwt: ...}`: mint a signed service token per request, for targets that take service tokens.
//!
//! ```yaml
//! auth:
//!   jwt:
//!     algorithm: HS256            # HS256/384/512 (key: the shared secret), RS*/PS* (RSA PEM), ES256/384 (EC PEM)
//!     key: "${JWT_SECRET}"        # or key_file: /etc/vantage/service-key.pem
//!     claims: {sub: synthetic, aud: demo, run: "{{uuid}}"}   # string values are templates
//!     expires_in: 5m              # exp = now + expires_in, unless claims set exp; iat = now unless set
//!     kid: key-2024               # optional `kid` header
//! ```
//! The key is parsed when the config loads, so a bad PEM or a missing file is a config error.

use super::template::{Missing, Scope, TemplateValue};
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);

/// A validated `jwt:` block.
#[derive(Clone)]
pub struct JwtAuth {
    pub algorithm: Algorithm,
    key: EncodingKey,
    pub claims: Vec<(String, TemplateValue)>,
    pub expires_in: Duration,
    pub kid: Option<String>,
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("JwtAuth")
            .field("algorithm", &self.algorithm)
            .field("claims", &self.claims)
            .field("expires_in", &self.expires_in)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why minting failed at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintError {
    Missing(Missing),
    Sign(String),
}

impl JwtAuth {
    /// Names referenced by the claims.
    pub fn vars(&self) -> Vec<&str> {
        self.claims.iter().flat_map(|(_, v)| v.vars()).collect()
    }

    /// A fresh token; `now` is passed in so tests can pin it.
    pub fn mint(&self, scope: &mut Scope, now: SystemTime) -> Result<String, MintError> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut claims = serde_json::Map::new();
        for (k, v) in &self.claims {
            claims.insert(k.clone(), v.render(scope).map_err(MintError::Missing)?);
        }
        claims.entry("iat").or_insert(now.into());
        claims
            .entry("exp")
            .or_insert((now + self.expires_in.as_secs()).into());
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| MintError::Sign(e.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    algorithm: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    claims: Option<TemplateValue>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    expires_in: Option<Duration>,
    #[serde(default)]
    kid: Option<String>,
}

fn build(raw: Raw) -> Result<JwtAuth, String> {
    let algorithm = Algorithm::from_str(&raw.algorithm).map_err(|_| {
        format!(
            "unknown algorithm {:?}; use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384",
            raw.algorithm
        )
    })?;
    let material = match (raw.key, raw.key_file) {
        (Some(_), Some(_)) => return Err("give either `key` or `key_file`, not both".into()),
        (None, None) => return Err("a `key` or a `key_file` is required".into()),
        (Some(k), None) => k.into_bytes(),
        (None, Some(path)) => {
            std::fs::read(&path).map_err(|e| format!("cannot read key_file {path}: {e}"))?
        }
    };
    // Never echo the key material in these messages.
    let key = match algorithm.family() {
        AlgorithmFamily::Hmac => {
            if material.is_empty() {
                return Err("the HMAC key is empty".into());
            }
            EncodingKey::from_secret(&material)
        }
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&material)
            .map_err(|e| format!("the key is not an RSA private key in PEM form ({e})"))?,
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&material)
            .map_err(|e| format!("the key is not an EC private key in PKCS#8 PEM form ({e})"))?,
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&material)
            .map_err(|e| format!("the key is not an Ed25519 private key in PEM form ({e})"))?,
    };
    let claims = match raw.claims {
        None => Vec::new(),
        Some(TemplateValue::Object(o)) => o,
        Some(_) => return Err("`claims` must be a mapping".into()),
    };
    let expires_in = raw.expires_in.unwrap_or(DEFAULT_EXPIRY);
    if expires_in.is_zero() {
        return Err("expires_in must be above 0".into());
    }
    let auth = JwtAuth {
        algorithm,
        key,
        claims,
        expires_in,
        kid: raw.kid,
    };
    // Sign once now, so a key that parses but cannot sign (wrong family for the algorithm) fails at load time.
    let mut probe = Scope::new();
    for name in auth.vars() {
        probe.set(name, "x".into(), false);
    }
    match auth.mint(&mut probe, SystemTime::now()) {
        Err(MintError::Sign(e)) => Err(format!("cannot sign with this key: {e}")),
        _ => Ok(auth),
    }
}

impl<'de> Deserialize<'de> for JwtAuth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        build(Raw::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn hs256_with_templated_claims_and_expiry() {
        let auth: JwtAuth = serde_norway::from_str(
            "{algorithm: HS256, key: s3cret, claims: {sub: synthetic, aud: demo, run: '{{rid}}'}, expires_in: 2m, kid: k1}",
        )
        .unwrap();
        let mut scope = Scope::new();
        scope.set("rid", "r-1".into(), false);
        let now = SystemTime::now();
        let token = auth.mint(&mut scope, now).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["demo"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["run"], "r-1");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        let iat = data.claims["iat"].as_u64().unwrap();
        assert_eq!(data.claims["exp"].as_u64().unwrap(), iat + 120);
        assert!(matches!(
            auth.mint(&mut Scope::new(), now),
            Err(MintError::Missing(_))
        ));
    }

    #[test]
    fn config_errors_do_not_show_the_key() {
        let err = |y: &str| {
            serde_norway::from_str::<JwtAuth>(y)
                .unwrap_err()
                .to_string()
        };
        assert!(err("{algorithm: HS257, key: k}").contains("unknown algorithm"));
        assert!(err("{algorithm: HS256}").contains("`key` or a `key_file`"));
        let e = err("{algorithm: RS256, key: not-a-pem-secret}");
        assert!(
            e.contains("not an RSA private key") && !e.contains("not-a-pem-secret"),
            "{e}"
        );
        assert!(err("{algorithm: ES256, key_file: /nonexistent/key.pem}")
            .contains("cannot read key_file"));
        assert!(err("{algorithm: HS256, key: k, claims: [1]}").contains("must be a mapping"));
    }
}
