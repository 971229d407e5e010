//! The agent's own HTTP client, for what is not a probe (fetching the config, remote write): reqwest over the
//! same rustls options as the checks, and error messages that name the cause but never the URL (a URL may carry
//! credentials; callers name the endpoint themselves).

use crate::probe::tls_config::TlsOptions;
use std::time::Duration;

const USER_AGENT: &str = concat!("vantage-agent/", env!("CARGO_PKG_VERSION"));

/// A client with `tls` (CA file, client certificate, skip verify) and a per-request `timeout`.
pub fn build(tls: &TlsOptions, timeout: Duration) -> Result<reqwest::Client, String> {
    // reqwest is built without HTTP/2 here, so offer HTTP/1.1 only.
    let config = tls
        .client_config(&[b"http/1.1"])
        .map_err(|e| e.within("tls").to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&config))
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// What went wrong, without the URL reqwest puts in its own message.
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "cannot read the response"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
