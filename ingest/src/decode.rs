//! Turning a request body into bytes of JSON: content type, size limit, and bounded gzip inflation.

use actix_web::web;
use futures::StreamExt;
use std::io::Read;

/// Why a body could not be decoded. Small and unboxed: it sits on the hot path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body inflates to more than {limit} bytes")]
    InflatedTooLarge { limit: usize },
    #[error("content type `{0}` is not accepted (use application/json or text/plain)")]
    ContentType(String),
    #[error("content encoding `{0}` is not accepted (use gzip or none)")]
    ContentEncoding(String),
    #[error("gzip body is corrupt: {0}")]
    Gzip(String),
    #[error("body could not be read: {0}")]
    Read(String),
}

/// Accepts `application/json` and `text/plain` (what `sendBeacon` with a string sends), with any parameters.
/// A missing content type is taken as JSON.
pub fn check_content_type(ct: Option<&str>) -> Result<(), DecodeError> {
    let Some(ct) = ct else { return Ok(()) };
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(DecodeError::ContentType(crate::event::truncate(ct, 100)))
    }
}

/// Whether the body is gzip (`Content-Encoding: gzip`); `identity` or none is plain.
pub fn is_gzip(ce: Option<&str>) -> Result<bool, DecodeError> {
    match ce.map(str::trim) {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => Ok(true),
        Some(e) => Err(DecodeError::ContentEncoding(crate::event::truncate(e, 50))),
    }
}

/// Reads the body, refusing it as soon as it passes `limit` bytes.
pub async fn read_body(
    mut payload: web::Payload,
    content_length: Option<usize>,
    limit: usize,
) -> Result<web::BytesMut, DecodeError> {
    if content_length.is_some_and(|n| n > limit) {
        return Err(DecodeError::TooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(content_length.unwrap_or(8192).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| DecodeError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Inflates gzip into at most `limit` bytes; reading stops at `limit + 1`, so a zip bomb costs no more memory.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity((body.len() * 4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::InflatedTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("text/plain;charset=UTF-8")).is_ok());
        assert!(check_content_type(None).is_ok());
        assert!(check_content_type(Some("application/xml")).is_err());
        assert!(is_gzip(Some("gzip")).unwrap());
        assert!(is_gzip(Some("br")).is_err());
    }

    #[test]
    fn gunzip_bounds_output() {
        assert_eq!(gunzip(&gz(b"hello"), 100).unwrap(), b"hello");
        let bomb = gz(&vec![b'0'; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            gunzip(&bomb, 1 << 20),
            Err(DecodeError::InflatedTooLarge { limit: 1 << 20 })
        );
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(DecodeError::Gzip(_))
        ));
    }
}
