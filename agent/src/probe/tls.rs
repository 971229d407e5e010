//! TLS check: TCP connect and TLS handshake only; reports version and certificate expiry, fails on an
//! untrusted, expired or wrong-host certificate, or one expiring within `cert_valid_days`.

use super::SpecError;
use crate::probe::tls_config::{self, TlsOptions};
use crate::result::{ErrorType, Phases, ProbeError, ProbeResult};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `type: tls` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port` (port 443 when absent).
    pub target: String,
    /// CA file, skip verify, client certificate, server name.
    #[serde(default)]
    pub tls: TlsOptions,
    /// Fail when the earliest certificate of the chain expires within this many days.
    #[serde(default)]
    pub cert_valid_days: Option<u32>,
    /// Addresses to use for a host instead of asking DNS: `{"host[:port]": ip or [ips]}`.
    #[serde(default)]
    pub resolve_to: super::net::ResolveTo,
    /// DNS server to resolve the target with instead of the system's (`ip[:port]` or `{server, transport, tls}`).
    #[serde(
        default,
        deserialize_with = "super::nameserver::ResolverSpec::deserialize_opt"
    )]
    pub resolver: Option<super::nameserver::ResolverSpec>,
}

pub struct TlsProbe {
    resolver: super::net::Resolver,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    cert_valid_days: Option<u32>,
}

impl TlsProbe {
    pub fn new(spec: &TlsSpec) -> Result<TlsProbe, SpecError> {
        let (host, port) = super::split_host_port(&spec.target, Some(443))
            .map_err(|m| SpecError::new("target", m))?;
        let name = spec.tls.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone()).map_err(|_| {
            SpecError::new(
                "tls.server_name",
                format!("{name:?} is not a valid TLS server name"),
            )
        })?;
        let config = spec.tls.client_config(&[]).map_err(|e| e.within("tls"))?;
        Ok(TlsProbe {
            resolver: super::net::Resolver::new(&spec.resolve_to, spec.resolver.as_ref())?,
            host,
            port,
            server_name,
            config,
            cert_valid_days: spec.cert_valid_days,
        })
    }

    pub async fn run(&self) -> ProbeResult {
        let mut phases = Phases::default();
        let mut result = ProbeResult::default();
        if let Err(e) = self.handshake(&mut phases, &mut result).await {
            result.error = Some(e);
        }
        result.phases = phases;
        result
    }

    async fn handshake(
        &self,
        phases: &mut Phases,
        result: &mut ProbeResult,
    ) -> Result<(), ProbeError> {
        let stream = super::net::open_tcp(
            &self.resolver,
            &self.host,
            self.port,
            super::net::IpVersion::Auto,
            phases,
            result,
        )
        .await?;
        let tls = tls_config::handshake(
            &self.config,
            self.server_name.clone(),
            stream,
            &self.host,
            phases,
        )
        .await?;
        let facts = tls_config::facts(tls.get_ref().1);
        let expiry = facts.earliest_cert_expiry;
        result.tls = Some(facts);
        if let (Some(days), Some(expiry)) = (self.cert_valid_days, expiry) {
            let now = SystemTime::now();
            let left = expiry.duration_since(now).unwrap_or_default();
            if left < Duration::from_secs(u64::from(days) * 86_400) {
                return Err(ProbeError::new(
                    ErrorType::Tls,
                    format!(
                        "certificate of {} {}, less than cert_valid_days {days}",
                        self.host,
                        tls_config::describe_expiry(expiry, now)
                    ),
                ));
            }
        }
        Ok(())
    }
}
