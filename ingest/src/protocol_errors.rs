//! Mistakes clients make at the HTTP protocol level (an invalid header, a head too large, a stalled request):
//! actix logs each at ERROR. They say nothing about the server's health, so they are counted in
//! `vantage_ingest_http_protocol_errors_total{kind}` and logged at DEBUG instead; ERROR then means the server
//! is in trouble.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::LazyLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// Process-wide: the log layer is installed once per process, before any server exists.
static COUNTS: LazyLock<Family<KindLabels, Counter>> = LazyLock::new(Family::default);

/// Adds the counter to a server's registry.
pub fn register(registry: &mut Registry) {
    registry.register(
        "vantage_ingest_http_protocol_errors",
        "Requests the HTTP layer refused as malformed, too large or too slow, by kind",
        COUNTS.clone(),
    );
}

/// The error kind of an actix connection error message that a client caused, or `None` when it may be ours.
pub fn classify(message: &str) -> Option<&'static str> {
    let m = message.strip_prefix("stream error: ")?;
    if let Some(parse) = m.strip_prefix("request parse error: ") {
        return Some(if parse.starts_with("invalid Header") {
            "invalid_header"
        } else if parse.starts_with("message head is too large") {
            "head_too_large"
        } else if parse.starts_with("URI error") {
            "invalid_uri"
        } else if parse.starts_with("invalid method") {
            "invalid_method"
        } else if parse.starts_with("invalid HTTP version") {
            "invalid_version"
        } else {
            "invalid_request"
        });
    }
    if m.starts_with("I/O error") {
        Some("io")
    } else if m.starts_with("request did not complete within") {
        Some("head_timeout")
    } else if m.starts_with("connection shutdown timeout") {
        Some("disconnect_timeout")
    } else if m.starts_with("handler dropped payload") {
        Some("body_unread")
    } else {
        None
    }
}

/// The log layer: counts client mistakes, logs them at DEBUG and keeps actix's ERROR line out of the log.
pub struct ProtocolErrorLog;

impl<S: Subscriber> Layer<S> for ProtocolErrorLog {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with("actix_http::") {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match classify(&message.0) {
            Some(kind) => {
                COUNTS.get_or_create(&KindLabels { kind }).inc();
                tracing::debug!(kind, error = %message.0, "client protocol error");
                false
            }
            None => true,
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn client_mistakes_are_told_from_server_trouble() {
        let c = |m: &str| classify(m);
        assert_eq!(
            c("stream error: request parse error: invalid Header provided"),
            Some("invalid_header")
        );
        assert_eq!(
            c("stream error: request parse error: message head is too large"),
            Some("head_too_large")
        );
        assert_eq!(
            c("stream error: request did not complete within the specified timeout"),
            Some("head_timeout")
        );
        assert_eq!(c("stream error: I/O error: reset"), Some("io"));
        assert_eq!(c("stream error: service error"), None);
        assert_eq!(c("Response payload stream error: x"), None);
    }
}
