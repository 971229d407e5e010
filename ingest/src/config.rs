//! The ingest server's configuration file (`config/ingest.yaml`): shape, defaults and semantic checks.

use crate::auth::{KeyConfig, OriginPattern};
use crate::route_pattern::RoutePattern;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use vantage_common::{ConfigError, Loaded};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`--listen` overrides). Default `127.0.0.1:9480`.
    #[serde(default = "default_listen")]
    pub listen: String,
    pub storage: StorageSection,
    /// Sites that may send events; at least one.
    pub sites: Vec<SiteConfig>,
    /// Key that verifies site tokens (JWT with claims `site`, `origins`, `exp`), an alternative to API keys.
    /// Tokens are verified per request, so newly issued tokens work without a restart.
    #[serde(default)]
    pub site_tokens: Option<KeyConfig>,
    /// Key that verifies admin tokens (JWT with claims `scope`: `read` or `admin`, and `exp`) for
    /// `/v1/stats/*` (read) and `/v1/admin/*` (admin). Without it those endpoints answer 401.
    #[serde(default)]
    pub admin: Option<KeyConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub sourcemaps: SourceMaps,
}

/// Source maps uploaded through `POST /v1/admin/sourcemaps` (admin token) to symbolicate error stacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMaps {
    /// Largest map accepted (bytes, after gzip inflation). Larger -> 413. Default 10485760 (10 MiB). An
    /// upload is held in memory: `limits.body_memory_bytes` caps it when smaller.
    #[serde(default = "default_map_bytes")]
    pub max_bytes: usize,
    /// Most maps one release of one site may have; a new one past it -> 413 (replacing one is not new).
    /// Default 200.
    #[serde(default = "default_maps_per_release")]
    pub max_per_release: usize,
    /// Memory for parsed maps kept between errors (an LRU cache; estimated as the map's size plus 40 bytes
    /// per mapping). Default 134217728 (128 MiB).
    #[serde(default = "default_map_cache_bytes")]
    pub cache_bytes: usize,
    /// Longest time an upload's body may take to arrive. Default 60s.
    #[serde(
        default = "default_upload_timeout",
        with = "vantage_common::serde_duration"
    )]
    pub upload_timeout: Duration,
}

impl Default for SourceMaps {
    fn default() -> Self {
        Self {
            max_bytes: default_map_bytes(),
            max_per_release: default_maps_per_release(),
            cache_bytes: default_map_cache_bytes(),
            upload_timeout: default_upload_timeout(),
        }
    }
}

fn default_map_bytes() -> usize {
    10 << 20
}
fn default_maps_per_release() -> usize {
    200
}
fn default_map_cache_bytes() -> usize {
    128 << 20
}
fn default_upload_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Where and how events are stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `sqlite://path/to/file.db` (relative paths are relative to the working directory) or `postgres://...`.
    pub url: String,
    /// Events waiting for the writer before new requests get 503. Default 50000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Most events committed in one transaction. Default 5000. (SQLite commits a group at 256 events anyway
    /// while its previous group is being fsynced, so larger values matter mostly for PostgreSQL.)
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// `Retry-After` seconds sent with 503 when the store falls behind or cannot write. Default 1.
    #[serde(default = "default_retry_after")]
    pub busy_retry_after_secs: u64,
    /// Events older than this many days are deleted by a periodic task. 0 keeps everything. Default 30.
    /// SQLite counts from each event's receipt; PostgreSQL drops whole days of client time once the day ended
    /// this long ago (ingest/README.md, "Storage and retention").
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
    /// How often the retention task runs. Default 1h.
    #[serde(
        default = "default_retention_interval",
        with = "vantage_common::serde_duration"
    )]
    pub retention_interval: Duration,
    /// Keep the query string of stored page URLs (it may hold personal data). Default false.
    #[serde(default)]
    pub keep_query_params: bool,
    /// How long a write may wait for the database (a SQLite lock held by another process; connecting to
    /// PostgreSQL or a statement there) before the store counts as unavailable: 503 with Retry-After, or the
    /// spool. Default 10s.
    #[serde(
        default = "default_write_timeout",
        with = "vantage_common::serde_duration"
    )]
    pub write_timeout: Duration,
    /// PostgreSQL only: a local spool that takes events while PostgreSQL cannot (`path`, `max_bytes`,
    /// `max_age`, `drain_events_per_second`; see `crate::store::SpoolConfig`). Off unless given.
    #[serde(default)]
    pub spool: Option<crate::store::SpoolConfig>,
}

/// One site: who may send for it and how its labels are shaped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Site id, used as the `site` label: letters, digits, `-`, `_`.
    pub id: String,
    /// API key sent as `X-API-Key` or `?api_key=`. Optional when the site only uses site tokens.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Origins allowed to send from browsers: exact (`https://shop.example.com`) or a wildcard subdomain
    /// (`https://*.shop.example.com`). Requests without an `Origin` header (server-side senders) are accepted.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Route patterns that win over the automatic templating, e.g. `/blog/:slug`, `/docs/*`.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Distinct values allowed per metric label (page, endpoint, ...) before new values become `other`.
    #[serde(default = "default_label_budget")]
    pub label_budget: usize,
}

/// Token bucket per site, counted in events.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained events per second. Default 5000.
    #[serde(default = "default_rate")]
    pub events_per_second: f64,
    /// Bucket size (largest burst). Default 20000; must be at least `limits.max_events_per_batch`.
    #[serde(default = "default_burst")]
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            events_per_second: default_rate(),
            burst: default_burst(),
        }
    }
}

/// Connection, request and event limits. The ingest is public (every page holds its site key), so each thing
/// a client can make the server hold (a connection, body bytes, time) has a bound here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, checked before and after gzip inflation. Default 1048576 (1 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Bytes that all request bodies in flight may hold at once: bytes received so far plus what gzip bodies
    /// inflate to, held until the request is answered. A body that would pass it gets 503 with
    /// `Retry-After`. At least `max_body_bytes`. Default 67108864 (64 MiB).
    #[serde(default = "default_body_memory")]
    pub body_memory_bytes: usize,
    /// Longest time a request body may take to arrive, counted from the end of its headers. Slower bodies get
    /// 408 and the connection is closed. (Headers themselves must arrive within 5s.) Default 10s.
    #[serde(
        default = "default_body_timeout",
        with = "vantage_common::serde_duration"
    )]
    pub body_timeout: Duration,
    /// Slowest average rate, in bytes per second, at which a body may arrive once its first 2 seconds are
    /// over; a stalled sender is cut off after about 2s instead of `body_timeout`. 0 turns this off.
    /// Default 1024.
    #[serde(default = "default_body_min_rate")]
    pub body_min_rate: u64,
    /// Most client connections open at once. Past it the server stops accepting (new connections wait in
    /// the listen backlog) instead of running out of file descriptors. At startup the open-file limit is
    /// raised to its hard limit, and the cap is lowered so that two descriptors per connection (the socket and
    /// the watchdog's handle on it) stay 256 below it (logged).
    /// Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// On a kept-alive connection, longest time from the end of one request (or the connection's start) to
    /// the next complete request head: a connection that sends nothing, half a head, or a head one byte at a
    /// time is closed after it. (Idle connections are closed after 5s by the keep-alive timer first.) At least
    /// 6s. Default 15s.
    #[serde(
        default = "default_head_timeout",
        with = "vantage_common::serde_duration"
    )]
    pub head_timeout: Duration,
    /// Longest time an answer may wait unsent because the client stopped reading (its receive window is
    /// closed); the connection is then closed. Default 15s.
    #[serde(
        default = "default_answer_stall_timeout",
        with = "vantage_common::serde_duration"
    )]
    pub answer_stall_timeout: Duration,
    /// Most events in one batch (more -> 413). Default 500.
    #[serde(default = "default_max_events")]
    pub max_events_per_batch: usize,
    /// Longest identifying string (session id, URL, user agent, names). Longer -> event rejected. Default 2048.
    /// Free text (error message, stack) is truncated to this length instead.
    #[serde(default = "default_max_string")]
    pub max_string_len: usize,
    /// Oldest accepted client timestamp, relative to now. Default 7d.
    #[serde(default = "default_max_past", with = "vantage_common::serde_duration")]
    pub max_past: Duration,
    /// Furthest accepted client timestamp in the future (clock skew). Default 10m.
    #[serde(
        default = "default_max_future",
        with = "vantage_common::serde_duration"
    )]
    pub max_future: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            body_memory_bytes: default_body_memory(),
            body_timeout: default_body_timeout(),
            body_min_rate: default_body_min_rate(),
            max_connections: default_max_connections(),
            head_timeout: default_head_timeout(),
            answer_stall_timeout: default_answer_stall_timeout(),
            max_events_per_batch: default_max_events(),
            max_string_len: default_max_string(),
            max_past: default_max_past(),
            max_future: default_max_future(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9480".into()
}
// The storage defaults are the store's own (`StoreConfig::DEFAULT_*`), so a store opened without a config
// file behaves like one opened from a file that leaves them out.
fn default_queue_capacity() -> usize {
    crate::store::StoreConfig::DEFAULT_QUEUE_CAPACITY
}
fn default_max_batch_events() -> usize {
    crate::store::StoreConfig::DEFAULT_MAX_BATCH_EVENTS
}
fn default_retry_after() -> u64 {
    crate::store::StoreConfig::DEFAULT_BUSY_RETRY_AFTER_SECS
}
fn default_write_timeout() -> Duration {
    crate::store::StoreConfig::DEFAULT_WRITE_TIMEOUT
}
fn default_retention_days() -> u64 {
    30
}
fn default_retention_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_label_budget() -> usize {
    200
}
fn default_rate() -> f64 {
    5_000.0
}
fn default_burst() -> f64 {
    20_000.0
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_body_memory() -> usize {
    64 << 20
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_min_rate() -> u64 {
    1024
}
fn default_max_connections() -> usize {
    10_000
}
fn default_head_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_answer_stall_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_max_events() -> usize {
    500
}
fn default_max_string() -> usize {
    2048
}
fn default_max_past() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_max_future() -> Duration {
    // The store sizes its stats windows by how far ahead a client clock may be: one value for both.
    Duration::from_millis(crate::store::StoreConfig::DEFAULT_MAX_CLIENT_AHEAD_MS as u64)
}

/// A site after validation: patterns compiled, ready for the request path.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub api_key: Option<String>,
    pub origins: Vec<OriginPattern>,
    pub rate_limit: RateLimit,
    pub routes: Vec<RoutePattern>,
    pub label_budget: usize,
}

impl crate::auth::SiteCredentials for Site {
    fn id(&self) -> &str {
        &self.id
    }
    fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }
    fn origins(&self) -> &[OriginPattern] {
        &self.origins
    }
}

/// The admin secret the example configs fall back to (`${RUM_ADMIN_SECRET:-...}`), published with the source:
/// a server that others can reach must not take tokens signed with it ([`Settings::check_exposure`]).
pub const EXAMPLE_ADMIN_SECRET: &str = "dev-admin-secret-change-me-32-bytes!!";

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    /// Admin tokens are verified with [`EXAMPLE_ADMIN_SECRET`].
    pub admin_secret_is_example: bool,
    pub storage: StorageSection,
    pub sites: Vec<Site>,
    pub site_tokens: Option<crate::auth::Verifier>,
    pub admin: Option<crate::auth::Verifier>,
    pub limits: Limits,
    pub sourcemaps: SourceMaps,
    pub redactor: vantage_common::Redactor,
}

impl Settings {
    /// Refuses to serve where others can reach the server while admin tokens are verified with the example
    /// configs' published secret: anyone could sign a token that reads every session and deletes data. A
    /// loopback address (`scripts/start.sh`, a try on one's own machine) is fine.
    pub fn check_exposure(&self) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let loopback = self
            .listen
            .to_socket_addrs()
            .is_ok_and(|mut a| a.all(|a| a.ip().is_loopback()));
        if !self.admin_secret_is_example || loopback {
            return Ok(());
        }
        Err(format!(
            "admin.secret is the example config's published default (is RUM_ADMIN_SECRET set?), and {} is not a \
             loopback address: anyone could sign admin tokens that read every session. Set a secret of your own of \
             at least 32 bytes (e.g. RUM_ADMIN_SECRET=$(openssl rand -base64 32)), or listen on 127.0.0.1",
            self.listen
        ))
    }
}

/// Loads and validates a config file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    validate(vantage_common::load_config::<Config>(path)?)
}

/// Loads and validates a config file (as [`load`], with the same errors) and gives its `admin` key as written,
/// `${ENV}` expanded: what `vantage-ingest token` signs with.
pub fn load_admin_key(path: &Path) -> Result<Option<KeyConfig>, ConfigError> {
    let loaded = vantage_common::load_config::<Config>(path)?;
    let admin = loaded.value.admin.clone();
    validate(loaded)?;
    Ok(admin)
}

/// Parses and validates config text with a given environment (for tests).
pub fn parse(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    validate(vantage_common::parse_config::<Config>(path, text, env)?)
}

fn validate(loaded: Loaded<Config>) -> Result<Settings, ConfigError> {
    let c = &loaded.value;
    if c.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(loaded.error_at(
            "listen",
            "listen:",
            0,
            format!("`{}` is not an address like 127.0.0.1:9480", c.listen),
        ));
    }
    let url = &c.storage.url;
    if !(url.starts_with("sqlite://")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(loaded.error_at(
            "storage.url",
            "url:",
            0,
            "must start with sqlite:// or postgres://",
        ));
    }
    if c.storage.write_timeout < Duration::from_millis(100) {
        return Err(loaded.error_at(
            "storage.write_timeout",
            "write_timeout:",
            0,
            "must be at least 100ms",
        ));
    }
    if c.storage.spool.is_some() && url.starts_with("sqlite://") {
        return Err(loaded.error_at(
            "storage.spool",
            "spool:",
            0,
            "the spool is for PostgreSQL stores (a SQLite store writes to local disk already)",
        ));
    }
    if c.storage.queue_capacity == 0 || c.storage.max_batch_events == 0 {
        return Err(loaded.error_at(
            "storage",
            "storage:",
            0,
            "queue_capacity and max_batch_events must be at least 1",
        ));
    }
    if c.sites.is_empty() {
        return Err(loaded.error_at("sites", "sites:", 0, "at least one site is required"));
    }
    let l = &c.limits;
    if l.max_body_bytes < 1024 || l.max_events_per_batch == 0 || l.max_string_len < 64 {
        return Err(loaded.error_at(
            "limits",
            "limits:",
            0,
            "max_body_bytes must be >= 1024, max_events_per_batch >= 1, max_string_len >= 64",
        ));
    }
    if l.body_memory_bytes < l.max_body_bytes {
        return Err(loaded.error_at(
            "limits.body_memory_bytes",
            "body_memory_bytes:",
            0,
            format!(
                "must be at least max_body_bytes ({}), or no full-size body could be read",
                l.max_body_bytes
            ),
        ));
    }
    if l.body_timeout.is_zero() || l.max_connections == 0 {
        return Err(loaded.error_at(
            "limits",
            "limits:",
            0,
            "body_timeout and max_connections must be above 0",
        ));
    }
    if l.head_timeout < Duration::from_secs(6) {
        return Err(loaded.error_at(
            "limits.head_timeout",
            "head_timeout:",
            0,
            "must be at least 6s (longer than the 5s keep-alive, or idle connections would be cut as stalled)",
        ));
    }
    if l.answer_stall_timeout.is_zero() {
        return Err(loaded.error_at(
            "limits.answer_stall_timeout",
            "answer_stall_timeout:",
            0,
            "must be above 0",
        ));
    }
    let m = &c.sourcemaps;
    if m.max_bytes == 0 || m.max_per_release == 0 || m.upload_timeout.is_zero() {
        return Err(loaded.error_at(
            "sourcemaps",
            "sourcemaps:",
            0,
            "max_bytes, max_per_release and upload_timeout must be above 0",
        ));
    }
    let mut sites = Vec::new();
    for (i, s) in c.sites.iter().enumerate() {
        let at = |field: &str, msg: String| {
            loaded.error_at(
                &format!("sites[{i}].{field}"),
                &format!("id: {}", s.id),
                0,
                msg,
            )
        };
        if s.id.is_empty()
            || s.id.len() > 64
            || !s
                .id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(at(
                "id",
                format!("`{}` is not a site id (1-64 letters, digits, - or _)", s.id),
            ));
        }
        if c.sites[..i].iter().any(|o| o.id == s.id) {
            return Err(at("id", format!("duplicate site id `{}`", s.id)));
        }
        if s.api_key.is_none() && c.site_tokens.is_none() {
            return Err(at(
                "api_key",
                "needs an api_key (or a top-level site_tokens key)".into(),
            ));
        }
        if let Some(k) = &s.api_key {
            if k.len() < 8 {
                return Err(at(
                    "api_key",
                    "api_key must be at least 8 characters".into(),
                ));
            }
        }
        let mut origins = Vec::new();
        for (j, o) in s.allowed_origins.iter().enumerate() {
            match OriginPattern::parse(o) {
                Ok(p) => origins.push(p),
                Err(e) => {
                    return Err(loaded.error_at(
                        &format!("sites[{i}].allowed_origins[{j}]"),
                        o,
                        0,
                        e,
                    ))
                }
            }
        }
        let mut routes = Vec::new();
        for (j, r) in s.routes.iter().enumerate() {
            match RoutePattern::parse(r) {
                Ok(p) => routes.push(p),
                Err(e) => return Err(loaded.error_at(&format!("sites[{i}].routes[{j}]"), r, 0, e)),
            }
        }
        let rl = s.rate_limit;
        if !(rl.events_per_second > 0.0 && rl.burst >= l.max_events_per_batch as f64) {
            return Err(at(
                "rate_limit",
                format!(
                    "events_per_second must be > 0 and burst >= limits.max_events_per_batch ({})",
                    l.max_events_per_batch
                ),
            ));
        }
        if s.label_budget == 0 {
            return Err(at("label_budget", "must be at least 1".into()));
        }
        sites.push(Site {
            id: s.id.clone(),
            api_key: s.api_key.clone(),
            origins,
            rate_limit: rl,
            routes,
            label_budget: s.label_budget,
        });
    }
    let key = |name: &str, k: &Option<KeyConfig>| -> Result<_, ConfigError> {
        k.as_ref()
            .map(|k| {
                crate::auth::Verifier::new(k)
                    .map_err(|e| loaded.error_at(name, &format!("{name}:"), 0, e))
            })
            .transpose()
    };
    let site_tokens = key("site_tokens", &c.site_tokens)?;
    let admin = key("admin", &c.admin)?;
    Ok(Settings {
        listen: c.listen.clone(),
        admin_secret_is_example: c
            .admin
            .as_ref()
            .is_some_and(|k| k.secret.as_deref() == Some(EXAMPLE_ADMIN_SECRET)),
        storage: c.storage.clone(),
        sites,
        site_tokens,
        admin,
        limits: c.limits.clone(),
        sourcemaps: c.sourcemaps.clone(),
        redactor: loaded.env_values.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both example configs fall back to EXAMPLE_ADMIN_SECRET without RUM_ADMIN_SECRET (so the check below
    /// knows their secret), and they listen on loopback, where it is allowed.
    #[test]
    fn the_examples_published_admin_secret_is_refused_off_loopback() {
        for file in ["ingest.yaml", "ingest-postgres.yaml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let mut s = parse(&path, &text, |_| None).unwrap();
            assert!(s.admin_secret_is_example, "{file}");
            assert_eq!(s.check_exposure(), Ok(()), "{file}: {}", s.listen);
            for listen in ["0.0.0.0:9480", "[::]:9480", "192.0.2.7:9480"] {
                s.listen = listen.into();
                let e = s.check_exposure().unwrap_err();
                assert!(
                    e.starts_with("admin.secret is the example config's published default"),
                    "{e}"
                );
                assert!(
                    e.contains(listen) && !e.contains(EXAMPLE_ADMIN_SECRET),
                    "{e}"
                );
            }
            for listen in ["127.0.0.1:9480", "[::1]:9480", "localhost:9480"] {
                s.listen = listen.into();
                assert_eq!(s.check_exposure(), Ok(()), "{listen}");
            }
            // With a secret of one's own, any address.
            let own = |v: &str| (v == "RUM_ADMIN_SECRET").then(|| "x".repeat(40));
            let mut s = parse(&path, &text, own).unwrap();
            assert!(!s.admin_secret_is_example);
            s.listen = "0.0.0.0:9480".into();
            assert_eq!(s.check_exposure(), Ok(()));
        }
    }

    fn parse_str(text: &str) -> Result<Settings, String> {
        parse(Path::new("ingest.yaml"), text, |_| None).map_err(|e| e.to_string())
    }

    const MIN: &str = "storage:\n  url: sqlite://data/rum.db\nsites:\n  - id: shop\n    api_key: ${RUM_SHOP_KEY:-dev-key-123}\n    allowed_origins: [\"https://shop.example.com\", \"https://*.shop.example.com\"]\n";

    #[test]
    fn minimal_config_has_defaults() {
        let s = parse_str(MIN).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9480");
        assert_eq!(s.limits.max_body_bytes, 1 << 20);
        assert_eq!(s.sites[0].label_budget, 200);
        assert_eq!(s.sites[0].api_key.as_deref(), Some("dev-key-123"));
    }

    #[test]
    fn storage_defaults_are_the_stores() {
        let s = parse_str(MIN).unwrap().storage;
        let d = crate::store::StoreConfig::with_url(s.url.clone());
        assert_eq!(
            (
                s.queue_capacity,
                s.max_batch_events,
                s.busy_retry_after_secs,
                s.write_timeout
            ),
            (
                d.queue_capacity,
                d.max_batch_events,
                d.busy_retry_after_secs,
                d.write_timeout
            )
        );
    }

    #[test]
    fn unknown_field_has_position() {
        let e = parse_str(&format!("{MIN}    colour: red\n")).unwrap_err();
        assert!(e.starts_with("ingest.yaml:7:5: sites[0].colour"), "{e}");
    }

    #[test]
    fn bad_origin_names_the_field() {
        let e = parse_str(&MIN.replace("https://shop.example.com\"", "shop.example.com\""))
            .unwrap_err();
        assert!(e.contains("sites[0].allowed_origins[0]"), "{e}");
    }

    #[test]
    fn bad_storage_url() {
        let e = parse_str(&MIN.replace("sqlite://", "mysql://")).unwrap_err();
        assert!(e.starts_with("ingest.yaml:2:3: storage.url"), "{e}");
    }

    #[test]
    fn spool_only_for_postgres_with_documented_defaults() {
        let e = parse_str(&MIN.replace(
            "sqlite://data/rum.db",
            "sqlite://x.db\n  spool: {path: s.db}",
        ))
        .unwrap_err();
        assert!(e.starts_with("ingest.yaml:3:3: storage.spool"), "{e}");
        let s = parse_str(&MIN.replace(
            "sqlite://data/rum.db",
            "postgres://u@db/rum\n  write_timeout: 3s\n  spool:\n    path: /var/lib/vantage/spool.db",
        ))
        .unwrap();
        assert_eq!(s.storage.write_timeout, Duration::from_secs(3));
        assert_eq!(
            s.storage.spool,
            Some(crate::store::SpoolConfig::at("/var/lib/vantage/spool.db"))
        );
        let spool = s.storage.spool.unwrap();
        assert_eq!(
            (
                spool.max_bytes,
                spool.max_age,
                spool.drain_events_per_second
            ),
            (512 << 20, Duration::from_secs(86_400), 5_000)
        );
        let e =
            parse_str(&MIN.replace("sqlite://data/rum.db", "sqlite://x.db\n  write_timeout: 0s"))
                .unwrap_err();
        assert!(e.contains("storage.write_timeout"), "{e}");
    }

    #[test]
    fn sourcemap_limits() {
        let s = parse_str(MIN).unwrap().sourcemaps;
        assert_eq!((s.max_bytes, s.max_per_release), (10 << 20, 200));
        let e = parse_str(&format!("{MIN}sourcemaps:\n  max_per_release: 0\n")).unwrap_err();
        assert!(e.contains("sourcemaps"), "{e}");
    }

    #[test]
    fn secret_not_in_errors() {
        let text = MIN.replace("${RUM_SHOP_KEY:-dev-key-123}", "${KEY}") + "    label_budget: 0\n";
        let e = parse(Path::new("a.yaml"), &text, |n| {
            (n == "KEY").then(|| "supersecret-key".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("label_budget"), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
    }
}
