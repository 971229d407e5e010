//! Running a workflow once: steps in order through the one HTTP exchange function, sharing a [`Session`]
//! (cookies, connections), then teardown; one [`ProbeResult`] with a [`StepResult`] per step.
//!
//! A step fails on a transport error, a status outside `expect_status`, a failed assertion, or an extraction that
//! finds nothing. After the first failure the remaining steps are skipped, except `always: true` and teardown
//! steps, which run with whatever variables exist (a step that needs a variable nobody extracted is skipped).
//! The first failure is the result's `error`; a later failure of an always/teardown step goes to
//! `teardown_error` and never replaces it. Every message names the step and has secret values redacted.

use super::extract::{looks_secret, ResponseView};
use super::jwt::MintError;
use super::spec::{Auth, StepAssertion, StepSpec, WorkflowSpec};
use super::template::{Missing, Scope};
use crate::probe::http::exchange::{
    ClientOptions, ExchangeRequest, ExchangeResponse, HttpClient, HttpVersion, Session,
};
use crate::probe::SpecError;
use crate::result::{
    ErrorType, HttpFacts, Phase, Phases, ProbeError, ProbeResult, StepResult, TlsFacts,
};
use crate::trace::{CheckIdentity, TraceId};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use regex::Regex;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};
use vantage_common::{secrets, Redactor};

/// A workflow ready to run: its spec and its HTTP clients built once, one per HTTP version its steps speak (the
/// workflow's `http_version`, and any other a step asks for).
#[derive(Clone)]
pub struct Workflow {
    spec: Arc<WorkflowSpec>,
    clients: Arc<[(HttpVersion, HttpClient)]>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("steps", &self.spec.steps.len())
            .finish()
    }
}

/// Why a step did not pass.
enum StepFailure {
    /// Needs a variable that has no value: a failure for regular steps, a skip for always/teardown steps.
    Missing(String),
    Failed(ProbeError),
}

struct StepRun {
    status: Option<u16>,
    phases: Phases,
    facts: Option<(HttpFacts, Option<TlsFacts>)>,
    extracted: Vec<String>,
    outcome: Result<(), StepFailure>,
}

impl Workflow {
    /// Builds the HTTP client, with a `User-Agent` that names no check (tests, benchmarks); see [`Workflow::for_check`].
    pub fn new(spec: &WorkflowSpec) -> Result<Workflow, SpecError> {
        Self::for_check(spec, CheckIdentity::default())
    }

    /// Builds the HTTP clients; errors are config errors naming the field, such as `tls.ca_file` or
    /// `steps[1].http_version`.
    pub fn for_check(spec: &WorkflowSpec, id: CheckIdentity<'_>) -> Result<Workflow, SpecError> {
        let user_agent = spec
            .user_agent
            .header(id)
            .map_err(|m| SpecError::new("user_agent", m))?;
        let client = |http_version| {
            HttpClient::new(&ClientOptions {
                tls: spec.tls.clone(),
                follow_redirects: spec.follow_redirects,
                resolve_to: spec.resolve_to.clone(),
                resolver: spec.resolver.clone(),
                http_version,
                user_agent: user_agent.clone(),
                ..ClientOptions::default()
            })
        };
        let mut clients = vec![(spec.http_version, client(spec.http_version)?)];
        let steps = spec
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("steps[{i}]"), s));
        let teardown =
            (spec.teardown.iter().enumerate()).map(|(i, s)| (format!("teardown[{i}]"), s));
        for (at, step) in steps.chain(teardown) {
            let Some(v) = step.http_version else { continue };
            if !clients.iter().any(|(have, _)| *have == v) {
                clients.push((v, client(v).map_err(|e| e.within(&at))?));
            }
        }
        Ok(Workflow {
            spec: Arc::new(spec.clone()),
            clients: clients.into(),
        })
    }

    /// The client for `step`'s HTTP version.
    fn client_for(&self, step: &StepSpec) -> &HttpClient {
        let v = step.http_version.unwrap_or(self.spec.http_version);
        self.clients
            .iter()
            .find(|(have, _)| *have == v)
            .map_or(&self.clients[0].1, |(_, c)| c)
    }

    pub fn spec(&self) -> &WorkflowSpec {
        &self.spec
    }

    /// Whether step requests carry the run's trace id in `traceparent`.
    pub fn traced(&self) -> bool {
        self.spec.trace_context
    }

    /// Runs every step once in a trace of its own; see [`Workflow::run_in`].
    pub async fn run(&self) -> ProbeResult {
        self.run_in(TraceId::random()).await
    }

    /// Runs every step once, all in trace `trace` (a span per request). Never panics; never returns a secret in
    /// a message.
    pub async fn run_in(&self, trace: TraceId) -> ProbeResult {
        let trace = self.traced().then_some(trace);
        let start = Instant::now();
        let mut scope = Scope::new();
        for v in &self.spec.variables {
            scope.set(&v.name, v.value.clone(), v.secret);
        }
        let mut session = Session::new();
        let mut result = ProbeResult {
            attempts: 1,
            trace_id: trace,
            ..Default::default()
        };
        let mut last_facts: Option<HttpFacts> = None;
        let mut failed = false;
        let all = self
            .spec
            .steps
            .iter()
            .map(|s| (s, s.always, false))
            .chain(self.spec.teardown.iter().map(|s| (s, true, true)));
        for (step, always, in_teardown) in all {
            let step_start = Instant::now();
            if failed && !always {
                result.steps.push(StepResult {
                    name: step.name.clone(),
                    teardown: always,
                    success: false,
                    skipped: true,
                    duration: Default::default(),
                    phases: Phases::default(),
                    status: None,
                    error: None,
                    extracted: Vec::new(),
                });
                continue;
            }
            let run = self.run_step(step, &mut scope, &mut session, trace).await;
            result.phases.merge(&run.phases);
            if let Some((facts, tls)) = run.facts {
                last_facts = Some(facts);
                if tls.is_some() {
                    result.tls = tls;
                }
            }
            let redactor = Redactor::new(scope.secrets().cloned());
            let (success, skipped, error) = match run.outcome {
                Ok(()) => (true, false, None),
                Err(StepFailure::Missing(var)) if always => (
                    false,
                    true,
                    Some(ProbeError::new(
                        ErrorType::Template,
                        format!(
                            "step {}: skipped, it needs {{{{{var}}}}}, which no step extracted",
                            step.name
                        ),
                    )),
                ),
                Err(StepFailure::Missing(var)) => (
                    false,
                    false,
                    Some(ProbeError::new(
                        ErrorType::Template,
                        format!("step {}: variable {{{{{var}}}}} has no value", step.name),
                    )),
                ),
                Err(StepFailure::Failed(e)) => (
                    false,
                    false,
                    Some(ProbeError::new(
                        e.error_type,
                        redactor.redact(&format!("step {}: {}", step.name, e.message)),
                    )),
                ),
            };
            if let (false, false, Some(e)) = (success, skipped, &error) {
                if !failed {
                    // The first failure is the run's error, even when it is a teardown step's.
                    result.error = Some(e.clone());
                    if in_teardown {
                        result.teardown_error = Some(e.clone());
                    }
                    failed = true;
                } else if result.teardown_error.is_none() {
                    result.teardown_error = Some(e.clone());
                }
            }
            result.steps.push(StepResult {
                name: step.name.clone(),
                teardown: always,
                success,
                skipped,
                duration: step_start.elapsed(),
                phases: run.phases,
                status: run.status,
                error,
                extracted: run.extracted,
            });
        }
        result.http = last_facts;
        result.dns_lookup = result.phases.get(Phase::Resolve);
        result.duration = start.elapsed();
        result
    }

    async fn run_step(
        &self,
        step: &StepSpec,
        scope: &mut Scope,
        session: &mut Session,
        trace: Option<TraceId>,
    ) -> StepRun {
        let mut run = StepRun {
            status: None,
            phases: Phases::default(),
            facts: None,
            extracted: Vec::new(),
            outcome: Ok(()),
        };
        let req = match build_request(step, scope) {
            Ok(r) => ExchangeRequest { trace, ..r },
            Err(f) => {
                run.outcome = Err(f);
                return run;
            }
        };
        let timeout = step.timeout();
        let resp =
            match tokio::time::timeout(timeout, self.client_for(step).exchange(req, Some(session)))
                .await
            {
                Err(_) => {
                    run.outcome = Err(StepFailure::Failed(ProbeError::new(
                        ErrorType::Timeout,
                        format!(
                            "no complete response within the step timeout ({})",
                            humantime::format_duration(timeout)
                        ),
                    )));
                    return run;
                }
                Ok(Err(e)) => {
                    run.outcome = Err(StepFailure::Failed(e));
                    return run;
                }
                Ok(Ok(r)) => r,
            };
        run.status = Some(resp.status);
        run.phases = resp.phases.clone();
        run.facts = Some((
            HttpFacts {
                status: resp.status,
                version: resp.version,
                redirects: resp.redirects,
                content_length: resp.body.len() as u64,
            },
            resp.tls.clone(),
        ));
        run.outcome = check_and_extract(step, scope, &resp, &mut run.extracted);
        run
    }
}

fn missing(m: Missing) -> StepFailure {
    StepFailure::Missing(m.0)
}

fn template_error(msg: String) -> StepFailure {
    StepFailure::Failed(ProbeError::new(ErrorType::Template, msg))
}

fn build_request(step: &StepSpec, scope: &mut Scope) -> Result<ExchangeRequest, StepFailure> {
    let url_text = step.url.render(scope).map_err(missing)?;
    let mut url = url::Url::parse(&url_text)
        .map_err(|e| template_error(format!("url {url_text:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(template_error(format!(
            "url {url_text:?}: use http or https"
        )));
    }
    if !step.query.is_empty() {
        let mut pairs = Vec::with_capacity(step.query.len());
        for (k, t) in &step.query {
            pairs.push((k, t.render(scope).map_err(missing)?));
        }
        url.query_pairs_mut().extend_pairs(pairs);
    }
    for credential in secrets::url_credentials(url.as_str()) {
        scope.add_secret(credential);
    }
    let mut headers = HeaderMap::new();
    for (name, t) in &step.headers {
        let value = t.render(scope).map_err(missing)?;
        if !secrets::is_descriptive_header(name) {
            scope.add_secret(value.clone());
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| template_error(format!("{name:?} is not a header name")))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            template_error(format!(
                "header {name}: the rendered value is not a valid header value"
            ))
        })?;
        headers.append(name, value);
    }
    if let Some(auth) = &step.auth {
        let value = match auth {
            Auth::Bearer(t) => {
                let token = t.render(scope).map_err(missing)?;
                scope.add_secret(token.clone());
                format!("Bearer {token}")
            }
            Auth::Basic { username, password } => {
                let user = username.render(scope).map_err(missing)?;
                let pass = password.render(scope).map_err(missing)?;
                scope.add_secret(pass.clone());
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                scope.add_secret(encoded.clone());
                format!("Basic {encoded}")
            }
            Auth::Jwt(jwt) => {
                let token = jwt.mint(scope, SystemTime::now()).map_err(|e| match e {
                    MintError::Missing(m) => missing(m),
                    MintError::Sign(msg) => template_error(format!("cannot sign the JWT: {msg}")),
                })?;
                scope.add_secret(token.clone());
                format!("Bearer {token}")
            }
        };
        let value = HeaderValue::from_str(&value).map_err(|_| {
            template_error("auth: the rendered credentials are not a valid header value".into())
        })?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    let body = if let Some(t) = &step.body {
        t.render(scope).map_err(missing)?
    } else if let Some(j) = &step.json {
        let value = j.render(scope).map_err(missing)?;
        headers
            .entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        serde_json::to_string(&value).unwrap_or_default()
    } else {
        String::new()
    };
    // A request body is a credential as a whole (a login form, a token exchange).
    scope.add_secret(body.clone());
    let body = Bytes::from(body);
    Ok(ExchangeRequest {
        method: step.method.clone(),
        url,
        headers,
        body,
        trace: None,
    })
}

fn with_status(msg: String, status: u16) -> String {
    format!("{msg} (HTTP {status})")
}

/// A short single-line excerpt of a body for status failures (the API's own error text is the useful part).
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return String::new();
    }
    let cut: String = one_line.chars().take(MAX).collect();
    if cut.len() < one_line.len() {
        format!(": {cut}...")
    } else {
        format!(": {cut}")
    }
}

/// Matches JWTs (also cut short), which are credentials even when we never saw them before.
fn jwt_like() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"eyJ[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*){0,2}").expect("valid regex")
    })
}

/// JSON string fields whose key names a credential: `"access_token": "..."`.
fn secret_field() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)("[a-z0-9_-]*(token|secret|password|passwd|api_?key|session|cookie|credential)[a-z0-9_-]*"\s*:\s*")[^"]*""#)
            .expect("valid regex")
    })
}

/// A copy of `resp` with credentials scrubbed from the body and headers, for building failure messages: the
/// messages show excerpts, and an excerpt may cut a secret short where plain redaction would no longer find it.
fn sanitized(resp: &ExchangeResponse, redactor: &Redactor) -> ExchangeResponse {
    let body = String::from_utf8_lossy(&resp.body);
    let body = redactor.redact(&body);
    let body = secret_field().replace_all(&body, "${1}***\"");
    let body = jwt_like().replace_all(&body, "***");
    let mut headers = resp.headers.clone();
    for (name, value) in headers.iter_mut() {
        let text = String::from_utf8_lossy(value.as_bytes());
        let clean = if looks_secret(name.as_str()) {
            "***".to_string()
        } else {
            jwt_like()
                .replace_all(&redactor.redact(&text), "***")
                .into_owned()
        };
        if clean != text {
            *value = HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("***"));
        }
    }
    ExchangeResponse {
        body: Bytes::from(body.into_owned()),
        headers,
        ..resp.clone()
    }
}

fn check_and_extract(
    step: &StepSpec,
    scope: &mut Scope,
    resp: &ExchangeResponse,
    extracted: &mut Vec<String>,
) -> Result<(), StepFailure> {
    if let Err(e) = step.expect_status.check(resp.status) {
        let clean = sanitized(resp, &Redactor::new(scope.secrets().cloned()));
        return Err(StepFailure::Failed(ProbeError::new(
            e.error_type,
            format!("{}{}", e.message, excerpt(&clean.body)),
        )));
    }
    for a in &step.assertions {
        let compiled;
        let assertion = match a {
            StepAssertion::Compiled(c) => c,
            StepAssertion::Templated(spec) => {
                let rendered = spec.render(&mut |s| {
                    super::template::Template::parse(s)
                        .map_err(|e| template_error(e.0))?
                        .render(scope)
                        .map_err(missing)
                })?;
                compiled = rendered
                    .compile()
                    .map_err(|e| template_error(format!("assertion {e}")))?;
                &compiled
            }
        };
        if let Err(e) = assertion.check(resp) {
            // The message comes from the same check on a scrubbed copy; should that pass, say less.
            let message =
                match assertion.check(&sanitized(resp, &Redactor::new(scope.secrets().cloned()))) {
                    Err(clean) => clean.message,
                    Ok(()) => {
                        "assertion failed (details withheld: they contain a credential)".to_string()
                    }
                };
            return Err(StepFailure::Failed(ProbeError::new(
                e.error_type,
                with_status(message, resp.status),
            )));
        }
    }
    let view = ResponseView::new(resp.status, &resp.headers, &resp.body);
    for (name, ex) in &step.extract {
        let value = ex.apply(&view).map_err(|msg| {
            StepFailure::Failed(ProbeError::new(
                ErrorType::Assertion,
                with_status(format!("extract {name}: {msg}"), resp.status),
            ))
        })?;
        scope.set(name, value, ex.is_secret(name));
        extracted.push(name.clone());
    }
    Ok(())
}
