//! `GET /rum-sdk.js`: the browser SDK, embedded in the binary, compressed once (brotli and gzip) and served in the
//! encoding the browser asks for, each with its own ETag (`Vary: Accept-Encoding`). Two URLs:
//! - `/rum-sdk.js`, stable, revalidated hourly (a new binary may bring a new SDK);
//! - `/rum-sdk.<version>.js`, the content's hash in the name, cached for a year as `immutable` (other versions are
//!   404: this binary only has its own). The stable answer names it in a `Link: <...>; rel="alternate"` header.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

/// The minified SDK built from `js-sdk/`.
pub static SDK: &[u8] = include_bytes!("../../../js-sdk/dist/rum-sdk.min.js");

/// How the SDK goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// The SDK in every encoding, made once.
struct Encoded {
    /// First 16 hex digits of the SHA-256 of the SDK: its version.
    version: String,
    brotli: Vec<u8>,
    gzip: Vec<u8>,
}

fn encoded() -> &'static Encoded {
    static ENCODED: OnceLock<Encoded> = OnceLock::new();
    ENCODED.get_or_init(|| {
        let d = Sha256::digest(SDK);
        let version = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(SDK).expect("in memory");
        let gzip = gz.finish().expect("in memory");
        let mut brotli = Vec::new();
        {
            // Quality 11, window 22: the smallest output; done once per process.
            let mut w = brotli::CompressorWriter::new(&mut brotli, 4096, 11, 22);
            w.write_all(SDK).expect("in memory");
        }
        Encoded {
            version,
            brotli,
            gzip,
        }
    })
}

/// The SDK's version (what `/rum-sdk.<version>.js` names).
pub fn version() -> &'static str {
    &encoded().version
}

/// The best encoding `Accept-Encoding` allows: brotli, then gzip, else none (`q=0` refuses one).
fn negotiate(accept: Option<&str>) -> Encoding {
    let Some(accept) = accept else {
        return Encoding::Identity;
    };
    let allowed = |name: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or_default().trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case(name) || coding == "*") && q > 0.0
        })
    };
    if allowed("br") {
        Encoding::Brotli
    } else if allowed("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// `GET /rum-sdk.js`.
pub async fn get(req: HttpRequest) -> HttpResponse {
    let link = format!("</rum-sdk.{}.js>; rel=\"alternate\"", version());
    let mut resp = serve(&req, "public, max-age=3600");
    resp.headers_mut().insert(
        header::LINK,
        header::HeaderValue::from_str(&link).expect("ASCII"),
    );
    resp
}

/// `GET /rum-sdk.{version}.js`: this binary's SDK under its version, immutable.
pub async fn get_versioned(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if path.as_str() != version() {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "this server has rum-sdk.{}.js, not rum-sdk.{}.js\n",
                version(),
                path.as_str()
            ));
    }
    serve(&req, "public, max-age=31536000, immutable")
}

fn serve(req: &HttpRequest, cache: &'static str) -> HttpResponse {
    let e = encoded();
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let encoding = negotiate(accept);
    let (body, suffix, content_encoding): (&'static [u8], &str, Option<&str>) = match encoding {
        Encoding::Brotli => (&e.brotli, "-br", Some("br")),
        Encoding::Gzip => (&e.gzip, "-gz", Some("gzip")),
        Encoding::Identity => (SDK, "", None),
    };
    let tag = format!("\"{}{suffix}\"", e.version);
    // If-None-Match compares weakly: `W/"x"` matches `"x"`.
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
    let mut resp = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if matches {
        return resp.finish();
    }
    if let Some(ce) = content_encoding {
        resp.insert_header((header::CONTENT_ENCODING, ce));
    }
    resp.content_type("application/javascript; charset=utf-8")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn encodings_follow_accept_encoding() {
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br")), Encoding::Brotli);
        assert_eq!(negotiate(Some("gzip;q=1.0, br;q=0")), Encoding::Gzip);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(negotiate(Some("*")), Encoding::Brotli);
        assert_eq!(negotiate(Some("GZIP")), Encoding::Gzip);
    }

    #[test]
    fn every_encoding_decodes_to_the_sdk_and_is_smaller() {
        let e = encoded();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&e.gzip[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, SDK);
        out.clear();
        brotli::Decompressor::new(&e.brotli[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, SDK);
        assert!(e.brotli.len() < e.gzip.len() && e.gzip.len() < SDK.len() / 2);
        assert_eq!(version().len(), 16);
    }
}
