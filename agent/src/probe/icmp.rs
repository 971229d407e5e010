//! ICMP check: `packets` echo requests to a host, `packet_interval` apart; success when at least one reply came
//! back and the loss is at most `max_packet_loss`.
//!
//! Sockets, decided once per config load: an unprivileged ICMP datagram socket (Linux "ping socket", allowed when
//! the process's group is inside the sysctl `net.ipv4.ping_group_range`, which also covers ICMPv6), else a raw
//! socket (root or CAP_NET_RAW), else the check is a config error naming both. Each run opens its own socket.
//! Replies are matched by sequence number and a random per-run payload; raw sockets see every ICMP packet of the
//! host, so they also match a random per-run identifier (datagram sockets get only their own: the kernel sets
//! and demultiplexes the identifier). The reply's TTL / hop limit comes from the IP_TTL / IPV6_HOPLIMIT control
//! message.
//!
//! Failure types: a name that does not resolve is `dns`; a request that cannot be sent (unreachable network,
//! `dont_fragment` with a payload over the path MTU) or a socket that cannot be opened is `connect`; no reply,
//! or more loss than allowed, is `timeout` (requests went unanswered within `reply_timeout`).

use super::net::{self, IpVersion};
use super::SpecError;
use crate::result::{ErrorType, IcmpFacts, ProbeError, ProbeResult, RttStats};
use serde::Deserialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Most echo requests per run.
pub const MAX_PACKETS: u32 = 100;
/// Largest echo payload that fits one IPv4 datagram: 65535 - 20 (IP header) - 8 (ICMP header).
pub const MAX_PAYLOAD: usize = 65507;
/// Shortest `packet_interval` (ping's limit for unprivileged users is 200ms; a probe agent is trusted more).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

fn default_packets() -> u32 {
    1
}
fn default_packet_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_reply_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_payload_size() -> usize {
    56
}

/// `type: icmp` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// Host name or IP literal (no port).
    pub target: String,
    /// `auto` (the resolver's first address), `ip4` or `ip6`.
    #[serde(default)]
    pub ip_version: IpVersion,
    /// Echo requests per run, 1..=100. Default 1.
    #[serde(default = "default_packets")]
    pub packets: u32,
    /// Time between two echo requests of a run. Default 1s, at least 10ms.
    #[serde(
        default = "default_packet_interval",
        deserialize_with = "vantage_common::serde_duration::deserialize"
    )]
    pub packet_interval: Duration,
    /// How long after its request a reply still counts. Default 2s. A run lasts at most
    /// [`IcmpSpec::longest_run`]; the check's `timeout` must be longer.
    #[serde(
        default = "default_reply_timeout",
        deserialize_with = "vantage_common::serde_duration::deserialize"
    )]
    pub reply_timeout: Duration,
    /// Echo payload bytes (after the 8-byte ICMP header). Default 56, as ping.
    #[serde(default = "default_payload_size")]
    pub payload_size: usize,
    /// Set the IPv4 don't-fragment bit (IPv6: never fragment locally), to probe the path MTU with `payload_size`.
    #[serde(default)]
    pub dont_fragment: bool,
    /// Highest share of lost requests that still passes: `20%` or `0.2`. Default 0: any loss fails.
    #[serde(default)]
    pub max_packet_loss: LossRatio,
}

impl IcmpSpec {
    /// The longest a run can take: the last request is sent `(packets - 1) * packet_interval` after the first,
    /// and its reply may take `reply_timeout`. The check's timeout must be above it (checked at config load).
    pub fn longest_run(&self) -> Duration {
        self.packet_interval
            .checked_mul(self.packets.saturating_sub(1))
            .and_then(|d| d.checked_add(self.reply_timeout))
            .unwrap_or(Duration::MAX)
    }
}

/// `max_packet_loss`: a share in [0, 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossRatio(pub f64);

impl<'de> Deserialize<'de> for LossRatio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match crate::config::ratio_of(&serde_norway::Value::deserialize(d)?) {
            Some(r) if (0.0..1.0).contains(&r) => Ok(LossRatio(r)),
            Some(_) => Err(serde::de::Error::custom(
                "packet loss lies between 0% and 100% (100% would pass with every packet lost); write e.g. 20% or 0.2",
            )),
            None => Err(serde::de::Error::custom(
                "packet loss is a percentage (20%) or a ratio (0.2)",
            )),
        }
    }
}

/// Which socket the agent may use for ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP(V6)`: no privilege, `net.ipv4.ping_group_range`.
    Datagram,
    /// `SOCK_RAW`: root or CAP_NET_RAW.
    Raw,
}

impl SocketKind {
    /// The first kind this process may open for the family, or why none (a message for the config error).
    pub fn detect(v6: bool) -> Result<SocketKind, String> {
        let denied = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM));
        match open(SocketKind::Datagram, v6) {
            Ok(_) => return Ok(SocketKind::Datagram),
            Err(e) if denied(&e) => {}
            Err(e) => return Err(format!("cannot open an ICMP socket: {e}")),
        }
        match open(SocketKind::Raw, v6) {
            Ok(_) => Ok(SocketKind::Raw),
            Err(e) if denied(&e) => Err(no_socket_allowed(
                // SAFETY: getegid cannot fail and touches no memory.
                unsafe { libc::getegid() },
                std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").ok(),
            )),
            Err(e) => Err(format!("cannot open a raw ICMP socket: {e}")),
        }
    }
}

/// The startup error when neither socket kind is allowed: what to change, both ways.
pub fn no_socket_allowed(gid: u32, ping_group_range: Option<String>) -> String {
    let now = ping_group_range
        .map(|r| {
            format!(
                " (now {:?})",
                r.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .unwrap_or_default();
    format!(
        "ICMP checks need an ICMP socket and none is allowed: put the agent's group (gid {gid}) in the sysctl \
         net.ipv4.ping_group_range{now}, e.g. sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\", or run the \
         agent as root or with CAP_NET_RAW (raw sockets)"
    )
}

fn open(kind: SocketKind, v6: bool) -> io::Result<Socket> {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ty = match kind {
        SocketKind::Datagram => Type::DGRAM,
        SocketKind::Raw => Type::RAW,
    };
    Socket::new(domain, ty, Some(protocol))
}

/// A socket for one run: non-blocking, reporting the reply's TTL / hop limit, DF as configured.
fn open_for_run(kind: SocketKind, v6: bool, dont_fragment: bool) -> io::Result<Socket> {
    let s = open(kind, v6)?;
    s.set_nonblocking(true)?;
    if v6 {
        s.set_recv_hoplimit_v6(true)?;
        setsockopt(
            &s,
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            dont_fragment.into(),
        )?;
    } else {
        setsockopt(&s, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        // Linux sets DF by default (path MTU discovery); `dont_fragment: false` means fragments are allowed.
        let pmtu = if dont_fragment {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        setsockopt(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, pmtu)?;
    }
    Ok(s)
}

/// An integer socket option socket2 has no setter for (IP_RECVTTL, IP_MTU_DISCOVER, IPV6_DONTFRAG).
fn setsockopt(s: &Socket, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is open for the call, and the value pointer and length describe one c_int.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives one datagram into `buf`: its length and the TTL / hop limit from the control message, if any.
/// (socket2 receives control messages but does not parse them.)
fn recv_with_hop_limit(s: &Socket, buf: &mut [u8]) -> io::Result<(usize, Option<u8>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: aligned for cmsghdr; room for a few small control messages.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid (no name, no iov, no control); fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the lengths it states.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut hop_limit = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            if (level == libc::IPPROTO_IP && ty == libc::IP_TTL)
                || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT)
            {
                let v: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                hop_limit = u8::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, hop_limit))
}

/// The internet checksum (RFC 1071) of an ICMPv4 message (ICMPv6's covers a pseudo-header: the kernel computes it).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type 8 (ICMPv4) or 128 (ICMPv6), code 0, checksum, identifier, sequence, payload.
fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.extend_from_slice(&[if v6 { 128 } else { 8 }, 0, 0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// An echo reply's identifier, sequence and payload; `None` for any other packet. Raw IPv4 sockets deliver the
/// IP header too; the others start at the ICMP header.
fn echo_reply(v6: bool, kind: SocketKind, packet: &[u8]) -> Option<(u16, u16, &[u8])> {
    let icmp = if !v6 && kind == SocketKind::Raw {
        let header = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(header..)?
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((id, seq, &icmp[8..]))
}

pub struct IcmpProbe {
    host: String,
    ip_version: IpVersion,
    packets: u32,
    interval: Duration,
    reply_timeout: Duration,
    payload_size: usize,
    dont_fragment: bool,
    max_loss: f64,
    kind: SocketKind,
}

impl IcmpProbe {
    pub fn new(spec: &IcmpSpec) -> Result<IcmpProbe, SpecError> {
        let host = spec
            .target
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(SpecError::new("target", "needs a host name or IP address"));
        }
        if (host.contains(':') && host.parse::<IpAddr>().is_err()) || host.contains('/') {
            return Err(SpecError::new(
                "target",
                format!(
                    "{:?} is not a host: ICMP has no ports or paths; write a name or an IP address",
                    spec.target
                ),
            ));
        }
        if !(1..=MAX_PACKETS).contains(&spec.packets) {
            return Err(SpecError::new(
                "packets",
                format!("{} packets: use 1 to {MAX_PACKETS}", spec.packets),
            ));
        }
        if spec.packet_interval < MIN_INTERVAL {
            return Err(SpecError::new(
                "packet_interval",
                format!(
                    "{} is too short; at least {}",
                    humantime::format_duration(spec.packet_interval),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            ));
        }
        if spec.reply_timeout.is_zero() {
            return Err(SpecError::new("reply_timeout", "must be above 0"));
        }
        if spec.payload_size > MAX_PAYLOAD {
            return Err(SpecError::new(
                "payload_size",
                format!(
                    "{} bytes do not fit one IP datagram; at most {MAX_PAYLOAD}",
                    spec.payload_size
                ),
            ));
        }
        if spec.dont_fragment && !cfg!(target_os = "linux") {
            return Err(SpecError::new(
                "dont_fragment",
                "setting the don't-fragment bit is supported on Linux only",
            ));
        }
        let v6 = match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_ipv6(),
            Err(_) => spec.ip_version == IpVersion::Ip6,
        };
        let kind = SocketKind::detect(v6).map_err(|m| SpecError::new("type", m))?;
        Ok(IcmpProbe {
            host: host.to_string(),
            ip_version: spec.ip_version,
            packets: spec.packets,
            interval: spec.packet_interval,
            reply_timeout: spec.reply_timeout,
            payload_size: spec.payload_size,
            dont_fragment: spec.dont_fragment,
            max_loss: spec.max_packet_loss.0,
            kind,
        })
    }

    /// The socket kind chosen at config load.
    pub fn socket_kind(&self) -> SocketKind {
        self.kind
    }

    pub async fn run(&self) -> ProbeResult {
        let mut result = ProbeResult::default();
        let resolved = match net::Resolver::system()
            .resolve(&self.host, 0, self.ip_version)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        result.dns_lookup = resolved.lookup;
        let addr = resolved.addrs[0].ip();
        let mut facts = IcmpFacts::default();
        let outcome = self.exchange(addr, &mut facts).await;
        result.error = outcome.err().or_else(|| self.verdict(addr, &facts));
        result.icmp = Some(Box::new(facts));
        result
    }

    /// Success, or the `timeout` error for no reply or too much loss.
    fn verdict(&self, addr: IpAddr, f: &IcmpFacts) -> Option<ProbeError> {
        let wait = humantime::format_duration(self.reply_timeout);
        if f.received == 0 {
            return Some(ProbeError::new(
                ErrorType::Timeout,
                format!(
                    "no echo reply from {addr} to {} request{} within {wait}",
                    f.sent,
                    if f.sent == 1 { "" } else { "s" }
                ),
            ));
        }
        (f.loss() > self.max_loss).then(|| {
            ProbeError::new(
                ErrorType::Timeout,
                format!(
                    "{} of {} echo requests to {addr} unanswered within {wait}: loss {} over max_packet_loss {}",
                    f.sent - f.received,
                    f.sent,
                    percent(f.loss()),
                    percent(self.max_loss)
                ),
            )
        })
    }

    /// Sends the requests `interval` apart and collects the replies until each request's reply came or the last
    /// one's `reply_timeout` passed.
    async fn exchange(&self, addr: IpAddr, facts: &mut IcmpFacts) -> Result<(), ProbeError> {
        let v6 = addr.is_ipv6();
        let t = Instant::now();
        let socket = open_for_run(self.kind, v6, self.dont_fragment)
            .and_then(|s| {
                // SAFETY: a socket2 Socket owns its fd and keeps the same one until it is dropped with the AsyncFd.
                unsafe { AsyncFd::register(s) }.map_err(io::Error::from)
            })
            .map_err(|e| {
                if crate::result::is_fd_exhaustion(&e) {
                    ProbeError::agent(
                        ErrorType::Connect,
                        crate::result::AgentFault::FdExhausted,
                        format!("cannot open an ICMP socket: {e}"),
                    )
                } else {
                    ProbeError::new(
                        ErrorType::Connect,
                        format!("cannot open an ICMP socket: {e}"),
                    )
                }
            })?;
        facts.setup = t.elapsed();

        // Raw sockets see every echo reply of the host: a random identifier, sequence numbers and payload make
        // another check's (or ping's) replies never count as ours.
        let id: u16 = rand::random();
        let first_seq: u16 = rand::random();
        let mut payload = vec![0u8; self.payload_size];
        rand::fill(&mut payload[..self.payload_size.min(16)]);
        for (i, b) in payload.iter_mut().enumerate().skip(16) {
            *b = i as u8;
        }
        let dest = SockAddr::from(SocketAddr::new(addr, 0));
        let n = self.packets as usize;
        let mut sent_at: Vec<Instant> = Vec::with_capacity(n);
        let mut rtts: Vec<Option<Duration>> = vec![None; n];
        let mut buf = vec![0u8; self.payload_size + 128];
        let mut last_error: Option<io::Error> = None;
        let start = tokio::time::Instant::now();
        loop {
            let all_sent = sent_at.len() == n;
            if all_sent && facts.received as usize == n {
                break;
            }
            let next_send = start + self.interval * sent_at.len() as u32;
            let deadline = sent_at
                .last()
                .map(|s| tokio::time::Instant::from_std(*s) + self.reply_timeout)
                .unwrap_or(next_send);
            tokio::select! {
                _ = tokio::time::sleep_until(next_send), if !all_sent => {
                    let seq = first_seq.wrapping_add(sent_at.len() as u16);
                    let packet = echo_request(v6, id, seq, &payload);
                    socket
                        .async_io(Interest::WRITABLE, |s| s.send_to(&packet, &dest))
                        .await
                        .map_err(|e| ProbeError::new(
                            ErrorType::Connect,
                            format!("cannot send an echo request to {addr}: {e}"),
                        ))?;
                    sent_at.push(Instant::now());
                    facts.sent += 1;
                }
                _ = tokio::time::sleep_until(deadline), if all_sent => break,
                ready = socket.readable() => {
                    let mut guard = ready.map_err(|e| ProbeError::new(
                        ErrorType::Connect,
                        format!("waiting for echo replies from {addr}: {e}"),
                    ))?;
                    loop {
                        let (len, hop_limit) = match guard.try_io(|s| recv_with_hop_limit(s.get_ref(), &mut buf)) {
                            Err(_would_block) => break,
                            // An ICMP error (unreachable...) reported on the socket: keep it for the message.
                            Ok(Err(e)) => {
                                last_error = Some(e);
                                continue;
                            }
                            Ok(Ok(r)) => r,
                        };
                        let received_at = Instant::now();
                        let Some((reply_id, seq, body)) = echo_reply(v6, self.kind, &buf[..len.min(buf.len())]) else {
                            continue;
                        };
                        let i = usize::from(seq.wrapping_sub(first_seq));
                        let ours = (self.kind == SocketKind::Datagram || reply_id == id)
                            && i < sent_at.len()
                            && body == payload.as_slice();
                        if !ours || rtts[i].is_some() {
                            continue;
                        }
                        let rtt = received_at - sent_at[i];
                        if rtt <= self.reply_timeout {
                            rtts[i] = Some(rtt);
                            facts.received += 1;
                            facts.hop_limit = hop_limit.or(facts.hop_limit);
                        }
                    }
                }
            }
        }
        let rtts: Vec<Duration> = rtts.into_iter().flatten().collect();
        facts.rtt = RttStats::of(&rtts);
        match (facts.received, last_error) {
            (0, Some(e)) => Err(ProbeError::new(
                ErrorType::Connect,
                format!("no echo reply from {addr}: {e}"),
            )),
            _ => Ok(()),
        }
    }
}

/// `20%`, `33.3%`.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_echo_request() {
        // `ping -c1 -p 00 -s 4`-like request: type 8, id 0x1234, seq 1, payload 4 zero bytes.
        let p = echo_request(false, 0x1234, 1, &[0, 0, 0, 0]);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(checksum(&p), 0, "a message with its checksum sums to 0");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), !(0x0800u16 + 0x1234 + 1));
        // Odd lengths pad with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
        // ICMPv6: the kernel's.
        assert_eq!(&echo_request(true, 1, 2, &[])[..4], &[128, 0, 0, 0]);
    }

    #[test]
    fn replies_are_read_past_the_ipv4_header_of_raw_sockets() {
        let mut reply = echo_request(false, 7, 9, b"abc");
        reply[0] = 0;
        let mut raw = vec![0x45; 1];
        raw.extend_from_slice(&[0; 19]);
        raw.extend_from_slice(&reply);
        assert_eq!(
            echo_reply(false, SocketKind::Raw, &raw),
            Some((7, 9, &b"abc"[..]))
        );
        assert_eq!(
            echo_reply(false, SocketKind::Datagram, &reply),
            Some((7, 9, &b"abc"[..]))
        );
        // Our own request seen on loopback, an ICMPv6 request, a runt: not replies.
        assert_eq!(
            echo_reply(false, SocketKind::Datagram, &echo_request(false, 7, 9, b"")),
            None
        );
        assert_eq!(
            echo_reply(true, SocketKind::Raw, &echo_request(true, 7, 9, b"")),
            None
        );
        assert_eq!(echo_reply(true, SocketKind::Raw, &[129, 0, 0]), None);
    }

    #[test]
    fn the_startup_error_names_the_sysctl_and_the_capability() {
        let m = no_socket_allowed(1000, Some("1\t0\n".into()));
        assert!(m.contains("net.ipv4.ping_group_range (now \"1 0\")"), "{m}");
        assert!(m.contains("gid 1000"), "{m}");
        assert!(m.contains("CAP_NET_RAW"), "{m}");
    }

    fn spec(yaml: &str) -> Result<IcmpSpec, SpecError> {
        super::super::from_value(serde_norway::from_str(yaml).unwrap())
    }

    #[test]
    fn options_are_validated_naming_the_field() {
        let s = spec("target: 127.0.0.1").unwrap();
        assert_eq!(
            (s.packets, s.payload_size, s.max_packet_loss.0),
            (1, 56, 0.0)
        );
        assert_eq!(s.packet_interval, Duration::from_secs(1));
        let s = spec("{target: h, max_packet_loss: 20%}").unwrap();
        assert!((s.max_packet_loss.0 - 0.2).abs() < 1e-9);
        assert_eq!(
            spec("{target: h, max_packet_loss: 0.5}")
                .unwrap()
                .max_packet_loss
                .0,
            0.5
        );
        let e = spec("{target: h, max_packet_loss: 100%}").unwrap_err();
        assert_eq!(e.field, "max_packet_loss");
        let e = spec("{target: h, interval: 1s}").unwrap_err();
        assert!(e.message.contains("unknown field `interval`"), "{e}");
        for (yaml, field) in [
            ("{target: h, packets: 0}", "packets"),
            ("{target: h, packets: 101}", "packets"),
            ("{target: h, packet_interval: 1ms}", "packet_interval"),
            ("{target: h, reply_timeout: 0s}", "reply_timeout"),
            ("{target: h, payload_size: 65508}", "payload_size"),
            ("{target: 'h:80'}", "target"),
            ("{target: ''}", "target"),
        ] {
            let e = IcmpProbe::new(&spec(yaml).unwrap()).err().unwrap();
            assert_eq!(e.field, field, "{yaml}: {e}");
        }
    }

    #[test]
    fn rtt_statistics_and_loss() {
        let ms = Duration::from_millis;
        let s = RttStats::of(&[ms(1), ms(3)]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (ms(1), ms(2), ms(3)));
        assert!((s.stddev.as_secs_f64() - 0.001).abs() < 1e-9);
        assert_eq!(RttStats::of(&[]), None);
        let f = IcmpFacts {
            sent: 5,
            received: 3,
            ..Default::default()
        };
        assert!((f.loss() - 0.4).abs() < 1e-9);
        assert_eq!(percent(0.4), "40%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
    }
}
