//! Which config values are credentials, decided by the field that holds them, never by searching output for
//! values that came from the environment.
//!
//! Each binary classifies its config's field paths (`checks[3].headers.Authorization`) with a [`Classify`]
//! function; [`collect`] then takes every credential out of the parsed YAML: whole values of secret fields, and
//! the userinfo and query of URL fields. The result feeds a [`Redactor`](crate::Redactor) that scrubs free text
//! (error messages, log lines) and nothing else: names, regions, labels, targets' hosts and paths and `/metrics`
//! are identity, shown as they are.

use serde_norway::Value;
use std::collections::BTreeSet;

/// What a config field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Identity or settings: shown as is.
    Plain,
    /// A credential: every string in it (a header value, a body, a password, a signing key).
    Secret,
    /// A URL whose host and path are identity but whose userinfo and query may carry credentials.
    Url,
}

/// Classifies a field path as written by `serde_path_to_error` (`a.b[2].c`).
pub type Classify = fn(&str) -> FieldKind;

/// Treats every field as secret (for configs that do not classify their fields).
pub fn all_secret(_: &str) -> FieldKind {
    FieldKind::Secret
}

/// Request headers that describe a request rather than authorise it: their values are not secrets. Every other
/// header value is (`Authorization`, `Cookie`, `X-Api-Key`, and whatever a service invents).
const DESCRIPTIVE_HEADERS: [&str; 12] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "connection",
    "content-encoding",
    "content-type",
    "host",
    "origin",
    "pragma",
    "referer",
    "user-agent",
];

/// Whether a request header's value is descriptive, not a credential (case-insensitive name).
pub fn is_descriptive_header(name: &str) -> bool {
    DESCRIPTIVE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Every credential in `value`, found by where it stands.
pub fn collect(value: &Value, classify: Classify) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(
        value,
        &mut String::new(),
        classify,
        FieldKind::Plain,
        &mut out,
    );
    out
}

fn walk(
    value: &Value,
    path: &mut String,
    classify: Classify,
    inherited: FieldKind,
    out: &mut BTreeSet<String>,
) {
    // A secret field is secret all the way down (`json:` bodies, `basic_auth:` maps).
    let kind = match inherited {
        FieldKind::Secret => FieldKind::Secret,
        _ if path.is_empty() => FieldKind::Plain,
        _ => classify(path),
    };
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let Some(key) = scalar_text(k) else { continue };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                walk(v, path, classify, kind, out);
                path.truncate(len);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(v, path, classify, kind, out);
                path.truncate(len);
            }
        }
        Value::Tagged(t) => walk(&t.value, path, classify, inherited, out),
        scalar => {
            let Some(text) = scalar_text(scalar) else {
                return;
            };
            match kind {
                FieldKind::Plain => {}
                FieldKind::Secret => {
                    out.insert(text);
                }
                FieldKind::Url => out.extend(url_credentials(&text)),
            }
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The userinfo (name and password) and the query (whole, and each value) of a URL; nothing when `text` is
/// not a URL with a host.
pub fn url_credentials(text: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !url.username().is_empty() {
        out.push(decoded(url.username()));
    }
    if let Some(p) = url.password() {
        out.push(decoded(p));
    }
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        out.push(q.to_string());
        out.extend(
            url.query_pairs()
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty()),
        );
    }
    out
}

fn decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// A URL as it may be shown: scheme, host, port and path; userinfo and query replaced by `***`.
pub fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        let _ = shown.set_username("***");
        let _ = shown.set_password(None);
    }
    if shown.query().is_some_and(|q| !q.is_empty()) {
        shown.set_query(Some("***"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(path: &str) -> FieldKind {
        let last = path.rsplit('.').next().unwrap_or(path);
        if path.contains("headers.") || last == "body" || last.starts_with("basic_auth") {
            FieldKind::Secret
        } else if last == "target" {
            FieldKind::Url
        } else {
            FieldKind::Plain
        }
    }

    #[test]
    fn collects_by_field_not_by_value() {
        let yaml: Value = serde_norway::from_str(
            "region: eu-west-1\nchecks:\n  - name: api-health\n    target: https://u:p%40ss@api.example.com/x?key=k3y&v=2\n    headers: {Authorization: Bearer abc}\n    body: '{\"a\":1}'\n    basic_auth: {username: bob, password: hunter2}\n    labels: {team: api}\n",
        )
        .unwrap();
        let s = collect(&yaml, classify);
        for v in [
            "Bearer abc",
            "{\"a\":1}",
            "bob",
            "hunter2",
            "u",
            "p@ss",
            "key=k3y&v=2",
            "k3y",
            "2",
        ] {
            assert!(s.contains(v), "{v} missing from {s:?}");
        }
        for v in ["eu-west-1", "api-health", "api", "api.example.com"] {
            assert!(!s.contains(v), "{v} must not be secret");
        }
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let u = url::Url::parse("https://u:p@h.example:8443/a/b?token=x#f").unwrap();
        assert_eq!(display_url(&u), "https://***@h.example:8443/a/b?***");
        let u = url::Url::parse("http://h/a").unwrap();
        assert_eq!(display_url(&u), "http://h/a");
        assert!(url_credentials("h:443").is_empty());
    }
}
