//! blackbox_exporter's `icmp` prober over the agent's ICMP probe: one echo request to the chosen address;
//! families `probe_icmp_duration_seconds{phase=resolve|setup|rtt}` and, when a reply came,
//! `probe_icmp_reply_hop_limit`.

use super::families::Families;
use super::modules::Module;
use super::ProbeLog;
use crate::probe::{Probe, ProbeSpec};

const PHASES: (&str, &str) = (
    "probe_icmp_duration_seconds",
    "Duration of icmp request by phase",
);

pub async fn probe(module: &Module, target: &str, f: &mut Families, log: &mut ProbeLog) -> bool {
    let i = &module.icmp;
    for phase in ["resolve", "setup", "rtt"] {
        f.add_labelled(PHASES.0, PHASES.1, vec![("phase", phase.into())], 0.0);
    }
    let Some(ip) = super::resolve_target(
        target,
        i.preferred_ip_protocol,
        i.ip_protocol_fallback,
        Some(PHASES),
        f,
        log,
    )
    .await
    else {
        return false;
    };
    let fields = super::convert::icmp_fields(module, &ip.to_string());
    let probe = match ProbeSpec::from_yaml("icmp", fields.into()).and_then(|s| Probe::new(&s)) {
        Ok(p) => p,
        Err(e) => {
            log.error("Error preparing the ICMP probe", &[("err", e.to_string())]);
            return false;
        }
    };
    log.info("Creating socket", &[]);
    let result = probe.run().await;
    if let Some(facts) = &result.icmp {
        f.add_labelled(
            PHASES.0,
            PHASES.1,
            vec![("phase", "setup".into())],
            facts.setup.as_secs_f64(),
        );
        if let Some(rtt) = &facts.rtt {
            f.add_labelled(
                PHASES.0,
                PHASES.1,
                vec![("phase", "rtt".into())],
                rtt.avg.as_secs_f64(),
            );
            log.info("Found matching reply packet", &[]);
        }
        if let Some(hops) = facts.hop_limit {
            f.set(
                "probe_icmp_reply_hop_limit",
                "Replied packet hop limit (TTL for ipv4)",
                f64::from(hops),
            );
        }
    }
    if let Some(e) = &result.error {
        log.error("Probe failed", &[("err", e.message.clone())]);
    }
    result.success()
}
