//! DNS check: resolve a name for one record type (hickory-resolver, no cache), optionally expect values.

use super::SpecError;
use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use serde::Deserialize;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;

fn default_record_type() -> String {
    "A".into()
}

/// `type: dns` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to resolve.
    pub target: String,
    /// A, AAAA, CNAME, MX, TXT, NS, SRV, ... Default A.
    #[serde(default = "default_record_type")]
    pub record_type: String,
    /// DNS server `ip[:port]` to ask instead of the system resolvers (port 53 by default).
    #[serde(default)]
    pub server: Option<String>,
    /// Values that must all be among the answers (`127.0.0.1`, `10 mail.example.com`, TXT text...).
    #[serde(default)]
    pub expect: Vec<String>,
}

pub struct DnsProbe {
    name: String,
    record_type: RecordType,
    resolver: TokioResolver,
    expect: Vec<String>,
}

impl DnsProbe {
    pub fn new(spec: &DnsSpec) -> Result<DnsProbe, SpecError> {
        let record_type =
            RecordType::from_str(&spec.record_type.to_ascii_uppercase()).map_err(|_| {
                SpecError::new(
                    "record_type",
                    format!("unknown record type {:?}", spec.record_type),
                )
            })?;
        let mut builder = match &spec.server {
            Some(server) => {
                let addr = match server.parse::<SocketAddr>() {
                    Ok(a) => a,
                    Err(_) => {
                        let ip = server
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse()
                            .map_err(|_| {
                                SpecError::new(
                                    "server",
                                    format!("{server:?} is not an ip or ip:port"),
                                )
                            })?;
                        SocketAddr::new(ip, 53)
                    }
                };
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| {
                SpecError::new(
                    "server",
                    format!("cannot read the system DNS configuration: {e}"),
                )
            })?,
        };
        let opts = builder.options_mut();
        // A monitor must ask every time; a cached answer would hide an outage.
        opts.cache_size = 0;
        opts.attempts = 1;
        let resolver = builder
            .build()
            .map_err(|e| SpecError::new("server", format!("cannot build the resolver: {e}")))?;
        let name = spec.target.trim().to_string();
        if name.is_empty() {
            return Err(SpecError::new("target", "the name to resolve is empty"));
        }
        Ok(DnsProbe {
            name,
            record_type,
            resolver,
            expect: spec.expect.iter().map(|v| normalize(v)).collect(),
        })
    }

    pub async fn run(&self) -> ProbeResult {
        let t = Instant::now();
        let lookup = self
            .resolver
            .lookup(self.name.as_str(), self.record_type)
            .await;
        let took = t.elapsed();
        let mut phases = Phases::default();
        phases.add(Phase::Resolve, took);
        let mut result = ProbeResult {
            dns_lookup: Some(took),
            phases,
            ..Default::default()
        };
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) => {
                result.error = Some(ProbeError::new(
                    ErrorType::Dns,
                    format!("{} lookup of {} failed: {e}", self.record_type, self.name),
                ));
                return result;
            }
        };
        let values: Vec<String> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == self.record_type)
            .map(|r| value_text(&r.data))
            .collect();
        if values.is_empty() {
            result.error = Some(ProbeError::new(
                ErrorType::Dns,
                format!(
                    "{} lookup of {} returned no {} record",
                    self.record_type, self.name, self.record_type
                ),
            ));
        } else if let Some(missing) = self.expect.iter().find(|e| !values.contains(e)) {
            result.error = Some(ProbeError::new(
                ErrorType::Assertion,
                format!(
                    "expected {} record {missing:?} for {}, got {values:?}",
                    self.record_type, self.name
                ),
            ));
        }
        result
    }
}

fn value_text(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect::<Vec<_>>()
            .join(""),
        other => normalize(&other.to_string()),
    }
}

/// Names compare without the trailing dot and case-insensitively.
fn normalize(v: &str) -> String {
    let v = v.trim();
    if v.contains(' ') || v.contains('.') {
        v.trim_end_matches('.').to_ascii_lowercase()
    } else {
        v.to_string()
    }
}
