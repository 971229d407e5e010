//! The `remote_write:` section: where to push, how to authenticate, and the queue's bounds.
//!
//! ```yaml
//! remote_write:
//!   - url: https://prometheus.example.com/api/v1/write
//!     name: central                  # the `remote` label of the agent's remote-write metrics
//!                                    # (default: host, port and path of the URL)
//!     regions: ["ap-*"]              # only agents in these regions push here (default: every region)
//!     bearer_token: ${PROM_TOKEN}    # or basic_auth: {username, password}
//!     headers: {X-Scope-OrgID: fleet}
//!     tls: {ca_file: /etc/ssl/central-ca.pem}    # the TLS options of HTTP checks
//!     external_labels: {agent: eu-1} # added to every series that lacks them
//!     timeout: 30s                   # per request
//!     refresh_interval: 15s          # between runs, push the agent's own metrics and the current values of
//!                                    # checks not pushed since, as often as a scrape would (the shortest
//!                                    # interval among the endpoints applies to all)
//!     queue:
//!       capacity: 500000             # samples held while sending or retrying; when full the oldest are
//!                                    # dropped (and counted)
//!       max_samples_per_send: 2000
//!       batch_send_deadline: 5s      # a partial batch is sent after this long
//!       min_backoff: 100ms           # retries of 5xx, 429 and network errors: exponential with jitter,
//!       max_backoff: 30s             # honouring Retry-After
//! ```

use crate::config::{region_patterns, RegionPattern};
use crate::probe::http::BasicAuth;
use crate::probe::tls_config::TlsOptions;
use crate::probe::SpecError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use vantage_common::{ConfigError, Loaded};

/// One `remote_write:` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    url: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    tls: TlsOptions,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    refresh_interval: Option<Duration>,
    #[serde(default)]
    queue: RawQueue,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    #[serde(default)]
    capacity: Option<usize>,
    #[serde(default)]
    max_samples_per_send: Option<usize>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    batch_send_deadline: Option<Duration>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    min_backoff: Option<Duration>,
    #[serde(default, deserialize_with = "vantage_common::serde_duration::option")]
    max_backoff: Option<Duration>,
}

/// A validated endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: url::Url,
    /// The `remote` label of the agent's own remote-write metrics.
    pub name: String,
    pub regions: Vec<RegionPattern>,
    /// Sent with every request (authorization included).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub tls: TlsOptions,
    /// Sorted by name.
    pub external_labels: Vec<(String, String)>,
    pub timeout: Duration,
    pub refresh_interval: Duration,
    pub queue: QueueConfig,
}

/// Bounds of one endpoint's queue and its batching and retry timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueConfig {
    pub capacity: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 500_000,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// Validates every entry (of every region: a config is valid or not wherever it runs); errors name
/// `remote_write[i].field`.
pub fn validate<T>(
    loaded: &Loaded<T>,
    raw: &[RawRemoteWrite],
) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let mut names = BTreeMap::new();
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |field: &str, key: &str, msg: String| {
                loaded.error_at(&format!("remote_write[{i}].{field}"), &format!("{key}:"), i, msg)
            };
            let cfg = validate_one(r).map_err(|e| at(&e.field, e.key().unwrap_or("url"), e.message.clone()))?;
            if let Some(first) = names.insert(cfg.name.clone(), i) {
                return Err(at(
                    "name",
                    "url",
                    format!(
                        "remote_write[{first}] has the same name {:?}; give each endpoint its own `name`",
                        cfg.name
                    ),
                ));
            }
            Ok(cfg)
        })
        .collect()
}

fn validate_one(r: &RawRemoteWrite) -> Result<RemoteWriteConfig, SpecError> {
    let e = |field: &str, msg: String| SpecError::new(field, msg);
    let url = url::Url::parse(r.url.trim()).map_err(|err| {
        e(
            "url",
            format!("not a URL ({err}); write e.g. https://prometheus.example.com/api/v1/write"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(e(
            "url",
            "the URL must be http:// or https:// with a host".into(),
        ));
    }
    let name = match &r.name {
        Some(n) if n.trim().is_empty() => return Err(e("name", "may not be empty".into())),
        Some(n) => n.trim().to_string(),
        None => default_name(&url),
    };
    let regions = region_patterns(&r.regions)?;
    let mut headers = Vec::new();
    for (k, v) in &r.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| e(&format!("headers.{k}"), "invalid header name".into()))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| e(&format!("headers.{k}"), "invalid header value".into()))?;
        headers.push((name, sensitive(value)));
    }
    let authorization = match (&r.bearer_token, &r.basic_auth) {
        (Some(_), Some(_)) => {
            return Err(e(
                "bearer_token",
                "use either bearer_token or basic_auth, not both".into(),
            ))
        }
        (Some(t), None) => Some(format!("Bearer {}", t.trim())),
        (None, Some(b)) => {
            use base64::Engine;
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", b.username, b.password))
            ))
        }
        (None, None) => None,
    };
    if let Some(a) = authorization {
        let value = http::HeaderValue::from_str(&a).map_err(|_| {
            e(
                "bearer_token",
                "contains characters not allowed in a header".into(),
            )
        })?;
        headers.push((http::header::AUTHORIZATION, sensitive(value)));
    }
    let mut external_labels = Vec::new();
    for (k, v) in &r.external_labels {
        crate::config::check_label_name_syntax(k)
            .map_err(|m| e(&format!("external_labels.{k}"), m))?;
        external_labels.push((k.clone(), v.clone()));
    }
    external_labels.sort();
    // Built once here so a bad CA file is a config error, not a failure at the first push.
    r.tls
        .client_config(&[b"http/1.1"])
        .map_err(|e| e.within("tls"))?;
    let d = QueueConfig::default();
    let q = &r.queue;
    let queue = QueueConfig {
        capacity: q.capacity.unwrap_or(d.capacity),
        max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
        batch_send_deadline: q.batch_send_deadline.unwrap_or(d.batch_send_deadline),
        min_backoff: q.min_backoff.unwrap_or(d.min_backoff),
        max_backoff: q.max_backoff.unwrap_or(d.max_backoff),
    };
    if queue.max_samples_per_send == 0 {
        return Err(e("queue.max_samples_per_send", "must be at least 1".into()));
    }
    if queue.capacity < queue.max_samples_per_send {
        return Err(e(
            "queue.capacity",
            format!(
                "{} is smaller than max_samples_per_send ({})",
                queue.capacity, queue.max_samples_per_send
            ),
        ));
    }
    if queue.batch_send_deadline.is_zero() {
        return Err(e("queue.batch_send_deadline", "must be above 0".into()));
    }
    if queue.min_backoff.is_zero() || queue.min_backoff > queue.max_backoff {
        return Err(e(
            "queue.min_backoff",
            "must be above 0 and at most max_backoff".into(),
        ));
    }
    let timeout = r.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(e("timeout", "must be above 0".into()));
    }
    let refresh_interval = r.refresh_interval.unwrap_or(DEFAULT_REFRESH_INTERVAL);
    if refresh_interval < Duration::from_secs(1) {
        return Err(e("refresh_interval", "must be at least 1s".into()));
    }
    Ok(RemoteWriteConfig {
        url,
        name,
        regions,
        headers,
        tls: r.tls.clone(),
        external_labels,
        timeout,
        refresh_interval,
        queue,
    })
}

fn sensitive(mut v: http::HeaderValue) -> http::HeaderValue {
    v.set_sensitive(true);
    v
}

/// `host:port/path` of the URL: names the endpoint without its credentials.
fn default_name(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn parse_str(text: &str) -> Result<crate::config::AgentConfig, String> {
        parse(Path::new("agent.yaml"), text, |_| None, None).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_validate_and_filter_by_region() {
        let c = parse_str(
            "region: ap-south-1\nremote_write:\n  - url: https://u:p@prom.example.com:9090/api/v1/write?x=1\n    bearer_token: abc\n  - url: http://other.example/api/v1/write\n    regions: [eu-*]\n",
        )
        .unwrap();
        assert_eq!(c.remote_write.len(), 1);
        let r = &c.remote_write[0];
        assert_eq!(r.name, "prom.example.com:9090/api/v1/write");
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer abc"));
        assert_eq!(r.queue.capacity, 500_000);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_str("region: r\nremote_write:\n  - url: ftp://x/\n").unwrap_err();
        assert!(
            e.contains("remote_write[0].url: the URL must be http"),
            "{e}"
        );
        let e = parse_str(
            "region: r\nremote_write:\n  - url: http://x/\n    queue: {capacity: 10, max_samples_per_send: 100}\n",
        )
        .unwrap_err();
        assert!(
            e.contains("remote_write[0].queue.capacity: 10 is smaller"),
            "{e}"
        );
        let e = parse_str(
            "region: r\nremote_write:\n  - url: http://x/\n    bearer_token: a\n    basic_auth: {username: u, password: p}\n",
        )
        .unwrap_err();
        assert!(e.contains("either bearer_token or basic_auth"), "{e}");
        let e = parse_str("region: r\nremote_write:\n  - url: http://x/a\n  - url: http://x/a\n")
            .unwrap_err();
        assert!(e.contains("remote_write[1].name"), "{e}");
    }
}
