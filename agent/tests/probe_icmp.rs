//! ICMP probes against 127.0.0.1 and ::1 over real sockets: both socket kinds, packet loss made with an nftables
//! rule inside a throwaway network namespace, and the startup error when no ICMP socket is allowed.
//! Needs root (raw sockets, namespaces), iproute2 and nftables; scripts/test.sh installs them.

use std::time::Duration;
use vantage_agent::probe::icmp::{IcmpProbe, IcmpSpec, SocketKind};
use vantage_agent::probe::{Probe, ProbeSpec};
use vantage_agent::result::{ErrorType, ProbeResult};
use vantage_testkit::netns::{drop_net_raw_on_this_thread, Netns};

fn spec(yaml: &str) -> IcmpSpec {
    let ProbeSpec::Icmp(s) =
        ProbeSpec::from_yaml("icmp", serde_norway::from_str(yaml).unwrap()).unwrap()
    else {
        unreachable!()
    };
    s
}

async fn run(yaml: &str) -> ProbeResult {
    let spec = ProbeSpec::from_yaml("icmp", serde_norway::from_str(yaml).unwrap()).unwrap();
    Probe::new(&spec).unwrap().run().await
}

/// Runs a probe on a thread inside `ns` (its socket lives there), returning the socket kind chosen and the result.
fn run_in(ns: &Netns, yaml: &str) -> (SocketKind, ProbeResult) {
    let spec = spec(yaml);
    ns.run(move || {
        let probe = IcmpProbe::new(&spec).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (probe.socket_kind(), rt.block_on(probe.run()))
    })
}

fn assert_all_answered(r: &ProbeResult, packets: u32) {
    assert!(r.success(), "{:?}", r.error);
    let icmp = r.icmp.as_ref().expect("icmp facts");
    assert_eq!((icmp.sent, icmp.received), (packets, packets));
    let rtt = icmp.rtt.expect("round trips");
    assert!(rtt.min > Duration::ZERO && rtt.min <= rtt.avg && rtt.avg <= rtt.max);
    assert!(icmp.hop_limit.is_some_and(|h| h > 0), "{icmp:?}");
}

#[tokio::test]
async fn loopback_answers_every_request_over_ipv4_and_ipv6() {
    for target in ["127.0.0.1", "::1", "[::1]"] {
        let r = run(&format!(
            "{{target: '{target}', packets: 3, packet_interval: 10ms}}"
        ))
        .await;
        assert_all_answered(&r, 3);
        assert!(r.dns_lookup.is_none(), "an IP literal needs no lookup");
    }
    // A name, resolved with the requested family.
    let r = run("{target: localhost, ip_version: ip4, payload_size: 1000}").await;
    assert_all_answered(&r, 1);
    assert!(r.dns_lookup.is_some());
}

#[test]
fn unprivileged_datagram_sockets_are_used_when_the_sysctl_allows_them() {
    let ns = Netns::new();
    // This process runs as gid 0; the range is per namespace.
    ns.sysctl("net.ipv4.ping_group_range", "0 0");
    for target in ["127.0.0.1", "::1"] {
        let (kind, r) = run_in(
            &ns,
            &format!("{{target: '{target}', packets: 3, packet_interval: 10ms}}"),
        );
        assert_eq!(kind, SocketKind::Datagram, "{target}");
        assert_all_answered(&r, 3);
    }
    // Two datagram checks at once never take each other's replies (the kernel demultiplexes by identifier).
    let yaml = "{target: 127.0.0.1, packets: 5, packet_interval: 10ms}";
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run_in(&ns, yaml));
        let b = s.spawn(|| run_in(&ns, yaml));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_all_answered(&a.1, 5);
    assert_all_answered(&b.1, 5);
}

#[tokio::test]
async fn concurrent_raw_checks_count_only_their_own_replies() {
    let yaml = "{target: 127.0.0.1, packets: 5, packet_interval: 10ms}";
    let (a, b, c) = tokio::join!(run(yaml), run(yaml), run(yaml));
    for r in [a, b, c] {
        assert_all_answered(&r, 5);
    }
}

/// Drops every second echo request (IPv4 and IPv6) arriving in the namespace: deterministic 50% loss. (On
/// input: a drop on output fails the send itself with EPERM.)
const HALF_LOST: &str = "table inet loss {
  chain in {
    type filter hook input priority 0;
    icmp type echo-request numgen inc mod 2 == 1 drop
    icmpv6 type echo-request numgen inc mod 2 == 1 drop
  }
}";

#[test]
fn partial_loss_passes_or_fails_by_max_packet_loss() {
    for target in ["127.0.0.1", "::1"] {
        let ns = Netns::new();
        ns.nft(HALF_LOST);
        let base =
            format!("target: '{target}', packets: 4, packet_interval: 10ms, reply_timeout: 1s");
        let (_, r) = run_in(&ns, &format!("{{{base}, max_packet_loss: 50%}}"));
        assert!(r.success(), "{target}: {:?}", r.error);
        let icmp = r.icmp.as_ref().unwrap();
        assert_eq!((icmp.sent, icmp.received), (4, 2), "{target}");
        assert!(icmp.rtt.is_some());

        let (_, r) = run_in(&ns, &format!("{{{base}, max_packet_loss: 20%}}"));
        let e = r.error.expect("50% loss is over 20%");
        assert_eq!(e.error_type, ErrorType::Timeout);
        assert_eq!(
            e.message,
            format!(
                "2 of 4 echo requests to {target} unanswered within 1s: loss 50% over max_packet_loss 20%"
            )
        );
        // Default: any loss fails.
        let (_, r) = run_in(&ns, &format!("{{{base}}}"));
        assert_eq!(r.error.map(|e| e.error_type), Some(ErrorType::Timeout));
    }
}

#[test]
fn no_reply_at_all_is_a_timeout_after_reply_timeout() {
    let ns = Netns::new();
    ns.nft(
        "table inet loss {
           chain in { type filter hook input priority 0; icmp type echo-request drop; }
         }",
    );
    let started = std::time::Instant::now();
    let (_, r) = run_in(
        &ns,
        "{target: 127.0.0.1, packets: 2, packet_interval: 50ms, reply_timeout: 200ms}",
    );
    let waited = started.elapsed();
    let e = r.error.clone().expect("every request dropped");
    assert_eq!(e.error_type, ErrorType::Timeout);
    assert_eq!(
        e.message,
        "no echo reply from 127.0.0.1 to 2 requests within 200ms"
    );
    let icmp = r.icmp.unwrap();
    assert_eq!((icmp.sent, icmp.received, icmp.rtt), (2, 0, None));
    // The last request's reply_timeout bounds the run.
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn without_the_sysctl_or_cap_net_raw_the_check_is_a_config_error() {
    let ns = Netns::new();
    ns.sysctl("net.ipv4.ping_group_range", "1 0");
    let spec = spec("target: 127.0.0.1");
    let e = ns
        .run(move || {
            drop_net_raw_on_this_thread();
            IcmpProbe::new(&spec).err()
        })
        .expect("no socket kind is allowed");
    assert_eq!(e.field, "type");
    assert!(
        e.message
            .contains("net.ipv4.ping_group_range (now \"1 0\")"),
        "{}",
        e.message
    );
    assert!(e.message.contains("CAP_NET_RAW"), "{}", e.message);
}

#[tokio::test]
async fn names_that_do_not_resolve_are_dns_errors() {
    let r = run("target: nothing.invalid").await;
    assert_eq!(r.error.map(|e| e.error_type), Some(ErrorType::Dns));
    assert!(r.icmp.is_none());
}

/// The commented example in config/agent.yaml, uncommented, loads and passes against 127.0.0.1 (made quicker).
#[tokio::test]
async fn the_example_in_agent_yaml_loads_and_passes() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.yaml"))
            .unwrap();
    let start = example
        .find("  # - name: loopback-ping")
        .expect("the icmp example in config/agent.yaml");
    let block: String = example[start..]
        .lines()
        .map_while(|l| l.strip_prefix("  # ").map(|rest| format!("  {rest}\n")))
        .collect();
    let text = format!("region: test\nchecks:\n{block}")
        .replace("packet_interval: 1s", "packet_interval: 10ms");
    let config =
        vantage_agent::config::parse(std::path::Path::new("agent.yaml"), &text, |_| None, None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let check = &config.checks[0];
    assert_eq!(check.check_type, "icmp");
    let r = check
        .runner
        .run(vantage_agent::trace::TraceId::random())
        .await;
    assert_all_answered(&r, 5);
}

#[test]
fn dont_fragment_fails_over_the_mtu_and_fragments_pass_without_it() {
    let ns = Netns::new();
    // IPv6 needs at least 1280 on the link to keep ::1.
    ns.exec(&["ip", "link", "set", "lo", "mtu", "1400"]);
    for target in ["127.0.0.1", "::1"] {
        let (_, r) = run_in(&ns, &format!("{{target: '{target}', payload_size: 2000}}"));
        assert_all_answered(&r, 1);
        let (_, r) = run_in(
            &ns,
            &format!("{{target: '{target}', payload_size: 1000, dont_fragment: true}}"),
        );
        assert_all_answered(&r, 1);
        let (_, r) = run_in(
            &ns,
            &format!("{{target: '{target}', payload_size: 2000, dont_fragment: true}}"),
        );
        let e = r
            .error
            .expect("2000 bytes do not fit a 1400-byte MTU unfragmented");
        assert_eq!(e.error_type, ErrorType::Connect, "{target}: {}", e.message);
        assert_eq!(
            e.message,
            format!("cannot send an echo request to {target}: Message too long (os error 90)")
        );
    }
}

/// A timeout that would cut a run before its last reply may arrive is a config error, set or defaulted.
#[test]
fn the_timeout_must_cover_the_longest_run() {
    let load = |keys: &str| {
        let text = format!(
            "region: test\nchecks:\n  - name: ping\n    type: icmp\n    target: 127.0.0.1\n    every: 1m\n{keys}"
        );
        vantage_agent::config::parse(std::path::Path::new("agent.yaml"), &text, |_| None, None)
            .err()
            .map(|e| e.to_string())
    };
    let e =
        load("    timeout: 5s\n    packets: 5\n    packet_interval: 1s\n    reply_timeout: 1s\n")
            .unwrap();
    assert!(
        e.ends_with(
            "checks[0].timeout: timeout 5s is not above the longest ICMP run (5s: (packets - 1) x packet_interval + \
             reply_timeout); raise timeout or lower packets, packet_interval or reply_timeout"
        ),
        "{e}"
    );
    // The default timeout (10s) against 10 requests a second apart.
    let e = load("    packets: 10\n").unwrap();
    assert!(
        e.contains("timeout 10s is not above the longest ICMP run (11s"),
        "{e}"
    );
    assert_eq!(
        load("    timeout: 6s\n    packets: 5\n    packet_interval: 1s\n    reply_timeout: 1s\n"),
        None
    );
}
