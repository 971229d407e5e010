//! `GET /v1/stats/sessions?site=&window=24h&limit=50`: a site's recent sessions (latest activity first), and
//! `GET /v1/stats/sessions/{id}?site=&window=24h&limit=500`: one session's events in time order, for `read`
//! tokens.

use super::require_admin;
use super::stats::{internal, limit, window, StatsError};
use crate::auth::Scope;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// Sessions listed by default.
const DEFAULT_SESSIONS: usize = 50;
/// Events of one session answered by default.
const DEFAULT_EVENTS: usize = 500;
/// The longest session id the wire format allows (`event.rs`).
const MAX_SESSION_ID_BYTES: usize = 128;

#[derive(Debug, Deserialize)]
pub struct SessionsQuery {
    site: Option<String>,
    window: Option<String>,
    /// Read as text so that a bad value is a 400 that names it.
    limit: Option<String>,
}

/// `GET /v1/stats/sessions`.
pub async fn list(
    req: HttpRequest,
    query: web::Query<SessionsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let w = window(&state, query.site.as_deref(), query.window.as_deref())?;
    let limit = limit(
        query.limit.as_deref(),
        DEFAULT_SESSIONS,
        crate::store::MAX_SESSIONS,
    )?;
    let sessions = state
        .store
        .sessions(w.site, w.since_ms, limit)
        .await
        .map_err(internal)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "site": w.site,
        "window": w.text,
        "since_ms": w.since_ms,
        "sessions": sessions,
    })))
}

/// `GET /v1/stats/sessions/{id}`.
pub async fn events(
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<SessionsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let w = window(&state, query.site.as_deref(), query.window.as_deref())?;
    let limit = limit(
        query.limit.as_deref(),
        DEFAULT_EVENTS,
        crate::store::MAX_SESSION_EVENTS,
    )?;
    let id = id.into_inner();
    if id.is_empty() || id.len() > MAX_SESSION_ID_BYTES || id.chars().any(char::is_control) {
        return Err(StatsError::BadRequest(format!(
            "session `{}` is not a session id (1 to {MAX_SESSION_ID_BYTES} bytes, no control characters)",
            crate::truncate::truncate(&id.replace(char::is_control, "\u{FFFD}"), 32)
        )));
    }
    let found = state
        .store
        .session_events(w.site, &id, w.since_ms, limit)
        .await
        .map_err(internal)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "site": w.site,
        "window": w.text,
        "since_ms": w.since_ms,
        "session": id,
        "truncated": found.truncated,
        "events": found.events,
    })))
}
