//! Operational endpoints: liveness (`/healthz`), readiness (`/readyz`: a request could be stored now),
//! `/metrics`.

use crate::state::AppState;
use crate::store::Readiness;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// The process runs and serves HTTP; nothing else is checked (a load balancer that restarts on this must not
/// restart a node for its database's outage).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 while the store takes writes, or while its spool takes them instead; 503 while neither can (database
/// away without a spool, disk full, spool full): take the node out of rotation. Answered from the store's
/// last write or probe (at most a few seconds old), without touching the database, and logged by the
/// store when it changes, not per request.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.readiness() {
        Readiness::Writing => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Readiness::Spooling => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "store": "unavailable, events go to the local spool"
        })),
        Readiness::Unavailable => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "store unavailable" })),
    }
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the classic text format (0.0.4), which
/// `promtool check metrics` and older tools read without lint complaints.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut out = String::with_capacity(64 * 1024);
    if prometheus_client::encoding::text::encode(&mut out, &state.registry).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    let wants_openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if wants_openmetrics {
        HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(out)
    } else {
        HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(to_classic(&out))
    }
}

/// OpenMetrics -> Prometheus text 0.0.4: counter families are named with their `_total` suffix in HELP/TYPE,
/// and `# UNIT` / `# EOF` lines are dropped.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
