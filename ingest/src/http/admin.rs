//! `DELETE /v1/admin/sessions/{site}/{session_id}`: privacy deletion of one session's events (`admin` scope).

use super::{admin_status, require_admin, AdminAuthError};
use crate::auth::Scope;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Auth(#[from] AdminAuthError),
    #[error("unknown site `{0}`")]
    UnknownSite(String),
    #[error("internal error")]
    Store(String),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(e) => admin_status(e),
            Self::UnknownSite(_) => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}

pub async fn delete_session(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    require_admin(&req, &state, Scope::Admin)?;
    let (site, session_id) = path.into_inner();
    if !state.settings.sites.iter().any(|s| s.id == site) {
        return Err(AdminError::UnknownSite(crate::truncate::truncate(
            &site, 64,
        )));
    }
    let deleted = state
        .store
        .delete_session(&site, &session_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "session deletion failed");
            AdminError::Store(e.to_string())
        })?;
    tracing::info!(site = %site, deleted, "session deleted on request");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": deleted })))
}
