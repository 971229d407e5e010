//! `vantage-ingest token`: an admin token (JWT with `scope`, `iat` and `exp`) signed with the config's HS256
//! `admin.secret`, for the explorer's sign-in, the stats API and source map uploads. With RS256 or EdDSA the
//! config holds only the public key, so tokens are signed wherever the private key is kept; this says so.

use crate::auth::KeyConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;

/// What a token may do: `read` (the stats API, the explorer) or `admin` (also source maps, deletions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenScope {
    Read,
    Admin,
}

impl TokenScope {
    pub fn claim(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }
}

/// The longest lifetime a minted token may have: there is no revocation short of changing `admin.secret`,
/// so a leaked token is good until it expires.
pub const MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

#[derive(serde::Serialize)]
struct Claims<'a> {
    scope: &'a str,
    iat: u64,
    exp: u64,
}

/// A token for `scope` valid for `ttl` from `now` (Unix seconds). Errors name the config field or the option at
/// fault and never contain the secret.
pub fn mint(
    admin: Option<&KeyConfig>,
    scope: TokenScope,
    ttl: Duration,
    now: u64,
) -> Result<String, String> {
    let key = admin.ok_or(
        "the config has no `admin` section: admin tokens are refused until it has one (algorithm: HS256, secret: ...)",
    )?;
    if key.algorithm != "HS256" {
        return Err(format!(
            "admin.algorithm is {}: the config holds only its public key, so sign tokens where the private key is \
             kept (claims: scope = read or admin, exp)",
            key.algorithm
        ));
    }
    // The server's own checks (a secret of at least 32 bytes): a token it would refuse is not minted.
    crate::auth::Verifier::new(key).map_err(|e| format!("admin: {e}"))?;
    let secret = key.secret.as_deref().unwrap_or_default();
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(String::from(
            "--ttl must be more than 0 and at most 90 days (a token cannot be revoked short of changing admin.secret)"
        ));
    }
    let claims = Claims {
        scope: scope.claim(),
        iat: now,
        exp: expiry(ttl, now),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign the token: {e}"))
}

/// The token's `exp` (Unix seconds): whole seconds, at least one after `now`.
fn expiry(ttl: Duration, now: u64) -> u64 {
    now + ttl.as_secs().max(1)
}

/// What a minted token is, for the operator (on standard error): "scope read, valid for 8h (until ...Z)", the
/// time its `exp` says.
pub fn summary(scope: TokenScope, ttl: Duration, now: u64) -> String {
    format!(
        "scope {}, valid for {} (until {})",
        scope.claim(),
        humantime::format_duration(ttl),
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_secs(expiry(ttl, now))
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AdminClaims, Scope, Verifier};

    const NOW: u64 = 1_800_000_000;

    fn hs256(secret: &str) -> KeyConfig {
        KeyConfig {
            algorithm: "HS256".into(),
            secret: Some(secret.into()),
            public_key: None,
            public_key_file: None,
        }
    }

    #[test]
    fn a_minted_token_verifies_with_its_scope_and_lifetime() {
        let key = hs256("a-secret-of-at-least-thirty-two-bytes!");
        let now = jsonwebtoken::get_current_timestamp();
        let token = mint(Some(&key), TokenScope::Read, Duration::from_secs(3600), now).unwrap();
        let claims: AdminClaims = Verifier::new(&key).unwrap().verify(&token).unwrap();
        assert!(claims.allows(Scope::Read) && !claims.allows(Scope::Admin));
        let token = mint(Some(&key), TokenScope::Admin, Duration::from_secs(60), now).unwrap();
        let claims: AdminClaims = Verifier::new(&key).unwrap().verify(&token).unwrap();
        assert!(claims.allows(Scope::Admin));
        // exp is now + ttl: one minted an hour ago with a 30 minute life is expired.
        let old = mint(
            Some(&key),
            TokenScope::Read,
            Duration::from_secs(1800),
            now - 3600,
        )
        .unwrap();
        let e = Verifier::new(&key).unwrap().verify::<AdminClaims>(&old);
        assert_eq!(e.unwrap_err(), "token expired");
    }

    #[test]
    fn what_cannot_be_minted_says_why_without_the_secret() {
        let secret = "a-secret-of-at-least-thirty-two-bytes!";
        let ttl = Duration::from_secs(3600);
        let e = mint(None, TokenScope::Read, ttl, NOW).unwrap_err();
        assert!(e.contains("no `admin` section"), "{e}");
        let mut ed = hs256(secret);
        ed.algorithm = "EdDSA".into();
        let e = mint(Some(&ed), TokenScope::Read, ttl, NOW).unwrap_err();
        assert!(e.contains("admin.algorithm is EdDSA"), "{e}");
        let e = mint(Some(&hs256("short")), TokenScope::Read, ttl, NOW).unwrap_err();
        assert_eq!(e, "admin: HS256 secret must be at least 32 bytes");
        for bad in [Duration::ZERO, MAX_TTL + Duration::from_secs(1)] {
            let e = mint(Some(&hs256(secret)), TokenScope::Read, bad, NOW).unwrap_err();
            assert!(
                e.starts_with("--ttl must be") && e.contains("at most 90 days"),
                "{e}"
            );
            assert!(!e.contains(secret));
        }
        assert!(mint(Some(&hs256(secret)), TokenScope::Read, MAX_TTL, NOW).is_ok());
    }
}
