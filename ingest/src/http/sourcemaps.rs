//! `/v1/admin/sourcemaps` (admin token, scope `admin`): a release's source maps, uploaded by CI, listed and
//! deleted. Maps are never served back: they can hold the application's whole source.
//!
//! - `POST ?site=S&release=R&url_prefix=P[&name=app.min.js.map]`, body: the map's JSON (`Content-Encoding:
//!   gzip` allowed). The map is of the script `url_prefix` + its name: the base name of the map's `file`
//!   field, else `name` without `.map`. Answers 201 with the script URL; a second upload for the same
//!   (site, release, URL) replaces the first.
//! - `GET ?site=S[&release=R]`: the maps' release, URL, name, size and upload time.
//! - `DELETE ?site=S&release=R`: deletes the release's maps.

use super::events::refuse_early;
use super::{admin_status, require_admin, AdminAuthError};
use crate::auth::Scope;
use crate::body_budget::Exhausted;
use crate::decode::{self, DecodeError};
use crate::event::MAX_RELEASE_LEN;
use crate::jserror::symbolicate::{check_map, script_url, MapError};
use crate::state::AppState;
use crate::store::{NewSourceMap, PutOutcome};
use crate::truncate::truncate;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

/// Longest script URL a map may be stored for (bytes).
const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    #[error(transparent)]
    Auth(#[from] AdminAuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown site `{0}`")]
    UnknownSite(String),
    #[error("source map is larger than {limit} bytes (sourcemaps.max_bytes, at most limits.body_memory_bytes)")]
    TooLarge { limit: usize },
    #[error("release already has {maps} source maps; the limit is {limit} (sourcemaps.max_per_release): delete the release's maps or raise it")]
    ReleaseFull { maps: usize, limit: usize },
    #[error("{0}")]
    Map(#[from] MapError),
    #[error(transparent)]
    Decode(DecodeError),
    #[error("internal error")]
    Store(String),
}

impl From<DecodeError> for SourceMapError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::TooLarge { limit } | DecodeError::InflatedTooLarge { limit } => {
                Self::TooLarge { limit }
            }
            other => Self::Decode(other),
        }
    }
}

impl ResponseError for SourceMapError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(e) => admin_status(e),
            Self::BadRequest(_) | Self::Map(_) => StatusCode::BAD_REQUEST,
            Self::UnknownSite(_) => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } | Self::ReleaseFull { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Decode(DecodeError::Timeout { .. } | DecodeError::TooSlow { .. }) => {
                StatusCode::REQUEST_TIMEOUT
            }
            Self::Decode(DecodeError::OverBudget | DecodeError::ShuttingDown) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Decode(DecodeError::ContentEncoding(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Decode(_) => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::Auth(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::Decode(DecodeError::OverBudget | DecodeError::ShuttingDown) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        res.json(serde_json::json!({ "error": self.to_string() }))
    }
}

#[derive(Debug, Deserialize)]
pub struct MapQuery {
    site: Option<String>,
    release: Option<String>,
    url_prefix: Option<String>,
    name: Option<String>,
}

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, SourceMapError> {
    v.as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SourceMapError::BadRequest(format!("missing ?{field}=")))
}

/// The site, known to the config.
fn site<'a>(q: &'a MapQuery, state: &AppState) -> Result<&'a str, SourceMapError> {
    let site = required(&q.site, "site")?;
    if state.settings.sites.iter().any(|s| s.id == site) {
        Ok(site)
    } else {
        Err(SourceMapError::UnknownSite(truncate(site, 64)))
    }
}

/// A release as events carry it (`event.rs`): 1 to [`MAX_RELEASE_LEN`] bytes, no control characters.
fn release(q: &MapQuery) -> Result<&str, SourceMapError> {
    let r = required(&q.release, "release")?;
    if r.len() > MAX_RELEASE_LEN || r.chars().any(char::is_control) {
        return Err(SourceMapError::BadRequest(format!(
            "release must be at most {MAX_RELEASE_LEN} bytes without control characters"
        )));
    }
    Ok(r)
}

/// The script URL a map is for: `url_prefix` + the base name of the map's `file`, else `name` minus `.map`.
fn script_for(q: &MapQuery, file: Option<&str>) -> Result<(String, String), SourceMapError> {
    let prefix = required(&q.url_prefix, "url_prefix")?;
    if !(prefix.starts_with("https://") || prefix.starts_with("http://")) {
        return Err(SourceMapError::BadRequest(
            "url_prefix must be an absolute http(s) URL, e.g. https://shop.example.com/assets/"
                .into(),
        ));
    }
    let upload_name = q.name.as_deref().filter(|n| !n.is_empty());
    if let Some(n) = upload_name {
        if !n.ends_with(".map") || n.contains('/') || n.chars().any(char::is_control) {
            return Err(SourceMapError::BadRequest(format!(
                "name `{}` must be a file name ending in .map",
                truncate(n, 64)
            )));
        }
    }
    let from_file = file
        .map(|f| f.rsplit('/').next().unwrap_or(f))
        .filter(|f| !f.is_empty() && !f.chars().any(char::is_control));
    let script = from_file
        .or_else(|| upload_name.map(|n| n.trim_end_matches(".map")))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SourceMapError::BadRequest(
                "the map has no `file` field: give ?name=<file>.map to name its script".into(),
            )
        })?;
    let url = script_url(&format!("{prefix}{script}")).to_string();
    if url.len() > MAX_URL_LEN {
        return Err(SourceMapError::BadRequest(format!(
            "script URL is longer than {MAX_URL_LEN} bytes"
        )));
    }
    let name = upload_name.map_or_else(|| format!("{script}.map"), str::to_string);
    Ok((url, name))
}

/// `POST /v1/admin/sourcemaps`: the token and the query are checked before the body is read.
pub async fn upload(
    req: HttpRequest,
    query: web::Query<MapQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut body = decode::Body::new(payload);
    match store_map(&req, &query, &mut body, &state).await {
        Ok(res) => res,
        Err(e) if body.ended() => e.error_response(),
        Err(e) => {
            let stalled = matches!(&e, SourceMapError::Decode(d) if d.is_stall());
            refuse_early(e, stalled, body).await
        }
    }
}

async fn store_map(
    req: &HttpRequest,
    q: &MapQuery,
    body: &mut decode::Body,
    state: &AppState,
) -> Result<HttpResponse, SourceMapError> {
    require_admin(req, state, Scope::Admin)?;
    let site = site(q, state)?;
    let release = release(q)?;
    // The prefix and name are checked now, the map's own `file` once it is read.
    script_for(q, Some("x"))?;
    let cfg = &state.settings.sourcemaps;
    // An upload is held in memory, within the server's budget for bodies.
    let max_bytes = cfg.max_bytes.min(state.settings.limits.body_memory_bytes);
    let h = req.headers();
    let header_str = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    let gzip = decode::is_gzip(header_str(header::CONTENT_ENCODING))?;
    let mut reservation = state
        .body_budget
        .reserve()
        .map_err(|Exhausted| DecodeError::OverBudget)?;
    let limits = decode::BodyLimits {
        max_bytes,
        timeout: cfg.upload_timeout,
        min_rate: state.settings.limits.body_min_rate,
    };
    let len = header_str(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let mut shutdown = state.shutdown.clone();
    let bytes = body
        .read(len, &limits, &mut reservation, &mut shutdown)
        .await?;
    let bytes = if gzip {
        let inflated = decode::gunzip(&bytes, max_bytes)?;
        reservation
            .grow(inflated.len())
            .map_err(|Exhausted| DecodeError::OverBudget)?;
        inflated
    } else {
        bytes.to_vec()
    };
    let content =
        String::from_utf8(bytes).map_err(|_| MapError::Invalid("not UTF-8 text".into()))?;
    // Parsing a map of a few MiB takes milliseconds: off the async workers.
    let (content, facts) = tokio::task::spawn_blocking(move || {
        let facts = check_map(content.as_bytes());
        (content, facts)
    })
    .await
    .map_err(|e| SourceMapError::Map(MapError::Invalid(format!("parser failed: {e}"))))?;
    let facts = facts?;
    let (url, name) = script_for(q, facts.file.as_deref())?;
    let bytes = content.len();
    let outcome = state
        .store
        .put_sourcemap(NewSourceMap {
            site: site.to_string(),
            release: release.to_string(),
            url: url.clone(),
            name: name.clone(),
            content,
            uploaded_ms: crate::clock::now_ms(),
            max_per_release: cfg.max_per_release,
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "source map could not be stored");
            SourceMapError::Store(e.to_string())
        })?;
    let replaced = match outcome {
        PutOutcome::Stored { replaced } => replaced,
        PutOutcome::ReleaseFull { maps } => {
            return Err(SourceMapError::ReleaseFull {
                maps,
                limit: cfg.max_per_release,
            })
        }
    };
    state.symbolicator.invalidate(site, release);
    tracing::info!(site, release, url = %url, bytes, replaced, "source map stored");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "site": site,
        "release": release,
        "url": url,
        "name": name,
        "bytes": bytes,
        "mappings": facts.mappings,
        "replaced": replaced,
    })))
}

/// `GET /v1/admin/sourcemaps?site=S[&release=R]`: names, sizes and upload times, never the maps.
pub async fn list(
    req: HttpRequest,
    query: web::Query<MapQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SourceMapError> {
    require_admin(&req, &state, Scope::Admin)?;
    let site = site(&query, &state)?;
    let release = match &query.release {
        Some(_) => Some(release(&query)?),
        None => None,
    };
    let maps = state
        .store
        .list_sourcemaps(site, release)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "source maps could not be listed");
            SourceMapError::Store(e.to_string())
        })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "site": site, "maps": maps })))
}

/// `DELETE /v1/admin/sourcemaps?site=S&release=R`: the release's maps.
pub async fn delete(
    req: HttpRequest,
    query: web::Query<MapQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SourceMapError> {
    require_admin(&req, &state, Scope::Admin)?;
    let site = site(&query, &state)?;
    let release = release(&query)?;
    let deleted = state
        .store
        .delete_sourcemaps(site, release)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "source maps could not be deleted");
            SourceMapError::Store(e.to_string())
        })?;
    state.symbolicator.invalidate(site, release);
    tracing::info!(site, release, deleted, "source maps deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": deleted })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(prefix: &str, name: Option<&str>) -> MapQuery {
        MapQuery {
            site: Some("shop".into()),
            release: Some("r".into()),
            url_prefix: Some(prefix.into()),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn script_urls() {
        let p = "https://shop.example.com/assets/";
        assert_eq!(
            script_for(&q(p, Some("app.min.js.map")), None).unwrap(),
            (
                "https://shop.example.com/assets/app.min.js".into(),
                "app.min.js.map".into()
            )
        );
        // The map's `file` wins; its directories are not part of the name.
        assert_eq!(
            script_for(&q(p, Some("x.map")), Some("dist/app.js"))
                .unwrap()
                .0,
            "https://shop.example.com/assets/app.js"
        );
        assert_eq!(
            script_for(&q(p, None), Some("app.js")).unwrap().1,
            "app.js.map"
        );
        for (prefix, name, file, want) in [
            (p, None, None, "no `file` field"),
            (
                "shop.example.com/",
                Some("a.map"),
                None,
                "absolute http(s) URL",
            ),
            (p, Some("a.js"), None, "ending in .map"),
            (p, Some("../a.map"), None, "ending in .map"),
        ] {
            let e = script_for(&q(prefix, name), file).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
