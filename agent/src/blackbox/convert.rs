//! Module x target -> the equivalent Vantage check (`vantage-agent convert-blackbox`), and the type-specific
//! fields the ICMP and gRPC probers of `/probe` run with (so `/probe` and a converted check probe alike).
//!
//! A module option with no Vantage equivalent makes the conversion of that module fail with its name: a check
//! that silently probes less than the module did would be worse than none.

use super::modules::{IpProtocol, Module, Prober, TlsConfig};
use serde_norway::{Mapping, Value};

fn map(pairs: Vec<(&str, Value)>) -> Mapping {
    pairs
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect()
}

fn ip_version(preferred: IpProtocol, fallback: bool) -> &'static str {
    match (preferred, fallback) {
        (_, true) => "auto",
        (IpProtocol::Ip4, false) => "ip4",
        (IpProtocol::Ip6, false) => "ip6",
    }
}

fn tls(t: &TlsConfig, server_name: Option<&str>) -> Value {
    let mut m = Mapping::new();
    if let Some(f) = &t.ca_file {
        m.insert("ca_file".into(), f.as_str().into());
    }
    if t.insecure_skip_verify {
        m.insert("insecure_skip_verify".into(), true.into());
    }
    if let Some(f) = &t.cert_file {
        m.insert("client_cert".into(), f.as_str().into());
    }
    if let Some(f) = &t.key_file {
        m.insert("client_key".into(), f.as_str().into());
    }
    if let Some(n) = t.server_name.as_deref().or(server_name) {
        m.insert("server_name".into(), n.into());
    }
    Value::Mapping(m)
}

/// The `type: icmp` fields for one echo request to `target`, as blackbox_exporter sends it.
pub fn icmp_fields(module: &Module, target: &str) -> Mapping {
    let i = &module.icmp;
    let mut m = map(vec![
        ("target", target.into()),
        ("packets", 1.into()),
        ("dont_fragment", i.dont_fragment.into()),
    ]);
    if let Some(size) = i.payload_size {
        m.insert("payload_size".into(), (size as u64).into());
    }
    m
}

/// The `type: grpc` fields for `addr`; `host` is the name TLS verifies when the module names none.
pub fn grpc_fields(module: &Module, addr: &str, host: &str) -> Mapping {
    let g = &module.grpc;
    let mut m = map(vec![
        ("target", addr.into()),
        ("service", g.service.as_str().into()),
    ]);
    if g.tls {
        m.insert("tls".into(), tls(&g.tls_config, Some(host)));
    }
    m
}

/// The Vantage check (`name`, `type`, `interval`, `timeout` and the type's fields) that probes `target` as
/// `module` does; `Err` names the option that has no equivalent.
pub fn check(name: &str, module: &Module, target: &str, interval: &str) -> Result<Mapping, String> {
    let (kind, fields) = match module.prober {
        Prober::Http => ("http", http_fields(module, target)?),
        Prober::Tcp => tcp_fields(module, target)?,
        Prober::Dns => ("dns", dns_fields(module, target)?),
        Prober::Icmp => {
            let mut m = icmp_fields(module, target);
            m.insert(
                "ip_version".into(),
                ip_version(
                    module.icmp.preferred_ip_protocol,
                    module.icmp.ip_protocol_fallback,
                )
                .into(),
            );
            ("icmp", m)
        }
        Prober::Grpc => {
            let host = super::host_port(target, None)
                .map(|(h, _)| h)
                .unwrap_or_default();
            let mut m = grpc_fields(module, target, &host);
            m.insert(
                "ip_version".into(),
                ip_version(
                    module.grpc.preferred_ip_protocol,
                    module.grpc.ip_protocol_fallback,
                )
                .into(),
            );
            ("grpc", m)
        }
    };
    let mut out = map(vec![
        ("name", name.into()),
        ("type", kind.into()),
        ("every", interval.into()),
    ]);
    if !module.timeout.is_zero() {
        out.insert(
            "timeout".into(),
            format!("{}ms", module.timeout.as_millis()).into(),
        );
    }
    out.extend(fields);
    Ok(out)
}

fn none(module: &str, option: &str) -> String {
    format!("{module}.{option} has no Vantage check equivalent yet; keep this module on /probe")
}

fn http_fields(module: &Module, target: &str) -> Result<Mapping, String> {
    let h = &module.http;
    let url = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    for (option, used) in [
        ("compression", h.compression.is_some()),
        ("bearer_token_file", h.bearer_token_file.is_some()),
        (
            "skip_resolve_phase_with_proxy",
            h.skip_resolve_phase_with_proxy,
        ),
    ] {
        if used {
            return Err(none("http", option));
        }
    }
    let mut m = map(vec![("target", url.into())]);
    if let Some(method) = &h.method {
        m.insert("method".into(), method.as_str().into());
    }
    if !h.headers.is_empty() {
        let headers: Mapping = h
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        m.insert("headers".into(), Value::Mapping(headers));
    }
    if let Some(b) = &h.body {
        m.insert("body".into(), b.as_str().into());
    }
    if !h.valid_status_codes.is_empty() {
        let codes: Vec<Value> = h
            .valid_status_codes
            .iter()
            .map(|c| u64::from(*c).into())
            .collect();
        m.insert("expected_status".into(), Value::Sequence(codes));
    }
    if !h.follow_redirects {
        m.insert("follow_redirects".into(), false.into());
    }
    m.insert(
        "ip_version".into(),
        ip_version(h.preferred_ip_protocol, h.ip_protocol_fallback).into(),
    );
    if !h.enable_http2 {
        m.insert("http_version".into(), "1.1".into());
    }
    if let Some(p) = &h.proxy_url {
        m.insert("proxy_url".into(), p.as_str().into());
    }
    if !h.no_proxy.is_empty() {
        m.insert(
            "no_proxy".into(),
            Value::Sequence(h.no_proxy.iter().map(|s| s.as_str().into()).collect()),
        );
    }
    if let Some(a) = &h.basic_auth {
        if a.password_file.is_some() {
            return Err(none("http", "basic_auth.password_file"));
        }
        m.insert(
            "basic_auth".into(),
            Value::Mapping(map(vec![
                ("username", a.username.as_str().into()),
                ("password", a.password.as_str().into()),
            ])),
        );
    }
    if let Some(t) = &h.bearer_token {
        m.insert("bearer_token".into(), t.as_str().into());
    }
    if h.tls_config != TlsConfig::default() {
        m.insert("tls".into(), tls(&h.tls_config, None));
    }
    if module.compiled.body_size_limit > 0 {
        m.insert(
            "max_body_bytes".into(),
            module.compiled.body_size_limit.into(),
        );
    }
    let mut asserts = Vec::new();
    for re in &h.fail_if_body_not_matches_regexp {
        asserts.push(Value::Mapping(map(vec![(
            "body_regex",
            re.as_str().into(),
        )])));
    }
    for re in &h.fail_if_body_matches_regexp {
        asserts.push(Value::Mapping(map(vec![(
            "body_not_regex",
            re.as_str().into(),
        )])));
    }
    for hm in &h.fail_if_header_not_matches {
        let mut a = map(vec![
            ("header", hm.header.as_str().into()),
            ("matches", hm.regexp.as_str().into()),
        ]);
        if hm.allow_missing {
            a.insert("allow_missing".into(), true.into());
        }
        asserts.push(Value::Mapping(a));
    }
    for hm in &h.fail_if_header_matches {
        let mut a = map(vec![
            ("header", hm.header.as_str().into()),
            ("not_matches", hm.regexp.as_str().into()),
        ]);
        if hm.allow_missing {
            a.insert("allow_missing".into(), true.into());
        }
        asserts.push(Value::Mapping(a));
    }
    if !h.valid_http_versions.is_empty() {
        let v: Vec<Value> = h
            .valid_http_versions
            .iter()
            .map(|v| v.as_str().into())
            .collect();
        asserts.push(Value::Mapping(map(vec![(
            "http_version",
            Value::Sequence(v),
        )])));
    }
    if h.fail_if_ssl {
        asserts.push(Value::Mapping(map(vec![("tls", false.into())])));
    }
    if h.fail_if_not_ssl {
        asserts.push(Value::Mapping(map(vec![("tls", true.into())])));
    }
    if !asserts.is_empty() {
        m.insert("assert".into(), Value::Sequence(asserts));
    }
    Ok(m)
}

fn tcp_fields(module: &Module, target: &str) -> Result<(&'static str, Mapping), String> {
    let t = &module.tcp;
    if t.query_response.iter().any(|q| q.starttls) {
        return Err(none("tcp", "query_response.starttls"));
    }
    if t.tls {
        if !t.query_response.is_empty() {
            return Err(none("tcp", "query_response with tls"));
        }
        let mut m = map(vec![("target", target.into())]);
        if t.tls_config != TlsConfig::default() {
            m.insert("tls".into(), tls(&t.tls_config, None));
        }
        return Ok(("tls", m));
    }
    let mut m = map(vec![("target", target.into())]);
    match t.query_response.as_slice() {
        [] => {}
        // Vantage sends first, then reads until `expect` matches: a banner check, or one send and its answer.
        [q] if q.send.is_none() || q.expect.is_none() => {
            if let Some(e) = &q.expect {
                m.insert("expect".into(), e.as_str().into());
            }
            if let Some(s) = &q.send {
                m.insert("send".into(), s.as_str().into());
            }
        }
        [first, second] if first.expect.is_none() && second.send.is_none() => {
            if let Some(s) = &first.send {
                m.insert("send".into(), s.as_str().into());
            }
            if let Some(e) = &second.expect {
                m.insert("expect".into(), e.as_str().into());
            }
        }
        _ => {
            return Err(none(
                "tcp",
                "query_response (more than one send and its answer)",
            ))
        }
    }
    Ok(("tcp", m))
}

fn dns_fields(module: &Module, target: &str) -> Result<Mapping, String> {
    let d = &module.dns;
    let rcodes_default = d.valid_rcodes.is_empty()
        || d.valid_rcodes
            .iter()
            .all(|r| r.eq_ignore_ascii_case("NOERROR"));
    let validators = !module.compiled.answer.is_empty()
        || !module.compiled.authority.is_empty()
        || !module.compiled.additional.is_empty();
    for (option, used) in [
        ("valid_rcodes", !rcodes_default),
        ("validate_*_rrs", validators),
        ("query_class", !d.query_class.eq_ignore_ascii_case("IN")),
        ("recursion_desired", !d.recursion_desired),
        ("query_type: ANY", d.query_type.eq_ignore_ascii_case("ANY")),
    ] {
        if used {
            return Err(none("dns", option));
        }
    }
    Ok(map(vec![
        ("target", d.query_name.as_str().into()),
        ("record_type", d.query_type.to_ascii_uppercase().into()),
        ("server", target.into()),
        ("transport", d.transport_protocol.as_str().into()),
    ]))
}

/// A check name from module and target: `http_2xx/api.example.com/health` (characters a name may not hold
/// become `_`; at most 128).
fn check_name(module: &str, target: &str) -> String {
    let bare = target
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let name: String = format!("{module}/{bare}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.chars().take(128).collect()
}

/// `convert-blackbox`: the checks for every line of `targets` (`TARGET` for every module, or `MODULE TARGET`),
/// as a `checks:` YAML list. `Err` names the line or the module option at fault.
pub fn checks(
    modules: &super::modules::Modules,
    targets: &str,
    only: Option<&str>,
    interval: &str,
) -> Result<String, String> {
    if let Some(m) = only {
        if modules.get(m).is_none() {
            return Err(format!("no module named {m:?}"));
        }
    }
    let mut list = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in targets.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let pairs: Vec<(&String, &str)> = match words.as_slice() {
            [target] => modules
                .modules
                .keys()
                .filter(|m| only.is_none_or(|o| o == m.as_str()))
                .map(|m| (m, *target))
                .collect(),
            [module, target] => match modules.modules.get_key_value(*module) {
                Some((m, _)) if only.is_none_or(|o| o == *module) => vec![(m, *target)],
                Some(_) => Vec::new(),
                None => return Err(format!("line {}: no module named {module:?}", i + 1)),
            },
            _ => {
                return Err(format!(
                    "line {}: expected TARGET or MODULE TARGET, got {line:?}",
                    i + 1
                ))
            }
        };
        for (module, target) in pairs {
            let name = check_name(module, target);
            if !seen.insert(name.clone()) {
                continue;
            }
            let check = check(&name, &modules.modules[module], target, interval)
                .map_err(|e| format!("line {}: module {module}: {e}", i + 1))?;
            list.push(Value::Mapping(check));
        }
    }
    let doc = map(vec![("checks", Value::Sequence(list))]);
    serde_norway::to_string(&doc).map_err(|e| e.to_string())
}
