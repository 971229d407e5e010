//! The JUnit XML report, the shape Jenkins, GitLab and GitHub test reporters render: one `<testsuite
//! name="vantage">`, one `<testcase classname="vantage.<type>" name="<check>">` per check, a failed check's
//! error as `<failure type message>`, the run's trace id as a testcase `<property name="trace_id">`, attempts,
//! phases, trace id and workflow steps in `<system-out>`.

use super::{ms, phases, CheckReport};
use std::fmt::Write;
use std::time::Duration;

pub(super) fn render(checks: &[CheckReport], region: &str) -> String {
    let failed = checks.iter().filter(|c| c.failed()).count();
    // Checks run concurrently; like most JUnit producers, the suite's time is the sum of its cases.
    let total: Duration = checks.iter().map(|c| c.duration).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{}\"",
        checks.len(),
        secs(total)
    );
    let _ = writeln!(out, "<testsuites name=\"vantage\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"vantage\" {counts}>");
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"region\" value=\"{}\"/>\n    </properties>",
        attr(region)
    );
    for c in checks {
        let _ = writeln!(
            out,
            "    <testcase classname=\"vantage.{}\" name=\"{}\" time=\"{}\">",
            attr(c.check_type),
            attr(c.name),
            secs(c.duration)
        );
        if let Some(trace_id) = &c.trace_id {
            let _ = writeln!(
                out,
                "      <properties>\n        <property name=\"trace_id\" value=\"{}\"/>\n      </properties>",
                attr(trace_id)
            );
        }
        if let (Some(error_type), Some(message)) = (c.error_type, &c.message) {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                attr(error_type),
                attr(message),
                text(&format!(
                    "{error_type}: {message}\nattempts: {}",
                    c.attempts
                ))
            );
        }
        let _ = writeln!(out, "      <system-out>{}</system-out>", text(&details(c)));
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// What a CI log shows under the test case: attempts, phases, the trace id, then each workflow step and a teardown
/// failure.
fn details(c: &CheckReport) -> String {
    let mut out = format!("attempts: {}\n", c.attempts);
    if !c.phases.0.is_empty() {
        let _ = writeln!(out, "phases: {}", phases(c.phases));
    }
    if let Some(icmp) = &c.icmp {
        let _ = writeln!(out, "icmp: {}", icmp.summary());
    }
    if let Some(trace_id) = &c.trace_id {
        let _ = writeln!(out, "trace_id: {trace_id}");
    }
    if !c.steps.is_empty() {
        out.push_str("steps:\n");
    }
    for s in &c.steps {
        let _ = write!(out, "  {} {}: {}", s.result, s.name, ms(s.duration));
        if let Some(status) = s.http_status {
            let _ = write!(out, ", HTTP {status}");
        }
        if !s.phases.0.is_empty() {
            let _ = write!(out, " ({})", phases(s.phases));
        }
        if let (Some(error_type), Some(message)) = (s.error_type, &s.message) {
            let _ = write!(out, "; {error_type}: {message}");
        }
        if !s.extracted.is_empty() {
            let _ = write!(out, "; extracted: {}", s.extracted.join(", "));
        }
        out.push('\n');
    }
    if let Some(t) = &c.teardown_error {
        let _ = writeln!(out, "teardown failed: {}: {}", t.error_type, t.message);
    }
    out
}

/// Character data: `&`, `<`, `>` escaped; characters XML 1.0 forbids written as `\u{..}` text.
fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value in double quotes; line breaks and tabs as character references so parsers keep them.
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(ch),
            c if !allowed_in_xml(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// XML 1.0's `Char` production (Rust `char`s are never surrogates).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_characters_xml_forbids() {
        assert_eq!(
            text("a < b && c > \"d\"\n\te"),
            "a &lt; b &amp;&amp; c &gt; \"d\"\n\te"
        );
        assert_eq!(
            attr("say \"hi\"\nnow\t<x>"),
            "say &quot;hi&quot;&#10;now&#9;&lt;x&gt;"
        );
        assert_eq!(
            text("bell\u{7}esc\u{1b}nul\u{0}"),
            "bell\\u{7}esc\\u{1b}nul\\u{0}"
        );
        assert_eq!(
            text("\u{FFFE}\u{FFFF}ok\u{FFFD}"),
            "\\u{fffe}\\u{ffff}ok\u{FFFD}"
        );
        assert_eq!(text("cr\r"), "cr&#13;");
        assert_eq!(text("emoji 🙂 é"), "emoji 🙂 é");
    }
}
