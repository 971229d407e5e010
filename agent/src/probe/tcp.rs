//! TCP check: connect, optionally send a line and expect a reply matching a regex (read bounded).

use super::SpecError;
use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult};
use regex::Regex;
use serde::Deserialize;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn default_max_read() -> usize {
    64 * 1024
}

/// `type: tcp` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port` to connect to.
    pub target: String,
    /// A line to send after connecting (a trailing `\n` is added when missing).
    #[serde(default)]
    pub send: Option<String>,
    /// A regex the reply (or banner) must match; reading stops as soon as it does.
    #[serde(default)]
    pub expect: Option<String>,
    /// Most bytes to read while waiting for `expect`. Default 64 KiB.
    #[serde(default = "default_max_read")]
    pub max_read_bytes: usize,
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

pub struct TcpProbe {
    resolver: super::net::Resolver,
    host: String,
    port: u16,
    send: Option<Vec<u8>>,
    expect: Option<Regex>,
    max_read: usize,
}

impl TcpProbe {
    pub fn new(spec: &TcpSpec) -> Result<TcpProbe, SpecError> {
        let (host, port) =
            super::split_host_port(&spec.target, None).map_err(|m| SpecError::new("target", m))?;
        let expect = spec
            .expect
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| SpecError::new("expect", format!("invalid regex: {e}")))?;
        let send = spec.send.as_ref().map(|s| {
            let mut b = s.clone().into_bytes();
            if !b.ends_with(b"\n") {
                b.push(b'\n');
            }
            b
        });
        Ok(TcpProbe {
            resolver: super::net::Resolver::new(&spec.resolve_to, spec.resolver.as_ref())?,
            host,
            port,
            send,
            expect,
            max_read: spec.max_read_bytes,
        })
    }

    pub async fn run(&self) -> ProbeResult {
        let mut phases = Phases::default();
        let mut result = ProbeResult::default();
        match self.exchange(&mut phases, &mut result).await {
            Ok(()) => {}
            Err(e) => result.error = Some(e),
        }
        result.phases = phases;
        result
    }

    async fn exchange(
        &self,
        phases: &mut Phases,
        result: &mut ProbeResult,
    ) -> Result<(), ProbeError> {
        let mut stream = super::net::open_tcp(
            &self.resolver,
            &self.host,
            self.port,
            super::net::IpVersion::Auto,
            phases,
            result,
        )
        .await?;
        let t = Instant::now();
        if let Some(line) = &self.send {
            stream.write_all(line).await.map_err(|e| {
                ProbeError::new(
                    ErrorType::Connect,
                    format!("sending to {}:{}: {e}", self.host, self.port),
                )
            })?;
        }
        if let Some(re) = &self.expect {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let text = String::from_utf8_lossy(&buf);
                if re.is_match(&text) {
                    break;
                }
                if buf.len() >= self.max_read {
                    return Err(ProbeError::new(
                        ErrorType::Assertion,
                        format!(
                            "expected reply matching /{re}/, got {:?} (read limit {} bytes)",
                            text, self.max_read
                        ),
                    ));
                }
                let n = stream.read(&mut chunk).await.map_err(|e| {
                    ProbeError::new(
                        ErrorType::Connect,
                        format!("reading from {}:{}: {e}", self.host, self.port),
                    )
                })?;
                if n == 0 {
                    return Err(ProbeError::new(
                        ErrorType::Assertion,
                        format!(
                            "expected reply matching /{re}/, connection closed after {:?}",
                            text
                        ),
                    ));
                }
                let room = self.max_read - buf.len();
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            phases.add(Phase::Processing, t.elapsed());
        }
        Ok(())
    }
}
