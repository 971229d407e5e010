//! Operational endpoints: liveness (`/healthz`), readiness (`/readyz`, store reachable), `/metrics`.

use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "store unreachable" }))
        }
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
