//! A drop-in for Prometheus blackbox_exporter: its module file ([`modules`]), its `/probe?module=&target=`
//! answered with its metric families ([`families`]), and the conversion of module x target into Vantage checks
//! ([`convert`]).
//!
//! # Layout
//! - [`modules`]: reading and validating `blackbox.yml` (options Vantage does not implement are errors).
//! - [`families`]: the gauges of one probe and their text exposition.
//! - [`http`], [`tcp`], [`dns`], [`icmp`], [`grpc`]: one prober each, with blackbox_exporter's semantics and
//!   families, built on the agent's own probe parts (the HTTP exchange, connects, TLS, ICMP sockets, gRPC).
//! - [`server`]: `vantage-agent blackbox` (`/probe`, `/metrics`, `/-/healthy`, `/-/reload`) and `/probe` on the
//!   agent's own server when its config names a module file.
//! - [`convert`]: `vantage-agent convert-blackbox`.
//!
//! Every probe picks the target's address first, as blackbox_exporter does (`preferred_ip_protocol`, default
//! `ip6`, with `ip_protocol_fallback`), and reports it (`probe_ip_protocol`, `probe_ip_addr_hash`).

pub mod cli;
pub mod convert;
pub mod dns;
pub mod families;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod modules;
pub mod server;
pub mod tcp;

use families::Families;
use modules::{IpProtocol, Module, Prober};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one `/probe` produced: success, the families to answer, and the probe's log (for `debug=true`).
pub struct Outcome {
    pub success: bool,
    pub families: Families,
    pub log: ProbeLog,
}

/// The probe's own log lines (logfmt, as blackbox_exporter's `debug=true` shows them); also sent to the
/// agent's log at DEBUG.
pub struct ProbeLog {
    module: String,
    target: String,
    lines: Vec<String>,
}

impl ProbeLog {
    fn new(module: &str, target: &str) -> Self {
        Self {
            module: module.to_string(),
            target: target.to_string(),
            lines: Vec::new(),
        }
    }

    /// Logs `msg` with `fields` (values quoted when they need it).
    pub fn log(&mut self, level: &str, msg: &str, fields: &[(&str, String)]) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut line = format!(
            "ts={ts} module={} target={} level={level} msg={}",
            logfmt(&self.module),
            logfmt(&self.target),
            logfmt(msg)
        );
        for (k, v) in fields {
            line.push_str(&format!(" {k}={}", logfmt(v)));
        }
        tracing::debug!(probe = %line, "blackbox probe");
        self.lines.push(line);
    }

    pub fn info(&mut self, msg: &str, fields: &[(&str, String)]) {
        self.log("info", msg, fields);
    }

    pub fn error(&mut self, msg: &str, fields: &[(&str, String)]) {
        self.log("error", msg, fields);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

fn logfmt(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\n', '\t']) {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// How long a probe may take, as blackbox_exporter decides it: the scrape's timeout (the
/// `X-Prometheus-Scrape-Timeout-Seconds` header; 120 s without one) minus `offset`, or the module's own timeout
/// when that is shorter.
pub fn probe_timeout(module: &Module, scrape_timeout: Option<f64>, offset: f64) -> Duration {
    let scrape = scrape_timeout.filter(|s| *s > 0.0).unwrap_or(120.0);
    let max = scrape - offset;
    let own = module.timeout.as_secs_f64();
    let secs = if (own > 0.0 && own < max) || max < 0.0 {
        own
    } else {
        max
    };
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `module` against `target` within `timeout`. `hostname` is the `hostname=` parameter (the HTTP Host).
pub async fn probe(
    name: &str,
    module: &Arc<Module>,
    target: &str,
    hostname: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let mut families = Families::default();
    let mut log = ProbeLog::new(name, target);
    log.info(
        "Beginning probe",
        &[
            ("probe", module.prober.as_str().to_string()),
            ("timeout_seconds", timeout.as_secs_f64().to_string()),
        ],
    );
    let start = Instant::now();
    families.set(DURATION.0, DURATION.1, 0.0);
    families.set(SUCCESS.0, SUCCESS.1, 0.0);
    let run = async {
        match module.prober {
            Prober::Http => http::probe(module, target, hostname, &mut families, &mut log).await,
            Prober::Tcp => tcp::probe(module, target, &mut families, &mut log).await,
            Prober::Dns => dns::probe(module, target, &mut families, &mut log).await,
            Prober::Icmp => icmp::probe(module, target, &mut families, &mut log).await,
            Prober::Grpc => grpc::probe(module, target, &mut families, &mut log).await,
        }
    };
    // Cut at the deadline, the families registered so far are answered (as blackbox_exporter's cancelled
    // context leaves them).
    let success = tokio::time::timeout(timeout, run).await;
    let success = match success {
        Ok(s) => s,
        Err(_) => {
            log.error(
                "Timeout reached",
                &[("timeout_seconds", timeout.as_secs_f64().to_string())],
            );
            false
        }
    };
    let took = start.elapsed().as_secs_f64();
    families.set(DURATION.0, DURATION.1, took);
    families.set(SUCCESS.0, SUCCESS.1, if success { 1.0 } else { 0.0 });
    if success {
        log.info("Probe succeeded", &[("duration_seconds", took.to_string())]);
    } else {
        log.error("Probe failed", &[("duration_seconds", took.to_string())]);
    }
    Outcome {
        success,
        families,
        log,
    }
}

const SUCCESS: (&str, &str) = (
    "probe_success",
    "Displays whether or not the probe was a success",
);
const DURATION: (&str, &str) = (
    "probe_duration_seconds",
    "Returns how long the probe took to complete in seconds",
);
const LOOKUP: (&str, &str) = (
    "probe_dns_lookup_time_seconds",
    "Returns the time taken for probe dns lookup in seconds",
);
const IP_PROTOCOL: (&str, &str) = (
    "probe_ip_protocol",
    "Specifies whether probe ip protocol is IP4 or IP6",
);
const IP_HASH: (&str, &str) = (
    "probe_ip_addr_hash",
    "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
);

/// blackbox_exporter's `chooseProtocol`: resolves `host` and picks one address of the preferred family (or,
/// with `fallback`, of the other), registering `probe_ip_protocol`, `probe_dns_lookup_time_seconds` and
/// `probe_ip_addr_hash`. Returns the address and the lookup time.
pub async fn choose_address(
    host: &str,
    preferred: IpProtocol,
    fallback: bool,
    families: &mut Families,
    log: &mut ProbeLog,
) -> Result<(IpAddr, Duration), String> {
    families.set(IP_PROTOCOL.0, IP_PROTOCOL.1, 0.0);
    families.set(LOOKUP.0, LOOKUP.1, 0.0);
    families.set(IP_HASH.0, IP_HASH.1, 0.0);
    let want = match preferred {
        IpProtocol::Ip4 => "ip4",
        IpProtocol::Ip6 => "ip6",
    };
    log.info(
        "Resolving target address",
        &[("target", host.to_string()), ("ip_protocol", want.into())],
    );
    let t = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Result<Vec<IpAddr>, String> = match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![ip]),
        Err(_) => tokio::net::lookup_host((bare, 0))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| format!("lookup {bare}: {e}")),
    };
    let took = t.elapsed();
    families.set(LOOKUP.0, LOOKUP.1, took.as_secs_f64());
    let found = found.inspect_err(|e| {
        log.error(
            "Resolution with IP protocol failed",
            &[("target", host.to_string()), ("err", e.clone())],
        );
    })?;
    let is_preferred = |ip: &IpAddr| ip.is_ipv4() == (preferred == IpProtocol::Ip4);
    let chosen = match found.iter().find(|ip| is_preferred(ip)) {
        Some(ip) => *ip,
        None if fallback && !found.is_empty() => found[found.len() - 1],
        None => {
            let e = if fallback {
                "unable to find ip; no fallback".to_string()
            } else {
                format!("no {want} address for {bare}")
            };
            log.error(
                "Resolution with IP protocol failed",
                &[("target", host.to_string()), ("err", e.clone())],
            );
            return Err(e);
        }
    };
    families.set(
        IP_PROTOCOL.0,
        IP_PROTOCOL.1,
        if chosen.is_ipv4() { 4.0 } else { 6.0 },
    );
    families.set(IP_HASH.0, IP_HASH.1, ip_hash(chosen));
    log.info(
        "Resolved target address",
        &[("target", host.to_string()), ("ip", chosen.to_string())],
    );
    Ok((chosen, took))
}

/// [`choose_address`] as a prober starts with it: the lookup time is also the `resolve` sample of `phases` (a
/// prober's duration family) when given, and a failure is logged. `None` ends the probe as failed.
pub async fn resolve_target(
    host: &str,
    preferred: IpProtocol,
    fallback: bool,
    phases: Option<(&'static str, &'static str)>,
    families: &mut Families,
    log: &mut ProbeLog,
) -> Option<IpAddr> {
    match choose_address(host, preferred, fallback, families, log).await {
        Ok((ip, took)) => {
            if let Some((name, help)) = phases {
                families.add_labelled(
                    name,
                    help,
                    vec![("phase", "resolve".into())],
                    took.as_secs_f64(),
                );
            }
            Some(ip)
        }
        Err(e) => {
            log.error("Error resolving address", &[("err", e)]);
            None
        }
    }
}

/// FNV-1a (32 bits) of the address's bytes (4 for IPv4), as blackbox_exporter hashes it.
pub fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h)
}

/// `tls_config` as the agent's TLS options.
pub fn tls_options(t: &modules::TlsConfig) -> crate::probe::tls_config::TlsOptions {
    crate::probe::tls_config::TlsOptions {
        ca_file: t.ca_file.clone().map(Into::into),
        insecure_skip_verify: t.insecure_skip_verify,
        client_cert: t.cert_file.clone().map(Into::into),
        client_key: t.key_file.clone().map(Into::into),
        server_name: t.server_name.clone(),
    }
}

/// Splits `host:port` (IPv6 in brackets); `default_port` when there is none.
pub fn host_port(target: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    crate::probe::split_host_port(target, default_port)
}

/// The TLS families a handshake adds (HTTP, TCP with TLS, gRPC with TLS): version, expiry of the earliest and
/// of the last chain, and the leaf's fingerprint, subject, issuer and DNS names.
pub fn tls_families(
    families: &mut Families,
    facts: &crate::result::TlsFacts,
    chain: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) {
    let expiry = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs() as f64)
    };
    families.set(
        "probe_ssl_earliest_cert_expiry",
        "Returns last SSL chain expiry in unixtime",
        expiry(facts.earliest_cert_expiry),
    );
    families.set_labelled(
        "probe_tls_version_info",
        "Returns the TLS version used or NaN when unknown",
        vec![("version", facts.version.clone())],
        1.0,
    );
    let Some(chain) = chain else { return };
    families.set(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Returns last SSL chain expiry in timestamp",
        expiry(crate::probe::tls_config::earliest_expiry(chain)),
    );
    if let Some(leaf) = chain.first() {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
            use sha2::Digest;
            let fingerprint: String = sha2::Sha256::digest(leaf.as_ref())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let sans: Vec<String> = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|ext| {
                    ext.value
                        .general_names
                        .iter()
                        .filter_map(|n| match n {
                            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            families.set_labelled(
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
                vec![
                    ("fingerprint_sha256", fingerprint),
                    ("subject", go_name(cert.subject())),
                    ("issuer", go_name(cert.issuer())),
                    ("subjectalternative", sans.join(",")),
                ],
                1.0,
            );
        }
    }
}

/// A distinguished name as Go's `pkix.Name.String()` writes it: most specific first, `CN=a,O=b`.
fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let key = x509_parser::objects::oid2abbrev(
                attr.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map(str::to_string)
            .unwrap_or_else(|_| attr.attr_type().to_id_string());
            let value = attr.as_str().unwrap_or_default();
            parts.push(format!("{}={}", key, value.replace(',', "\\,")));
        }
    }
    parts.reverse();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hash_is_blackbox_exporters() {
        // As blackbox_exporter 0.23 answered for 127.0.0.1.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509.0);
    }

    #[test]
    fn timeout_is_the_scrapes_minus_the_offset_or_the_modules_when_shorter() {
        let m = |t: u64| Module {
            timeout: Duration::from_secs(t),
            ..serde_norway::from_str::<Module>("prober: http").unwrap()
        };
        assert_eq!(
            probe_timeout(&m(0), None, 0.5),
            Duration::from_secs_f64(119.5)
        );
        assert_eq!(
            probe_timeout(&m(0), Some(10.0), 0.5),
            Duration::from_secs_f64(9.5)
        );
        assert_eq!(
            probe_timeout(&m(5), Some(10.0), 0.5),
            Duration::from_secs(5)
        );
        assert_eq!(
            probe_timeout(&m(15), Some(10.0), 0.5),
            Duration::from_secs_f64(9.5)
        );
    }
}
