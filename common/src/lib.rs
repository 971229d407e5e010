//! Code shared by `vantage-agent` and `vantage-ingest`.
//!
//! # Layout
//! - [`env`]: `${VAR}` / `${VAR:-default}` expansion of config text, remembering where each variable stood.
//! - [`locate`]: where a field path (`checks[3].timeout`) stands in a YAML text, as line and column.
//! - [`config`]: load a YAML config file into a typed struct; every error names file:line:column and the field.
//! - [`secrets`]: which config values are credentials, by the field that holds them.
//! - [`redact`]: scrubbing a set of secret values from free text (messages, log lines).
//! - [`logging`]: structured JSON (or human) logs through `tracing`.
//! - [`shutdown`]: a shutdown signal handed to every long-running task, triggered by SIGTERM/Ctrl-C or tests.
//! - [`serde_duration`]: `5s`, `1m30s` style durations in config files.

pub mod config;
pub mod env;
pub mod error_chain;
pub mod locate;
pub mod logging;
pub mod redact;
pub mod secrets;
pub mod serde_duration;
pub mod shutdown;

pub use config::{
    load_config, parse_config, parse_config_classified, parse_config_split, ConfigError, Loaded,
};
pub use redact::Redactor;
pub use shutdown::{Shutdown, ShutdownTrigger};
