//! Label budgets: each site may use a bounded number of distinct values per metric label, then `other`.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// The value that replaces labels over budget.
pub const OTHER: &str = "other";

/// Metric labels that carry open-ended values and therefore have a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Page,
    Endpoint,
}

/// Distinct values seen per (site, label). Values already admitted stay admitted; new ones past the budget fold.
#[derive(Debug, Default)]
pub struct Budgets {
    seen: RwLock<HashMap<(usize, Label), HashSet<String>>>,
}

impl Budgets {
    /// `value` itself if it is known or fits the site's budget, else [`OTHER`].
    pub fn admit(&self, site: usize, label: Label, value: &str, budget: usize) -> String {
        {
            let seen = self.seen.read().expect("budgets");
            if let Some(set) = seen.get(&(site, label)) {
                if set.contains(value) {
                    return value.to_string();
                }
                if set.len() >= budget {
                    return OTHER.to_string();
                }
            }
        }
        let mut seen = self.seen.write().expect("budgets");
        let set = seen.entry((site, label)).or_default();
        if set.contains(value) || set.len() < budget {
            set.insert(value.to_string());
            value.to_string()
        } else {
            OTHER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_after_budget_per_site_and_label() {
        let b = Budgets::default();
        assert_eq!(b.admit(0, Label::Page, "/a", 2), "/a");
        assert_eq!(b.admit(0, Label::Page, "/b", 2), "/b");
        assert_eq!(b.admit(0, Label::Page, "/c", 2), OTHER);
        assert_eq!(b.admit(0, Label::Page, "/a", 2), "/a");
        assert_eq!(b.admit(1, Label::Page, "/c", 2), "/c");
        assert_eq!(b.admit(0, Label::Endpoint, "/c", 2), "/c");
    }
}
