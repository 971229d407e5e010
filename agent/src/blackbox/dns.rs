//! blackbox_exporter's `dns` prober: one query (`query_name`, `query_type`, `query_class`, RD flag) to the target
//! server over UDP or TCP, the answer's rcode among `valid_rcodes` (NOERROR by default), and each section's
//! records checked against the `validate_*_rrs` regexps. Records are matched in the text form blackbox_exporter
//! (miekg/dns) gives them: `name.<TAB>ttl<TAB>class<TAB>type<TAB>data`.

use super::families::Families;
use super::modules::{Module, RrRegexes};
use super::ProbeLog;
use hickory_resolver::proto::op::{Message, Query};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A record type by name (`A`, `AAAA`, `MX`, `ANY`...).
pub fn record_type(name: &str) -> Result<RecordType, String> {
    RecordType::from_str(&name.to_ascii_uppercase())
        .map_err(|_| format!("query type '{name}' is not valid"))
}

/// A class by name (`IN`, `CH`, `HS`, `NONE`, `ANY`).
pub fn record_class(name: &str) -> Result<DNSClass, String> {
    DNSClass::from_str(&name.to_ascii_uppercase())
        .map_err(|_| format!("query class '{name}' is not valid"))
}

/// The rcodes by their miekg/dns names.
const RCODES: [(&str, u16); 11] = [
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
];

/// An rcode by name.
pub fn rcode(name: &str) -> Result<u16, String> {
    RCODES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            let names: Vec<&str> = RCODES.iter().map(|(n, _)| *n).collect();
            format!("invalid rcode {name:?}; one of {}", names.join(", "))
        })
}

fn rcode_name(code: u16) -> String {
    RCODES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| code.to_string(), |(n, _)| n.to_string())
}

const PHASES: (&str, &str) = (
    "probe_dns_duration_seconds",
    "Duration of DNS request by phase",
);

/// The most bytes a UDP answer may have (EDNS-sized answers fit; larger ones are truncated by the server).
const UDP_ANSWER_MAX: usize = 65_535;

pub async fn probe(module: &Module, target: &str, f: &mut Families, log: &mut ProbeLog) -> bool {
    let d = &module.dns;
    for (name, help) in [
        (
            "probe_dns_answer_rrs",
            "Returns number of entries in the answer resource record list",
        ),
        (
            "probe_dns_authority_rrs",
            "Returns number of entries in the authority resource record list",
        ),
        (
            "probe_dns_additional_rrs",
            "Returns number of entries in the additional resource record list",
        ),
        (
            "probe_dns_query_succeeded",
            "Displays whether or not the query was executed successfully",
        ),
    ] {
        f.set(name, help, 0.0);
    }
    let (host, port) = match super::host_port(target, Some(53)) {
        Ok(hp) => hp,
        Err(e) => {
            log.error("Error parsing target", &[("err", e)]);
            return false;
        }
    };
    let Some(ip) = super::resolve_target(
        &host,
        d.preferred_ip_protocol,
        d.ip_protocol_fallback,
        Some(PHASES),
        f,
        log,
    )
    .await
    else {
        return false;
    };
    let query = match build_query(module) {
        Ok(q) => q,
        Err(e) => {
            log.error("Error building the query", &[("err", e)]);
            return false;
        }
    };
    let server = SocketAddr::new(ip, port);
    log.info(
        "Making DNS query",
        &[
            ("target", server.to_string()),
            ("dial_protocol", d.transport_protocol.clone()),
            ("query", d.query_name.clone()),
            ("type", d.query_type.clone()),
            ("class", d.query_class.clone()),
        ],
    );
    let answer = match exchange(&query, server, d.transport_protocol == "tcp", f).await {
        Ok(a) => a,
        Err(e) => {
            log.error("Error while sending a DNS query", &[("err", e)]);
            return false;
        }
    };
    let response = match Message::from_vec(&answer) {
        Ok(m) => m,
        Err(e) => {
            log.error(
                "Error while sending a DNS query",
                &[("err", format!("malformed answer: {e}"))],
            );
            return false;
        }
    };
    log.info(
        "Got response",
        &[(
            "rcode",
            rcode_name(u16::from(response.metadata.response_code)),
        )],
    );
    f.set("probe_dns_query_succeeded", "", 1.0);
    f.set("probe_dns_answer_rrs", "", response.answers.len() as f64);
    f.set(
        "probe_dns_authority_rrs",
        "",
        response.authorities.len() as f64,
    );
    f.set(
        "probe_dns_additional_rrs",
        "",
        response.additionals.len() as f64,
    );
    if let Some(serial) = response.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }) {
        f.set(
            "probe_dns_serial",
            "Returns the serial number of the zone",
            f64::from(serial),
        );
    }
    let code = u16::from(response.metadata.response_code);
    let valid: Vec<u16> = if d.valid_rcodes.is_empty() {
        vec![0]
    } else {
        d.valid_rcodes
            .iter()
            .filter_map(|r| rcode(r).ok())
            .collect()
    };
    if !valid.contains(&code) {
        log.error(
            "Rcode is not one of the valid rcodes",
            &[("string_rcode", rcode_name(code))],
        );
        return false;
    }
    let c = &module.compiled;
    for (section, records, regexes) in [
        ("answer", &response.answers, &c.answer),
        ("authority", &response.authorities, &c.authority),
        ("additional", &response.additionals, &c.additional),
    ] {
        log.info("Validating RR section", &[("section", section.into())]);
        if !valid_rrs(records, regexes, log) {
            return false;
        }
    }
    true
}

fn build_query(module: &Module) -> Result<Vec<u8>, String> {
    let d = &module.dns;
    let mut name = Name::from_ascii(&d.query_name)
        .map_err(|e| format!("query name {:?}: {e}", d.query_name))?;
    name.set_fqdn(true);
    let mut q = Query::query(name, record_type(&d.query_type)?);
    q.set_query_class(record_class(&d.query_class)?);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = d.recursion_desired;
    msg.add_query(q);
    msg.to_vec().map_err(|e| e.to_string())
}

/// Sends `query` and reads the answer, timing `connect` and `request`.
async fn exchange(
    query: &[u8],
    server: SocketAddr,
    tcp: bool,
    f: &mut Families,
) -> Result<Vec<u8>, String> {
    let id = &query[..2];
    let t = Instant::now();
    if tcp {
        let mut s = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        f.add_labelled(
            PHASES.0,
            PHASES.1,
            vec![("phase", "connect".into())],
            t.elapsed().as_secs_f64(),
        );
        let t = Instant::now();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut answer).await.map_err(|e| e.to_string())?;
        f.add_labelled(
            PHASES.0,
            PHASES.1,
            vec![("phase", "request".into())],
            t.elapsed().as_secs_f64(),
        );
        return Ok(answer);
    }
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let s = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    s.connect(server).await.map_err(|e| e.to_string())?;
    f.add_labelled(
        PHASES.0,
        PHASES.1,
        vec![("phase", "connect".into())],
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    s.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; UDP_ANSWER_MAX];
    // Datagrams that are not the answer to this query (another id) are skipped.
    loop {
        let n = s.recv(&mut buf).await.map_err(|e| e.to_string())?;
        if n >= 2 && &buf[..2] == id {
            buf.truncate(n);
            break;
        }
    }
    f.add_labelled(
        PHASES.0,
        PHASES.1,
        vec![("phase", "request".into())],
        t.elapsed().as_secs_f64(),
    );
    Ok(buf)
}

/// A record as miekg/dns prints it (what blackbox_exporter's regexps are written against).
fn rr_text(r: &Record) -> String {
    let name = r.name.to_string();
    let name = if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    };
    let data = match &r.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|d| format!("{:?}", String::from_utf8_lossy(d)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    format!(
        "{name}\t{}\t{}\t{}\t{data}",
        r.ttl,
        r.dns_class,
        r.record_type()
    )
}

/// blackbox_exporter's `validRRs`.
fn valid_rrs(records: &[Record], re: &RrRegexes, log: &mut ProbeLog) -> bool {
    if re.is_empty() {
        return true;
    }
    let texts: Vec<String> = records.iter().map(rr_text).collect();
    for r in &re.fail_if_matches {
        if let Some(t) = texts.iter().find(|t| r.is_match(t)) {
            log.error(
                "At least one RR matched regexp",
                &[("regexp", r.to_string()), ("rr", t.clone())],
            );
            return false;
        }
    }
    for r in &re.fail_if_all_match {
        if !texts.is_empty() && texts.iter().all(|t| r.is_match(t)) {
            log.error("All RRs matched regexp", &[("regexp", r.to_string())]);
            return false;
        }
    }
    for r in &re.fail_if_not_matches {
        if let Some(t) = texts.iter().find(|t| !r.is_match(t)) {
            log.error(
                "At least one RR did not match regexp",
                &[("regexp", r.to_string()), ("rr", t.clone())],
            );
            return false;
        }
    }
    for r in &re.fail_if_none_matches {
        if !texts.iter().any(|t| r.is_match(t)) {
            log.error(
                "Not a single RR matched regexp",
                &[("regexp", r.to_string())],
            );
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_as_miekg_prints_them() {
        let r = Record::from_rdata(
            Name::from_ascii("probe.example.").unwrap(),
            60,
            RData::A("127.0.0.1".parse().unwrap()),
        );
        assert_eq!(rr_text(&r), "probe.example.\t60\tIN\tA\t127.0.0.1");
    }

    #[test]
    fn rcodes_by_name() {
        assert_eq!(rcode("nxdomain").unwrap(), 3);
        assert!(rcode("NOPE").unwrap_err().contains("NOERROR"));
    }
}
