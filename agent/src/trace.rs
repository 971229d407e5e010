//! Trace context on probe requests: the W3C `traceparent` (a trace per run, a span per request) and the
//! `User-Agent` naming Vantage and the check, with the per-check options that turn them off or override them.
//!
//! The run's trace id is what ties a probe to the backend trace it caused: it goes into the result, the failure
//! log line, the status API, `once` output and the exemplar on `synthetic_request_duration_seconds`.

use http::HeaderValue;
use serde::Deserialize;
use std::fmt;

/// `traceparent` (<https://www.w3.org/TR/trace-context/>): lower case, as the header name is sent.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace id: 16 random bytes, never all zero. Kept as bytes (not text) so a result stays small.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

/// A W3C span (parent) id: 8 random bytes, never all zero. One per request sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SpanId([u8; 8]);

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl TraceId {
    /// A fresh random trace id.
    pub fn random() -> Self {
        TraceId(random_nonzero())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        TraceId(bytes)
    }

    /// The 32 lower-case hex digits, as written in `traceparent` and exemplars.
    pub fn to_hex(self) -> String {
        self.to_string()
    }
}

impl SpanId {
    /// A fresh random span id.
    pub fn random() -> Self {
        SpanId(random_nonzero())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl serde::Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `traceparent: 00-<trace id>-<span id>-01`: version 00, sampled (the probe wants the backend to keep the trace).
pub fn traceparent(trace: TraceId, span: SpanId) -> HeaderValue {
    HeaderValue::from_str(&format!("00-{trace}-{span}-01")).expect("hex digits and dashes")
}

/// `user_agent:` of an HTTP check or a workflow: `true` (default) sends [`default_user_agent`], `false` sends no
/// `User-Agent`, a string sends that string. A `User-Agent` in `headers` wins over all three.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UserAgent {
    #[default]
    Default,
    Off,
    Custom(String),
}

impl<'de> Deserialize<'de> for UserAgent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Text(String),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected true, false or a User-Agent string"))?
        {
            Raw::Flag(true) => Ok(UserAgent::Default),
            Raw::Flag(false) => Ok(UserAgent::Off),
            Raw::Text(s) => Ok(UserAgent::Custom(s)),
        }
    }
}

/// Who is probing: shown in the default `User-Agent` so a target's logs say which check of which region called.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckIdentity<'a> {
    pub check: &'a str,
    pub region: &'a str,
}

/// `Vantage/0.1.0 (+check=api-health; region=eu)`; without an identity (tests, benchmarks) `Vantage/0.1.0`.
/// Check names are header-safe by construction; a region that is not is left out rather than mangled.
pub fn default_user_agent(id: CheckIdentity<'_>) -> HeaderValue {
    let product = concat!("Vantage/", env!("CARGO_PKG_VERSION"));
    let with = |s: String| header_text(&s);
    let full = (!id.check.is_empty())
        .then(|| {
            with(format!(
                "{product} (+check={}; region={})",
                id.check, id.region
            ))
        })
        .flatten();
    let check_only = || {
        (!id.check.is_empty())
            .then(|| with(format!("{product} (+check={})", id.check)))
            .flatten()
    };
    full.or_else(check_only)
        .unwrap_or(HeaderValue::from_static(product))
}

/// `s` as a header value if it is printable ASCII (hyper would send other bytes, but they mean nothing defined).
fn header_text(s: &str) -> Option<HeaderValue> {
    s.bytes()
        .all(|b| (b' '..=b'~').contains(&b))
        .then(|| HeaderValue::from_str(s).ok())
        .flatten()
}

impl UserAgent {
    /// The header to send (`None`: none), or the reason the configured string cannot be a header value.
    pub fn header(&self, id: CheckIdentity<'_>) -> Result<Option<HeaderValue>, String> {
        match self {
            UserAgent::Default => Ok(Some(default_user_agent(id))),
            UserAgent::Off => Ok(None),
            UserAgent::Custom(s) => header_text(s)
                .map(Some)
                .ok_or_else(|| format!("{s:?} is not a valid header value (use printable ASCII)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_version_00_sampled_with_fresh_ids() {
        let (t1, t2) = (TraceId::random(), TraceId::random());
        assert_ne!(t1, t2);
        let v = traceparent(t1, SpanId::random());
        let parts: Vec<&str> = v.to_str().unwrap().split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], t1.to_hex());
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert!(parts[1..3]
            .iter()
            .all(|p| p.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))));
        assert_eq!(
            TraceId::from_bytes([0xab; 16]).to_hex(),
            "abababababababababababababababab"
        );
    }

    #[test]
    fn user_agent_names_the_check_and_region_and_can_be_set_or_turned_off() {
        let id = CheckIdentity {
            check: "api-health",
            region: "eu",
        };
        let ua = UserAgent::Default.header(id).unwrap().unwrap();
        assert_eq!(
            ua.to_str().unwrap(),
            format!(
                "Vantage/{} (+check=api-health; region=eu)",
                env!("CARGO_PKG_VERSION")
            )
        );
        let odd_region = CheckIdentity {
            check: "a",
            region: "zürich",
        };
        assert!(UserAgent::Default
            .header(odd_region)
            .unwrap()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("(+check=a)"));
        assert_eq!(UserAgent::Off.header(id).unwrap(), None);
        let custom = UserAgent::Custom("probe/1".into()).header(id).unwrap();
        assert_eq!(custom.unwrap(), "probe/1");
        assert!(UserAgent::Custom("bad\nua".into()).header(id).is_err());
        let parse = |y: &str| serde_norway::from_str::<UserAgent>(y);
        assert_eq!(parse("true").unwrap(), UserAgent::Default);
        assert_eq!(parse("false").unwrap(), UserAgent::Off);
        assert_eq!(parse("x/1").unwrap(), UserAgent::Custom("x/1".into()));
        assert!(parse("[1]").is_err());
    }
}
