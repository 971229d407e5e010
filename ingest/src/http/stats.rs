//! `GET /v1/stats/{pages,api,errors,vitals}?site=&window=24h`: the store's stats as JSON, for `read` tokens.
//! `errors` answers both the errors per route (`errors`) and the error groups (`groups`);
//! `GET /v1/stats/errors/{group}?site=&window=24h&limit=50` lists one group's latest occurrences;
//! `GET /v1/stats/timeline?site=&window=24h` counts page loads and errors per time bucket (the explorer's
//! chart); `GET /v1/stats/sites` names the configured sites (never their keys).
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

/// A checked query: the site, the window as given, its length, and where it starts (client time, ms).
pub(crate) struct Window<'a> {
    pub site: &'a str,
    pub text: &'a str,
    pub length: Duration,
    pub since_ms: i64,
}

impl StatsQuery {
    fn window(&self, state: &AppState) -> Result<Window<'_>, StatsError> {
        window(state, self.site.as_deref(), self.window.as_deref())
    }
}

/// Checks `?site=` (a configured site) and `?window=` (a duration up to 400 days, default 24h).
pub(crate) fn window<'a>(
    state: &AppState,
    site: Option<&'a str>,
    window: Option<&'a str>,
) -> Result<Window<'a>, StatsError> {
    let site = site.ok_or_else(|| StatsError::BadRequest("missing ?site=".into()))?;
    if !state.settings.sites.iter().any(|s| s.id == site) {
        return Err(StatsError::BadRequest(format!(
            "unknown site `{}`",
            crate::truncate::truncate(site, 64)
        )));
    }
    let text = window.unwrap_or("24h");
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
        length: window,
        since_ms: crate::clock::now_ms() - window.as_millis() as i64,
    })
}

/// `?limit=`: absent is `default`, else a whole number from 1 to `max`; otherwise a 400 naming it.
pub(crate) fn limit(given: Option<&str>, default: usize, max: usize) -> Result<usize, StatsError> {
    let Some(given) = given else {
        return Ok(default);
    };
    given
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            StatsError::BadRequest(format!(
                "limit `{}` is not a whole number from 1 to {max}",
                crate::truncate::truncate(given, 32)
            ))
        })
}

pub(crate) fn internal(e: crate::store::StoreError) -> StatsError {
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
        ..
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

/// `GET /v1/stats/timeline`: page loads and errors per bucket over the window, oldest first, empty buckets
/// included (the bucket size follows the window: `store::bucket_for`).
pub async fn timeline(
    req: HttpRequest,
    query: web::Query<StatsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let w = query.window(&state)?;
    let bucket_ms = crate::store::bucket_for(w.length).as_millis() as i64;
    let until_ms = w.since_ms + w.length.as_millis() as i64;
    let buckets = state
        .store
        .timeline(w.site, w.since_ms, until_ms, bucket_ms)
        .await
        .map_err(internal)?;
    let total = |f: fn(&crate::store::Bucket) -> u64| buckets.iter().map(f).sum::<u64>();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "site": w.site,
        "window": w.text,
        "since_ms": w.since_ms,
        "until_ms": until_ms,
        "bucket_ms": bucket_ms,
        "totals": {"page_loads": total(|b| b.page_loads), "errors": total(|b| b.errors)},
        "buckets": buckets,
    })))
}

/// `GET /v1/stats/sites`: the configured sites' ids, in config order, for a `read` token to choose from. Ids
/// only: never keys, origins or limits.
pub async fn sites(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StatsError> {
    require_admin(&req, &state, Scope::Read)?;
    let sites: Vec<_> = state
        .settings
        .sites
        .iter()
        .map(|s| serde_json::json!({ "id": s.id }))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sites": sites })))
}
