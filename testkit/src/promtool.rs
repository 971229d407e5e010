//! `promtool check metrics` on an exposition text. promtool is required wherever a test uses it
//! (scripts/test.sh installs the Debian package `prometheus`): a missing one fails the test, never skips the check.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on `text`: (passed, what promtool printed). Panics, naming the package, when
/// promtool is not installed.
pub fn check_metrics(text: &str) -> (bool, String) {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("promtool is required and not installed (apt-get install prometheus; scripts/test.sh does)");
    let mut child = Command::new(promtool)
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
