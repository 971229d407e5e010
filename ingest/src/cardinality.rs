//! Label budgets: each site may use a bounded number of distinct values per metric label, then `other`.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use crate::store::Text;

/// The value that replaces labels over budget.
pub const OTHER: &str = "other";

/// Metric labels that carry open-ended values and therefore have a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Page,
    Endpoint,
}

/// Distinct values seen per (site, label). Values already admitted stay admitted; new ones past the budget fold.
/// Admitted values are handed out as shared text: labelling an event copies no string.
#[derive(Debug)]
pub struct Budgets {
    seen: RwLock<HashMap<(usize, Label), HashSet<Text>>>,
    other: Text,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            seen: RwLock::default(),
            other: OTHER.into(),
        }
    }
}

impl Budgets {
    /// `value` itself if it is known or fits the site's budget, else [`OTHER`].
    pub fn admit(&self, site: usize, label: Label, value: &str, budget: usize) -> Text {
        {
            let seen = self.seen.read().expect("budgets");
            if let Some(set) = seen.get(&(site, label)) {
                if let Some(known) = set.get(value) {
                    return known.clone();
                }
                if set.len() >= budget {
                    return self.other.clone();
                }
            }
        }
        let mut seen = self.seen.write().expect("budgets");
        let set = seen.entry((site, label)).or_default();
        if let Some(known) = set.get(value) {
            known.clone()
        } else if set.len() < budget {
            let value: Text = value.into();
            set.insert(value.clone());
            value
        } else {
            self.other.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_after_budget_per_site_and_label() {
        let b = Budgets::default();
        assert_eq!(&*b.admit(0, Label::Page, "/a", 2), "/a");
        assert_eq!(&*b.admit(0, Label::Page, "/b", 2), "/b");
        assert_eq!(&*b.admit(0, Label::Page, "/c", 2), OTHER);
        assert_eq!(&*b.admit(0, Label::Page, "/a", 2), "/a");
        assert_eq!(&*b.admit(1, Label::Page, "/c", 2), "/c");
        assert_eq!(&*b.admit(0, Label::Endpoint, "/c", 2), "/c");
    }
}
