//! Assertions on an HTTP response (status, headers, body, JSON path, latency, certificate lifetime), shared by
//! HTTP checks and workflow steps.
//!
//! YAML, one key set per list item:
//! ```yaml
//! assert:
//!   - status: 200                 # or "2xx", or [200, 204, "3xx"]
//!   - header: content-type        # with exactly one of: exists: true|false, equals: "...", matches: "regex",
//!     matches: json               # not_matches: "regex" (with matches/not_matches, allow_missing: true lets
//!                                 # a missing header pass)
//!   - body_contains: ok
//!   - body_regex: 'v\d+'
//!   - body_not_regex: 'error'     # the body must not match
//!   - http_version: ["HTTP/1.1", "HTTP/2"]   # the final answer's version is one of these
//!   - tls: true                   # the final answer came over TLS (false: it did not)
//!   - json: $.status              # with exactly one of: equals: <value>, exists: true|false
//!     equals: up
//!   - duration_under: 500ms
//!   - cert_valid_days: 14
//! ```

use super::exchange::ExchangeResponse;
use crate::probe::SpecError;
use crate::result::{ErrorType, ProbeError};
use regex::Regex;
use serde::Deserialize;
use serde_json_path::JsonPath;
use std::time::{Duration, SystemTime};

/// One accepted status: an exact code (`200`) or a class (`2xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    Code(u16),
    /// The hundreds digit: `2` for `2xx`.
    Class(u16),
}

impl StatusPattern {
    pub fn parse(s: &str) -> Result<StatusPattern, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if lower.len() == 3 && lower.ends_with("xx") {
            if let Some(d) = lower[..1]
                .parse::<u16>()
                .ok()
                .filter(|d| (1..=5).contains(d))
            {
                return Ok(StatusPattern::Class(d));
            }
        }
        match s.parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(StatusPattern::Code(c)),
            _ => Err(format!(
                "invalid status {s:?}; use a code like 200 or a class like 2xx"
            )),
        }
    }

    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusPattern::Code(c) => c == status,
            StatusPattern::Class(d) => status / 100 == d,
        }
    }
}

impl std::fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusPattern::Code(c) => write!(f, "{c}"),
            StatusPattern::Class(d) => write!(f, "{d}xx"),
        }
    }
}

/// A set of accepted statuses: `200`, `"2xx"`, or a list of those. Default `2xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStatus(pub Vec<StatusPattern>);

impl Default for ExpectedStatus {
    fn default() -> Self {
        ExpectedStatus(vec![StatusPattern::Class(2)])
    }
}

impl ExpectedStatus {
    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|p| p.matches(status))
    }

    /// `Err(HttpStatus)` naming expected and actual when `status` is not accepted.
    pub fn check(&self, status: u16) -> Result<(), ProbeError> {
        if self.matches(status) {
            return Ok(());
        }
        Err(ProbeError::new(
            ErrorType::HttpStatus,
            format!("expected status {self}, got {status}"),
        ))
    }
}

impl std::fmt::Display for ExpectedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        f.write_str(&parts.join(" or "))
    }
}

impl<'de> Deserialize<'de> for ExpectedStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum One {
            Num(u64),
            Str(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(One),
            Many(Vec<One>),
        }
        let parse = |o: One| match o {
            One::Num(n) => StatusPattern::parse(&n.to_string()),
            One::Str(s) => StatusPattern::parse(&s),
        };
        let list = match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a status code, a class like 2xx, or a list of them")
        })? {
            OneOrMany::One(o) => vec![parse(o).map_err(serde::de::Error::custom)?],
            OneOrMany::Many(v) => v
                .into_iter()
                .map(parse)
                .collect::<Result<_, _>>()
                .map_err(serde::de::Error::custom)?,
        };
        if list.is_empty() {
            return Err(serde::de::Error::custom("status list is empty"));
        }
        Ok(ExpectedStatus(list))
    }
}

/// An assertion as written in YAML (before compiling regexes and JSON paths). Workflows render `{{var}}`
/// templates in the string values with [`AssertionSpec::render`] and then [`AssertionSpec::compile`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    /// Accepted status codes / classes.
    #[serde(default)]
    pub status: Option<ExpectedStatus>,
    /// Header name; combine with `exists`, `equals` or `matches`.
    #[serde(default)]
    pub header: Option<String>,
    /// JSON path (RFC 9535, e.g. `$.items[0].id`); combine with `equals` or `exists`.
    #[serde(default)]
    pub json: Option<String>,
    /// With `header`/`json`: whether it must be present (true) or absent (false).
    #[serde(default)]
    pub exists: Option<bool>,
    /// With `header`: exact value. With `json`: the value the path must select (strings also match numbers
    /// and booleans with the same text, so templated values compare naturally).
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// With `header`: a regex the value must match.
    #[serde(default)]
    pub matches: Option<String>,
    /// With `header`: a regex the value must not match.
    #[serde(default)]
    pub not_matches: Option<String>,
    /// With `header` and `matches` / `not_matches`: a missing header passes (it fails by default).
    #[serde(default)]
    pub allow_missing: bool,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body must match this regex.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// The body must not match this regex.
    #[serde(default)]
    pub body_not_regex: Option<String>,
    /// The final answer's HTTP version is one of these (`HTTP/1.1`, `HTTP/2`, `HTTP/3`; `HTTP/2.0` as Go writes
    /// it is the same as `HTTP/2`).
    #[serde(default)]
    pub http_version: Option<Vec<String>>,
    /// The final answer came over TLS (`true`) or not (`false`).
    #[serde(default)]
    pub tls: Option<bool>,
    /// The whole exchange (redirects included) must take less than this, e.g. `500ms`.
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    pub duration_under: Option<Duration>,
    /// The presented certificate chain must stay valid for at least this many days.
    #[serde(default)]
    pub cert_valid_days: Option<u32>,
}

/// A compiled assertion.
#[derive(Debug, Clone)]
pub enum Assertion {
    Status(ExpectedStatus),
    HeaderExists {
        name: String,
        exists: bool,
    },
    HeaderEquals {
        name: String,
        value: String,
    },
    HeaderMatches {
        name: String,
        regex: Regex,
        allow_missing: bool,
    },
    HeaderNotMatches {
        name: String,
        regex: Regex,
        allow_missing: bool,
    },
    BodyContains(String),
    BodyRegex(Regex),
    BodyNotRegex(Regex),
    /// Accepted versions as the exchange names them (`HTTP/1.1`, `HTTP/2`, `HTTP/3`).
    HttpVersion(Vec<String>),
    Tls(bool),
    JsonEquals {
        path: JsonPath,
        path_text: String,
        value: serde_json::Value,
    },
    JsonExists {
        path: JsonPath,
        path_text: String,
        exists: bool,
    },
    DurationUnder(Duration),
    CertValidDays(u32),
}

impl AssertionSpec {
    /// Apply `f` to every user string value (header/json equals, matches, body texts) – for templating.
    pub fn render<E>(
        &self,
        f: &mut dyn FnMut(&str) -> Result<String, E>,
    ) -> Result<AssertionSpec, E> {
        let mut out = self.clone();
        if let Some(serde_json::Value::String(s)) = &self.equals {
            out.equals = Some(serde_json::Value::String(f(s)?));
        }
        let fields = [
            &mut out.matches,
            &mut out.not_matches,
            &mut out.body_contains,
            &mut out.body_regex,
            &mut out.body_not_regex,
            &mut out.header,
            &mut out.json,
        ];
        for s in fields.into_iter().flatten() {
            *s = f(s)?;
        }
        Ok(out)
    }

    /// Errors name the field inside the assertion (`matches`); callers put the assertion's own path in front.
    pub fn compile(&self) -> Result<Assertion, SpecError> {
        let kinds = [
            self.status.is_some(),
            self.header.is_some(),
            self.json.is_some(),
            self.body_contains.is_some(),
            self.body_regex.is_some(),
            self.body_not_regex.is_some(),
            self.http_version.is_some(),
            self.tls.is_some(),
            self.duration_under.is_some(),
            self.cert_valid_days.is_some(),
        ];
        let n = kinds.iter().filter(|k| **k).count();
        if n != 1 {
            return Err(SpecError::new(
                "",
                format!(
                    "each assertion needs exactly one of status, header, json, body_contains, body_regex, \
                     body_not_regex, http_version, tls, duration_under, cert_valid_days (found {n})"
                ),
            ));
        }
        let qualifiers = [
            self.exists.is_some(),
            self.equals.is_some(),
            self.matches.is_some(),
            self.not_matches.is_some(),
        ];
        if self.allow_missing && self.matches.is_none() && self.not_matches.is_none() {
            return Err(SpecError::new(
                "allow_missing",
                "allow_missing only goes with header and matches or not_matches",
            ));
        }
        let nq = qualifiers.iter().filter(|k| **k).count();
        if let Some(name) = &self.header {
            if nq != 1 {
                return Err(SpecError::new(
                    "header",
                    "a header assertion needs exactly one of exists, equals, matches, not_matches",
                ));
            }
            if let Some(exists) = self.exists {
                return Ok(Assertion::HeaderExists {
                    name: name.clone(),
                    exists,
                });
            }
            if let Some(v) = &self.equals {
                let value = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Ok(Assertion::HeaderEquals {
                    name: name.clone(),
                    value,
                });
            }
            if let Some(re) = &self.not_matches {
                let regex = Regex::new(re)
                    .map_err(|e| SpecError::new("not_matches", format!("invalid regex: {e}")))?;
                return Ok(Assertion::HeaderNotMatches {
                    name: name.clone(),
                    regex,
                    allow_missing: self.allow_missing,
                });
            }
            let re = self.matches.as_deref().unwrap_or_default();
            let regex = Regex::new(re)
                .map_err(|e| SpecError::new("matches", format!("invalid regex: {e}")))?;
            return Ok(Assertion::HeaderMatches {
                name: name.clone(),
                regex,
                allow_missing: self.allow_missing,
            });
        }
        if let Some(path_text) = &self.json {
            if nq != 1 || self.matches.is_some() || self.not_matches.is_some() {
                return Err(SpecError::new(
                    "json",
                    "a json assertion needs exactly one of equals, exists",
                ));
            }
            let path = JsonPath::parse(path_text)
                .map_err(|e| SpecError::new("json", format!("invalid JSON path: {e}")))?;
            if let Some(exists) = self.exists {
                return Ok(Assertion::JsonExists {
                    path,
                    path_text: path_text.clone(),
                    exists,
                });
            }
            let value = self.equals.clone().unwrap_or(serde_json::Value::Null);
            return Ok(Assertion::JsonEquals {
                path,
                path_text: path_text.clone(),
                value,
            });
        }
        if nq != 0 {
            return Err(SpecError::new(
                "",
                "exists/equals/matches/not_matches only go with header or json",
            ));
        }
        if let Some(s) = &self.status {
            return Ok(Assertion::Status(s.clone()));
        }
        if let Some(s) = &self.body_contains {
            return Ok(Assertion::BodyContains(s.clone()));
        }
        if let Some(re) = &self.body_regex {
            return Regex::new(re)
                .map(Assertion::BodyRegex)
                .map_err(|e| SpecError::new("body_regex", format!("invalid regex: {e}")));
        }
        if let Some(re) = &self.body_not_regex {
            return Regex::new(re)
                .map(Assertion::BodyNotRegex)
                .map_err(|e| SpecError::new("body_not_regex", format!("invalid regex: {e}")));
        }
        if let Some(list) = &self.http_version {
            let versions = list
                .iter()
                .enumerate()
                .map(|(i, v)| match v.trim().to_ascii_uppercase().as_str() {
                    "HTTP/1.0" => Ok("HTTP/1.0".to_string()),
                    "HTTP/1.1" => Ok("HTTP/1.1".to_string()),
                    "HTTP/2" | "HTTP/2.0" => Ok("HTTP/2".to_string()),
                    "HTTP/3" | "HTTP/3.0" => Ok("HTTP/3".to_string()),
                    _ => Err(SpecError::new(
                        format!("http_version[{i}]"),
                        format!("{v:?}: use HTTP/1.0, HTTP/1.1, HTTP/2 or HTTP/3"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if versions.is_empty() {
                return Err(SpecError::new("http_version", "the list is empty"));
            }
            return Ok(Assertion::HttpVersion(versions));
        }
        if let Some(tls) = self.tls {
            return Ok(Assertion::Tls(tls));
        }
        if let Some(d) = self.duration_under {
            return Ok(Assertion::DurationUnder(d));
        }
        Ok(Assertion::CertValidDays(
            self.cert_valid_days.unwrap_or_default(),
        ))
    }
}

fn fail(msg: String) -> Result<(), ProbeError> {
    Err(ProbeError::new(ErrorType::Assertion, msg))
}

/// Shorten long bodies/values in messages.
fn preview(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

impl Assertion {
    pub fn check(&self, resp: &ExchangeResponse) -> Result<(), ProbeError> {
        match self {
            Assertion::Status(expected) => {
                if expected.matches(resp.status) {
                    Ok(())
                } else {
                    fail(format!("expected status {expected}, got {}", resp.status))
                }
            }
            Assertion::HeaderExists { name, exists } => {
                match (resp.headers.contains_key(name.as_str()), exists) {
                    (true, true) | (false, false) => Ok(()),
                    (false, true) => fail(format!(
                        "expected header {name} to be present, it is missing"
                    )),
                    (true, false) => fail(format!(
                        "expected header {name} to be absent, got {}",
                        preview(&header_text(resp, name).unwrap_or_default())
                    )),
                }
            }
            Assertion::HeaderEquals { name, value } => match header_text(resp, name) {
                Some(v) if v == *value => Ok(()),
                Some(v) => fail(format!(
                    "expected header {name} = {value:?}, got {}",
                    preview(&v)
                )),
                None => fail(format!(
                    "expected header {name} = {value:?}, header is missing"
                )),
            },
            Assertion::HeaderMatches {
                name,
                regex,
                allow_missing,
            } => match header_text(resp, name) {
                Some(v) if regex.is_match(&v) => Ok(()),
                Some(v) => fail(format!(
                    "expected header {name} to match /{regex}/, got {}",
                    preview(&v)
                )),
                None if *allow_missing => Ok(()),
                None => fail(format!(
                    "expected header {name} to match /{regex}/, header is missing"
                )),
            },
            Assertion::HeaderNotMatches {
                name,
                regex,
                allow_missing,
            } => match header_text(resp, name) {
                Some(v) if regex.is_match(&v) => fail(format!(
                    "expected header {name} not to match /{regex}/, got {}",
                    preview(&v)
                )),
                Some(_) => Ok(()),
                None if *allow_missing => Ok(()),
                None => fail(format!(
                    "expected header {name} not to match /{regex}/, header is missing"
                )),
            },
            Assertion::BodyContains(text) => {
                let body = String::from_utf8_lossy(&resp.body);
                if body.contains(text.as_str()) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected body to contain {text:?}, got {}",
                        preview(&body)
                    ))
                }
            }
            Assertion::BodyRegex(regex) => {
                let body = String::from_utf8_lossy(&resp.body);
                if regex.is_match(&body) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected body to match /{regex}/, got {}",
                        preview(&body)
                    ))
                }
            }
            Assertion::BodyNotRegex(regex) => {
                let body = String::from_utf8_lossy(&resp.body);
                match regex.find(&body) {
                    None => Ok(()),
                    Some(m) => fail(format!(
                        "expected body not to match /{regex}/, found {}",
                        preview(m.as_str())
                    )),
                }
            }
            Assertion::HttpVersion(versions) => {
                if versions.iter().any(|v| v == resp.version) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected HTTP version {}, got {}",
                        versions.join(" or "),
                        resp.version
                    ))
                }
            }
            Assertion::Tls(wanted) => match (resp.tls.is_some(), wanted) {
                (true, true) | (false, false) => Ok(()),
                (false, true) => fail(format!(
                    "expected the answer over TLS, got it over plain HTTP from {}",
                    resp.final_url
                )),
                (true, false) => fail(format!(
                    "expected the answer over plain HTTP, got it over TLS from {}",
                    resp.final_url
                )),
            },
            Assertion::JsonEquals {
                path,
                path_text,
                value,
            } => {
                let doc = json_body(resp)?;
                let found = path.query(&doc).all();
                match found.first() {
                    Some(actual) if json_equal(value, actual) => Ok(()),
                    Some(actual) => fail(format!(
                        "expected {path_text} = {value}, got {}",
                        preview(&actual.to_string())
                    )),
                    None => fail(format!(
                        "expected {path_text} = {value}, path matched nothing"
                    )),
                }
            }
            Assertion::JsonExists {
                path,
                path_text,
                exists,
            } => {
                let doc = json_body(resp)?;
                let n = path.query(&doc).all().len();
                match (n > 0, exists) {
                    (true, true) | (false, false) => Ok(()),
                    (false, true) => fail(format!(
                        "expected {path_text} to exist, path matched nothing"
                    )),
                    (true, false) => fail(format!(
                        "expected {path_text} to be absent, it matched {n} value(s)"
                    )),
                }
            }
            Assertion::DurationUnder(limit) => {
                if resp.elapsed < *limit {
                    Ok(())
                } else {
                    fail(format!(
                        "expected response time under {}, took {}",
                        humantime::format_duration(*limit),
                        humantime::format_duration(Duration::from_millis(
                            resp.elapsed.as_millis() as u64
                        ))
                    ))
                }
            }
            Assertion::CertValidDays(days) => {
                let Some(expiry) = resp.tls.as_ref().and_then(|t| t.earliest_cert_expiry) else {
                    return fail(format!("expected a certificate valid for {days} days, but no certificate was presented"));
                };
                let now = SystemTime::now();
                let left = expiry.duration_since(now).unwrap_or_default();
                if left >= Duration::from_secs(u64::from(*days) * 86_400) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected certificate valid for at least {days} days, it {}",
                        crate::probe::tls_config::describe_expiry(expiry, now)
                    ))
                }
            }
        }
    }
}

fn header_text(resp: &ExchangeResponse, name: &str) -> Option<String> {
    let values: Vec<String> = resp
        .headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn json_body(resp: &ExchangeResponse) -> Result<serde_json::Value, ProbeError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        ProbeError::new(
            ErrorType::Assertion,
            format!(
                "expected a JSON body, got {} ({e})",
                preview(&String::from_utf8_lossy(&resp.body))
            ),
        )
    })
}

/// Equal values, or an expected string equal to the text of a scalar (`"42"` matches `42`).
fn json_equal(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    if expected == actual {
        return true;
    }
    match (expected, actual) {
        (V::String(e), V::Number(n)) => *e == n.to_string(),
        (V::String(e), V::Bool(b)) => *e == b.to_string(),
        (V::Number(e), V::Number(a)) => e.as_f64() == a.as_f64(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patterns() {
        assert_eq!(
            StatusPattern::parse("2xx").unwrap(),
            StatusPattern::Class(2)
        );
        assert_eq!(
            StatusPattern::parse("404").unwrap(),
            StatusPattern::Code(404)
        );
        assert!(StatusPattern::parse("9xx").is_err());
        assert!(StatusPattern::parse("abc").is_err());
        let e: ExpectedStatus = serde_norway::from_str("[200, \"3xx\"]").unwrap();
        assert!(e.matches(200) && e.matches(302) && !e.matches(201));
        assert_eq!(
            e.check(500).unwrap_err().message,
            "expected status 200 or 3xx, got 500"
        );
    }

    #[test]
    fn compile_rejects_ambiguous() {
        let spec: AssertionSpec =
            serde_norway::from_str("{header: x, exists: true, equals: y}").unwrap();
        assert_eq!(spec.compile().unwrap_err().field, "header");
        let spec: AssertionSpec = serde_norway::from_str("{body_regex: '('}").unwrap();
        assert_eq!(spec.compile().unwrap_err().field, "body_regex");
        assert!(serde_norway::from_str::<AssertionSpec>("{bogus: 1}").is_err());
    }

    #[test]
    fn json_equality_is_textual_for_scalars() {
        assert!(json_equal(&"42".into(), &42.into()));
        assert!(json_equal(&"true".into(), &true.into()));
        assert!(!json_equal(&"up".into(), &"down".into()));
    }
}
