//! `GET /v1/stats/{pages,api,errors,vitals}?site=&window=24h`: the store's stats as JSON, for `read` tokens.
//! `errors` answers both the errors per route (`errors`) and the error groups (`groups`);
//! `GET /v1/stats/errors/{group}?site=&window=24h&limit=50` lists one group's latest occurrences.

use super::{admin_status, require_admin, AdminAuthError};
use crate::auth::Scope;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Auth(#[from] AdminAuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown stats kind `{0}` (pages, api, errors, vitals)")]
    UnknownKind(String),
    #[error("internal error")]
    Store(String),
}

impl ResponseError for StatsError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(e) => admin_status(e),
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownKind(_) => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    site: Option<String>,
    window: Option<String>,
    /// `/v1/stats/errors/{group}` only: most occurrences listed (default 50, at most 200).
    limit: Option<usize>,
}

/// A checked query: the site, the window as given, and where it starts (client time, ms).
struct Window<'a> {
    site: &'a str,
    text: &'a str,
    since_ms: i64,
}

impl StatsQuery {
    fn window(&self, state: &AppState) -> Result<Window<'_>, StatsError> {
        let site = self
            .site
            .as_deref()
            .ok_or_else(|| StatsError::BadRequest("missing ?site=".into()))?;
        if !state.settings.sites.iter().any(|s| s.id == site) {
            return Err(StatsError::BadRequest(format!(
                "unknown site `{}`",
                crate::truncate::truncate(site, 64)
            )));
        }
        let text = self.window.as_deref().unwrap_or("24h");
        let window = humantime::parse_duration(text)
            .ok()
            .filter(|w| !w.is_zero() && *w <= MAX_WINDOW)
            .ok_or_else(|| {
                StatsError::BadRequest(format!(
                    "window `{}` is not a duration like 24h or 7d (at most 400d)",
                    crate::truncate::truncate(text, 32)
                ))
            })?;
        Ok(Window {
            site,
            text,
            since_ms: crate::clock::now_ms() - window.as_millis() as i64,
        })
    }
}

fn internal(e: crate::store::StoreError) -> StatsError {
    tracing::error!(error = %e, "stats query failed");
    StatsError::Store(e.to_string())
}

/// Longest window a query may cover.
const MAX_WINDOW: Duration = Duration::from_secs(400 * 86_400);

pub async fn get(
    req: HttpRequest,
    kind: web::Path<String>,
    query: web::Query<StatsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let Window {
        site,
        text: window_text,
        since_ms,
    } = query.window(&state)?;
    let store = &state.store;
    let rows = match kind.as_str() {
        "pages" => serde_json::to_value(store.page_stats(site, since_ms).await.map_err(internal)?),
        "api" => serde_json::to_value(store.api_stats(site, since_ms).await.map_err(internal)?),
        "errors" => {
            serde_json::to_value(store.error_stats(site, since_ms).await.map_err(internal)?)
        }
        "vitals" => {
            serde_json::to_value(store.vital_stats(site, since_ms).await.map_err(internal)?)
        }
        other => {
            return Err(StatsError::UnknownKind(crate::truncate::truncate(
                other, 32,
            )))
        }
    }
    .map_err(|e| StatsError::Store(e.to_string()))?;
    let mut answer = serde_json::json!({
        "site": site,
        "window": window_text,
        "since_ms": since_ms,
        kind.as_str(): rows,
    });
    if kind.as_str() == "errors" {
        let groups = store.error_groups(site, since_ms).await.map_err(internal)?;
        answer["groups"] =
            serde_json::to_value(groups).map_err(|e| StatsError::Store(e.to_string()))?;
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Occurrences listed by default.
const DEFAULT_OCCURRENCES: usize = 50;

/// `GET /v1/stats/errors/{group}`: the group's latest occurrences in the window, newest first.
pub async fn error_group(
    req: HttpRequest,
    group: web::Path<String>,
    query: web::Query<StatsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let w = query.window(&state)?;
    let group = group.into_inner();
    if group.len() != 16
        || !group
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(StatsError::BadRequest(format!(
            "group `{}` is not a group id (16 lower-case hex digits)",
            crate::truncate::truncate(&group, 32)
        )));
    }
    let limit = query
        .limit
        .unwrap_or(DEFAULT_OCCURRENCES)
        .clamp(1, crate::store::MAX_OCCURRENCES);
    let occurrences = state
        .store
        .error_occurrences(w.site, &group, w.since_ms, limit)
        .await
        .map_err(internal)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "site": w.site,
        "window": w.text,
        "since_ms": w.since_ms,
        "group": group,
        "occurrences": occurrences,
    })))
}
