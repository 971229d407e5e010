//! Structured logs through `tracing`: JSON lines by default (for log shippers), `text` for people.

use tracing_subscriber::layer::{Identity, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Registry};

/// Installs the global subscriber. `format` is `json` or `text`; the level comes from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls are ignored), so tests may call it freely.
pub fn init(format: &str) {
    init_with(format, Identity::new());
}

/// [`init`] at `level` (`debug`, `info`, `warn`, `error`) when `RUST_LOG` is not set.
pub fn init_at(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    install(format, Identity::new(), filter);
}

/// [`init`] with one more layer in front of the output, e.g. one that counts some events in a metric and
/// keeps them out of the log (by returning `false` from `Layer::event_enabled`).
pub fn init_with<L>(format: &str, layer: L)
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    install(format, layer, filter);
}

fn install<L>(format: &str, layer: L, filter: EnvFilter)
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let out = fmt::layer().with_writer(std::io::stderr);
    let out = if format == "text" {
        out.with_target(false).boxed()
    } else {
        out.json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .with(out)
        .try_init();
}
