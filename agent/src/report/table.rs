//! The table for people: one row per check (result, duration, attempts, phases, failure reason or a gRPC check's
//! serving status), workflow steps indented below their check. The reason column passes through the redactor; a
//! failure's reason ends with the run's trace id, where the backend trace that explains it is found.

use super::{icmp_summary, ms, phases};
use crate::config::CheckConfig;
use crate::result::ProbeResult;
use std::sync::Arc;
use vantage_common::Redactor;

/// A step's failure and the names (never the values) of the variables it extracted.
fn step_note(s: &crate::result::StepResult) -> String {
    let error = s
        .error
        .as_ref()
        .map(|e| format!("{}: {}", e.error_type.as_str(), e.message));
    let extracted =
        (!s.extracted.is_empty()).then(|| format!("extracted: {}", s.extracted.join(", ")));
    [error, extracted]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// Renders the results of `once`.
pub fn table(results: &[(Arc<CheckConfig>, ProbeResult)], redactor: &Redactor) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "CHECK".into(),
        "RESULT".into(),
        "DURATION".into(),
        "ATTEMPTS".into(),
        "PHASES".into(),
        "REASON".into(),
    ]];
    for (check, r) in results {
        let serving = r.grpc.as_ref().and_then(|g| g.serving_status);
        let reason = match (&r.error, serving) {
            (Some(e), _) => {
                let reason = format!("{}: {}", e.error_type.as_str(), e.message);
                match r.trace_id {
                    Some(t) => format!("{reason} [trace_id={t}]"),
                    None => reason,
                }
            }
            // A gRPC health check says what it was answered even when it passed.
            (None, Some(s)) => s.as_str().to_string(),
            (None, None) => String::new(),
        };
        rows.push([
            check.name.to_string(),
            if r.success() { "ok" } else { "FAIL" }.into(),
            ms(r.duration),
            r.attempts.to_string(),
            match &r.icmp {
                Some(icmp) => icmp_summary(icmp),
                None => phases(&r.phases),
            },
            reason,
        ]);
        for s in &r.steps {
            let result = match (s.skipped, s.success) {
                (true, _) => "skipped",
                (false, true) => "ok",
                (false, false) => "FAIL",
            };
            rows.push([
                format!("  - {}", s.name),
                result.into(),
                ms(s.duration),
                String::new(),
                phases(&s.phases),
                step_note(s),
            ]);
        }
        if let Some(t) = &r.teardown_error {
            rows.push([
                "  (teardown)".into(),
                "FAIL".into(),
                String::new(),
                String::new(),
                String::new(),
                format!("{}: {}", t.error_type.as_str(), t.message),
            ]);
        }
    }
    const REASON: usize = 5;
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    let c = if i == REASON {
                        redactor.redact(c)
                    } else {
                        c.clone()
                    };
                    c.replace('\n', " ")
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failed = results.iter().filter(|(_, r)| !r.success()).count();
    out.push_str(&format!(
        "\n{} checks, {} passed, {} failed\n",
        results.len(),
        results.len() - failed,
        failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Runner;
    use crate::result::{ErrorType, Phase, ProbeError};
    use crate::schedule::Schedule;
    use std::time::Duration;

    #[test]
    fn table_lists_results_and_redacts() {
        let c = Arc::new(CheckConfig::new(
            "api",
            "http",
            Schedule::Every(Duration::from_secs(10)),
            Runner::new(|| Box::pin(async { ProbeResult::default() })),
        ));
        let mut ok = ProbeResult {
            duration: Duration::from_millis(12),
            attempts: 1,
            ..Default::default()
        };
        ok.phases.add(Phase::Connect, Duration::from_micros(1500));
        let bad = ProbeResult {
            attempts: 3,
            ..ProbeResult::failed(
                ProbeError::new(
                    ErrorType::HttpStatus,
                    "expected 2xx, got 500 for token s3cret",
                ),
                Duration::from_millis(5),
            )
        };
        let out = table(
            &[(c.clone(), ok), (c, bad)],
            &Redactor::new(["s3cret".to_string()]),
        );
        assert!(out.contains("connect 1.5ms"), "{out}");
        assert!(
            out.contains("http_status: expected 2xx, got 500 for token ***"),
            "{out}"
        );
        assert!(!out.contains("s3cret"));
        assert!(out.contains("2 checks, 1 passed, 1 failed"), "{out}");
    }

    #[test]
    fn a_grpc_check_shows_its_serving_status() {
        let c = Arc::new(CheckConfig::new(
            "orders",
            "grpc",
            Schedule::Every(Duration::from_secs(10)),
            Runner::new(|| Box::pin(async { ProbeResult::default() })),
        ));
        let ok = ProbeResult {
            grpc: Some(crate::result::GrpcFacts {
                status_code: 0,
                serving_status: Some(crate::result::ServingStatus::Serving),
            }),
            attempts: 1,
            ..Default::default()
        };
        let out = table(&[(c, ok)], &Redactor::new(Vec::<String>::new()));
        let row = out.lines().find(|l| l.starts_with("orders")).unwrap();
        assert!(
            row.starts_with("orders") && row.ends_with("SERVING"),
            "{out}"
        );
    }
}
