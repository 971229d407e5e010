//! The agent's HTTP server: `GET /metrics`, `/healthz`, `/readyz`, `/api/v1/checks` (status JSON, redacted),
//! `/api/v1/checks/{name}/history`, `POST /api/v1/checks/{name}/run`, and the page (`/`, `/checks/{name}`,
//! `/ui/*`, see [`crate::ui`]).

use crate::config::RunNow;
use crate::metrics::{Format, Metrics, MetricsBody};
use crate::scheduler::{CheckView, RunNowError, Scheduler};
use crate::ui;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
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
    /// `/probe` of the config's `blackbox_modules`.
    pub blackbox: Option<Arc<crate::blackbox::server::Exporter>>,
}

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: Shutdown) {
    accept_loop(listener, shutdown, move |req| {
        let state = state.clone();
        async move { route(&state, req).await }
    })
    .await
}

/// Accepts connections until shutdown and serves each (HTTP/1.1 or HTTP/2) with `handler`; an open connection
/// ends at shutdown too. The agent's server and `vantage-agent blackbox` both run on it.
pub async fn accept_loop<F, Fut, B>(listener: TcpListener, mut shutdown: Shutdown, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
        let handler = handler.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
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

/// A response body: whole, or `/metrics` streamed while it is encoded.
type Body = Either<Full<Bytes>, MetricsBody>;

async fn route(state: &AppState, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() == "/metrics" && req.method() == Method::GET {
        return metrics(state, &req);
    }
    handle(state, req).await.map(Either::Left)
}

async fn handle(state: &AppState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let (Some(exporter), "/probe") = (&state.blackbox, path) {
        let timeout = req
            .headers()
            .get(crate::blackbox::server::SCRAPE_TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok());
        return exporter.probe_response(req.uri().query(), timeout).await;
    }
    if let Some(name) = api_check(path, "/run") {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
        }
        return run_now(state, name, &req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    if let Some(name) = api_check(path, "/history") {
        return history(state, name);
    }
    if let Some(a) = ui::asset(path) {
        return Response::builder()
            .header(header::CONTENT_TYPE, a.content_type)
            .header(header::CACHE_CONTROL, "public, max-age=300")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(Full::new(Bytes::from_static(a.body)))
            .expect("static response parts are valid");
    }
    if path == "/" {
        let filter = query_param(&req, "q");
        return page(
            StatusCode::OK,
            ui::page::index(&state.scheduler, filter.as_deref()),
        );
    }
    if let Some(name) = path.strip_prefix("/checks/") {
        let run = query_param(&req, "run").and_then(|v| v.parse::<u64>().ok());
        return match ui::page::check(&state.scheduler, name, run) {
            Some(html) => page(StatusCode::OK, html),
            None => page(
                StatusCode::NOT_FOUND,
                ui::page::not_found(&state.scheduler, name),
            ),
        };
    }
    match path {
        // HEAD (GET is streamed, see `route`): the headers a GET would get, without encoding a body.
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
/// gzip when the scraper accepts it (Prometheus always does). Encoded off the runtime threads the probes use and
/// streamed as it is written (see [`Metrics::encode_streaming`]). Never passed through a redactor: series hold
/// names, regions and labels, no credential.
fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
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
    match state.metrics.clone().encode_streaming(format, gzip) {
        Ok(body) => {
            let mut r = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, format.content_type())
                .header(header::VARY, "Accept, Accept-Encoding");
            if gzip {
                r = r.header(header::CONTENT_ENCODING, "gzip");
            }
            r.body(Either::Right(body))
                .expect("static response parts are valid")
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode /metrics");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").map(Either::Left)
        }
    }
}

/// The first value of the query parameter `key`, percent-decoded.
fn query_param(req: &Request<Incoming>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// `/api/v1/checks/{name}{suffix}` -> `name`.
fn api_check<'a>(path: &'a str, suffix: &str) -> Option<&'a str> {
    path.strip_prefix("/api/v1/checks/")?
        .strip_suffix(suffix)
        .filter(|n| !n.is_empty())
}

/// An HTML page with the UI's security headers.
fn page(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, ui::CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn json_error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        json!({ "error": message }).to_string(),
    )
}

/// `GET /api/v1/checks/{name}/history`: the kept runs, newest first (see README).
fn history(state: &AppState, name: &str) -> Response<Full<Bytes>> {
    let Some(check) = state.scheduler.check(name) else {
        return not_running(state, name);
    };
    let redactor = state.scheduler.redactor();
    let mut body = check.history.lock().unwrap().to_json(&redactor);
    body["check"] = Value::from(name);
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&body).expect("JSON values always serialize"),
    )
}

fn not_running(state: &AppState, name: &str) -> Response<Full<Bytes>> {
    let configured = state
        .scheduler
        .checks()
        .iter()
        .any(|c| c.config.name.as_str() == name);
    let why = if configured {
        format!("check {name:?} does not run on this agent (disabled, or not for its region)")
    } else {
        format!("no check named {name:?}")
    };
    json_error(StatusCode::NOT_FOUND, why)
}

/// `POST /api/v1/checks/{name}/run`: runs the check once now and answers with the run (as in its history).
async fn run_now(state: &AppState, name: &str, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match state.scheduler.ui().run_now {
        RunNow::Off => {
            return json_error(
                StatusCode::FORBIDDEN,
                "run-now is off on this agent: set ui.allow_run_now: true or ui.admin_token in its config".into(),
            )
        }
        RunNow::Open => {}
        RunNow::Token(token) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !token_matches(given.trim(), &token) {
                let mut r = json_error(
                    StatusCode::UNAUTHORIZED,
                    "run-now needs Authorization: Bearer <ui.admin_token>".into(),
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
        }
    }
    match state.scheduler.run_now(name).await {
        Ok(id) => {
            let Some(check) = state.scheduler.check(name) else {
                return not_running(state, name);
            };
            let redactor = state.scheduler.redactor();
            let history = check.history.lock().unwrap();
            let run = history.get(id).map(|r| r.to_json(&redactor));
            respond(
                StatusCode::OK,
                "application/json",
                json!({ "check": name, "run": run }).to_string(),
            )
        }
        Err(RunNowError::NotRunning) => not_running(state, name),
        Err(RunNowError::Busy) => json_error(
            StatusCode::CONFLICT,
            format!("check {name:?} is running now; try again when it is done"),
        ),
        Err(RunNowError::ShuttingDown) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is shutting down".into(),
        ),
    }
}

/// Compares in constant time (for equal lengths; the length of a token is no secret worth hiding).
fn token_matches(given: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
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
            "trace_id": res.trace_id.map(|t| t.to_hex()),
            "steps": steps,
            "started": time(l.started),
        })
    });
    let regions: Vec<&str> = cfg.regions.iter().map(|p| p.as_str()).collect();
    json!({
        "name": cfg.name.as_str(),
        "type": cfg.check_type,
        "target": r.redact(&cfg.target()),
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
