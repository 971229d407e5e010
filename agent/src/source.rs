//! Where the config comes from: a file, or an `http(s)://` URL that one central place serves to the whole
//! fleet. A URL is fetched with an optional bearer token and polled with `If-None-Match`; the last copy that was
//! valid is kept on disk, so an agent that boots while the URL is unreachable starts from it.

use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The variable `--config-token-env` names by default.
pub const DEFAULT_TOKEN_ENV: &str = "VANTAGE_CONFIG_TOKEN";
/// How long one fetch of the config URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// A config larger than this is refused (a misconfigured URL serving a large file must not fill memory).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// A config file or URL, as given to `-c`.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Url(UrlSource),
}

impl ConfigSource {
    /// `http://` or `https://` is a URL (with `token` for its `Authorization: Bearer`), anything else a path.
    pub fn parse(arg: &str, token: Option<String>, state_dir: &Path) -> Result<Self, String> {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            let url = Url::parse(arg).map_err(|e| format!("-c {arg:?}: not a valid URL: {e}"))?;
            if url.host_str().is_none() {
                return Err(format!("-c {arg:?}: the URL has no host"));
            }
            Ok(ConfigSource::Url(UrlSource::new(url, token, state_dir)?))
        } else {
            Ok(ConfigSource::File(PathBuf::from(arg)))
        }
    }

    /// How the source is named in messages and logs (a URL without its userinfo and query).
    pub fn display(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Url(u) => u.display(),
        }
    }
}

/// A config served over HTTP.
#[derive(Debug, Clone)]
pub struct UrlSource {
    url: Url,
    token: Option<String>,
    client: reqwest::Client,
    /// The last good copy, and its ETag beside it.
    cache: PathBuf,
}

/// What one fetch brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The text and its ETag (when the server gives one).
    Text { text: String, etag: Option<String> },
    /// 304: what we have is current.
    NotModified,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// No answer: connection, TLS, timeout, or a body that could not be read.
    Network(String),
    /// An answer that is not the config.
    Status(u16),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Network(m) => f.write_str(m),
            FetchError::Status(s) => write!(f, "the server answered HTTP {s}"),
        }
    }
}

impl UrlSource {
    fn new(url: Url, token: Option<String>, state_dir: &Path) -> Result<Self, String> {
        let client = crate::client::build(&Default::default(), FETCH_TIMEOUT)?;
        // One cache file per URL, so agents of different configs can share a state directory.
        let digest = sha2::Sha256::digest(url.as_str().as_bytes());
        let name: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(UrlSource {
            cache: state_dir.join(format!("config-{name}.yaml")),
            url,
            token,
            client,
        })
    }

    pub fn display(&self) -> String {
        vantage_common::secrets::display_url(&self.url)
    }

    /// Fetches the config; with `etag`, a 304 answer is [`Fetched::NotModified`].
    pub async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let mut req = self.client.get(self.url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = etag {
            req = req.header(http::header::IF_NONE_MATCH, e);
        }
        let mut resp = req.send().await.map_err(network)?;
        let status = resp.status();
        if status == http::StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(network)? {
            if body.len() + chunk.len() > MAX_CONFIG_BYTES {
                return Err(FetchError::Network(format!(
                    "the config is larger than {} MiB",
                    MAX_CONFIG_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body)
            .map_err(|_| FetchError::Network("the config is not UTF-8 text".into()))?;
        Ok(Fetched::Text { text, etag })
    }

    /// Keeps `text` as the last good copy (written to a temporary file, synced, renamed over the old one).
    pub fn save(&self, text: &str, etag: Option<&str>) -> std::io::Result<()> {
        if let Some(dir) = self.cache.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomically(&self.cache, text.as_bytes())?;
        let etag_file = self.cache.with_extension("etag");
        match etag {
            Some(e) => write_atomically(&etag_file, e.as_bytes()),
            None => match std::fs::remove_file(&etag_file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// The last good copy and its ETag, if one was kept.
    pub fn load_saved(&self) -> Option<(String, Option<String>)> {
        let text = std::fs::read_to_string(&self.cache).ok()?;
        let etag = std::fs::read_to_string(self.cache.with_extension("etag")).ok();
        Some((text, etag))
    }

    pub fn saved_path(&self) -> &Path {
        &self.cache
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn network(e: reqwest::Error) -> FetchError {
    FetchError::Network(crate::client::describe(&e))
}
