//! Prometheus metrics: RUM series derived from accepted events, and the server's own telemetry.

use crate::envelope::Dropped;
use crate::event::{EventType, RejectReason, Vital};
use crate::store::Text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub site: Text,
    pub event_type: &'static str,
    pub page: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PageLabels {
    pub site: Text,
    pub page: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub site: Text,
    pub endpoint: Text,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    pub site: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub site: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DroppedLabels {
    pub site: Text,
    pub reason: &'static str,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

fn page_load_hist() -> Histogram {
    Histogram::new([
        0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0,
    ])
}
fn api_hist() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}
// Web-vital buckets straddle the good / poor thresholds (LCP 2.5/4 s, INP 0.2/0.5 s, FCP 1.8/3 s,
// TTFB 0.8/1.8 s, CLS 0.1/0.25) so the shares can be read off the buckets.
fn lcp_hist() -> Histogram {
    Histogram::new([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0])
}
fn inp_hist() -> Histogram {
    Histogram::new([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0])
}
fn fcp_hist() -> Histogram {
    Histogram::new([0.5, 1.0, 1.5, 1.8, 2.2, 2.6, 3.0, 4.0, 6.0, 10.0])
}
fn ttfb_hist() -> Histogram {
    Histogram::new([0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 2.5, 4.0])
}
fn cls_hist() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0])
}
fn request_hist() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// All metric families the HTTP side writes to.
pub struct Metrics {
    events: Family<EventLabels, Counter>,
    page_load: Hist<PageLabels>,
    api: Hist<ApiLabels>,
    lcp: Hist<PageLabels>,
    inp: Hist<PageLabels>,
    fcp: Hist<PageLabels>,
    ttfb: Hist<PageLabels>,
    cls: Hist<PageLabels>,
    errors: Family<PageLabels, Counter>,
    new_error_groups: Family<SiteLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Hist<RouteLabels>,
    rejected: Family<RejectLabels, Counter>,
    sdk_dropped: Family<DroppedLabels, Counter>,
    duplicate_batches: Family<SiteLabels, Counter>,
}

/// One accepted event reduced to what the metrics need; labels are already shaped and budgeted (shared
/// text, so building a label set copies no string).
pub struct Observation {
    pub kind: EventType,
    pub page: Text,
    pub value_ms: Option<f64>,
    pub vital: Option<Vital>,
    /// api_call only; `None` there is the `unknown` endpoint.
    pub endpoint: Option<Text>,
    pub status_class: &'static str,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            events: Family::default(),
            page_load: Family::new_with_constructor(page_load_hist),
            api: Family::new_with_constructor(api_hist),
            lcp: Family::new_with_constructor(lcp_hist),
            inp: Family::new_with_constructor(inp_hist),
            fcp: Family::new_with_constructor(fcp_hist),
            ttfb: Family::new_with_constructor(ttfb_hist),
            cls: Family::new_with_constructor(cls_hist),
            errors: Family::default(),
            new_error_groups: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_hist),
            rejected: Family::default(),
            sdk_dropped: Family::default(),
            duplicate_batches: Family::default(),
        };
        registry.register(
            "rum_events",
            "RUM events accepted, by site, event type and page route",
            m.events.clone(),
        );
        registry.register_with_unit(
            "rum_page_load",
            "Page load time reported by browsers",
            Unit::Seconds,
            m.page_load.clone(),
        );
        registry.register_with_unit(
            "rum_api_call_duration",
            "Duration of API calls made by pages, by endpoint and status class",
            Unit::Seconds,
            m.api.clone(),
        );
        registry.register_with_unit(
            "rum_lcp",
            "Largest Contentful Paint",
            Unit::Seconds,
            m.lcp.clone(),
        );
        registry.register_with_unit(
            "rum_inp",
            "Interaction to Next Paint",
            Unit::Seconds,
            m.inp.clone(),
        );
        registry.register_with_unit(
            "rum_fcp",
            "First Contentful Paint",
            Unit::Seconds,
            m.fcp.clone(),
        );
        registry.register_with_unit(
            "rum_ttfb",
            "Time to First Byte",
            Unit::Seconds,
            m.ttfb.clone(),
        );
        registry.register(
            "rum_cls",
            "Cumulative Layout Shift (unitless)",
            m.cls.clone(),
        );
        registry.register(
            "rum_errors",
            "JavaScript errors reported by pages",
            m.errors.clone(),
        );
        // Labelled by site alone: sites come from the config, so the series are bounded by construction.
        registry.register(
            "rum_error_groups_new",
            "Error groups seen for the first time (a group is a fingerprint of type, normalised message and \
             top in-app frame), by site",
            m.new_error_groups.clone(),
        );
        registry.register(
            "vantage_ingest_http_requests",
            "HTTP requests served, by route and status code",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "vantage_ingest_http_request_duration",
            "HTTP request latency, by route",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        registry.register(
            "vantage_ingest_events_rejected",
            "Events refused by validation, by site and reason",
            m.rejected.clone(),
        );
        // Both labelled by site (from the config) and a closed set: bounded by construction.
        registry.register(
            "rum_sdk_dropped_events",
            "Events the browser SDK lost before sending them, as its batches report, by site and reason \
             (queue, outbox, retry, other, unspecified)",
            m.sdk_dropped.clone(),
        );
        registry.register(
            "rum_batches_duplicate",
            "Batches recognised by their batch_id as retries of one this node accepted lately (answered without \
             storing or counting them again), by site",
            m.duplicate_batches.clone(),
        );
        m
    }

    /// Records one accepted event. Values are never negative here: validation dropped impossible ones.
    pub fn observe(&self, site: &Text, o: &Observation) {
        let page = PageLabels {
            site: site.clone(),
            page: o.page.clone(),
        };
        self.events
            .get_or_create(&EventLabels {
                site: page.site.clone(),
                event_type: o.kind.as_str(),
                page: page.page.clone(),
            })
            .inc();
        let secs = o.value_ms.filter(|v| *v >= 0.0).map(|v| v / 1000.0);
        match o.kind {
            EventType::PageLoad => {
                if let Some(s) = secs {
                    self.page_load.get_or_create(&page).observe(s);
                }
            }
            EventType::ApiCall => {
                if let Some(s) = secs {
                    self.api
                        .get_or_create(&ApiLabels {
                            site: page.site.clone(),
                            endpoint: o.endpoint.clone().unwrap_or_else(|| "unknown".into()),
                            status: o.status_class,
                        })
                        .observe(s);
                }
            }
            EventType::Error => {
                self.errors.get_or_create(&page).inc();
            }
            EventType::WebVital => {
                let (Some(vital), Some(v)) = (o.vital, o.value_ms.filter(|v| *v >= 0.0)) else {
                    return;
                };
                match vital {
                    Vital::Lcp => self.lcp.get_or_create(&page).observe(v / 1000.0),
                    Vital::Inp => self.inp.get_or_create(&page).observe(v / 1000.0),
                    Vital::Fcp => self.fcp.get_or_create(&page).observe(v / 1000.0),
                    Vital::Ttfb => self.ttfb.get_or_create(&page).observe(v / 1000.0),
                    Vital::Cls => self.cls.get_or_create(&page).observe(v),
                }
            }
            _ => {}
        }
    }

    /// Counts error groups first seen (their group row created by this node).
    pub fn new_error_groups(&self, site: &Text, n: usize) {
        if n > 0 {
            self.new_error_groups
                .get_or_create(&SiteLabels { site: site.clone() })
                .inc_by(n as u64);
        }
    }

    /// Counts the events a batch reports its sender lost.
    pub fn sdk_dropped(&self, site: &Text, dropped: &Dropped) {
        for (reason, n) in dropped.counts() {
            self.sdk_dropped
                .get_or_create(&DroppedLabels {
                    site: site.clone(),
                    reason: reason.as_str(),
                })
                .inc_by(n);
        }
    }

    /// Counts a batch recognised as a retry of one accepted before.
    pub fn duplicate_batch(&self, site: &Text) {
        self.duplicate_batches
            .get_or_create(&SiteLabels { site: site.clone() })
            .inc();
    }

    pub fn rejected(&self, site: &str, reason: RejectReason) {
        self.rejected
            .get_or_create(&RejectLabels {
                site: site.to_string(),
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels { route, status })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }
}

/// Bounded route label for self-metrics: the matched pattern among ours, else `unmatched`.
pub fn route_label(pattern: Option<&str>) -> &'static str {
    const ROUTES: [&str; 20] = [
        "/v1/events",
        "/v1/stats/{kind}",
        "/v1/stats/errors/{group}",
        "/v1/admin/sourcemaps",
        "/v1/admin/sessions/{site}/{session_id}",
        "/metrics",
        "/healthz",
        "/readyz",
        "/rum-sdk.js",
        "/rum-sdk.{version}.js",
        "/v1/stats/pages",
        "/v1/stats/api",
        "/v1/stats/errors",
        "/v1/stats/sites",
        "/v1/stats/timeline",
        "/v1/stats/sessions",
        "/v1/stats/sessions/{id}",
        "/",
        "/ui",
        "/ui/{file:.*}",
    ];
    pattern
        .and_then(|p| ROUTES.iter().find(|r| **r == p).copied())
        .unwrap_or("unmatched")
}
