//! The agent's own page, served from the binary: the check list (`/`), a check's page (`/checks/{name}`) and the
//! stylesheet, script and icon under `/ui/`, embedded at build time (no external assets). Every page carries a
//! strict Content-Security-Policy: no inline script or style, nothing from another origin.
//!
//! - [`page`]: the server-rendered HTML (works without JavaScript; the script only refreshes it and runs checks).

pub mod page;

/// The page's Content-Security-Policy.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An embedded asset: content type and bytes.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The asset at `path` (`/ui/app.css`, ...), if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body): (&str, &[u8]) = match path {
        "/ui/app.css" => ("text/css; charset=utf-8", include_bytes!("assets/app.css")),
        "/ui/app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/app.js"),
        ),
        "/ui/favicon.svg" => ("image/svg+xml", include_bytes!("assets/favicon.svg")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}
