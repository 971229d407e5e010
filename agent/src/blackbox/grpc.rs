//! blackbox_exporter's `grpc` prober over the agent's gRPC health check: `grpc.health.v1.Health/Check` of
//! `service` on the chosen address; families `probe_grpc_duration_seconds{phase=resolve|check}`,
//! `probe_grpc_ssl`, `probe_grpc_status_code`, `probe_grpc_healthcheck_response{serving_status}`, and after a
//! TLS handshake `probe_ssl_earliest_cert_expiry` and `probe_tls_version_info`. blackbox_exporter 0.23 also
//! answers `probe_ssl_earliest_cert_expiry 0` without TLS, which makes "certificate expires soon" alerts fire
//! (prometheus/blackbox_exporter#1120, fixed upstream by #1338): Vantage follows the fix.

use super::families::Families;
use super::modules::Module;
use super::ProbeLog;
use crate::probe::{Probe, ProbeSpec};
use crate::result::ServingStatus;

const PHASES: (&str, &str) = (
    "probe_grpc_duration_seconds",
    "Duration of gRPC request by phase",
);
const RESPONSE: (&str, &str) = (
    "probe_grpc_healthcheck_response",
    "Response HealthCheck response",
);
/// gRPC's UNAVAILABLE: what a call that got no answer (refused, reset, TLS failure) ends with.
const UNAVAILABLE: f64 = 14.0;

pub async fn probe(module: &Module, target: &str, f: &mut Families, log: &mut ProbeLog) -> bool {
    let g = &module.grpc;
    f.set(
        "probe_grpc_ssl",
        "Indicates if SSL was used for the connection",
        0.0,
    );
    f.set("probe_grpc_status_code", "Response gRPC status code", 0.0);
    for s in ServingStatus::ALL {
        f.set_labelled(
            RESPONSE.0,
            RESPONSE.1,
            vec![("serving_status", s.as_str().into())],
            0.0,
        );
    }
    let (host, port) = match super::host_port(target.trim_start_matches("grpc://"), None) {
        Ok(hp) => hp,
        Err(e) => {
            log.error("Error splitting target address and port", &[("err", e)]);
            return false;
        }
    };
    let Some(ip) = super::resolve_target(
        &host,
        g.preferred_ip_protocol,
        g.ip_protocol_fallback,
        Some(PHASES),
        f,
        log,
    )
    .await
    else {
        return false;
    };
    let addr = std::net::SocketAddr::new(ip, port).to_string();
    let fields = super::convert::grpc_fields(module, &addr, &host);
    let probe = match ProbeSpec::from_yaml("grpc", fields.into()).and_then(|s| Probe::new(&s)) {
        Ok(p) => p,
        Err(e) => {
            log.error("Error preparing the gRPC probe", &[("err", e.to_string())]);
            return false;
        }
    };
    let result = probe.run().await;
    f.add_labelled(
        PHASES.0,
        PHASES.1,
        vec![("phase", "check".into())],
        result.duration.as_secs_f64(),
    );
    if let Some(tls) = &result.tls {
        f.set("probe_grpc_ssl", "", 1.0);
        super::tls_families(f, tls, None);
    }
    match &result.grpc {
        Some(facts) => {
            f.set("probe_grpc_status_code", "", f64::from(facts.status_code));
            if let Some(s) = facts.serving_status {
                f.set_labelled(
                    RESPONSE.0,
                    RESPONSE.1,
                    vec![("serving_status", s.as_str().into())],
                    1.0,
                );
                log.info(
                    "gRPC health check answered",
                    &[("serving_status", s.as_str().into())],
                );
            }
        }
        None => f.set("probe_grpc_status_code", "", UNAVAILABLE),
    }
    if let Some(e) = &result.error {
        log.error("Probe failed", &[("err", e.message.clone())]);
    }
    result.success()
}
