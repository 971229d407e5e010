//! The `type: api_workflow` config (variables, steps, teardown), parsed and statically validated at load time.
//!
//! Static validation reports, with a field path such as `steps[2].url`: a variable that is neither static,
//! generated, nor extracted by an earlier step; a template syntax error; a bad JSON path or regex (in `extract`
//! and in assertions without templates); duplicate step names; `body` together with `json`.

use super::extract::{looks_secret, Extractor};
use super::jwt::JwtAuth;
use super::template::{Template, TemplateValue, GENERATED};
use crate::probe::http::assertion::{Assertion, AssertionSpec, ExpectedStatus};
use crate::probe::http::exchange::HttpVersion;
use crate::probe::nameserver::ResolverSpec;
use crate::probe::net::ResolveTo;
use crate::probe::tls_config::TlsOptions;
use crate::probe::{from_value, SpecError};
use crate::trace::UserAgent;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Per-step timeout when a step sets none, so one hung step cannot eat the whole run and skip the teardown.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A validated workflow.
#[derive(Debug, Clone)]
pub struct WorkflowSpec {
    /// Static variables (after `${ENV}` expansion), with whether each is a secret.
    pub variables: Vec<Variable>,
    pub steps: Vec<StepSpec>,
    /// Run after `steps`, whatever happened, with whatever variables exist.
    pub teardown: Vec<StepSpec>,
    /// TLS options for every step.
    pub tls: TlsOptions,
    /// Whether steps follow redirects (default false: a step sees the response it asked for).
    pub follow_redirects: bool,
    /// Addresses to use for hosts instead of asking DNS, for every step (as on HTTP checks).
    pub resolve_to: ResolveTo,
    /// DNS server every step resolves hosts with instead of the system's (as on HTTP checks).
    pub resolver: Option<ResolverSpec>,
    /// Send a W3C `traceparent`: one trace per run, a span per step request (default true).
    pub trace_context: bool,
    /// HTTP version of every step, as on HTTP checks (`"1.1"`, `"2"`; unset: 1.1 or h2 by ALPN).
    pub http_version: HttpVersion,
    /// `User-Agent` of every step, as on HTTP checks (`true`, `false` or a string).
    pub user_agent: UserAgent,
    /// The keys as written, for equality (compiled regexes and keys cannot be compared).
    source: serde_norway::Value,
}

impl WorkflowSpec {
    /// The values of the variables that are credentials.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.variables
            .iter()
            .filter(|v| v.secret)
            .map(|v| v.value.as_str())
    }

    /// The longest a run can take when every step hits its own timeout, teardown included. The check's timeout
    /// must not be shorter, or a hung step would let the scheduler cut the run before its teardown.
    pub fn longest_run(&self) -> Duration {
        self.steps
            .iter()
            .chain(&self.teardown)
            .map(StepSpec::timeout)
            .sum()
    }
}

impl PartialEq for WorkflowSpec {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the workflow; the `step` label of the per-step metrics.
    pub name: String,
    /// HTTP method (default GET).
    #[serde(default = "default_method", deserialize_with = "method")]
    pub method: http::Method,
    pub url: Template,
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// Query parameters appended to the URL (values are templates, encoded for you).
    #[serde(default)]
    pub query: BTreeMap<String, Template>,
    /// Raw request body.
    #[serde(default)]
    pub body: Option<Template>,
    /// A body written as YAML and sent as JSON (`Content-Type: application/json` unless set).
    #[serde(default)]
    pub json: Option<TemplateValue>,
    /// Variables taken from the response, for later steps.
    #[serde(default)]
    pub extract: BTreeMap<String, Extractor>,
    /// Assertions, the same kinds as HTTP checks, with `{{var}}` in their values.
    #[serde(default, rename = "assert")]
    pub assertions: Vec<StepAssertion>,
    /// Default [`DEFAULT_STEP_TIMEOUT`].
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    pub timeout: Option<Duration>,
    /// Accepted statuses (default `2xx`).
    #[serde(default)]
    pub expect_status: ExpectedStatus,
    /// Run even when an earlier step failed (like a teardown step, but in order).
    #[serde(default)]
    pub always: bool,
    #[serde(default)]
    pub auth: Option<Auth>,
    /// This step's HTTP version, when it is not the workflow's `http_version`.
    #[serde(default)]
    pub http_version: Option<HttpVersion>,
}

fn default_method() -> http::Method {
    http::Method::GET
}

fn method<'de, D: serde::Deserializer<'de>>(d: D) -> Result<http::Method, D::Error> {
    let s = String::deserialize(d)?;
    let upper = s.to_ascii_uppercase();
    if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(serde::de::Error::custom(format!(
            "invalid HTTP method {s:?}"
        )));
    }
    http::Method::from_bytes(upper.as_bytes())
        .map_err(|_| serde::de::Error::custom(format!("invalid HTTP method {s:?}")))
}

/// How a step authenticates: exactly one of `bearer`, `basic`, `jwt`.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Bearer <value>`.
    Bearer(Template),
    /// `Authorization: Basic ...`.
    Basic {
        username: Template,
        password: Template,
    },
    /// A freshly minted signed token, sent as a bearer token.
    Jwt(JwtAuth),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    bearer: Option<Template>,
    #[serde(default)]
    basic: Option<RawBasic>,
    #[serde(default)]
    jwt: Option<JwtAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasic {
    username: Template,
    password: Template,
}

impl<'de> Deserialize<'de> for Auth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawAuth::deserialize(d)?;
        match (raw.bearer, raw.basic, raw.jwt) {
            (Some(t), None, None) => Ok(Auth::Bearer(t)),
            (None, Some(b), None) => Ok(Auth::Basic {
                username: b.username,
                password: b.password,
            }),
            (None, None, Some(j)) => Ok(Auth::Jwt(j)),
            _ => Err(serde::de::Error::custom(
                "auth takes exactly one of bearer, basic, jwt",
            )),
        }
    }
}

impl Auth {
    fn vars(&self) -> Vec<&str> {
        match self {
            Auth::Bearer(t) => t.vars().collect(),
            Auth::Basic { username, password } => username.vars().chain(password.vars()).collect(),
            Auth::Jwt(j) => j.vars(),
        }
    }
}

/// An assertion, compiled at load time when it has no templates.
#[derive(Debug, Clone)]
pub enum StepAssertion {
    Compiled(Assertion),
    /// Rendered and compiled per run.
    Templated(AssertionSpec),
}

impl StepAssertion {
    fn vars(&self) -> Vec<String> {
        match self {
            StepAssertion::Compiled(_) => Vec::new(),
            StepAssertion::Templated(spec) => {
                let mut names = Vec::new();
                let _ = spec.render(&mut |s| -> Result<String, ()> {
                    if let Ok(t) = Template::parse(s) {
                        names.extend(t.vars().map(str::to_string));
                    }
                    Ok(s.to_string())
                });
                names
            }
        }
    }
}

impl<'de> Deserialize<'de> for StepAssertion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = AssertionSpec::deserialize(d)?;
        let mut templated = false;
        spec.render(&mut |s| {
            let t = Template::parse(s)?;
            templated |= !t.is_literal();
            Ok(s.to_string())
        })
        .map_err(|e: super::template::SyntaxError| serde::de::Error::custom(e))?;
        if templated {
            return Ok(StepAssertion::Templated(spec));
        }
        // `{{{{` escapes are literal text once rendered.
        let literal = spec
            .render(&mut |s| {
                Template::parse(s).and_then(|t| {
                    t.render(&mut Default::default())
                        .map_err(|m| super::template::SyntaxError(m.0))
                })
            })
            .map_err(serde::de::Error::custom)?;
        literal
            .compile()
            .map(StepAssertion::Compiled)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    steps: Vec<StepSpec>,
    #[serde(default)]
    teardown: Vec<StepSpec>,
    #[serde(default)]
    tls: TlsOptions,
    #[serde(default)]
    follow_redirects: bool,
    #[serde(default)]
    resolve_to: ResolveTo,
    #[serde(default, deserialize_with = "ResolverSpec::deserialize_opt")]
    resolver: Option<ResolverSpec>,
    #[serde(default = "yes")]
    trace_context: bool,
    #[serde(default)]
    http_version: HttpVersion,
    #[serde(default)]
    user_agent: UserAgent,
}

fn yes() -> bool {
    true
}

/// A variable: a scalar (`port: 8080`), or `{value: ..., secret: true|false}` to say whether it is a credential
/// (the default is decided by its name, see [`looks_secret`]).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawVariable {
    Short(Scalar),
    Long {
        value: Scalar,
        #[serde(default)]
        secret: Option<bool>,
    },
}

/// A YAML scalar taken as text (`port: 8080` is the variable "8080").
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Scalar(s)),
            serde_json::Value::Number(n) => Ok(Scalar(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Scalar(b.to_string())),
            _ => Err(serde::de::Error::custom(
                "a variable is a string, number or boolean",
            )),
        }
    }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl WorkflowSpec {
    /// Parses the workflow keys of a check (everything but the common keys such as name and schedule).
    pub fn from_yaml(value: serde_norway::Value) -> Result<WorkflowSpec, SpecError> {
        let source = value.clone();
        let raw: Raw = from_value(value)?;
        let mut variables = Vec::new();
        for (name, raw_var) in raw.variables {
            let (Scalar(value), secret) = match raw_var {
                RawVariable::Short(v) => (v, None),
                RawVariable::Long { value, secret } => (value, secret),
            };
            if !valid_name(&name) {
                return Err(SpecError::new(
                    format!("variables.{name}"),
                    "a variable name has letters, digits, `_` and `-`, starting with a letter",
                ));
            }
            if GENERATED.contains(&name.as_str()) {
                return Err(SpecError::new(
                    format!("variables.{name}"),
                    format!("`{name}` is a generated value; pick another name"),
                ));
            }
            let secret = secret.unwrap_or_else(|| looks_secret(&name));
            variables.push(Variable {
                name,
                value,
                secret,
            });
        }
        let spec = WorkflowSpec {
            variables,
            steps: raw.steps,
            teardown: raw.teardown,
            tls: raw.tls,
            follow_redirects: raw.follow_redirects,
            resolve_to: raw.resolve_to,
            resolver: raw.resolver,
            trace_context: raw.trace_context,
            http_version: raw.http_version,
            user_agent: raw.user_agent,
            source,
        };
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), SpecError> {
        if self.steps.is_empty() {
            return Err(SpecError::new(
                "steps",
                "a workflow needs at least one step",
            ));
        }
        let mut known: BTreeSet<String> = self.variables.iter().map(|v| v.name.clone()).collect();
        known.extend(GENERATED.iter().map(|s| s.to_string()));
        let mut names: BTreeMap<&str, String> = BTreeMap::new();
        for (list, steps) in [("steps", &self.steps), ("teardown", &self.teardown)] {
            for (i, step) in steps.iter().enumerate() {
                let at = format!("{list}[{i}]");
                check_step_name(&step.name).map_err(|m| SpecError::new(format!("{at}.name"), m))?;
                if let Some(first) = names.insert(&step.name, at.clone()) {
                    return Err(SpecError::new(
                        format!("{at}.name"),
                        format!(
                            "duplicate step name {:?} (first used by {first})",
                            step.name
                        ),
                    ));
                }
                step.validate(&known).map_err(|e| e.within(&at))?;
                for name in step.extract.keys() {
                    if !valid_name(name) || GENERATED.contains(&name.as_str()) {
                        return Err(SpecError::new(
                            format!("{at}.extract.{name}"),
                            format!("cannot extract into {name:?}: use a name that is not a generated value (letters, digits, `_`, `-`)"),
                        ));
                    }
                    known.insert(name.clone());
                }
            }
        }
        Ok(())
    }
}

fn check_step_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a step needs a name".into());
    }
    if name.chars().count() > 64 {
        return Err("a step name has at most 64 characters".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("a step name may not contain control characters".into());
    }
    Ok(())
}

impl StepSpec {
    /// The timeout this step runs under.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT)
    }

    /// Errors name the field inside the step (`headers.x`); the caller puts the step's path in front.
    fn validate(&self, known: &BTreeSet<String>) -> Result<(), SpecError> {
        if self.body.is_some() && self.json.is_some() {
            return Err(SpecError::new(
                "json",
                "give either `body` (raw text) or `json`, not both",
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(SpecError::new("timeout", "timeout must be above 0"));
        }
        if self.url.is_literal() {
            let url = self.url.render(&mut Default::default()).unwrap_or_default();
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => {
                    return Err(SpecError::new(
                        "url",
                        format!("unsupported scheme {:?}; use http or https", u.scheme()),
                    ))
                }
                Err(e) => return Err(SpecError::new("url", format!("invalid URL {url:?}: {e}"))),
            }
        }
        for name in self.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(SpecError::new(
                    format!("headers.{name}"),
                    format!("{name:?} is not a valid header name"),
                ));
            }
        }
        let unknown = |field: String, vars: Vec<String>| -> Result<(), SpecError> {
            match vars.into_iter().find(|v| !known.contains(v)) {
                None => Ok(()),
                Some(v) => Err(SpecError::new(
                    field,
                    format!(
                        "unknown variable `{{{{{v}}}}}`: not a static variable, a generated value ({}), nor extracted by an earlier step",
                        GENERATED.join(", ")
                    ),
                )),
            }
        };
        let owned = |it: Vec<&str>| it.into_iter().map(str::to_string).collect::<Vec<_>>();
        unknown("url".to_string(), owned(self.url.vars().collect()))?;
        for (k, t) in &self.headers {
            unknown(format!("headers.{k}"), owned(t.vars().collect()))?;
        }
        for (k, t) in &self.query {
            unknown(format!("query.{k}"), owned(t.vars().collect()))?;
        }
        if let Some(b) = &self.body {
            unknown("body".to_string(), owned(b.vars().collect()))?;
        }
        if let Some(j) = &self.json {
            unknown("json".to_string(), owned(j.vars()))?;
        }
        if let Some(a) = &self.auth {
            unknown("auth".to_string(), owned(a.vars()))?;
        }
        for (j, a) in self.assertions.iter().enumerate() {
            unknown(format!("assert[{j}]"), a.vars())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<WorkflowSpec, SpecError> {
        WorkflowSpec::from_yaml(serde_norway::from_str(yaml).unwrap())
    }

    const JOURNEY: &str = r#"
variables: {base: "http://127.0.0.1:1", password: "pw-123", port: 8080}
steps:
  - name: login
    method: post
    url: "{{base}}/auth/token"
    json: {username: synthetic, password: "{{password}}"}
    extract: {token: "$.access_token"}
  - name: create
    method: POST
    url: "{{base}}/v1/assignments"
    auth: {bearer: "{{token}}"}
    json: {title: "synthetic {{uuid}}", assignee: "probe@example.com"}
    expect_status: [201]
    extract: {id: "$.id", title: "$.title"}
  - name: read
    url: "{{base}}/v1/assignments/{{id}}"
    headers: {Authorization: "Bearer {{token}}"}
    assert: [{json: "$.title", equals: "{{title}}"}, {status: 200}]
teardown:
  - name: delete
    method: DELETE
    url: "{{base}}/v1/assignments/{{id}}"
    headers: {Authorization: "Bearer {{token}}"}
"#;

    #[test]
    fn journey_parses() {
        let spec = parse(JOURNEY).unwrap();
        assert_eq!(spec.steps.len(), 3);
        assert_eq!(spec.steps[0].method, http::Method::POST);
        assert!(spec
            .variables
            .iter()
            .any(|v| v.name == "password" && v.secret));
        assert!(spec
            .variables
            .iter()
            .any(|v| v.name == "port" && v.value == "8080" && !v.secret));
        assert!(matches!(
            spec.steps[2].assertions[0],
            StepAssertion::Templated(_)
        ));
        assert!(matches!(
            spec.steps[2].assertions[1],
            StepAssertion::Compiled(_)
        ));
        assert!(
            spec.steps[1].expect_status.matches(201) && !spec.steps[1].expect_status.matches(200)
        );
        assert!(spec.steps[2].expect_status.matches(204));
    }

    #[test]
    fn unknown_variable_names_the_step_field() {
        let e = parse(&JOURNEY.replace(
            "assignments/{{id}}\"\n    headers",
            "assignments/{{idd}}\"\n    headers",
        ))
        .unwrap_err();
        assert_eq!(e.field, "steps[2].url");
        assert!(
            e.message.contains("unknown variable `{{idd}}`"),
            "{}",
            e.message
        );
        // Extracted only by a later step.
        let e = parse(&JOURNEY.replace("{{password}}", "{{id}}")).unwrap_err();
        assert_eq!(e.field, "steps[0].json");
        let e =
            parse(&JOURNEY.replace("equals: \"{{title}}\"", "equals: \"{{titel}}\"")).unwrap_err();
        assert_eq!(e.field, "steps[2].assert[0]");
    }

    #[test]
    fn bad_paths_regexes_and_templates() {
        let e = parse(&JOURNEY.replace("\"$.access_token\"", "\"$.[\"")).unwrap_err();
        assert_eq!(e.field, "steps[0].extract.token");
        assert!(e.message.contains("bad JSON path"), "{}", e.message);
        let e =
            parse(&JOURNEY.replace("{status: 200}", "{json: \"$$x\", exists: true}")).unwrap_err();
        assert_eq!(e.field, "steps[2].assert[1]");
        let e = parse(&JOURNEY.replace("{{base}}/auth/token", "{{base/auth/token")).unwrap_err();
        assert_eq!(e.field, "steps[0].url");
        assert!(e.message.contains("unclosed"), "{}", e.message);
        let e = parse(&JOURNEY.replace("{status: 200}", "{body_regex: \"(\"}")).unwrap_err();
        assert!(e.message.contains("invalid regex"), "{}", e.message);
    }

    #[test]
    fn structural_errors() {
        let e = parse(&JOURNEY.replace("name: delete", "name: read")).unwrap_err();
        assert_eq!(e.field, "teardown[0].name");
        let e =
            parse(&JOURNEY.replace("expect_status: [201]", "expect_statuz: [201]")).unwrap_err();
        assert_eq!(e.field, "steps[1].expect_statuz");
        let e = parse("steps: []").unwrap_err();
        assert_eq!(e.field, "steps");
        let e = parse("steps: [{name: a, url: 'ftp://x/'}]").unwrap_err();
        assert_eq!(e.field, "steps[0].url");
        let e = parse("steps: [{name: a, url: 'http://x/', body: a, json: {}}]").unwrap_err();
        assert_eq!(e.field, "steps[0].json");
        let e = parse("variables: {uuid: x}\nsteps: [{name: a, url: 'http://x/'}]").unwrap_err();
        assert_eq!(e.field, "variables.uuid");
        let e = parse("steps: [{name: a, url: 'http://x/', method: 'GE T'}]").unwrap_err();
        assert_eq!(e.field, "steps[0].method");
    }
}
