//! DNS check: resolve a name for one record type (hickory-resolver, no cache) over UDP, TCP, TLS or HTTPS,
//! optionally expect values.

use super::nameserver::{DnsClient, NameServer, Transport};
use super::tls_config::TlsOptions;
use super::SpecError;
use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult};
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Deserialize;
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
    /// DNS server to ask instead of the system resolvers: `ip[:port]` (port 53; 853 for `tls`), `host[:port]`
    /// for `tls`, or the `https://host[:port]/path` URL for `https` (path `/dns-query` when absent).
    #[serde(default)]
    pub server: Option<String>,
    /// `udp` (default; TCP when truncated), `tcp`, `tls` (DNS over TLS) or `https` (DNS over HTTPS).
    #[serde(default)]
    pub transport: Transport,
    /// For `tls`/`https`: CA file, skip verify, client certificate, and `server_name` (the name the server's
    /// certificate is verified against; default the host of `server`).
    #[serde(default)]
    pub tls: Option<TlsOptions>,
    /// Values that must all be among the answers (`127.0.0.1`, `10 mail.example.com`, TXT text...).
    #[serde(default)]
    pub expect: Vec<String>,
}

pub struct DnsProbe {
    name: String,
    record_type: RecordType,
    resolver: Resolver,
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
        let resolver = match (&spec.server, spec.transport) {
            (Some(server), transport) => {
                Resolver::Server(NameServer::new(server, transport, spec.tls.as_ref())?)
            }
            (None, Transport::Udp) if spec.tls.is_none() => Resolver::System(DnsClient::system()?),
            (None, _) => {
                return Err(SpecError::new(
                    "server",
                    "transport and tls need a server to ask",
                ))
            }
        };
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
        // `resolve` is the time to the answer, including the handshake of an encrypted transport.
        let t = Instant::now();
        let lookup = match &self.resolver {
            Resolver::System(c) => c.lookup(&self.name, self.record_type).await,
            Resolver::Server(ns) => match ns.client().await {
                Ok(c) => c.lookup(&self.name, self.record_type).await,
                Err(e) => Err(e),
            },
        };
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
                result.error = Some(e);
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

/// Who answers: the system's resolvers, or the configured server.
enum Resolver {
    System(DnsClient),
    Server(NameServer),
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
