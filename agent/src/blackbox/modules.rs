//! blackbox_exporter's module file (`blackbox.yml`), read as blackbox_exporter 0.23 reads it: `modules:` of
//! `prober: http | tcp | dns | icmp | grpc` with the prober's options. `${VAR}` expands as in Vantage's own
//! config. An option blackbox_exporter has and Vantage does not implement is an error naming it, never ignored;
//! an option neither has is an error too (serde's "unknown field", with the ones that exist).

use regex::Regex;
use serde::Deserialize;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vantage_common::config::{parse_config, ConfigError, Loaded};

/// A module file, validated and compiled (regexes built), ready to probe with.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    pub modules: BTreeMap<String, Arc<Module>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    modules: BTreeMap<String, Module>,
}

/// One module: a prober and its options.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub prober: Prober,
    /// The probe's own deadline; 0 (unset) means the scrape's timeout minus the offset.
    #[serde(
        default,
        deserialize_with = "go_duration",
        serialize_with = "show_duration"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub http: HttpModule,
    #[serde(default)]
    pub tcp: TcpModule,
    #[serde(default)]
    pub dns: DnsModule,
    #[serde(default)]
    pub icmp: IcmpModule,
    #[serde(default)]
    pub grpc: GrpcModule,
    /// Compiled once at load (not part of the file).
    #[serde(skip)]
    pub compiled: Compiled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prober {
    Http,
    Tcp,
    Dns,
    Icmp,
    Grpc,
}

impl Prober {
    pub fn as_str(self) -> &'static str {
        match self {
            Prober::Http => "http",
            Prober::Tcp => "tcp",
            Prober::Dns => "dns",
            Prober::Icmp => "icmp",
            Prober::Grpc => "grpc",
        }
    }
}

/// `preferred_ip_protocol` / `ip_protocol_fallback`, shared by every prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub enum IpProtocol {
    #[serde(rename = "ip4", alias = "ipv4")]
    Ip4,
    /// blackbox_exporter's default.
    #[default]
    #[serde(rename = "ip6", alias = "ipv6")]
    Ip6,
}

fn yes() -> bool {
    true
}

/// `tls_config` (Prometheus common's TLS options, the file-based ones).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing)]
    min_version: Option<Value>,
    #[serde(default, skip_serializing)]
    max_version: Option<Value>,
    #[serde(default, skip_serializing)]
    ca: Option<Value>,
    #[serde(default, skip_serializing)]
    cert: Option<Value>,
    #[serde(default, skip_serializing)]
    key: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing)]
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: String,
    #[serde(default)]
    pub allow_missing: bool,
}

/// `http:` of a module.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpModule {
    /// Default: any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_status_codes: Vec<u16>,
    /// `HTTP/1.1`, `HTTP/2.0`, ... as Go writes them; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_http_versions: Vec<String>,
    #[serde(default)]
    pub preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub skip_resolve_phase_with_proxy: bool,
    /// The old spelling of `follow_redirects: false`.
    #[serde(default, skip_serializing)]
    no_follow_redirects: Option<bool>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
    #[serde(default)]
    pub fail_if_ssl: bool,
    #[serde(default)]
    pub fail_if_not_ssl: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing)]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_matches_regexp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_not_matches_regexp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_matches: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing)]
    pub bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing)]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
    /// `gzip`, `deflate` (also `br` in blackbox_exporter, refused here); the body is decompressed before the
    /// regexps look at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// `10MB`, `512KiB`, or bytes; 0 = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<Value>,
    // blackbox_exporter options Vantage does not implement: refused by name at load.
    #[serde(default, skip_serializing)]
    oauth2: Option<Value>,
    #[serde(default, skip_serializing)]
    authorization: Option<Value>,
    #[serde(default, skip_serializing)]
    proxy_from_environment: Option<Value>,
    #[serde(default, skip_serializing)]
    proxy_connect_header: Option<Value>,
}

impl Default for HttpModule {
    fn default() -> Self {
        serde_norway::from_value(Value::Mapping(Default::default())).expect("defaults")
    }
}

/// One step of `query_response`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    #[serde(default)]
    pub starttls: bool,
}

/// `tcp:` of a module.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpModule {
    #[serde(default)]
    pub preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_response: Vec<QueryResponse>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default, skip_serializing)]
    source_ip_address: Option<Value>,
}

impl Default for TcpModule {
    fn default() -> Self {
        serde_norway::from_value(Value::Mapping(Default::default())).expect("defaults")
    }
}

/// `validate_answer_rrs` and its siblings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RrValidator {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_matches_regexp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_all_match_regexp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_not_matches_regexp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_none_matches_regexp: Vec<String>,
}

/// `dns:` of a module.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsModule {
    #[serde(default)]
    pub preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    /// `udp` (default) or `tcp`.
    #[serde(default = "udp")]
    pub transport_protocol: String,
    #[serde(default)]
    pub query_name: String,
    /// Default `ANY`, as blackbox_exporter.
    #[serde(default = "any")]
    pub query_type: String,
    /// Default `IN`.
    #[serde(default = "class_in")]
    pub query_class: String,
    #[serde(default = "yes")]
    pub recursion_desired: bool,
    /// Default `[NOERROR]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_rcodes: Vec<String>,
    #[serde(default)]
    pub validate_answer_rrs: RrValidator,
    #[serde(default)]
    pub validate_authority_rrs: RrValidator,
    #[serde(default)]
    pub validate_additional_rrs: RrValidator,
    #[serde(default, skip_serializing)]
    dns_over_tls: Option<Value>,
    #[serde(default, skip_serializing)]
    tls_config: Option<Value>,
    #[serde(default, skip_serializing)]
    source_ip_address: Option<Value>,
}

fn udp() -> String {
    "udp".into()
}
fn any() -> String {
    "ANY".into()
}
fn class_in() -> String {
    "IN".into()
}

impl Default for DnsModule {
    fn default() -> Self {
        serde_norway::from_value(Value::Mapping(Default::default())).expect("defaults")
    }
}

/// `icmp:` of a module.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpModule {
    #[serde(default)]
    pub preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    /// Bytes of payload; blackbox_exporter's default is 36 bytes of its own text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<usize>,
    #[serde(default)]
    pub dont_fragment: bool,
    #[serde(default, skip_serializing)]
    source_ip_address: Option<Value>,
    #[serde(default, skip_serializing)]
    ttl: Option<Value>,
}

impl Default for IcmpModule {
    fn default() -> Self {
        serde_norway::from_value(Value::Mapping(Default::default())).expect("defaults")
    }
}

/// `grpc:` of a module.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcModule {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default)]
    pub preferred_ip_protocol: IpProtocol,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
}

impl Default for GrpcModule {
    fn default() -> Self {
        serde_norway::from_value(Value::Mapping(Default::default())).expect("defaults")
    }
}

/// What a module's options compile into.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The HTTP client and request parts of an `http` module.
    pub http: Option<Arc<super::http::Prepared>>,
    pub body_must_not_match: Vec<Regex>,
    pub body_must_match: Vec<Regex>,
    pub header_must_not_match: Vec<(HeaderMatch, Regex)>,
    pub header_must_match: Vec<(HeaderMatch, Regex)>,
    /// The body limit in bytes (0: none).
    pub body_size_limit: u64,
    /// `query_response` expects.
    pub expects: Vec<Option<Regex>>,
    pub answer: RrRegexes,
    pub authority: RrRegexes,
    pub additional: RrRegexes,
}

#[derive(Debug, Clone, Default)]
pub struct RrRegexes {
    pub fail_if_matches: Vec<Regex>,
    pub fail_if_all_match: Vec<Regex>,
    pub fail_if_not_matches: Vec<Regex>,
    pub fail_if_none_matches: Vec<Regex>,
}

impl RrRegexes {
    pub fn is_empty(&self) -> bool {
        self.fail_if_matches.is_empty()
            && self.fail_if_all_match.is_empty()
            && self.fail_if_not_matches.is_empty()
            && self.fail_if_none_matches.is_empty()
    }
}

/// A problem with one option of one module: the field path and why.
struct Problem(String, String);

impl Modules {
    /// Reads, expands and validates a module file; errors give file:line:column and the field.
    pub fn load(path: &Path) -> Result<Modules, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            file: path.to_path_buf(),
            message: format!("cannot read the module file: {e}"),
        })?;
        Self::parse(path, &raw, |name| std::env::var(name).ok())
    }

    /// [`Modules::load`] on text already read; `lookup` is the environment.
    pub fn parse(
        path: &Path,
        raw: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Modules, ConfigError> {
        let loaded: Loaded<RawFile> = parse_config(path, raw, lookup)?;
        let mut modules = BTreeMap::new();
        for (name, module) in &loaded.value.modules {
            let module = module
                .clone()
                .validate()
                .map_err(|Problem(field, message)| {
                    let field = format!("modules.{name}.{field}");
                    let key = field.rsplit('.').next().unwrap_or_default().to_string();
                    loaded.error_at(&field, &key, 0, message)
                })?;
            modules.insert(name.clone(), Arc::new(module));
        }
        Ok(Modules { modules })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Module>> {
        self.modules.get(name)
    }
}

fn unsupported(field: &str, set: bool) -> Result<(), Problem> {
    if set {
        return Err(Problem(
            field.to_string(),
            "a blackbox_exporter option Vantage does not implement; remove it (or ask for it)"
                .into(),
        ));
    }
    Ok(())
}

fn regexes(field: &str, list: &[String]) -> Result<Vec<Regex>, Problem> {
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            Regex::new(r)
                .map_err(|e| Problem(format!("{field}[{i}]"), format!("invalid regexp: {e}")))
        })
        .collect()
}

fn check_tls(prefix: &str, t: &TlsConfig) -> Result<(), Problem> {
    for (name, v) in [
        ("min_version", &t.min_version),
        ("max_version", &t.max_version),
        ("ca", &t.ca),
        ("cert", &t.cert),
        ("key", &t.key),
    ] {
        unsupported(&format!("{prefix}.tls_config.{name}"), v.is_some())?;
    }
    if t.cert_file.is_some() != t.key_file.is_some() {
        return Err(Problem(
            format!("{prefix}.tls_config"),
            "cert_file and key_file go together".into(),
        ));
    }
    Ok(())
}

impl Module {
    fn validate(mut self) -> Result<Module, Problem> {
        let mut c = Compiled::default();
        match self.prober {
            Prober::Http => {
                let h = &mut self.http;
                for (name, set) in [
                    ("oauth2", h.oauth2.is_some()),
                    ("authorization", h.authorization.is_some()),
                    ("proxy_from_environment", h.proxy_from_environment.is_some()),
                    ("proxy_connect_header", h.proxy_connect_header.is_some()),
                ] {
                    unsupported(&format!("http.{name}"), set)?;
                }
                check_tls("http", &h.tls_config)?;
                if let Some(no) = h.no_follow_redirects.take() {
                    h.follow_redirects = !no;
                }
                if h.bearer_token.is_some() && h.bearer_token_file.is_some() {
                    return Err(Problem(
                        "http.bearer_token_file".into(),
                        "use bearer_token or bearer_token_file, not both".into(),
                    ));
                }
                if h.basic_auth.is_some()
                    && (h.bearer_token.is_some() || h.bearer_token_file.is_some())
                {
                    return Err(Problem(
                        "http.basic_auth".into(),
                        "use basic_auth or a bearer token, not both".into(),
                    ));
                }
                if let Some(a) = &h.basic_auth {
                    if a.password_file.is_some() && !a.password.is_empty() {
                        return Err(Problem(
                            "http.basic_auth.password_file".into(),
                            "use password or password_file, not both".into(),
                        ));
                    }
                }
                for (i, v) in h.valid_status_codes.iter().enumerate() {
                    if !(100..=599).contains(v) {
                        return Err(Problem(
                            format!("http.valid_status_codes[{i}]"),
                            format!("{v} is not an HTTP status"),
                        ));
                    }
                }
                if let Some(comp) = &h.compression {
                    let ok = matches!(
                        comp.to_ascii_lowercase().as_str(),
                        "gzip" | "deflate" | "identity" | ""
                    );
                    if !ok {
                        return Err(Problem(
                            "http.compression".into(),
                            format!("{comp:?}: Vantage decompresses gzip and deflate (br is not implemented)"),
                        ));
                    }
                }
                if let Some(limit) = &h.body_size_limit {
                    c.body_size_limit = parse_bytes(limit)
                        .map_err(|m| Problem("http.body_size_limit".into(), m))?;
                }
                if let Some(m) = &h.method {
                    if http::Method::from_bytes(m.as_bytes()).is_err() {
                        return Err(Problem(
                            "http.method".into(),
                            format!("invalid method {m:?}"),
                        ));
                    }
                }
                c.body_must_not_match = regexes(
                    "http.fail_if_body_matches_regexp",
                    &h.fail_if_body_matches_regexp,
                )?;
                c.body_must_match = regexes(
                    "http.fail_if_body_not_matches_regexp",
                    &h.fail_if_body_not_matches_regexp,
                )?;
                for (field, list, out) in [
                    (
                        "http.fail_if_header_matches",
                        &h.fail_if_header_matches,
                        &mut c.header_must_not_match,
                    ),
                    (
                        "http.fail_if_header_not_matches",
                        &h.fail_if_header_not_matches,
                        &mut c.header_must_match,
                    ),
                ] {
                    for (i, m) in list.iter().enumerate() {
                        let re = Regex::new(&m.regexp).map_err(|e| {
                            Problem(
                                format!("{field}[{i}].regexp"),
                                format!("invalid regexp: {e}"),
                            )
                        })?;
                        out.push((m.clone(), re));
                    }
                }
                let prepared =
                    super::http::prepare(h, c.body_size_limit).map_err(|(f, m)| Problem(f, m))?;
                c.http = Some(Arc::new(prepared));
            }
            Prober::Tcp => {
                let t = &self.tcp;
                unsupported("tcp.source_ip_address", t.source_ip_address.is_some())?;
                check_tls("tcp", &t.tls_config)?;
                for (i, q) in t.query_response.iter().enumerate() {
                    let re = q
                        .expect
                        .as_deref()
                        .map(Regex::new)
                        .transpose()
                        .map_err(|e| {
                            Problem(
                                format!("tcp.query_response[{i}].expect"),
                                format!("invalid regexp: {e}"),
                            )
                        })?;
                    c.expects.push(re);
                }
            }
            Prober::Dns => {
                let d = &self.dns;
                unsupported("dns.dns_over_tls", d.dns_over_tls.is_some())?;
                unsupported("dns.tls_config", d.tls_config.is_some())?;
                unsupported("dns.source_ip_address", d.source_ip_address.is_some())?;
                if d.query_name.is_empty() {
                    return Err(Problem(
                        "dns.query_name".into(),
                        "query name must be set for DNS module".into(),
                    ));
                }
                if !matches!(d.transport_protocol.as_str(), "udp" | "tcp") {
                    return Err(Problem(
                        "dns.transport_protocol".into(),
                        format!("{:?}: use udp or tcp", d.transport_protocol),
                    ));
                }
                super::dns::record_type(&d.query_type)
                    .map_err(|m| Problem("dns.query_type".into(), m))?;
                super::dns::record_class(&d.query_class)
                    .map_err(|m| Problem("dns.query_class".into(), m))?;
                for (i, r) in d.valid_rcodes.iter().enumerate() {
                    super::dns::rcode(r)
                        .map_err(|m| Problem(format!("dns.valid_rcodes[{i}]"), m))?;
                }
                for (name, v, out) in [
                    ("validate_answer_rrs", &d.validate_answer_rrs, &mut c.answer),
                    (
                        "validate_authority_rrs",
                        &d.validate_authority_rrs,
                        &mut c.authority,
                    ),
                    (
                        "validate_additional_rrs",
                        &d.validate_additional_rrs,
                        &mut c.additional,
                    ),
                ] {
                    let f = |k: &str, l: &[String]| regexes(&format!("dns.{name}.{k}"), l);
                    *out = RrRegexes {
                        fail_if_matches: f("fail_if_matches_regexp", &v.fail_if_matches_regexp)?,
                        fail_if_all_match: f(
                            "fail_if_all_match_regexp",
                            &v.fail_if_all_match_regexp,
                        )?,
                        fail_if_not_matches: f(
                            "fail_if_not_matches_regexp",
                            &v.fail_if_not_matches_regexp,
                        )?,
                        fail_if_none_matches: f(
                            "fail_if_none_matches_regexp",
                            &v.fail_if_none_matches_regexp,
                        )?,
                    };
                }
            }
            Prober::Icmp => {
                let i = &self.icmp;
                unsupported("icmp.source_ip_address", i.source_ip_address.is_some())?;
                unsupported("icmp.ttl", i.ttl.is_some())?;
                if i.payload_size.is_some_and(|n| n > 65_000) {
                    return Err(Problem(
                        "icmp.payload_size".into(),
                        "at most 65000 bytes".into(),
                    ));
                }
            }
            Prober::Grpc => check_tls("grpc", &self.grpc.tls_config)?,
        }
        self.compiled = c;
        Ok(self)
    }
}

/// Go's `units.Base2Bytes` text (`10MB` = 10 MiB, `512KiB`, `1GB`) or a number of bytes.
fn parse_bytes(v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::Number(n) => return n.as_u64().ok_or_else(|| format!("{n} is not a size")),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("{other:?} is not a size")),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 10MB"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use B, KB, MB, GB, TB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Go's duration text (`5s`, `1m30s`, `500ms`, `1.5s`).
fn go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    use serde::de::Error;
    let v = Value::deserialize(d)?;
    let text = match &v {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("{n}s"),
        _ => return Err(D::Error::custom("expected a duration like 5s")),
    };
    parse_go_duration(&text).map_err(D::Error::custom)
}

fn show_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}s", d.as_secs_f64()))
}

/// `1h2m3.5s`, `250ms`, `10us`: a sequence of number+unit (units ns, us, µs, ms, s, m, h).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("invalid duration {text:?} (use 5s, 1m30s, 500ms)");
    let mut rest = t;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, after) = rest.split_at(n_end);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let u_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = next;
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Modules, String> {
        Modules::parse(Path::new("blackbox.yml"), text, |v| {
            (v == "TOKEN").then(|| "s3cret".to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_blackbox_exporters_example_modules() {
        let m = parse(
            r#"
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200, 204]
      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]
      no_follow_redirects: true
      preferred_ip_protocol: ip4
      headers: {Authorization: "Bearer ${TOKEN}"}
      fail_if_body_not_matches_regexp: ["ok"]
      fail_if_header_matches:
        - header: Cache-Control
          regexp: no-store
          allow_missing: true
      body_size_limit: 1MB
  tcp_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: "^SSH-2.0-"
        - send: "QUIT"
  dns_a:
    prober: dns
    dns:
      query_name: example.com
      query_type: A
      valid_rcodes: [NOERROR]
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["example.com.\t.*\tIN\tA\t.*"]
  icmp:
    prober: icmp
  grpc:
    prober: grpc
    grpc: {service: api, tls: false}
"#,
        )
        .unwrap();
        let h = m.get("http_2xx").unwrap();
        assert_eq!(h.timeout, Duration::from_secs(5));
        assert!(!h.http.follow_redirects);
        assert_eq!(h.http.preferred_ip_protocol, IpProtocol::Ip4);
        assert_eq!(h.http.headers["Authorization"], "Bearer s3cret");
        assert_eq!(h.compiled.body_size_limit, 1 << 20);
        assert_eq!(h.compiled.header_must_not_match.len(), 1);
        assert_eq!(m.get("tcp_banner").unwrap().compiled.expects.len(), 2);
        assert_eq!(
            m.get("dns_a")
                .unwrap()
                .compiled
                .answer
                .fail_if_not_matches
                .len(),
            1
        );
        assert_eq!(
            m.get("icmp").unwrap().icmp.preferred_ip_protocol,
            IpProtocol::Ip6
        );
        assert_eq!(m.get("grpc").unwrap().grpc.service, "api");
    }

    #[test]
    fn an_option_vantage_does_not_implement_is_named_where_it_stands() {
        let e =
            parse("modules:\n  a:\n    prober: tcp\n    tcp:\n      source_ip_address: 10.0.0.1\n")
                .unwrap_err();
        assert!(
            e.starts_with(
                "blackbox.yml:5:7: modules.a.tcp.source_ip_address: a blackbox_exporter option"
            ),
            "{e}"
        );
        let e =
            parse("modules:\n  a:\n    prober: http\n    http:\n      oauth2: {client_id: x}\n")
                .unwrap_err();
        assert!(
            e.contains(
                "modules.a.http.oauth2: a blackbox_exporter option Vantage does not implement"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_options_probers_and_bad_values_are_errors() {
        let e =
            parse("modules:\n  a:\n    prober: http\n    http:\n      valid_status_code: [200]\n")
                .unwrap_err();
        assert!(e.contains("unknown field `valid_status_code`"), "{e}");
        let e = parse("modules:\n  a:\n    prober: smtp\n").unwrap_err();
        assert!(e.contains("modules.a.prober") && e.contains("smtp"), "{e}");
        let e = parse("modules:\n  a:\n    prober: dns\n    dns: {query_type: A}\n").unwrap_err();
        assert!(
            e.contains("modules.a.dns.query_name: query name must be set"),
            "{e}"
        );
        let e = parse("modules:\n  a:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n")
            .unwrap_err();
        assert!(
            e.contains("modules.a.http.fail_if_body_matches_regexp[0]: invalid regexp"),
            "{e}"
        );
        let e = parse("modules:\n  a:\n    prober: http\n    timeout: soon\n").unwrap_err();
        assert!(
            e.contains("modules.a.timeout") && e.contains("invalid duration"),
            "{e}"
        );
        let e = parse("modules:\n  a:\n    prober: http\n    http: {headers: {X: '${NOPE}'}}\n")
            .unwrap_err();
        assert!(e.contains("environment variable NOPE is not set"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
