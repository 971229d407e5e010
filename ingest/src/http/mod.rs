//! HTTP handlers, one file per endpoint group, plus the admin-token check they share.
//!
//! - [`events`]: `POST /v1/events` and its CORS preflight.
//! - [`stats`]: `GET /v1/stats/{pages,api,errors,vitals}` (admin token, `read`).
//! - [`stats`] also: `GET /v1/stats/errors/{group}`, one error group's occurrences (admin token, `read`).
//! - [`stats`] also: `GET /v1/stats/timeline` (page loads and errors per time bucket) and `GET /v1/stats/sites`.
//! - [`sessions`]: `GET /v1/stats/sessions` (recent sessions) and `GET /v1/stats/sessions/{id}` (one session's
//!   events), admin token, `read`.
//! - [`ui`]: `GET /ui/` (`/` and `/ui` redirect to it), the RUM explorer (static files embedded in the binary;
//!   it reads the stats API).
//! - [`admin`]: `DELETE /v1/admin/sessions/{site}/{session_id}` (admin token, `admin`).
//! - [`sourcemaps`]: `POST|GET|DELETE /v1/admin/sourcemaps` (admin token, `admin`).
//! - [`sdk`]: `GET /rum-sdk.js`, the embedded browser SDK.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.

pub mod admin;
pub mod events;
pub mod health;
pub mod sdk;
pub mod sessions;
pub mod sourcemaps;
pub mod stats;
pub mod ui;

use crate::auth::{AdminClaims, Scope};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::HttpRequest;

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdminAuthError {
    #[error("admin API is not enabled (no `admin` key in the config)")]
    Disabled,
    #[error("missing Authorization: Bearer <admin token>")]
    Missing,
    #[error("{0}")]
    BadToken(String),
    #[error("token scope does not allow this")]
    Scope,
}

/// Verifies the admin bearer token and its scope.
pub fn require_admin(
    req: &HttpRequest,
    state: &AppState,
    need: Scope,
) -> Result<(), AdminAuthError> {
    let verifier = state
        .settings
        .admin
        .as_ref()
        .ok_or(AdminAuthError::Disabled)?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or(AdminAuthError::Missing)?;
    let claims: AdminClaims = verifier
        .verify(token.trim())
        .map_err(AdminAuthError::BadToken)?;
    if claims.allows(need) {
        Ok(())
    } else {
        Err(AdminAuthError::Scope)
    }
}

/// Status for an admin auth failure: 403 only for a valid token with too small a scope.
pub fn admin_status(e: &AdminAuthError) -> actix_web::http::StatusCode {
    match e {
        AdminAuthError::Scope => actix_web::http::StatusCode::FORBIDDEN,
        _ => actix_web::http::StatusCode::UNAUTHORIZED,
    }
}
