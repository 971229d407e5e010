//! What `vantage-agent once` prints: a table for people (the default), JSON for scripts, JUnit XML for CI test
//! reporters. Free text (failure messages) passes through the config's redactor in every format; names are
//! identity and shown as they are.

mod json;
mod junit;
mod table;

use crate::config::CheckConfig;
use crate::result::{GrpcFacts, IcmpFacts, Phases, ProbeError, ProbeResult, StepResult};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use vantage_common::Redactor;

/// `once --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON document: a summary and one object per check.
    Json,
    /// JUnit XML: one testsuite, one testcase per check (Jenkins, GitLab, GitHub test reporters).
    Junit,
}

/// Renders the results of `once` in `format`; `region` is the agent's.
pub fn render(
    format: Format,
    results: &[(Arc<CheckConfig>, ProbeResult)],
    region: &str,
    redactor: &Redactor,
) -> String {
    match format {
        Format::Table => table::table(results, redactor),
        Format::Json => json::render(&reports(results, region, redactor)),
        Format::Junit => junit::render(&reports(results, region, redactor), region),
    }
}

/// One check's outcome as the machine-readable formats show it, messages already redacted.
#[derive(Serialize)]
struct CheckReport<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    check_type: &'a str,
    region: &'a str,
    /// `success` or `failure`.
    result: &'static str,
    #[serde(serialize_with = "seconds")]
    duration: Duration,
    attempts: u32,
    #[serde(serialize_with = "phase_seconds")]
    phases: &'a Phases,
    error_type: Option<&'static str>,
    message: Option<String>,
    /// What a gRPC health check was answered (`status_code`, `serving_status`); gRPC checks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc: Option<&'a GrpcFacts>,
    /// Workflow steps in order (empty for other checks).
    steps: Vec<StepReport<'a>>,
    /// A teardown failure, apart from the run's own error.
    teardown_error: Option<ErrorReport>,
    /// The W3C trace id the run's requests carried (HTTP checks and workflows with trace context).
    trace_id: Option<String>,
    /// ICMP checks: packets, loss and round trips (absent for other types).
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp: Option<IcmpReport>,
}

/// An ICMP run in the JSON report; times in seconds.
#[derive(Serialize)]
struct IcmpReport {
    sent: u32,
    received: u32,
    /// Share of requests unanswered, 0..1.
    loss: f64,
    rtt_min: Option<f64>,
    rtt_avg: Option<f64>,
    rtt_max: Option<f64>,
    rtt_stddev: Option<f64>,
    hop_limit: Option<u8>,
}

impl IcmpReport {
    fn new(f: &IcmpFacts) -> Self {
        let rtt = |pick: fn(&crate::result::RttStats) -> Duration| {
            f.rtt.as_ref().map(|s| pick(s).as_secs_f64())
        };
        Self {
            sent: f.sent,
            received: f.received,
            loss: f.loss(),
            rtt_min: rtt(|s| s.min),
            rtt_avg: rtt(|s| s.avg),
            rtt_max: rtt(|s| s.max),
            rtt_stddev: rtt(|s| s.stddev),
            hop_limit: f.hop_limit,
        }
    }

    /// `3/3 replies, loss 0%, rtt min/avg/max 0.05/0.06/0.08ms, hop limit 64`: for people (table, JUnit).
    fn summary(&self) -> String {
        let mut out = format!(
            "{}/{} replies, loss {:.0}%",
            self.received,
            self.sent,
            self.loss * 100.0
        );
        if let (Some(min), Some(avg), Some(max)) = (self.rtt_min, self.rtt_avg, self.rtt_max) {
            let _ = write!(
                out,
                ", rtt min/avg/max {:.2}/{:.2}/{:.2}ms",
                min * 1000.0,
                avg * 1000.0,
                max * 1000.0
            );
        }
        if let Some(h) = self.hop_limit {
            let _ = write!(out, ", hop limit {h}");
        }
        out
    }
}

/// An ICMP run's packets, loss and round trips in one line.
fn icmp_summary(f: &IcmpFacts) -> String {
    IcmpReport::new(f).summary()
}

impl CheckReport<'_> {
    fn failed(&self) -> bool {
        self.error_type.is_some()
    }
}

#[derive(Serialize)]
struct StepReport<'a> {
    name: &'a str,
    /// `success`, `failure` or `skipped` (not run because an earlier step failed).
    result: &'static str,
    teardown: bool,
    #[serde(serialize_with = "seconds")]
    duration: Duration,
    #[serde(serialize_with = "phase_seconds")]
    phases: &'a Phases,
    http_status: Option<u16>,
    error_type: Option<&'static str>,
    message: Option<String>,
    /// Names of the variables the step extracted; their values are never reported.
    extracted: &'a [String],
}

#[derive(Serialize)]
struct ErrorReport {
    error_type: &'static str,
    message: String,
}

impl ErrorReport {
    fn new(e: &ProbeError, redactor: &Redactor) -> Self {
        Self {
            error_type: e.error_type.as_str(),
            message: redactor.redact(&e.message),
        }
    }
}

fn reports<'a>(
    results: &'a [(Arc<CheckConfig>, ProbeResult)],
    region: &'a str,
    redactor: &Redactor,
) -> Vec<CheckReport<'a>> {
    results
        .iter()
        .map(|(check, r)| {
            let error = r.error.as_ref().map(|e| ErrorReport::new(e, redactor));
            CheckReport {
                name: check.name.as_str(),
                check_type: check.check_type,
                region,
                result: if r.success() { "success" } else { "failure" },
                duration: r.duration,
                attempts: r.attempts,
                phases: &r.phases,
                error_type: error.as_ref().map(|e| e.error_type),
                message: error.map(|e| e.message),
                grpc: r.grpc.as_ref(),
                steps: r.steps.iter().map(|s| step(s, redactor)).collect(),
                teardown_error: r
                    .teardown_error
                    .as_ref()
                    .map(|e| ErrorReport::new(e, redactor)),
                icmp: r.icmp.as_deref().map(IcmpReport::new),
                trace_id: r.trace_id.map(|t| t.to_hex()),
            }
        })
        .collect()
}

fn step<'a>(s: &'a StepResult, redactor: &Redactor) -> StepReport<'a> {
    let error = s.error.as_ref().map(|e| ErrorReport::new(e, redactor));
    StepReport {
        name: &s.name,
        result: step_result(s),
        teardown: s.teardown,
        duration: s.duration,
        phases: &s.phases,
        http_status: s.status,
        error_type: error.as_ref().map(|e| e.error_type),
        message: error.map(|e| e.message),
        extracted: &s.extracted,
    }
}

fn step_result(s: &StepResult) -> &'static str {
    match (s.skipped, s.success) {
        (true, _) => "skipped",
        (false, true) => "success",
        (false, false) => "failure",
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Phases as `{"connect": 0.0015, ...}`, in the order they happen.
fn phase_seconds<S: Serializer>(p: &&Phases, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(p.0.len()))?;
    for (phase, d) in &p.0 {
        map.serialize_entry(phase.as_str(), &d.as_secs_f64())?;
    }
    map.end()
}

/// `12.3ms`: durations as the table and the JUnit output show them to people.
fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// `connect 1.5ms, processing 3.0ms`.
fn phases(p: &Phases) -> String {
    p.0.iter()
        .map(|(phase, d)| format!("{} {}", phase.as_str(), ms(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Runner;
    use crate::result::{ErrorType, Phase};
    use crate::schedule::Schedule;

    fn check(name: &str, check_type: &'static str) -> Arc<CheckConfig> {
        Arc::new(CheckConfig::new(
            name,
            check_type,
            Schedule::Every(Duration::from_secs(10)),
            Runner::new(|| Box::pin(async { ProbeResult::default() })),
        ))
    }

    /// A failed workflow: a passing step that extracted a variable, a failing one whose message carries a
    /// secret, markup and a control character, a skipped one, and a failed teardown.
    fn failed_workflow() -> ProbeResult {
        let mut login_phases = Phases::default();
        login_phases.add(Phase::Connect, Duration::from_micros(1500));
        let step = |name: &str, success, skipped, error: Option<ProbeError>| StepResult {
            name: name.into(),
            teardown: false,
            success,
            skipped,
            duration: Duration::from_millis(4),
            phases: Phases::default(),
            status: (!skipped).then_some(if success { 200 } else { 500 }),
            error,
            extracted: vec![],
        };
        let broken = ProbeError::new(
            ErrorType::Assertion,
            "expected body to contain \"<ok & fine>\", got \"s3cret\u{1b}[0m\"",
        );
        let mut login = step("login", true, false, None);
        login.phases = login_phases;
        login.extracted = vec!["token".into()];
        ProbeResult {
            attempts: 2,
            steps: vec![
                login,
                step("read", false, false, Some(broken.clone())),
                step("update", false, true, None),
            ],
            teardown_error: Some(ProbeError::new(
                ErrorType::HttpStatus,
                "expected 2xx, got 503",
            )),
            ..ProbeResult::failed(broken, Duration::from_millis(12))
        }
    }

    fn results() -> Vec<(Arc<CheckConfig>, ProbeResult)> {
        let mut ok = ProbeResult {
            duration: Duration::from_millis(250),
            attempts: 1,
            ..Default::default()
        };
        ok.phases.add(Phase::Connect, Duration::from_micros(1500));
        ok.phases.add(Phase::Processing, Duration::from_millis(3));
        vec![
            (check("home", "http"), ok),
            (check("journey", "api_workflow"), failed_workflow()),
        ]
    }

    #[test]
    fn json_has_one_object_per_check_with_steps_and_redacted_messages() {
        let redactor = Redactor::new(["s3cret".to_string()]);
        let out = render(Format::Json, &results(), "eu-1", &redactor);
        assert!(!out.contains("s3cret"), "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["summary"],
            serde_json::json!({"checks": 2, "passed": 1, "failed": 1})
        );
        let home = &v["checks"][0];
        assert_eq!(home["name"], "home");
        assert_eq!(home["type"], "http");
        assert_eq!(home["region"], "eu-1");
        assert_eq!(home["result"], "success");
        assert_eq!(home["duration"], 0.25);
        assert_eq!(home["phases"]["connect"], 0.0015);
        assert_eq!(home["phases"]["processing"], 0.003);
        assert!(home["error_type"].is_null() && home["message"].is_null());
        assert_eq!(home["steps"], serde_json::json!([]));
        let journey = &v["checks"][1];
        assert_eq!(journey["result"], "failure");
        assert_eq!(journey["attempts"], 2);
        assert_eq!(journey["error_type"], "assertion");
        assert_eq!(
            journey["message"],
            "expected body to contain \"<ok & fine>\", got \"***\u{1b}[0m\""
        );
        let steps = journey["steps"].as_array().unwrap();
        let summary: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["result"].as_str().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("login", "success"),
                ("read", "failure"),
                ("update", "skipped")
            ]
        );
        assert_eq!(steps[0]["extracted"], serde_json::json!(["token"]));
        assert_eq!(steps[0]["http_status"], 200);
        assert_eq!(steps[0]["phases"]["connect"], 0.0015);
        assert_eq!(steps[1]["error_type"], "assertion");
        assert!(steps[2]["http_status"].is_null());
        assert_eq!(
            journey["teardown_error"],
            serde_json::json!({"error_type": "http_status", "message": "expected 2xx, got 503"})
        );
    }

    #[test]
    fn icmp_runs_show_packets_loss_and_round_trips_in_every_format() {
        let ms = Duration::from_millis;
        let r = ProbeResult {
            attempts: 1,
            icmp: Some(Box::new(IcmpFacts {
                sent: 4,
                received: 3,
                setup: ms(1),
                rtt: crate::result::RttStats::of(&[ms(1), ms(2), ms(3)]),
                hop_limit: Some(64),
            })),
            ..Default::default()
        };
        let results = vec![(check("gw", "icmp"), r)];
        let redactor = Redactor::new(Vec::<String>::new());
        let table = render(Format::Table, &results, "eu", &redactor);
        let summary = "3/4 replies, loss 25%, rtt min/avg/max 1.00/2.00/3.00ms, hop limit 64";
        assert!(table.contains(summary), "{table}");
        let json: serde_json::Value =
            serde_json::from_str(&render(Format::Json, &results, "eu", &redactor)).unwrap();
        let icmp = &json["checks"][0]["icmp"];
        assert_eq!(
            (icmp["sent"].as_u64(), icmp["received"].as_u64()),
            (Some(4), Some(3))
        );
        assert_eq!(icmp["loss"], 0.25);
        assert_eq!(icmp["rtt_max"], 0.003);
        assert_eq!(icmp["hop_limit"], 64);
        let junit = render(Format::Junit, &results, "eu", &redactor);
        assert!(junit.contains(&format!("icmp: {summary}")), "{junit}");
        // Other types keep their JSON shape.
        let other = vec![(check("home", "http"), ProbeResult::default())];
        assert!(!render(Format::Json, &other, "eu", &redactor).contains("icmp"));
    }

    #[test]
    fn junit_parses_and_carries_failures_steps_and_no_forbidden_characters() {
        let redactor = Redactor::new(["s3cret".to_string()]);
        let out = render(Format::Junit, &results(), "eu-1", &redactor);
        assert!(!out.contains("s3cret") && !out.contains('\u{1b}'), "{out}");
        let doc = roxmltree::Document::parse(&out).unwrap();
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("name"), Some("vantage"));
        assert_eq!(suite.attribute("tests"), Some("2"));
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(suite.attribute("time"), Some("0.262"));
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].attribute("classname"), Some("vantage.http"));
        assert_eq!(cases[0].attribute("name"), Some("home"));
        assert_eq!(cases[0].attribute("time"), Some("0.250"));
        assert!(!cases[0].children().any(|n| n.has_tag_name("failure")));
        assert_eq!(
            cases[1].attribute("classname"),
            Some("vantage.api_workflow")
        );
        let failure = cases[1]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("type"), Some("assertion"));
        assert_eq!(
            failure.attribute("message"),
            Some("expected body to contain \"<ok & fine>\", got \"***\\u{1b}[0m\"")
        );
        assert!(failure.text().unwrap().ends_with("attempts: 2"));
        let out_text = cases[1]
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text())
            .unwrap();
        assert!(
            out_text
                .contains("  success login: 4.0ms, HTTP 200 (connect 1.5ms); extracted: token\n"),
            "{out_text}"
        );
        assert!(
            out_text.contains("  failure read: 4.0ms, HTTP 500; assertion: expected body"),
            "{out_text}"
        );
        assert!(out_text.contains("  skipped update: 4.0ms\n"), "{out_text}");
        assert!(
            out_text.contains("teardown failed: http_status: expected 2xx, got 503"),
            "{out_text}"
        );
    }
}
