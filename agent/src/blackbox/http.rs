//! blackbox_exporter's `http` prober over the agent's HTTP exchange: the status must be valid (2xx by default),
//! then header and body regexps, the HTTP version and `fail_if_ssl` / `fail_if_not_ssl` decide; the families
//! are blackbox_exporter's 13 (plus 4 after a TLS handshake, and `probe_http_last_modified_timestamp_seconds`
//! when the answer has a `Last-Modified`).

use super::families::Families;
use super::modules::{HttpModule, Module};
use super::ProbeLog;
use crate::probe::http::exchange::{
    ClientOptions, Dial, ExchangeRequest, HttpClient, HttpVersion, Session,
};
use crate::probe::net::IpVersion;
use crate::result::Phase;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::io::Read;

/// The client a module's probes share (built once per module file load) and its request parts.
pub struct Prepared {
    client: HttpClient,
    options: ClientOptions,
    method: Method,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}

const USER_AGENT: &str = concat!("Vantage/", env!("CARGO_PKG_VERSION"), " (blackbox)");

/// The exchange's options for module `h`; `body_limit` 0 keeps the agent's own cap (10 MiB), so one probe's
/// memory stays bounded. Errors are (field, message).
pub fn prepare(h: &HttpModule, body_limit: u64) -> Result<Prepared, (String, String)> {
    let t = &h.tls_config;
    let host_header = h
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let mut tls = super::tls_options(t);
    // blackbox_exporter verifies against a Host header when there is one and no server_name.
    tls.server_name = tls.server_name.or(host_header);
    let options = ClientOptions {
        http_version: if h.enable_http2 {
            HttpVersion::Auto
        } else {
            HttpVersion::Http1
        },
        tls,
        ip_version: IpVersion::Auto,
        proxy_url: h.proxy_url.clone(),
        no_proxy: h.no_proxy.clone(),
        follow_redirects: h.follow_redirects,
        max_body_bytes: if body_limit > 0 {
            body_limit
        } else {
            crate::probe::http::exchange::DEFAULT_MAX_BODY_BYTES
        },
        user_agent: Some(HeaderValue::from_static(USER_AGENT)),
        ..ClientOptions::default()
    };
    let client = HttpClient::new(&options).map_err(|e| (format!("http.{}", e.field), e.message))?;
    let method_text = h.method.clone().unwrap_or_else(|| "GET".into());
    let method = Method::from_bytes(method_text.as_bytes()).map_err(|_| {
        (
            "http.method".to_string(),
            format!("invalid method {method_text:?}"),
        )
    })?;
    let mut headers = HeaderMap::new();
    for (k, v) in &h.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            (
                format!("http.headers.{k}"),
                "invalid header name".to_string(),
            )
        })?;
        let mut value = HeaderValue::from_str(v).map_err(|_| {
            (
                format!("http.headers.{k}"),
                "invalid header value".to_string(),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    if let Some(a) = &h.basic_auth {
        use base64::Engine;
        let password = match &a.password_file {
            Some(f) => {
                read_secret(f).map_err(|m| ("http.basic_auth.password_file".to_string(), m))?
            }
            None => a.password.clone(),
        };
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", a.username));
        headers.insert(
            http::header::AUTHORIZATION,
            secret_header(&format!("Basic {token}"))?,
        );
    }
    let bearer = match (&h.bearer_token, &h.bearer_token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => {
            Some(read_secret(f).map_err(|m| ("http.bearer_token_file".to_string(), m))?)
        }
        _ => None,
    };
    if let Some(t) = bearer {
        headers.insert(
            http::header::AUTHORIZATION,
            secret_header(&format!("Bearer {t}"))?,
        );
    }
    Ok(Prepared {
        client,
        options,
        method,
        headers,
        body: h.body.clone().map(bytes::Bytes::from).unwrap_or_default(),
    })
}

fn read_secret(file: &str) -> Result<String, String> {
    std::fs::read_to_string(file)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read {file}: {e}"))
}

fn secret_header(v: &str) -> Result<HeaderValue, (String, String)> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        (
            "http".to_string(),
            "a credential has characters not allowed in a header".to_string(),
        )
    })?;
    h.set_sensitive(true);
    Ok(h)
}

const PHASES: (&str, &str) = (
    "probe_http_duration_seconds",
    "Duration of http request by phase, summed over all redirects",
);

/// Probes `target` (a URL; `http://` is assumed without a scheme).
pub async fn probe(
    module: &Module,
    target: &str,
    hostname: Option<&str>,
    f: &mut Families,
    log: &mut ProbeLog,
) -> bool {
    let h = &module.http;
    let Some(prepared) = module.compiled.http.as_deref() else {
        log.error("Module has no HTTP client", &[]);
        return false;
    };
    for (name, help) in [
        (
            "probe_http_content_length",
            "Length of http content response",
        ),
        (
            "probe_http_uncompressed_body_length",
            "Length of uncompressed response body",
        ),
        ("probe_http_redirects", "The number of redirects"),
        (
            "probe_http_ssl",
            "Indicates if SSL was used for the final redirect",
        ),
        ("probe_http_status_code", "Response HTTP status code"),
        (
            "probe_http_version",
            "Returns the version of HTTP of the probe response",
        ),
        (
            "probe_failed_due_to_regex",
            "Indicates if probe failed due to regex",
        ),
    ] {
        f.set(name, help, 0.0);
    }
    for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
        f.add_labelled(PHASES.0, PHASES.1, vec![("phase", phase.into())], 0.0);
    }
    let text = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    let url = match url::Url::parse(&text) {
        Ok(u) if u.host_str().is_some() => u,
        Ok(_) => {
            log.error("Could not parse target URL", &[("err", "no host".into())]);
            return false;
        }
        Err(e) => {
            log.error("Could not parse target URL", &[("err", e.to_string())]);
            return false;
        }
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let pin = if h.skip_resolve_phase_with_proxy && h.proxy_url.is_some() {
        None
    } else {
        let ip = super::resolve_target(
            &host,
            h.preferred_ip_protocol,
            h.ip_protocol_fallback,
            Some(PHASES),
            f,
            log,
        )
        .await;
        if ip.is_none() {
            return false;
        }
        ip
    };

    let mut headers = prepared.headers.clone();
    // `hostname=` sets the Host header (and the TLS name, unless the module names one).
    let one_off;
    let client = match hostname {
        Some(name) => {
            if let Some(v) = headers.get(http::header::HOST) {
                if v.to_str().ok() != Some(name) {
                    log.error("Host header defined both in module configuration and with URL-parameter 'hostname'", &[]);
                    return false;
                }
            }
            match HeaderValue::from_str(name) {
                Ok(v) => headers.insert(http::header::HOST, v),
                Err(_) => {
                    log.error(
                        "Invalid hostname parameter",
                        &[("hostname", name.to_string())],
                    );
                    return false;
                }
            };
            if url.scheme() == "https" && prepared.options.tls.server_name.is_none() {
                let mut options = prepared.options.clone();
                options.tls.server_name = Some(name.to_string());
                one_off = match HttpClient::new(&options) {
                    Ok(c) => c,
                    Err(e) => {
                        log.error("Error generating HTTP client", &[("err", e.to_string())]);
                        return false;
                    }
                };
                &one_off
            } else {
                &prepared.client
            }
        }
        None => &prepared.client,
    };
    let request = ExchangeRequest {
        method: prepared.method.clone(),
        url,
        headers,
        body: prepared.body.clone(),
        trace: None,
    };
    let mut session = Session::with_dial(Dial {
        pin: pin.map(|ip| (host.clone(), ip)),
        keep_chain: true,
    });
    log.info(
        "Making HTTP request",
        &[("url", request.url.to_string()), ("host", host.clone())],
    );
    let resp = match client.exchange(request, Some(&mut session)).await {
        Ok(r) => r,
        Err(e) => {
            log.error("Error for HTTP request", &[("err", e.message.clone())]);
            return false;
        }
    };
    log.info(
        "Received HTTP response",
        &[("status_code", resp.status.to_string())],
    );

    let mut success = if h.valid_status_codes.is_empty() {
        let ok = (200..300).contains(&resp.status);
        if !ok {
            log.info(
                "Invalid HTTP response status code, wanted 2xx",
                &[("status_code", resp.status.to_string())],
            );
        }
        ok
    } else {
        let ok = h.valid_status_codes.contains(&resp.status);
        if !ok {
            log.info(
                "Invalid HTTP response status code",
                &[
                    ("status_code", resp.status.to_string()),
                    ("valid_status_codes", format!("{:?}", h.valid_status_codes)),
                ],
            );
        }
        ok
    };
    let c = &module.compiled;
    if success && (!c.header_must_not_match.is_empty() || !c.header_must_match.is_empty()) {
        success = headers_pass(&resp.headers, c, log);
        f.set(
            "probe_failed_due_to_regex",
            "",
            if success { 0.0 } else { 1.0 },
        );
    }
    let limit = prepared.options.max_body_bytes;
    let body = match decompress(h.compression.as_deref(), &resp.body, limit) {
        Ok(b) => b,
        Err(e) => {
            log.info("Failed to decompress HTTP response body", &[("err", e)]);
            success = false;
            // Nothing was read as the body, as blackbox_exporter reports it.
            Vec::new()
        }
    };
    if success && (!c.body_must_not_match.is_empty() || !c.body_must_match.is_empty()) {
        success = body_passes(&body, c, log);
        f.set(
            "probe_failed_due_to_regex",
            "",
            if success { 0.0 } else { 1.0 },
        );
    }
    if let Some(t) = resp
        .headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
    {
        f.set(
            "probe_http_last_modified_timestamp_seconds",
            "Returns the Last-Modified HTTP response header in unixtime",
            t.timestamp() as f64,
        );
    }
    // Go's `resp.Proto`: HTTP/2.0, HTTP/1.1.
    let (proto, number) = match resp.version {
        "HTTP/2" => ("HTTP/2.0", 2.0),
        "HTTP/3" => ("HTTP/3.0", 3.0),
        "HTTP/1.0" => ("HTTP/1.0", 1.0),
        "HTTP/0.9" => ("HTTP/0.9", 0.9),
        _ => ("HTTP/1.1", 1.1),
    };
    f.set("probe_http_version", "", number);
    if !h.valid_http_versions.is_empty() && !h.valid_http_versions.iter().any(|v| v == proto) {
        log.error("Invalid HTTP version number", &[("version", proto.into())]);
        success = false;
    }
    for phase in [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
        Phase::Transfer,
    ] {
        if let Some(d) = resp.phases.get(phase) {
            f.add_labelled(
                PHASES.0,
                PHASES.1,
                vec![("phase", phase.as_str().into())],
                d.as_secs_f64(),
            );
        }
    }
    match &resp.tls {
        Some(tls) => {
            f.set("probe_http_ssl", "", 1.0);
            super::tls_families(f, tls, resp.chain.as_deref());
            if h.fail_if_ssl {
                log.error("Final request was over SSL", &[]);
                success = false;
            }
        }
        None if h.fail_if_not_ssl => {
            log.error("Final request was not over SSL", &[]);
            success = false;
        }
        None => {}
    }
    f.set("probe_http_status_code", "", f64::from(resp.status));
    let declared = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(-1.0);
    f.set("probe_http_content_length", "", declared);
    f.set("probe_http_uncompressed_body_length", "", body.len() as f64);
    // A redirect received but not followed counts, as blackbox_exporter counts it.
    let unfollowed = !h.follow_redirects
        && matches!(resp.status, 301 | 302 | 303 | 307 | 308)
        && resp.headers.contains_key(http::header::LOCATION);
    f.set(
        "probe_http_redirects",
        "",
        f64::from(resp.redirects + u32::from(unfollowed)),
    );
    success
}

fn headers_pass(headers: &HeaderMap, c: &super::modules::Compiled, log: &mut ProbeLog) -> bool {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    for (m, re) in &c.header_must_not_match {
        let vals = values(&m.header);
        if vals.is_empty() && !m.allow_missing {
            log.error("Missing required header", &[("header", m.header.clone())]);
            return false;
        }
        if vals.iter().any(|v| re.is_match(v)) {
            log.error(
                "Header matched regular expression",
                &[("header", m.header.clone()), ("regexp", m.regexp.clone())],
            );
            return false;
        }
    }
    for (m, re) in &c.header_must_match {
        let vals = values(&m.header);
        if vals.is_empty() && !m.allow_missing {
            log.error("Missing required header", &[("header", m.header.clone())]);
            return false;
        }
        if !vals.is_empty() && !vals.iter().any(|v| re.is_match(v)) {
            log.error(
                "Header did not match regular expression",
                &[("header", m.header.clone()), ("regexp", m.regexp.clone())],
            );
            return false;
        }
    }
    true
}

fn body_passes(body: &[u8], c: &super::modules::Compiled, log: &mut ProbeLog) -> bool {
    let text = String::from_utf8_lossy(body);
    for re in &c.body_must_not_match {
        if re.is_match(&text) {
            log.error(
                "Body matched regular expression",
                &[("regexp", re.to_string())],
            );
            return false;
        }
    }
    for re in &c.body_must_match {
        if !re.is_match(&text) {
            log.error(
                "Body did not match regular expression",
                &[("regexp", re.to_string())],
            );
            return false;
        }
    }
    true
}

/// The body as `compression:` says it was sent (gzip, deflate; identity or none as it came), at most `limit`
/// bytes once decompressed (a small body may inflate to gigabytes).
fn decompress(algorithm: Option<&str>, body: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let reader: Box<dyn Read + '_> = match algorithm.map(str::to_ascii_lowercase).as_deref() {
        Some("gzip") => Box::new(flate2::read::GzDecoder::new(body)),
        Some("deflate") => Box::new(flate2::read::DeflateDecoder::new(body)),
        _ => return Ok(body.to_vec()),
    };
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", algorithm.unwrap_or_default()))?;
    if out.len() as u64 > limit {
        return Err(format!(
            "the body is larger than {limit} bytes once decompressed"
        ));
    }
    Ok(out)
}
