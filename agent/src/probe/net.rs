//! Resolving a target and opening a TCP connection to it, for every probe that dials (HTTP exchange, TCP, TLS):
//! one place that decides what IP literals, RFC 6761 `.invalid` names, `resolve_to` pins, a check's own
//! `resolver`, empty answers and the address family do, and that races the addresses (Happy Eyeballs).

use super::nameserver::{NameServer, ResolverSpec};
use super::SpecError;
use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::TryFutureExt;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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

/// `resolve_to:` of a check: `host` or `host:port` -> one address or a list, used instead of asking DNS (like
/// curl's `--resolve`). The URL, Host header and TLS name stay the original host.
pub type ResolveTo = BTreeMap<String, Addresses>;

/// One address or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

/// A `resolve_to` entry: `host` (any port, or only `port`) -> addresses in the given order.
#[derive(Debug, Clone, PartialEq)]
struct Pin {
    host: String,
    port: Option<u16>,
    ips: Vec<IpAddr>,
}

/// How a check finds a host's addresses: its `resolve_to` pins first, then its `resolver`, else the system's.
/// Built once per config load; without options it allocates nothing.
#[derive(Debug, Default)]
pub struct Resolver {
    pins: Vec<Pin>,
    server: Option<Arc<NameServer>>,
}

impl Resolver {
    /// The system's resolver, nothing pinned.
    pub fn system() -> Resolver {
        Resolver::default()
    }

    /// From a check's `resolve_to` and `resolver`; errors name `resolve_to.<key>` or `resolver.*`.
    pub fn new(
        resolve_to: &ResolveTo,
        resolver: Option<&ResolverSpec>,
    ) -> Result<Resolver, SpecError> {
        let mut pins = Vec::new();
        for (key, addrs) in resolve_to {
            let field = format!("resolve_to.{key}");
            let (host, port) = match key.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => {
                    let port = p.parse::<u16>().map_err(|_| {
                        SpecError::new(
                            &field,
                            format!("invalid port in {key:?} (use host or host:port)"),
                        )
                    })?;
                    (h, Some(port))
                }
                _ => (key.as_str(), None),
            };
            let host = normalize_host(host);
            if host.is_empty() || host.contains(':') {
                return Err(SpecError::new(
                    &field,
                    format!("{key:?} is not a host or host:port"),
                ));
            }
            let list = match addrs {
                Addresses::One(a) => std::slice::from_ref(a),
                Addresses::Many(l) => l.as_slice(),
            };
            if list.is_empty() {
                return Err(SpecError::new(&field, "needs at least one address"));
            }
            let ips = list
                .iter()
                .map(|a| {
                    a.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_err(|_| SpecError::new(&field, format!("{a:?} is not an IP address")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            pins.push(Pin { host, port, ips });
        }
        // `host:port` pins before `host` ones, so the more specific entry wins.
        pins.sort_by_key(|p| p.port.is_none());
        let server = match resolver {
            None => None,
            Some(r) => Some(Arc::new(
                NameServer::new(&r.server, r.transport, r.tls.as_ref())
                    .map_err(|e| e.within("resolver"))?,
            )),
        };
        Ok(Resolver { pins, server })
    }

    /// Resolves `host:port` (`[::1]` and other IP literals and pinned hosts without a lookup) to the addresses
    /// of `family`. Errors are `dns` and name the host: `.invalid` names (never sent to a resolver), lookup
    /// failures, and answers with no address (of the wanted family).
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
        family: IpVersion,
    ) -> Result<Resolved, ProbeError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let (found, lookup) = if let Ok(ip) = bare.parse::<IpAddr>() {
            (vec![SocketAddr::new(ip, port)], None)
        } else if let Some(pin) = self.pin(host, port) {
            (
                pin.ips
                    .iter()
                    .map(|&ip| SocketAddr::new(ip, port))
                    .collect(),
                None,
            )
        } else {
            if is_invalid_name(host) {
                return Err(ProbeError::new(
                    ErrorType::Dns,
                    format!("cannot resolve {host}: name does not exist (.invalid)"),
                ));
            }
            let t = Instant::now();
            let found = match &self.server {
                None => system_lookup(host, port).await?,
                // Whatever went wrong with the check's own DNS server, the check failed at `dns`.
                Some(server) => server
                    .client()
                    .and_then(|c| async move { c.lookup_ip(host).await })
                    .await
                    .map_err(|e| ProbeError::new(ErrorType::Dns, e.message))?
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect(),
            };
            (found, Some(t.elapsed()))
        };
        Ok(Resolved {
            addrs: of_family(host, found, family)?,
            lookup,
        })
    }

    fn pin(&self, host: &str, port: u16) -> Option<&Pin> {
        if self.pins.is_empty() {
            return None;
        }
        let host = normalize_host(host);
        self.pins
            .iter()
            .find(|p| p.host == host && (p.port.is_none() || p.port == Some(port)))
    }
}

/// Asks the system's resolver (getaddrinfo) for `host`'s addresses, in its order.
pub(crate) async fn system_lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, ProbeError> {
    Ok(tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ProbeError::new(ErrorType::Dns, format!("cannot resolve {host}: {e}")))?
        .collect())
}

/// Hosts compare case-insensitively and without a trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
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

/// RFC 8305's "connection attempt delay": how long an attempt has alone before the next address starts.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Happy Eyeballs (RFC 8305): races the addresses, families alternating from the first address's family (the
/// resolver's preference), the next attempt starting after [`ATTEMPT_DELAY`] or as soon as one fails. The first
/// connection wins; the other attempts are dropped (closed). With one address this is a plain connect. The
/// error names every address tried.
pub(crate) async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, ProbeError> {
    let mut queue = interleave(addrs).into_iter();
    let mut racing = FuturesUnordered::new();
    let mut failures: Vec<String> = Vec::new();
    let start = |a: SocketAddr| async move { (a, TcpStream::connect(a).await) };
    if let Some(a) = queue.next() {
        racing.push(start(a));
    }
    let mut next_at = tokio::time::Instant::now() + ATTEMPT_DELAY;
    while !racing.is_empty() {
        let more = queue.len() > 0;
        tokio::select! {
            Some((a, outcome)) = racing.next() => match outcome {
                Ok(s) => return Ok(s),
                // No socket could be made: the agent's problem, not the target's (and no other address will do).
                Err(e) if crate::result::is_fd_exhaustion(&e) => {
                    return Err(ProbeError::agent(
                        ErrorType::Connect,
                        crate::result::AgentFault::FdExhausted,
                        format!("cannot open a socket to connect to {a}: {e}"),
                    ))
                }
                Err(e) => {
                    failures.push(format!("{a}: {e}"));
                    if let Some(a) = queue.next() {
                        racing.push(start(a));
                        next_at = tokio::time::Instant::now() + ATTEMPT_DELAY;
                    }
                }
            },
            _ = tokio::time::sleep_until(next_at), if more => {
                if let Some(a) = queue.next() {
                    racing.push(start(a));
                }
                next_at = tokio::time::Instant::now() + ATTEMPT_DELAY;
            }
        }
    }
    Err(ProbeError::new(
        ErrorType::Connect,
        match failures.as_slice() {
            [] => "no address to connect to".into(),
            [one] => format!("cannot connect to {one}"),
            all => format!(
                "cannot connect to any of {} addresses: {}",
                all.len(),
                all.join("; ")
            ),
        },
    ))
}

/// The connection order: the first address's family first, then alternating (RFC 8305 section 4), each family
/// in the resolver's order.
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut preferred, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first.is_ipv6());
    let mut out = Vec::with_capacity(addrs.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (p, o) => out.extend(p.into_iter().chain(o)),
        }
    }
}

/// Resolves (with `resolver`) and connects to `host:port` (any family, raced), recording the `resolve` (when a
/// lookup happened) and `connect` phases. For the TCP and TLS probes; the HTTP exchange adds a proxy tunnel in
/// between.
pub(crate) async fn open_tcp(
    resolver: &Resolver,
    host: &str,
    port: u16,
    family: IpVersion,
    phases: &mut Phases,
    result: &mut ProbeResult,
) -> Result<TcpStream, ProbeError> {
    let resolved = resolver.resolve(host, port, family).await?;
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
            let e = Resolver::system()
                .resolve(host, 80, IpVersion::Auto)
                .await
                .unwrap_err();
            assert_eq!(e.error_type, ErrorType::Dns, "{host}");
            assert_eq!(
                e.message,
                format!("cannot resolve {host}: name does not exist (.invalid)")
            );
        }
    }

    #[tokio::test]
    async fn literals_need_no_lookup_and_respect_the_family() {
        let r = Resolver::system()
            .resolve("127.0.0.1", 8080, IpVersion::Ip4)
            .await
            .unwrap();
        assert_eq!(r.addrs, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        assert!(r.lookup.is_none());
        let r = Resolver::system()
            .resolve("[::1]", 443, IpVersion::Auto)
            .await
            .unwrap();
        assert_eq!(r.addrs, ["[::1]:443".parse::<SocketAddr>().unwrap()]);
        let e = Resolver::system()
            .resolve("127.0.0.1", 80, IpVersion::Ip6)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::Dns);
        assert_eq!(e.message, "127.0.0.1 has no IPv6 address (ip_version: ip6)");
    }

    #[test]
    fn an_empty_answer_is_a_dns_error_naming_the_host() {
        let e = of_family("empty.example", Vec::new(), IpVersion::Auto).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Dns);
        assert_eq!(e.message, "empty.example resolved to no address");
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first_address() {
        let order = interleave(&addrs(&[
            "[::1]:80",
            "[::2]:80",
            "[::3]:80",
            "10.0.0.1:80",
            "10.0.0.2:80",
        ]));
        assert_eq!(
            order,
            addrs(&[
                "[::1]:80",
                "10.0.0.1:80",
                "[::2]:80",
                "10.0.0.2:80",
                "[::3]:80"
            ])
        );
        let order = interleave(&addrs(&["10.0.0.1:80", "[::1]:80", "10.0.0.2:80"]));
        assert_eq!(order, addrs(&["10.0.0.1:80", "[::1]:80", "10.0.0.2:80"]));
        assert!(interleave(&[]).is_empty());
    }

    #[tokio::test]
    async fn pins_answer_without_a_lookup_and_the_port_specific_one_wins() {
        let pins: ResolveTo = serde_norway::from_str(
            "{API.example.com.: 10.0.0.1, 'api.example.com:8443': ['::1', 10.0.0.2]}",
        )
        .unwrap();
        let r = Resolver::new(&pins, None).unwrap();
        let any = r
            .resolve("api.example.com", 443, IpVersion::Auto)
            .await
            .unwrap();
        assert_eq!(any.addrs, addrs(&["10.0.0.1:443"]));
        assert!(any.lookup.is_none());
        let port = r
            .resolve("Api.Example.Com", 8443, IpVersion::Auto)
            .await
            .unwrap();
        assert_eq!(port.addrs, addrs(&["[::1]:8443", "10.0.0.2:8443"]));
        let v4 = r
            .resolve("api.example.com", 8443, IpVersion::Ip4)
            .await
            .unwrap();
        assert_eq!(v4.addrs, addrs(&["10.0.0.2:8443"]));
        // Other hosts still go to the resolver: .invalid is answered locally.
        let e = r
            .resolve("other.invalid", 443, IpVersion::Auto)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::Dns);
    }
}
