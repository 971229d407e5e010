//! `GET /rum-sdk.js`: the browser SDK, embedded in the binary, with a content-hash ETag.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The minified SDK built from `js-sdk/`.
pub static SDK: &[u8] = include_bytes!("../../../js-sdk/dist/rum-sdk.min.js");

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let d = Sha256::digest(SDK);
        let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

pub async fn get(req: HttpRequest) -> HttpResponse {
    let tag = etag();
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    // Revalidate hourly: a new binary may serve a new SDK under the same URL.
    let cache = "public, max-age=3600";
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(SDK)
}
