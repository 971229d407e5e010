//! Resolving a target and opening a TCP connection to it, for every probe that dials (HTTP exchange, TCP, TLS):
//! one place that decides what IP literals, RFC 6761 `.invalid` names, empty answers and the address family do.

use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Which address family to connect over when a name resolves to both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    /// Any address, in the resolver's order.
    #[default]
    Auto,
    /// IPv4 only.
    Ip4,
    /// IPv6 only.
    Ip6,
}

/// The addresses to try, in order, and how long the lookup took (`None` for an IP literal: no lookup).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub addrs: Vec<SocketAddr>,
    pub lookup: Option<Duration>,
}

/// Resolves `host:port` (`[::1]` and other IP literals without a lookup) to the addresses of `family`.
/// Errors are `dns` and name the host: `.invalid` names (never sent to the resolver), lookup failures, and
/// answers with no address (of the wanted family).
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    family: IpVersion,
) -> Result<Resolved, ProbeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let (found, lookup) = if let Ok(ip) = bare.parse::<IpAddr>() {
        (vec![SocketAddr::new(ip, port)], None)
    } else {
        if is_invalid_name(host) {
            return Err(ProbeError::new(
                ErrorType::Dns,
                format!("cannot resolve {host}: name does not exist (.invalid)"),
            ));
        }
        let t = Instant::now();
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ProbeError::new(ErrorType::Dns, format!("cannot resolve {host}: {e}")))?
            .collect();
        (found, Some(t.elapsed()))
    };
    Ok(Resolved {
        addrs: of_family(host, found, family)?,
        lookup,
    })
}

/// RFC 6761: `invalid` and names under it never resolve; answer locally instead of asking the network.
fn is_invalid_name(host: &str) -> bool {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "invalid" || name.ends_with(".invalid")
}

/// The answer's addresses of `family`, or an error saying which was missing.
fn of_family(
    host: &str,
    found: Vec<SocketAddr>,
    family: IpVersion,
) -> Result<Vec<SocketAddr>, ProbeError> {
    if found.is_empty() {
        return Err(ProbeError::new(
            ErrorType::Dns,
            format!("{host} resolved to no address"),
        ));
    }
    let wanted: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match family {
            IpVersion::Auto => true,
            IpVersion::Ip4 => a.is_ipv4(),
            IpVersion::Ip6 => a.is_ipv6(),
        })
        .collect();
    if wanted.is_empty() {
        let (name, key) = match family {
            IpVersion::Ip6 => ("IPv6", "ip6"),
            _ => ("IPv4", "ip4"),
        };
        return Err(ProbeError::new(
            ErrorType::Dns,
            format!("{host} has no {name} address (ip_version: {key})"),
        ));
    }
    Ok(wanted)
}

/// Connects to the first reachable address; the error names the last one tried.
pub(crate) async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, ProbeError> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            // No socket could be made: the agent's problem, not the target's (and no other address will do).
            Err(e) if crate::result::is_fd_exhaustion(&e) => {
                return Err(ProbeError::agent(
                    ErrorType::Connect,
                    crate::result::AgentFault::FdExhausted,
                    format!("cannot open a socket to connect to {a}: {e}"),
                ))
            }
            Err(e) => last = Some(format!("cannot connect to {a}: {e}")),
        }
    }
    Err(ProbeError::new(
        ErrorType::Connect,
        last.unwrap_or_else(|| "no address to connect to".into()),
    ))
}

/// Resolves and connects to `host:port` (any family), recording the `resolve` (when a lookup happened) and
/// `connect` phases. For the TCP and TLS probes; the HTTP exchange adds a proxy tunnel in between.
pub(crate) async fn open_tcp(
    host: &str,
    port: u16,
    phases: &mut Phases,
    result: &mut ProbeResult,
) -> Result<TcpStream, ProbeError> {
    let resolved = resolve(host, port, IpVersion::Auto).await?;
    if let Some(d) = resolved.lookup {
        phases.add(Phase::Resolve, d);
        result.dns_lookup = Some(d);
    }
    let t = Instant::now();
    let stream = connect(&resolved.addrs).await?;
    phases.add(Phase::Connect, t.elapsed());
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_names_fail_without_asking_the_resolver() {
        for host in ["no-such-host.invalid", "NO-SUCH-HOST.INVALID.", "invalid"] {
            let e = resolve(host, 80, IpVersion::Auto).await.unwrap_err();
            assert_eq!(e.error_type, ErrorType::Dns, "{host}");
            assert_eq!(
                e.message,
                format!("cannot resolve {host}: name does not exist (.invalid)")
            );
        }
    }

    #[tokio::test]
    async fn literals_need_no_lookup_and_respect_the_family() {
        let r = resolve("127.0.0.1", 8080, IpVersion::Ip4).await.unwrap();
        assert_eq!(r.addrs, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        assert!(r.lookup.is_none());
        let r = resolve("[::1]", 443, IpVersion::Auto).await.unwrap();
        assert_eq!(r.addrs, ["[::1]:443".parse::<SocketAddr>().unwrap()]);
        let e = resolve("127.0.0.1", 80, IpVersion::Ip6).await.unwrap_err();
        assert_eq!(e.error_type, ErrorType::Dns);
        assert_eq!(e.message, "127.0.0.1 has no IPv6 address (ip_version: ip6)");
    }

    #[test]
    fn an_empty_answer_is_a_dns_error_naming_the_host() {
        let e = of_family("empty.example", Vec::new(), IpVersion::Auto).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Dns);
        assert_eq!(e.message, "empty.example resolved to no address");
    }
}
