//! Structured logs through `tracing`: JSON lines by default (for log shippers), `text` for people.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. `format` is `json` or `text`; the level comes from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls are ignored), so tests may call it freely.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "text" {
        builder.with_target(false).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
}
