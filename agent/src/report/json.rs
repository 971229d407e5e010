//! The JSON report: `{"summary": {"checks", "passed", "failed"}, "checks": [one object per check]}`.

use super::CheckReport;
use serde::Serialize;

#[derive(Serialize)]
struct Document<'a> {
    summary: Summary,
    checks: &'a [CheckReport<'a>],
}

#[derive(Serialize)]
struct Summary {
    checks: usize,
    passed: usize,
    failed: usize,
}

pub(super) fn render(checks: &[CheckReport]) -> String {
    let failed = checks.iter().filter(|c| c.failed()).count();
    let doc = Document {
        summary: Summary {
            checks: checks.len(),
            passed: checks.len() - failed,
            failed,
        },
        checks,
    };
    let mut out = serde_json::to_string_pretty(&doc).expect("plain data serializes");
    out.push('\n');
    out
}
