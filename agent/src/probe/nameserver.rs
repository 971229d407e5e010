//! The DNS server a check asks instead of the system's, and how it reaches it: `udp` (TCP on truncation),
//! `tcp`, `tls` (DNS over TLS, RFC 7858) or `https` (DNS over HTTPS, RFC 8484). Used by the DNS check
//! (`server`, `transport`, `tls`) and by the `resolver:` of HTTP, TCP and TLS checks; built into hickory
//! resolvers that never cache.

use super::net;
use super::tls_config::{self, TlsOptions};
use super::SpecError;
use crate::result::{ErrorType, ProbeError};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{ConnectionProvider, PoolContext, Resolver, ResolverBuilder};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// How DNS queries travel to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain DNS over UDP, retried over TCP when the answer is truncated (port 53).
    #[default]
    Udp,
    /// Plain DNS over TCP (port 53).
    Tcp,
    /// DNS over TLS (port 853).
    Tls,
    /// DNS over HTTPS: `server` is the `https://host[:port]/path` URL (path `/dns-query` when absent).
    Https,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Https => "https",
        }
    }
}

/// `resolver:` of an HTTP, TCP or TLS check: a server `ip[:port]` (UDP) or `{server, transport, tls}` as on a
/// DNS check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSpec {
    /// `ip[:port]`; `host[:port]` with `transport: tls`; an `https://` URL with `transport: https`.
    pub server: String,
    #[serde(default)]
    pub transport: Transport,
    /// TLS options for `tls` and `https` (CA file, skip verify, client certificate, `server_name`).
    #[serde(default)]
    pub tls: Option<TlsOptions>,
}

impl ResolverSpec {
    /// Accepts the shorthand `resolver: 10.0.0.53` as well as the mapping.
    pub fn deserialize_opt<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ResolverSpec>, D::Error> {
        use serde::de::Error;
        match Option::<serde_norway::Value>::deserialize(d)? {
            None => Ok(None),
            Some(serde_norway::Value::String(server)) => Ok(Some(ResolverSpec {
                server,
                transport: Transport::Udp,
                tls: None,
            })),
            Some(v) => serde_norway::from_value(v)
                .map(Some)
                .map_err(D::Error::custom),
        }
    }
}

/// A configured DNS server, ready to build resolvers for it.
#[derive(Debug)]
pub(crate) struct NameServer {
    /// IP literal, or (for `tls`/`https`) a name found with the system resolver on every run.
    host: String,
    port: u16,
    transport: Transport,
    /// Name the certificate is verified against (`tls.server_name`, else the host).
    server_name: Arc<str>,
    /// DoH path.
    path: Arc<str>,
    tls: Arc<rustls::ClientConfig>,
    /// `udp`/`tcp` to an IP: one resolver for all runs (it holds no connection worth re-testing).
    shared: Option<DnsClient>,
}

impl NameServer {
    /// Parses `server` for `transport`; errors name `server` or `tls.*`.
    pub fn new(
        server: &str,
        transport: Transport,
        tls: Option<&TlsOptions>,
    ) -> Result<NameServer, SpecError> {
        let encrypted = matches!(transport, Transport::Tls | Transport::Https);
        if tls.is_some() && !encrypted {
            return Err(SpecError::new(
                "tls",
                format!(
                    "TLS options need transport tls or https (transport is {})",
                    transport.name()
                ),
            ));
        }
        let (host, port, path) = match transport {
            Transport::Https => parse_doh_url(server)?,
            _ => {
                let default_port = if transport == Transport::Tls { 853 } else { 53 };
                let (host, port) = super::split_host_port(server, Some(default_port))
                    .map_err(|m| SpecError::new("server", m))?;
                (host, port, String::new())
            }
        };
        let ip = host.parse::<IpAddr>().ok();
        if !encrypted && ip.is_none() {
            return Err(SpecError::new(
                "server",
                format!("{server:?} is not an ip or ip:port (a name needs transport tls or https)"),
            ));
        }
        let opts = tls.cloned().unwrap_or_default();
        let server_name = opts.server_name.clone().unwrap_or_else(|| host.clone());
        if rustls::pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            return Err(SpecError::new(
                "tls.server_name",
                format!("{server_name:?} is not a valid TLS server name"),
            ));
        }
        // hickory offers h2 by ALPN itself for DoH when the list is empty.
        let tls = opts.client_config(&[]).map_err(|e| e.within("tls"))?;
        let mut ns = NameServer {
            host,
            port,
            transport,
            server_name: server_name.into(),
            path: path.into(),
            tls,
            shared: None,
        };
        if let (false, Some(ip)) = (encrypted, ip) {
            ns.shared = Some(ns.build(&[ip]).map_err(|e| {
                SpecError::new("server", format!("cannot build the resolver: {e}"))
            })?);
        }
        Ok(ns)
    }

    /// A resolver for one run. `tls`/`https` get a new one each run, so every run opens its own connection and
    /// verifies the certificate (a kept connection would hide a broken handshake); a server given by name is
    /// looked up first (errors `dns`, naming the server).
    pub async fn client(&self) -> Result<DnsClient, ProbeError> {
        if let Some(r) = &self.shared {
            return Ok(r.clone());
        }
        let ips: Vec<IpAddr> = match self.host.parse() {
            Ok(ip) => vec![ip],
            Err(_) => net::system_lookup(&self.host, self.port)
                .await
                .map_err(|e| {
                    ProbeError::new(
                        ErrorType::Dns,
                        format!("cannot find the DNS server: {}", e.message),
                    )
                })?
                .iter()
                .map(SocketAddr::ip)
                .collect(),
        };
        self.build(&ips).map_err(|e| {
            ProbeError::new(
                ErrorType::Dns,
                format!("cannot set up the DNS resolver: {e}"),
            )
        })
    }

    fn build(&self, ips: &[IpAddr]) -> Result<DnsClient, String> {
        let servers = ips
            .iter()
            .map(|&ip| {
                let mut ns = match self.transport {
                    Transport::Udp => NameServerConfig::udp_and_tcp(ip),
                    Transport::Tcp => NameServerConfig::tcp(ip),
                    Transport::Tls => NameServerConfig::tls(ip, self.server_name.clone()),
                    Transport::Https => NameServerConfig::https(
                        ip,
                        self.server_name.clone(),
                        Some(self.path.clone()),
                    ),
                };
                for c in &mut ns.connections {
                    c.port = self.port;
                }
                ns
            })
            .collect();
        let provider = Provider::default();
        let builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            provider.clone(),
        )
        // Also for udp/tcp: hickory would otherwise build a config of its own per resolver.
        .with_tls_config((*self.tls).clone());
        DnsClient::finish(builder, provider, Some(self.server_name.clone()))
    }
}

/// A hickory resolver that never caches, and says why a lookup failed.
#[derive(Clone)]
pub(crate) struct DnsClient {
    resolver: Resolver<Provider>,
    provider: Provider,
    /// The name the server's certificate is checked against, for messages.
    server_name: Option<Arc<str>>,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl DnsClient {
    /// The system's resolvers (`/etc/resolv.conf`).
    pub fn system() -> Result<DnsClient, SpecError> {
        let provider = Provider::default();
        let builder = Resolver::builder(provider.clone()).map_err(|e| {
            SpecError::new(
                "server",
                format!("cannot read the system DNS configuration: {e}"),
            )
        })?;
        DnsClient::finish(builder, provider, None)
            .map_err(|e| SpecError::new("server", format!("cannot build the resolver: {e}")))
    }

    fn finish(
        mut builder: ResolverBuilder<Provider>,
        provider: Provider,
        server_name: Option<Arc<str>>,
    ) -> Result<DnsClient, String> {
        let opts = builder.options_mut();
        // A monitor must ask every time; a cached answer would hide an outage.
        opts.cache_size = 0;
        opts.attempts = 1;
        Ok(DnsClient {
            resolver: builder.build().map_err(|e| e.to_string())?,
            provider,
            server_name,
        })
    }

    /// Records of `record_type` for `name`. Errors: `tls` when the server's certificate or handshake failed,
    /// `connect` when it could not be reached, else `dns`; the message starts with `what`.
    pub async fn lookup(&self, name: &str, record_type: RecordType) -> Result<Lookup, ProbeError> {
        self.provider.forget();
        self.resolver
            .lookup(name, record_type)
            .await
            .map_err(|e| self.error(e, &format!("{record_type} lookup of {name} failed")))
    }

    /// The IPv6 and IPv4 addresses of `host` (IPv6 first), errors as [`Self::lookup`].
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, ProbeError> {
        self.provider.forget();
        Ok(self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| self.error(e, &format!("cannot resolve {host}")))?
            .iter()
            .collect())
    }

    /// hickory's server pool reports a failed connection as "no connections available"; the provider kept
    /// the real cause.
    fn error(&self, e: NetError, what: &str) -> ProbeError {
        let cause = match (&e, self.provider.failure()) {
            (NetError::NoConnections, Some(cause)) => cause,
            _ => e,
        };
        let server = self.server_name.as_deref().unwrap_or("the DNS server");
        if let NetError::Io(io) = &cause {
            let is_tls = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if is_tls {
                return ProbeError::new(
                    ErrorType::Tls,
                    format!("{what}: {}", tls_config::describe_tls_error(io, server)),
                );
            }
            return ProbeError::new(
                ErrorType::Connect,
                format!("{what}: cannot connect to {server}: {io}"),
            );
        }
        ProbeError::new(ErrorType::Dns, format!("{what}: {cause}"))
    }
}

/// hickory's Tokio connections, remembering why the last one failed to open.
#[derive(Clone, Default)]
pub(crate) struct Provider {
    runtime: TokioRuntimeProvider,
    failure: Arc<Mutex<Option<NetError>>>,
}

impl Provider {
    fn forget(&self) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn failure(&self) -> Option<NetError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl ConnectionProvider for Provider {
    type Conn = <TokioRuntimeProvider as ConnectionProvider>::Conn;
    type FutureConn = futures::future::BoxFuture<'static, Result<Self::Conn, NetError>>;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let connecting = ConnectionProvider::new_connection(&self.runtime, ip, config, cx)?;
        let failure = self.failure.clone();
        Ok(Box::pin(async move {
            let result = connecting.await;
            if let Err(e) = &result {
                *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
            }
            result
        }))
    }

    fn runtime_provider(&self) -> &TokioRuntimeProvider {
        &self.runtime
    }
}

/// `https://host[:port][/path]` -> (host, port, path); the path defaults to `/dns-query`.
fn parse_doh_url(server: &str) -> Result<(String, u16, String), SpecError> {
    // Messages never repeat the value: a malformed URL may carry credentials.
    let bad = |why: String| SpecError::new("server", why);
    let url = url::Url::parse(server.trim())
        .map_err(|e| bad(format!("not a DoH URL (https://host/dns-query): {e}")))?;
    if url.scheme() != "https" {
        return Err(bad(format!(
            "transport https needs an https:// URL, not {}:",
            url.scheme()
        )));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "a DoH URL is https://host[:port]/path, without credentials or query".into(),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(bad("the DoH URL has no host".into())),
    };
    let path = match url.path() {
        "" | "/" => "/dns-query".to_string(),
        p => p.to_string(),
    };
    Ok((host, url.port().unwrap_or(443), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(server: &str, transport: Transport, tls: Option<&TlsOptions>) -> SpecError {
        NameServer::new(server, transport, tls).unwrap_err()
    }

    #[test]
    fn servers_parse_per_transport() {
        let ns = NameServer::new("127.0.0.1", Transport::Udp, None).unwrap();
        assert_eq!((ns.host.as_str(), ns.port), ("127.0.0.1", 53));
        let ns = NameServer::new("[::1]:5353", Transport::Tcp, None).unwrap();
        assert_eq!((ns.host.as_str(), ns.port), ("::1", 5353));
        let ns = NameServer::new("dns.example", Transport::Tls, None).unwrap();
        assert_eq!((ns.port, &*ns.server_name), (853, "dns.example"));
        let named = TlsOptions {
            server_name: Some("cloudflare-dns.com".into()),
            ..Default::default()
        };
        let ns = NameServer::new("1.1.1.1", Transport::Tls, Some(&named)).unwrap();
        assert_eq!(&*ns.server_name, "cloudflare-dns.com");
        let ns = NameServer::new("https://dns.example", Transport::Https, None).unwrap();
        assert_eq!((ns.port, &*ns.path), (443, "/dns-query"));
        let ns = NameServer::new("https://[::1]:8443/q", Transport::Https, None).unwrap();
        assert_eq!((ns.host.as_str(), ns.port, &*ns.path), ("::1", 8443, "/q"));
    }

    #[test]
    fn bad_servers_name_the_field() {
        let e = err("dns.example", Transport::Udp, None);
        assert_eq!(e.field, "server");
        assert!(e.message.contains("needs transport tls or https"), "{e}");
        let e = err("dns.example:853", Transport::Https, None);
        assert_eq!(e.field, "server");
        let e = err("http://dns.example/dns-query", Transport::Https, None);
        assert!(e.message.contains("https://"), "{e}");
        let e = err("https://user:s3cret@dns.example/q", Transport::Https, None);
        assert!(!e.message.contains("s3cret"), "{e}");
        let e = err("127.0.0.1", Transport::Udp, Some(&TlsOptions::default()));
        assert_eq!(e.field, "tls");
        let missing = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = err("127.0.0.1", Transport::Tls, Some(&missing));
        assert_eq!(e.field, "tls.ca_file");
    }
}
