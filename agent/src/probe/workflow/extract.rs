//! `extract:` rules: take a value out of a step's response (JSON path, header, regex on the body, status).
//!
//! ```yaml
//! extract:
//!   token: "$.access_token"                       # shorthand for {from: json, path: ...}
//!   location: {from: header, name: Location}
//!   id: {from: regex, pattern: "id=(\\d+)"}       # group 1 when the pattern has a group, else the whole match
//!   code: {from: status}
//!   session: {from: json, path: "$.session", secret: true}
//! ```
//! Extracted values whose variable name looks like a credential (`token`, `secret`, `password`, `key`, `auth`,
//! `session`, `cookie`, `jwt`, `credential`) are secrets unless `secret: false`; secrets are redacted from every
//! message. Paths and patterns are checked when the config is loaded.

use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json_path::JsonPath;
use std::cell::OnceCell;

const SECRET_HINTS: [&str; 10] = [
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "auth",
    "session",
    "cookie",
    "jwt",
    "credential",
];

/// Whether a variable called `name` holds a credential by default.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_HINTS.iter().any(|h| n.contains(h))
}

/// Where an extracted value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Json { path: JsonPath, text: String },
    Header(String),
    Regex { regex: Regex, group: usize },
    Status,
}

/// One `extract:` entry (the variable name is the map key).
#[derive(Debug, Clone)]
pub struct Extractor {
    pub source: Source,
    /// `None`: decided from the variable name ([`looks_secret`]).
    pub secret: Option<bool>,
}

impl Extractor {
    pub fn is_secret(&self, name: &str) -> bool {
        self.secret.unwrap_or_else(|| looks_secret(name))
    }

    pub fn describe(&self) -> String {
        match &self.source {
            Source::Json { text, .. } => text.clone(),
            Source::Header(h) => format!("header {h}"),
            Source::Regex { regex, .. } => format!("regex {:?}", regex.as_str()),
            Source::Status => "status".into(),
        }
    }

    /// The value, or why there is none (the message names the rule, never the body).
    pub fn apply(&self, resp: &ResponseView<'_>) -> Result<String, String> {
        match &self.source {
            Source::Json { path, text } => {
                let json = resp
                    .json()
                    .ok_or_else(|| format!("{text}: the response body is not JSON"))?;
                match path.query(json).first() {
                    None | Some(serde_json::Value::Null) => {
                        Err(format!("{text} matched nothing in the response body"))
                    }
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(v) => Ok(v.to_string()),
                }
            }
            Source::Header(name) => resp
                .headers
                .get(name.as_str())
                .ok_or_else(|| format!("no {name} header in the response"))?
                .to_str()
                .map(str::to_string)
                .map_err(|_| format!("header {name} is not text")),
            Source::Regex { regex, group } => {
                let body = String::from_utf8_lossy(resp.body);
                let caps = regex
                    .captures(&body)
                    .ok_or_else(|| format!("regex {:?} did not match the body", regex.as_str()))?;
                caps.get(*group)
                    .map(|m| m.as_str().to_string())
                    .ok_or_else(|| {
                        format!("regex {:?} matched without group {group}", regex.as_str())
                    })
            }
            Source::Status => Ok(resp.status.to_string()),
        }
    }
}

/// What extraction and assertions look at: a response, with its body parsed as JSON at most once.
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    json: OnceCell<Option<serde_json::Value>>,
}

impl<'a> ResponseView<'a> {
    pub fn new(status: u16, headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        Self {
            status,
            headers,
            body,
            json: OnceCell::new(),
        }
    }

    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

/// Parses a JSON path, with a message fit for a config error.
pub fn parse_json_path(text: &str) -> Result<JsonPath, String> {
    JsonPath::parse(text).map_err(|e| format!("bad JSON path {text:?}: {e}"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Short(String),
    Full(Full),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Full {
    from: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    group: Option<usize>,
    #[serde(default)]
    secret: Option<bool>,
}

impl Full {
    fn into_extractor(self) -> Result<Extractor, String> {
        let need = |v: Option<String>, key: &str| {
            v.ok_or_else(|| format!("`from: {}` needs `{key}`", self.from))
        };
        let unused = |present: bool, key: &str| -> Result<(), String> {
            if present {
                Err(format!("`{key}` does not apply to `from: {}`", self.from))
            } else {
                Ok(())
            }
        };
        let source = match self.from.as_str() {
            "json" => {
                unused(self.name.is_some(), "name")?;
                unused(self.pattern.is_some() || self.group.is_some(), "pattern")?;
                let text = need(self.path.clone(), "path")?;
                Source::Json {
                    path: parse_json_path(&text)?,
                    text,
                }
            }
            "header" => {
                unused(self.path.is_some(), "path")?;
                unused(self.pattern.is_some() || self.group.is_some(), "pattern")?;
                let name = need(self.name.clone(), "name")?;
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                Source::Header(name)
            }
            "regex" => {
                unused(self.path.is_some(), "path")?;
                unused(self.name.is_some(), "name")?;
                let pattern = need(self.pattern.clone(), "pattern")?;
                let regex =
                    Regex::new(&pattern).map_err(|e| format!("bad regex {pattern:?}: {e}"))?;
                let groups = regex.captures_len() - 1;
                let group = self.group.unwrap_or(if groups > 0 { 1 } else { 0 });
                if group > groups {
                    return Err(format!(
                        "group {group} does not exist: the pattern has {groups} group(s)"
                    ));
                }
                Source::Regex { regex, group }
            }
            "status" => {
                unused(self.path.is_some(), "path")?;
                unused(self.name.is_some(), "name")?;
                unused(self.pattern.is_some() || self.group.is_some(), "pattern")?;
                Source::Status
            }
            other => {
                return Err(format!(
                    "unknown extraction source {other:?}; use json, header, regex or status"
                ))
            }
        };
        Ok(Extractor {
            source,
            secret: self.secret,
        })
    }
}

impl<'de> Deserialize<'de> for Extractor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a JSON path (\"$.id\") or {from: json|header|regex|status, ...}",
            )
        })?;
        match raw {
            Raw::Short(text) => Ok(Extractor {
                source: Source::Json {
                    path: parse_json_path(&text).map_err(serde::de::Error::custom)?,
                    text,
                },
                secret: None,
            }),
            Raw::Full(f) => f.into_extractor().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(yaml: &str) -> Result<Extractor, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn all_sources() {
        let mut headers = http::HeaderMap::new();
        headers.insert("location", "/v1/assignments/7".parse().unwrap());
        let body = br#"{"access_token":"abc","id":7,"n":null} id=42"#;
        let json_body = br#"{"access_token":"abc","id":7,"n":null}"#;
        let view = ResponseView::new(201, &headers, json_body);
        assert_eq!(
            ex("\"$.access_token\"").unwrap().apply(&view).unwrap(),
            "abc"
        );
        assert_eq!(ex("\"$.id\"").unwrap().apply(&view).unwrap(), "7");
        assert!(ex("\"$.n\"")
            .unwrap()
            .apply(&view)
            .unwrap_err()
            .contains("matched nothing"));
        assert!(ex("\"$.missing\"").unwrap().apply(&view).is_err());
        assert_eq!(
            ex("{from: header, name: Location}")
                .unwrap()
                .apply(&view)
                .unwrap(),
            "/v1/assignments/7"
        );
        assert_eq!(ex("{from: status}").unwrap().apply(&view).unwrap(), "201");
        let raw = ResponseView::new(200, &headers, body);
        assert_eq!(
            ex(r#"{from: regex, pattern: "id=(\\d+)"}"#)
                .unwrap()
                .apply(&raw)
                .unwrap(),
            "42"
        );
        assert!(ex("\"$.id\"")
            .unwrap()
            .apply(&raw)
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn config_errors() {
        assert!(ex("\"$.[\"").unwrap_err().contains("bad JSON path"));
        assert!(ex("{from: regex, pattern: '('}")
            .unwrap_err()
            .contains("bad regex"));
        assert!(ex("{from: header}").unwrap_err().contains("needs `name`"));
        assert!(ex("{from: body}")
            .unwrap_err()
            .contains("unknown extraction source"));
        assert!(ex("{from: regex, pattern: x, group: 1}")
            .unwrap_err()
            .contains("group 1"));
    }

    #[test]
    fn secrets_by_name_unless_told() {
        assert!(ex("\"$.a\"").unwrap().is_secret("access_token"));
        assert!(!ex("\"$.a\"").unwrap().is_secret("title"));
        assert!(!ex("{from: json, path: $.a, secret: false}")
            .unwrap()
            .is_secret("token"));
        assert!(ex("{from: json, path: $.a, secret: true}")
            .unwrap()
            .is_secret("id"));
    }
}
