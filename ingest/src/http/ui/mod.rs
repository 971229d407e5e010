//! `GET /ui/`: the RUM explorer, a small web app embedded in the binary (`assets/`, no external assets) that reads
//! the stats API with a `read` token typed into its login form (kept in the tab's sessionStorage, sent as
//! `Authorization: Bearer`, never in a URL). Every answer carries a strict Content-Security-Policy (no inline
//! script or style, nothing from another origin, no framing) and an ETag; `If-None-Match` answers 304.
//! `GET /ui` redirects to `/ui/`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The explorer's Content-Security-Policy.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An embedded file: its name under `/ui/`, content type, bytes and ETag.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// Each asset's ETag (quoted first 16 hex digits of its SHA-256), in [`ASSETS`] order, made once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let d = Sha256::digest(a.body);
                let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// `GET /`: to the explorer, for an operator who opens the server's address. Temporary (307), so that browsers
/// do not keep it should `/` ever serve something of its own.
pub async fn root() -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

/// `GET /ui`: to `/ui/`, where the page's relative URLs resolve.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

/// `GET /ui/{file}` (`/ui/` is the page). The page and its files are revalidated on each load (`no-cache`:
/// a 304 when unchanged), so a new binary's page never runs with an old script.
pub async fn get(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some(i) = ASSETS.iter().position(|a| a.name == file.as_str()) else {
        return with_security_headers(&mut HttpResponse::NotFound())
            .content_type("text/plain; charset=utf-8")
            .body("not found\n");
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    let resp = with_security_headers(&mut resp)
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        resp.finish()
    } else {
        resp.content_type(asset.content_type).body(asset.body)
    }
}

fn with_security_headers(
    resp: &mut actix_web::HttpResponseBuilder,
) -> &mut actix_web::HttpResponseBuilder {
    resp.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_need_no_inline_code_or_other_origins() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        // Scripts and styles come from files (the CSP refuses inline ones).
        assert!(!html.contains("<style"), "inline style element");
        assert!(!html.contains(" style="), "inline style attribute");
        // No `onclick=`-like attributes: ` on` followed by letters and `=`.
        let handlers = html.match_indices(" on").filter(|(i, _)| {
            let rest = &html[i + 3..];
            let name = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_lowercase())
                    .len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "inline event handler");
        for tag in html.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("src="), "inline script: {tag}");
        }
        for a in &ASSETS {
            let text = std::str::from_utf8(a.body).unwrap();
            for other in ["http://", "https://", "//fonts", "@import"] {
                let found = text
                    .match_indices(other)
                    // The SVG namespace is a name, not a request.
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/"))
                    .count();
                assert_eq!(found, 0, "{} refers to {other}", a.name);
            }
        }
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags.iter().all(|t| t.len() == 18 && t.starts_with('"')));
    }
}
