//! Secret redaction: known secret values (found by field, see [`crate::secrets`]) scrubbed from free text.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Replaces known secret values in text with `***`. Cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    // Longest first so a secret that contains another is replaced whole.
    secrets: Arc<Vec<String>>,
}

/// Shorter values are too likely to be ordinary words or numbers to scrub safely.
const MIN_SECRET_LEN: usize = 3;

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let set: BTreeSet<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            secrets: Arc::new(v),
        }
    }

    /// Adds more secrets (e.g. tokens extracted at run time), returning a new redactor.
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Self {
        Self::new(self.secrets.iter().cloned().chain(more))
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    pub fn contains_secret(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let r = Redactor::new(["abc".to_string(), "abcdef".to_string(), "x".to_string()]);
        assert_eq!(r.redact("token=abcdef;abc;x"), "token=***;***;x");
        assert!(r.contains_secret("..abc.."));
    }
}
