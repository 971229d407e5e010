//! Turning a request body into bytes of JSON: content type, size and time limits, and bounded gzip inflation.

use crate::body_budget::{Exhausted, Reservation};
use actix_web::web;
use futures::StreamExt;
use std::io::Read;
use std::time::{Duration, Instant};
use vantage_common::Shutdown;

/// Why a body could not be decoded. Small and unboxed: it sits on the hot path.
#[derive(Debug, thiserror::Error, PartialEq)]
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
    #[error("body did not arrive within {secs}s")]
    Timeout { secs: f64 },
    #[error("body arrived slower than {min_rate} bytes/s")]
    TooSlow { min_rate: u64 },
    #[error("the server is holding too many request bodies; retry shortly")]
    OverBudget,
    #[error("the server is shutting down; retry shortly")]
    ShuttingDown,
}

impl DecodeError {
    /// The sender stopped sending: reading more of its body is pointless.
    pub fn is_stall(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::TooSlow { .. })
    }
}

/// Accepts `application/json` and `text/plain` (what `sendBeacon` with a string sends), with any parameters.
/// A missing content type is taken as JSON.
pub fn check_content_type(ct: Option<&str>) -> Result<(), DecodeError> {
    let Some(ct) = ct else { return Ok(()) };
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(DecodeError::ContentType(crate::truncate::truncate(ct, 100)))
    }
}

/// Whether the body is gzip (`Content-Encoding: gzip`); `identity` or none is plain.
pub fn is_gzip(ce: Option<&str>) -> Result<bool, DecodeError> {
    match ce.map(str::trim) {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => Ok(true),
        Some(e) => Err(DecodeError::ContentEncoding(crate::truncate::truncate(
            e, 50,
        ))),
    }
}

/// Bounds on reading one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// The whole body must arrive within this, from the end of the headers.
    pub timeout: Duration,
    /// Bytes per second the body must average once [`MIN_RATE_GRACE`] is over; 0 for no such check.
    pub min_rate: u64,
}

/// Time a body has before [`BodyLimits::min_rate`] applies: a slow first packet is not a stall.
pub const MIN_RATE_GRACE: Duration = Duration::from_secs(2);

impl BodyLimits {
    /// When the next bytes must have arrived, `received` bytes into a body started at `start`, and which bound
    /// that is.
    fn deadline(&self, start: Instant, received: usize) -> (Instant, DecodeError) {
        let total = (
            start + self.timeout,
            DecodeError::Timeout {
                secs: self.timeout.as_secs_f64(),
            },
        );
        if self.min_rate == 0 {
            return total;
        }
        let rate = start
            + MIN_RATE_GRACE
            + Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        if rate < total.0 {
            (
                rate,
                DecodeError::TooSlow {
                    min_rate: self.min_rate,
                },
            )
        } else {
            total
        }
    }
}

/// A request body being read. Remembers whether it was read to its end, so that a request refused early
/// can be answered on a connection that is then closed instead of drained.
pub struct Body {
    payload: web::Payload,
    ended: bool,
}

/// Most bytes read from a body after the request was refused, before the connection is closed.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for them.
pub const DRAIN_WAIT: Duration = Duration::from_millis(250);

impl Body {
    pub fn new(payload: web::Payload) -> Self {
        Self {
            payload,
            ended: false,
        }
    }

    /// Whether the body was read to its end.
    pub fn ended(&self) -> bool {
        self.ended
    }

    async fn next_chunk(&mut self) -> Option<Result<web::Bytes, DecodeError>> {
        if self.ended {
            return None;
        }
        let chunk = self.payload.next().await;
        self.ended = chunk.is_none();
        Some(chunk?.map_err(|e| DecodeError::Read(e.to_string())))
    }

    /// Reads the body, refusing it as soon as it passes `limits.max_bytes`, arrives too slowly, would pass
    /// the server's body memory budget, or the server shuts down. The buffer grows with the bytes received,
    /// never with the declared `content_length`.
    pub async fn read(
        &mut self,
        content_length: Option<usize>,
        limits: &BodyLimits,
        reservation: &mut Reservation<'_>,
        shutdown: &mut Shutdown,
    ) -> Result<web::Bytes, DecodeError> {
        let limit = limits.max_bytes;
        if content_length.is_some_and(|n| n > limit) {
            return Err(DecodeError::TooLarge { limit });
        }
        let start = Instant::now();
        // Most bodies arrive as one chunk: keep it as it is and copy only when a second one comes.
        let mut first: Option<web::Bytes> = None;
        let mut joined = web::BytesMut::new();
        let mut received = 0;
        loop {
            let (deadline, late) = limits.deadline(start, received);
            let chunk = tokio::select! {
                biased;
                chunk = self.next_chunk() => chunk,
                _ = tokio::time::sleep_until(deadline.into()) => return Err(late),
                _ = shutdown.recv() => return Err(DecodeError::ShuttingDown),
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk?;
            if received + chunk.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            reservation
                .grow(chunk.len())
                .map_err(|Exhausted| DecodeError::OverBudget)?;
            received += chunk.len();
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                taken => {
                    if let Some(f) = taken {
                        joined.extend_from_slice(&f);
                    }
                    joined.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| joined.freeze()))
    }

    /// After the request was refused: reads what the client already sent, up to [`DRAIN_MAX_BYTES`] within
    /// [`DRAIN_WAIT`], so a client that sent a small body before reading the answer gets it on a clean
    /// connection. Never more: a sender pushing an endless body costs this much and its connection.
    pub async fn drain_briefly(&mut self) {
        let mut read = 0;
        let _ = tokio::time::timeout(DRAIN_WAIT, async {
            while read <= DRAIN_MAX_BYTES {
                match self.next_chunk().await {
                    Some(Ok(chunk)) => read += chunk.len(),
                    Some(Err(_)) | None => return,
                }
            }
        })
        .await;
    }

    /// The unread rest of the body; holding it while the answer is written makes the HTTP layer close the
    /// connection after the answer instead of reading the rest.
    pub fn into_payload(self) -> web::Payload {
        self.payload
    }
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
