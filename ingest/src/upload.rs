//! `vantage-ingest sourcemaps upload`: the client a release's CI runs to upload its source maps to
//! `POST /v1/admin/sourcemaps`, gzip-compressed, one request per map, stopping at the first refusal. The
//! token is sent as a bearer token and never printed: every message passes through [`Upload::redact`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use vantage_common::error_chain::error_chain;

/// What to upload where.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The ingest's base URL (`https://rum.example.com`).
    pub url: String,
    /// An admin token with scope `admin`.
    pub token: String,
    pub site: String,
    pub release: String,
    /// Prefix of the scripts' URLs: a map of `app.min.js` is for `url_prefix` + `app.min.js`.
    pub url_prefix: String,
    /// The maps (`dist/*.js.map`).
    pub files: Vec<PathBuf>,
    /// Per request.
    pub timeout: Duration,
}

impl Upload {
    /// `text` without the token in it.
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.token, "[token]")
        }
    }

    /// Uploads every file in order, one line to `out` per map stored; the error names the file and what
    /// the server (or the network) answered.
    pub async fn run(&self, out: &mut impl Write) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("no source map files given".into());
        }
        let endpoint = format!("{}/v1/admin/sourcemaps", self.url.trim_end_matches('/'));
        let endpoint = url::Url::parse(&endpoint)
            .map_err(|e| format!("--url `{}` is not a URL: {e}", self.redact(&self.url)))?;
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        for file in &self.files {
            let line = self
                .one(&client, &endpoint, file)
                .await
                .map_err(|e| self.redact(&format!("{}: {e}", file.display())))?;
            writeln!(out, "{}", self.redact(&line)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn one(
        &self,
        client: &reqwest::Client,
        endpoint: &url::Url,
        file: &std::path::Path,
    ) -> Result<String, String> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("not a file name")?;
        let map = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
        let body = gzip(&map).map_err(|e| format!("cannot compress: {e}"))?;
        let mut url = endpoint.clone();
        url.query_pairs_mut()
            .append_pair("site", &self.site)
            .append_pair("release", &self.release)
            .append_pair("url_prefix", &self.url_prefix)
            .append_pair("name", name);
        let res = client
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("upload failed: {}", error_chain(&e)))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !status.is_success() {
            let why = answer["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| crate::truncate::truncate(text.trim(), 200));
            return Err(format!("server answered {status}: {why}"));
        }
        Ok(format!(
            "uploaded {} -> {} ({} bytes{})",
            file.display(),
            answer["url"].as_str().unwrap_or("?"),
            answer["bytes"].as_u64().unwrap_or(map.len() as u64),
            if answer["replaced"] == true {
                ", replaced the earlier upload"
            } else {
                ""
            }
        ))
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let u = Upload {
            url: "http://127.0.0.1:1".into(),
            token: "eyJ.secret.sig".into(),
            site: "s".into(),
            release: "r".into(),
            url_prefix: "https://a.test/".into(),
            files: vec![],
            timeout: Duration::from_secs(1),
        };
        assert_eq!(u.redact("bad eyJ.secret.sig here"), "bad [token] here");
    }
}
