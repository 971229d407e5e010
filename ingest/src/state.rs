//! The state every handler shares: settings, store, metrics, label budgets, limits. The server's startup builds
//! it; handlers depend on it alone.

use crate::body_budget::BodyBudget;
use crate::cardinality::Budgets;
use crate::config::Settings;
use crate::conn_watchdog::Watchdog;
use crate::jserror::groups::KnownGroups;
use crate::jserror::symbolicate::Symbolicator;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::recent_batches::RecentBatches;
use crate::shape::UaParser;
use crate::store::Store;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use vantage_common::Shutdown;

/// Everything handlers share.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub metrics: Metrics,
    pub registry: Registry,
    pub budgets: Budgets,
    pub limiter: RateLimiter,
    pub ua: UaParser,
    pub body_budget: BodyBudget,
    /// Error stacks rewritten with uploaded source maps (and its cache of parsed maps).
    pub symbolicator: Symbolicator,
    /// Error groups this node wrote lately (the new-groups counter).
    pub known_groups: KnownGroups,
    /// Batches this node accepted lately, so that a retry of one is answered at once.
    pub recent_batches: RecentBatches,
    /// Deadlines on kept-alive connections (heads of later requests, answers the client does not read).
    pub watchdog: Arc<Watchdog>,
    /// Fires when the server starts shutting down: requests still waiting for their body give up at once.
    pub shutdown: Shutdown,
}

impl AppState {
    /// Whether any site allows this browser origin (preflights carry no key, so no site is known yet).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Some(origin) = crate::auth::Origin::from_header(origin) else {
            return false;
        };
        self.settings
            .sites
            .iter()
            .any(|s| s.origins.iter().any(|p| p.allows(&origin)))
    }
}
