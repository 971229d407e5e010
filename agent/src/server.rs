//! The agent's HTTP server: `GET /metrics`, `/healthz`, `/readyz` and `/api/v1/checks` (status JSON, redacted).

use crate::metrics::{Format, Metrics};
use crate::scheduler::{CheckView, Scheduler};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use vantage_common::{Redactor, Shutdown};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub scheduler: Scheduler,
}

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, state: AppState, mut shutdown: Shutdown) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        let state = state.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move {
                    if req.uri().path() == "/metrics" && req.method() == Method::GET {
                        return Ok::<_, Infallible>(metrics(&state, &req).await);
                    }
                    Ok::<_, Infallible>(handle(&state, req))
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = conn_shutdown.recv() => {}
            }
        });
    }
}

fn handle(state: &AppState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        // HEAD: the headers a GET would get, without encoding a body.
        "/metrics" => text(StatusCode::OK, ""),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.scheduler.is_started() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "no config applied yet\n"),
        "/api/v1/checks" => {
            let redactor = state.scheduler.redactor();
            let region = state.scheduler.region();
            let checks: Vec<Value> = state
                .scheduler
                .checks()
                .iter()
                .map(|c| check_json(c, &region, &redactor))
                .collect();
            let body = serde_json::to_string_pretty(&json!({ "region": region, "checks": checks }))
                .expect("JSON values always serialize");
            respond(StatusCode::OK, "application/json", body)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// `GET /metrics`: OpenMetrics for scrapers that ask for it (Prometheus does), the classic text format otherwise;
/// gzip when the scraper accepts it (Prometheus always does). Encoded off the runtime threads the probes use (see
/// [`Metrics::encode_off_runtime`]). Never passed through a redactor: series hold names, regions and labels, no
/// credential.
async fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let accepts = |name: header::HeaderName, what: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains(what))
    };
    let format = if accepts(header::ACCEPT, "application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    let gzip = accepts(header::ACCEPT_ENCODING, "gzip");
    let body = state.metrics.clone().encode_off_runtime(format, gzip).await;
    match body {
        Ok(body) => {
            let mut r = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, format.content_type())
                .header(header::VARY, "Accept, Accept-Encoding");
            if gzip {
                r = r.header(header::CONTENT_ENCODING, "gzip");
            }
            r.body(Full::new(Bytes::from(body)))
                .expect("static response parts are valid")
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode /metrics");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n")
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One check's status. Names, labels and regions are identity, shown as they are; messages (free text that may
/// quote a request or a response) pass through `r`.
fn check_json(c: &CheckView, region: &str, r: &Redactor) -> Value {
    let cfg = &c.config;
    let labels: Map<String, Value> = cfg
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let status = c.state.as_ref().map(|s| s.status()).unwrap_or_default();
    let last = status.last.as_ref().map(|l| {
        let res = &l.result;
        let phases: Map<String, Value> = res
            .phases
            .0
            .iter()
            .map(|(p, d)| (p.as_str().to_string(), Value::from(d.as_secs_f64())))
            .collect();
        let steps: Vec<Value> = res
            .steps
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "success": s.success,
                    "skipped": s.skipped,
                    "teardown": s.teardown,
                    "duration_seconds": s.duration.as_secs_f64(),
                    "http_status": s.status,
                    "error_type": s.error.as_ref().map(|e| e.error_type.as_str()),
                    "message": s.error.as_ref().map(|e| r.redact(&e.message)),
                })
            })
            .collect();
        json!({
            "success": res.success(),
            "error_type": res.error.as_ref().map(|e| e.error_type.as_str()),
            "message": res.error.as_ref().map(|e| r.redact(&e.message)),
            "teardown_error": res.teardown_error.as_ref().map(|e| r.redact(&e.message)),
            "duration_seconds": res.duration.as_secs_f64(),
            "phases": phases,
            "http_status": res.http.as_ref().map(|h| h.status),
            "attempts": res.attempts,
            "steps": steps,
            "started": time(l.started),
        })
    });
    let regions: Vec<&str> = cfg.regions.iter().map(|p| p.as_str()).collect();
    json!({
        "name": cfg.name.as_str(),
        "type": cfg.check_type,
        "enabled": cfg.enabled,
        "regions": regions,
        "runs_here": cfg.enabled && cfg.runs_in(region),
        "slo_objective": cfg.slo_objective,
        "schedule": cfg.schedule.to_string(),
        "timeout": humantime::format_duration(cfg.timeout).to_string(),
        "retries": cfg.retries,
        "labels": labels,
        "running": status.running,
        "next_run": status.next_run.map(time),
        "last": last,
    })
}
