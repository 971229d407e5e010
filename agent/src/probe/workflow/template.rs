//! `{{name}}` templates in workflow steps: parsed once at config time, rendered per run from a [`Scope`].
//!
//! A name is a static variable, a value extracted by an earlier step, or a generated value ([`GENERATED`]).
//! Generated values are made once per run on first use, so `{{uuid}}` is the same in every step of one run (a
//! title created in one step can be verified in the next). `{{{{` stands for a literal `{{`.

use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Values generated per run.
pub const GENERATED: [&str; 5] = [
    "uuid",
    "timestamp",
    "timestamp_ms",
    "random_int",
    "random_string",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A template that does not parse (config error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A variable that has no value in this run (run-time failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub String);

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, SyntaxError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            if let Some(escaped) = after.strip_prefix("{{") {
                lit.push_str("{{");
                rest = escaped;
                continue;
            }
            let Some(close) = after.find("}}") else {
                return Err(SyntaxError(format!(
                    "unclosed `{{{{` in {text:?} (write `{{{{{{{{` for a literal `{{{{`)"
                )));
            };
            let name = after[..close].trim();
            if !valid_name(name) {
                return Err(SyntaxError(format!(
                    "`{{{{{}}}}}` is not a variable name (letters, digits, `_`, `-`; starting with a letter)",
                    &after[..close]
                )));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &after[close + 2..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// Names referenced, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    pub fn is_literal(&self) -> bool {
        self.vars().next().is_none()
    }

    pub fn render(&self, scope: &mut Scope) -> Result<String, Missing> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => out.push_str(&scope.get(v)?),
            }
        }
        Ok(out)
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A JSON value whose string leaves are templates: a `json:` body, JWT claims, assertion arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    /// null, a boolean or a number.
    Scalar(serde_json::Value),
    Str(Template),
    Array(Vec<TemplateValue>),
    Object(Vec<(String, TemplateValue)>),
}

impl TemplateValue {
    pub fn parse(v: &serde_json::Value) -> Result<TemplateValue, SyntaxError> {
        use serde_json::Value;
        Ok(match v {
            Value::String(s) => TemplateValue::Str(Template::parse(s)?),
            Value::Array(a) => TemplateValue::Array(
                a.iter()
                    .map(TemplateValue::parse)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => TemplateValue::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), TemplateValue::parse(v)?)))
                    .collect::<Result<_, SyntaxError>>()?,
            ),
            other => TemplateValue::Scalar(other.clone()),
        })
    }

    /// Every name referenced, depth first.
    pub fn vars(&self) -> Vec<&str> {
        match self {
            TemplateValue::Scalar(_) => Vec::new(),
            TemplateValue::Str(t) => t.vars().collect(),
            TemplateValue::Array(a) => a.iter().flat_map(|v| v.vars()).collect(),
            TemplateValue::Object(o) => o.iter().flat_map(|(_, v)| v.vars()).collect(),
        }
    }

    pub fn render(&self, scope: &mut Scope) -> Result<serde_json::Value, Missing> {
        use serde_json::Value;
        Ok(match self {
            TemplateValue::Scalar(v) => v.clone(),
            TemplateValue::Str(t) => Value::String(t.render(scope)?),
            TemplateValue::Array(a) => Value::Array(
                a.iter()
                    .map(|v| v.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            TemplateValue::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(scope)?)))
                    .collect::<Result<_, Missing>>()?,
            ),
        })
    }
}

impl<'de> serde::Deserialize<'de> for TemplateValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        TemplateValue::parse(&v).map_err(serde::de::Error::custom)
    }
}

/// The variables of one run: static ones, extracted ones, and generated ones made on first use.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    values: BTreeMap<String, String>,
    secret: BTreeSet<String>,
}

impl Scope {
    pub fn new() -> Scope {
        Scope::default()
    }

    /// Sets a variable; `secret` values are redacted from every message of the run.
    pub fn set(&mut self, name: &str, value: String, secret: bool) {
        if secret {
            self.secret.insert(value.clone());
        }
        self.values.insert(name.to_string(), value);
    }

    /// Records a value (not a variable) that must be redacted, e.g. a minted token.
    pub fn add_secret(&mut self, value: String) {
        self.secret.insert(value);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name) || GENERATED.contains(&name)
    }

    pub fn get(&mut self, name: &str) -> Result<String, Missing> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let v = generate(name).ok_or_else(|| Missing(name.to_string()))?;
        self.values.insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// Secret values seen in this run.
    pub fn secrets(&self) -> impl Iterator<Item = &String> {
        self.secret.iter()
    }
}

fn generate(name: &str) -> Option<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Some(match name {
        "uuid" => uuid::Uuid::new_v4().to_string(),
        "timestamp" => now.as_secs().to_string(),
        "timestamp_ms" => now.as_millis().to_string(),
        "random_int" => rand::rng().random_range(0..1_000_000_000u32).to_string(),
        "random_string" => Alphanumeric.sample_string(&mut rand::rng(), 16),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("{{base}}/v1/{{ id }}?x={{{{lit").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["base", "id"]);
        let mut s = Scope::new();
        s.set("base", "http://h".into(), false);
        s.set("id", "7".into(), false);
        assert_eq!(t.render(&mut s).unwrap(), "http://h/v1/7?x={{lit");
        assert!(Template::parse("plain").unwrap().is_literal());
    }

    #[test]
    fn syntax_errors() {
        assert!(Template::parse("{{base")
            .unwrap_err()
            .0
            .contains("unclosed"));
        assert!(Template::parse("{{}}")
            .unwrap_err()
            .0
            .contains("not a variable name"));
        assert!(Template::parse("{{a b}}").is_err());
    }

    #[test]
    fn generated_values_are_stable_within_a_run() {
        let t = Template::parse("{{uuid}} {{random_string}} {{timestamp}}").unwrap();
        let mut s = Scope::new();
        let a = t.render(&mut s).unwrap();
        assert_eq!(a, t.render(&mut s).unwrap());
        assert_ne!(a, t.render(&mut Scope::new()).unwrap());
        assert_eq!(a.split(' ').nth(1).unwrap().len(), 16);
    }

    #[test]
    fn missing_variable() {
        let t = Template::parse("{{nope}}").unwrap();
        assert_eq!(
            t.render(&mut Scope::new()).unwrap_err(),
            Missing("nope".into())
        );
    }
}
