//! Who may send and who may read: API keys, site tokens and admin tokens (JWT), and allowed origins.

use crate::truncate::truncate;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A browser origin as the `Origin` header carries it: `scheme://host[:port]` and nothing else (no path,
/// query, fragment, userinfo, spaces or backslashes), scheme and host lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    scheme: String,
    host: String,
    /// As written, when present.
    port: Option<u16>,
}

impl Origin {
    /// The `Origin` header's value, parsed strictly: anything but `scheme://host[:port]` is `None` and so is
    /// allowed nowhere (`https://evil.com/.example.com` is not a subdomain of `example.com`).
    pub fn from_header(s: &str) -> Option<Self> {
        Self::parse(s, false)
    }

    /// Parses strictly; `None` for anything that is not exactly an origin. `allow_wildcard` admits a
    /// leading `*.` label (in configured patterns only).
    fn parse(s: &str, allow_wildcard: bool) -> Option<Self> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((h, p)) if !p.contains(']') => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (h, Some(p.parse::<u16>().ok().filter(|p| *p != 0)?))
            }
            _ => (rest, None),
        };
        let name = if allow_wildcard {
            host.strip_prefix("*.").unwrap_or(host)
        } else {
            host
        };
        let valid = if let Some(ip6) = name.strip_prefix('[') {
            ip6.strip_suffix(']')
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        valid.then(|| Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// An allowed browser origin: exact (`https://shop.example.com`) or wildcard subdomain (`https://*.example.com`),
/// with an optional port that must then match too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(Origin),
    /// Scheme, port and the suffix that a host must end with (`.example.com`).
    Subdomains {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

impl OriginPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let o = Origin::parse(s, true).ok_or_else(|| {
            if s.contains('*') && !s.contains("://*.") {
                format!("`{s}`: a wildcard may only stand as the first label (https://*.example.com)")
            } else {
                format!(
                    "`{s}` is not an origin like https://shop.example.com (scheme, host and port only)"
                )
            }
        })?;
        match o.host.strip_prefix('*') {
            Some(suffix) => Ok(Self::Subdomains {
                scheme: o.scheme,
                suffix: suffix.to_string(),
                port: o.port,
            }),
            None => Ok(Self::Exact(o)),
        }
    }

    /// Whether the `Origin` header value `origin` is allowed (see [`Origin::from_header`]).
    pub fn matches(&self, origin: &str) -> bool {
        Origin::from_header(origin).is_some_and(|o| self.allows(&o))
    }

    pub fn allows(&self, o: &Origin) -> bool {
        match self {
            Self::Exact(e) => e == o,
            Self::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                o.scheme == *scheme
                    && o.port == *port
                    && o.host.len() > suffix.len()
                    && o.host.ends_with(suffix.as_str())
            }
        }
    }
}

/// A JWT verification key as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `HS256`, `RS256` or `EdDSA`. Tokens signed with any other algorithm are refused.
    pub algorithm: String,
    /// Shared secret for HS256 (use `${ENV}`), at least 32 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    /// Public key PEM text for RS256 / EdDSA.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Or a file holding the public key PEM.
    #[serde(default)]
    pub public_key_file: Option<std::path::PathBuf>,
}

/// A ready verifier for one key; tokens are checked statelessly per request.
#[derive(Clone)]
pub struct Verifier {
    key: Arc<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material.
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

impl Verifier {
    pub fn new(k: &KeyConfig) -> Result<Self, String> {
        let pem = || -> Result<Vec<u8>, String> {
            match (&k.public_key, &k.public_key_file) {
                (Some(p), None) => Ok(p.as_bytes().to_vec()),
                (None, Some(f)) => std::fs::read(f)
                    .map_err(|e| format!("cannot read public_key_file {}: {e}", f.display())),
                _ => Err(format!(
                    "{} needs exactly one of public_key or public_key_file",
                    k.algorithm
                )),
            }
        };
        let (alg, key) = match k.algorithm.as_str() {
            "HS256" => {
                let s = k
                    .secret
                    .as_ref()
                    .ok_or("HS256 needs a secret (at least 32 bytes)")?;
                if s.len() < 32 {
                    return Err("HS256 secret must be at least 32 bytes".into());
                }
                (Algorithm::HS256, DecodingKey::from_secret(s.as_bytes()))
            }
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(&pem()?)
                    .map_err(|e| format!("public_key is not an RSA public key PEM: {e}"))?,
            ),
            "EdDSA" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(&pem()?)
                    .map_err(|e| format!("public_key is not an Ed25519 public key PEM: {e}"))?,
            ),
            other => {
                return Err(format!(
                    "algorithm `{other}` is not supported (HS256, RS256, EdDSA)"
                ))
            }
        };
        if alg != Algorithm::HS256 && k.secret.is_some() {
            return Err(format!("{} takes a public key, not a secret", k.algorithm));
        }
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY_SECS;
        Ok(Self {
            key: Arc::new(key),
            validation,
        })
    }

    /// Verifies signature, algorithm and times: `exp` (required), `nbf` and `iat` when present, each with
    /// [`CLOCK_LEEWAY_SECS`] of clock skew. `alg: none`, another algorithm, a bad signature, an expired
    /// token, one not valid yet or one issued in the future are all errors; the message says which without
    /// echoing the token.
    pub fn verify<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, String> {
        use jsonwebtoken::errors::ErrorKind as K;
        let claims = jsonwebtoken::decode::<Timed<C>>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                match e.kind() {
                    K::ExpiredSignature => "token expired",
                    K::ImmatureSignature => "token is not valid yet (nbf)",
                    K::InvalidSignature => "token signature is invalid",
                    K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                        "token algorithm is not accepted"
                    }
                    K::MissingRequiredClaim(_) => "token lacks a required claim",
                    K::Json(_) => "token claims are malformed",
                    _ => "token is malformed",
                }
                .to_string()
            })?;
        let now = jsonwebtoken::get_current_timestamp() as f64;
        if claims
            .iat
            .is_some_and(|iat| iat > now + CLOCK_LEEWAY_SECS as f64)
        {
            return Err("token is issued in the future (iat)".into());
        }
        Ok(claims.claims)
    }
}

/// Clock skew allowed between token issuers and this server when checking `exp`, `nbf` and `iat`.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

/// Claims with the issue time, which jsonwebtoken does not check itself.
#[derive(Deserialize)]
struct Timed<C> {
    #[serde(default)]
    iat: Option<f64>,
    #[serde(flatten)]
    claims: C,
}

/// Claims of a site token.
#[derive(Debug, Deserialize)]
pub struct SiteClaims {
    pub site: String,
    /// Origins the token may be used from (further restricts the site's list when present).
    #[serde(default)]
    pub origins: Option<Vec<String>>,
}

/// Claims of an admin token.
#[derive(Debug, Deserialize)]
pub struct AdminClaims {
    /// `read` or `admin` (space-separated list allowed); `admin` implies `read`.
    pub scope: String,
}

/// What an admin token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Admin,
}

impl AdminClaims {
    pub fn allows(&self, need: Scope) -> bool {
        self.scope.split_whitespace().any(|s| match s {
            "admin" => true,
            "read" => need == Scope::Read,
            _ => false,
        })
    }
}

/// Why a sender was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "missing credentials: send X-API-Key, ?api_key= or Authorization: Bearer <site token>"
    )]
    Missing,
    #[error("unknown API key")]
    UnknownKey,
    #[error("{0}")]
    BadToken(String),
    #[error("origin {0} is not allowed for this site")]
    Origin(String),
}

/// Constant-time comparison, so response timing does not reveal how much of a key matched (only whether
/// the lengths differ).
fn key_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// What authenticating a sender needs to know of a configured site. The config's sites implement it, so the
/// config depends on this module (for its keys and origin patterns) and not the other way round.
pub trait SiteCredentials {
    fn id(&self) -> &str;
    fn api_key(&self) -> Option<&str>;
    fn origins(&self) -> &[OriginPattern];
}

/// Identifies the site from the credentials and checks the origin. Returns the site's index in `sites`.
pub fn authenticate_sender(
    sites: &[impl SiteCredentials],
    tokens: Option<&Verifier>,
    api_key: Option<&str>,
    bearer: Option<&str>,
    origin: Option<&str>,
) -> Result<usize, AuthError> {
    let (idx, token_origins) = if let Some(key) = api_key {
        let idx = sites
            .iter()
            .position(|s| s.api_key().is_some_and(|k| key_eq(k, key)))
            .ok_or(AuthError::UnknownKey)?;
        (idx, None)
    } else if let Some(token) = bearer {
        let v = tokens.ok_or_else(|| AuthError::BadToken("site tokens are not enabled".into()))?;
        let claims: SiteClaims = v.verify(token).map_err(AuthError::BadToken)?;
        let idx = sites
            .iter()
            .position(|s| s.id() == claims.site)
            .ok_or_else(|| AuthError::BadToken("token names an unknown site".into()))?;
        (idx, claims.origins)
    } else {
        return Err(AuthError::Missing);
    };
    if let Some(origin) = origin {
        let parsed = Origin::from_header(origin);
        let allowed = |p: &OriginPattern| parsed.as_ref().is_some_and(|o| p.allows(o));
        let site_ok = sites[idx].origins().iter().any(allowed);
        let token_ok = token_origins.is_none_or(|list| {
            list.iter()
                .any(|o| OriginPattern::parse(o).is_ok_and(|p| allowed(&p)))
        });
        if !(site_ok && token_ok) {
            return Err(AuthError::Origin(truncate(origin, 200)));
        }
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        let exact = OriginPattern::parse("https://shop.example.com").unwrap();
        assert!(exact.matches("https://shop.example.com"));
        assert!(!exact.matches("http://shop.example.com"));
        assert!(!exact.matches("https://shop.example.com.evil.io"));
        let wild = OriginPattern::parse("https://*.shop.example.com").unwrap();
        assert!(wild.matches("https://eu.shop.example.com"));
        assert!(wild.matches("https://a.b.shop.example.com"));
        assert!(!wild.matches("https://shop.example.com"));
        assert!(!wild.matches("https://evilshop.example.com"));
        assert!(!wild.matches("http://eu.shop.example.com"));
        assert!(OriginPattern::parse("shop.example.com").is_err());
        assert!(OriginPattern::parse("https://shop.example.com/").is_err());
        assert!(OriginPattern::parse("https://a.*.com").is_err());
        assert!(OriginPattern::parse("https://shop.example.com/path").is_err());
    }

    /// Anything but `scheme://host[:port]` matches no pattern, however its text ends (issue #17).
    #[test]
    fn origins_are_parsed_strictly_before_matching() {
        let wild = OriginPattern::parse("https://*.shop.example.com").unwrap();
        let exact = OriginPattern::parse("https://shop.example.com").unwrap();
        for hostile in [
            "https://evil.com/.shop.example.com",
            "https://evil.com#.shop.example.com",
            "https://evil.com?.shop.example.com",
            "https://evil.com?x=.shop.example.com",
            "https://evil.com\\.shop.example.com",
            "https://user@eu.shop.example.com",
            "https://evil.com@eu.shop.example.com",
            "https://evil.com .shop.example.com",
            "https://eu.shop.example.com/",
            "https://eu.shop.example.com/x",
            "https://eu.shop.example.com:",
            "https://eu.shop.example.com:99999",
            "https://eu.shop.example.com:443/",
            "https://eu.shop.example.com\t",
            "https://eu.shop.example.com\r\n",
            "https://eu..shop.example.com",
            "https://.shop.example.com",
            "https://%65u.shop.example.com",
            "null",
            "",
        ] {
            assert!(!wild.matches(hostile), "{hostile:?}");
            assert!(!exact.matches(hostile), "{hostile:?}");
        }
        assert!(wild.matches("https://EU.Shop.Example.com"));
        assert!(exact.matches("HTTPS://shop.example.com"));
        // A port must match the pattern's.
        assert!(!wild.matches("https://eu.shop.example.com:8443"));
        let ported = OriginPattern::parse("http://localhost:8080").unwrap();
        assert!(ported.matches("http://localhost:8080"));
        assert!(!ported.matches("http://localhost:8081"));
        assert!(!ported.matches("http://localhost"));
        let v6 = OriginPattern::parse("http://[::1]:8080").unwrap();
        assert!(v6.matches("http://[::1]:8080"));
        assert!(!v6.matches("http://[::1]"));
    }

    #[test]
    fn keys_compare_whole() {
        assert!(key_eq("dev-key-123", "dev-key-123"));
        assert!(!key_eq("dev-key-123", "dev-key-124"));
        assert!(!key_eq("dev-key-123", "dev-key-12"));
        assert!(!key_eq("dev-key-12", "dev-key-123"));
        assert!(!key_eq("", "x"));
    }

    #[test]
    fn scopes() {
        let read = AdminClaims {
            scope: "read".into(),
        };
        assert!(read.allows(Scope::Read) && !read.allows(Scope::Admin));
        let admin = AdminClaims {
            scope: "admin".into(),
        };
        assert!(admin.allows(Scope::Read) && admin.allows(Scope::Admin));
    }

    #[test]
    fn verifier_rejects_short_secret() {
        let k = KeyConfig {
            algorithm: "HS256".into(),
            secret: Some("short".into()),
            public_key: None,
            public_key_file: None,
        };
        assert!(Verifier::new(&k).is_err());
    }
}
