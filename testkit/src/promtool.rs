//! `promtool` on an exposition text: `check metrics` for the classic text format, Prometheus's OpenMetrics parser
//! (through `tsdb create-blocks-from openmetrics`) for OpenMetrics. promtool is required wherever a test uses it
//! (scripts/test.sh installs the Debian package `prometheus`): a missing one fails the test, never skips the check.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on `text`: (passed, what promtool printed). Panics, naming the package, when
/// promtool is not installed.
pub fn check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool could not be started: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("promtool reads the exposition");
    let out = child.wait_with_output().expect("promtool ran");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

fn promtool() -> &'static str {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("promtool is required and not installed (apt-get install prometheus; scripts/test.sh does)")
}

/// Parses an OpenMetrics exposition (exemplars included) with Prometheus's own OpenMetrics parser: `promtool
/// check metrics` only reads the classic text format, so this imports the text into a throw-away TSDB with
/// `promtool tsdb create-blocks-from openmetrics`. That import needs a timestamp on every sample, which a scrape
/// does not carry: one (`at_secs`) is added to each sample line, before its exemplar; nothing else changes.
/// (passed, what promtool printed).
pub fn check_openmetrics(text: &str, at_secs: u64) -> (bool, String) {
    let stamped: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.is_empty() {
                return format!("{l}\n");
            }
            match l.split_once(" # {") {
                Some((sample, exemplar)) => format!("{sample} {at_secs} # {{{exemplar}\n"),
                None => format!("{l} {at_secs}\n"),
            }
        })
        .collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("metrics.om");
    std::fs::write(&input, stamped).expect("write the exposition");
    let out = Command::new(promtool())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.path().join("blocks"))
        .output()
        .unwrap_or_else(|e| panic!("promtool could not be started: {e}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}
