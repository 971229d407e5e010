//! `vantage-agent blackbox` against the real blackbox_exporter (Debian's `prometheus-blackbox-exporter`, 0.23;
//! scripts/test.sh installs it): both load ONE module file and probe the same local targets (testkit's HTTP(S),
//! TCP banner, DNS and gRPC health servers, ICMP to 127.0.0.1), and for every (module, target) case their `/probe`
//! answers must agree: `probe_success`, the set of metric families, the values that matter (status code, SSL, regexp
//! failure, IP protocol, redirects, certificate expiry, DNS record counts, gRPC serving status, ...) and the phase
//! durations within a tolerance fit for a loaded 2-core machine. A mismatch shows both bodies of the case.
//!
//! What blackbox_exporter 0.23 answers for each case is recorded, with notes, in the cases below; where 0.23 has a
//! known bug the expected difference is asserted (see `expected_families`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::AgentProcess;
use vantage_testkit::grpc::{GrpcHealthServer, ServingStatus};
use vantage_testkit::servers::{DnsServer, ProxyServer, StartTlsServer, TcpServer, TestServer};
use vantage_testkit::tls::TestPki;

/// Debian's blackbox_exporter.
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";

/// Families of durations (seconds), compared within [`close_enough`] instead of exactly.
const DURATION_FAMILIES: &[&str] = &[
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_http_duration_seconds",
    "probe_dns_duration_seconds",
    "probe_icmp_duration_seconds",
    "probe_grpc_duration_seconds",
];

/// Families whose samples (label sets and values) must be equal on both sides when blackbox emits them.
const VALUE_FAMILIES: &[&str] = &[
    "probe_success",
    "probe_http_status_code",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_redirects",
    "probe_failed_due_to_regex",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_ssl_last_chain_info",
    "probe_tls_version_info",
    "probe_dns_answer_rrs",
    "probe_dns_authority_rrs",
    "probe_dns_additional_rrs",
    "probe_dns_query_succeeded",
    "probe_icmp_reply_hop_limit",
    "probe_grpc_healthcheck_response",
    "probe_grpc_status_code",
    "probe_grpc_ssl",
];

/// Body sizes: equal too, except against `/echo`, whose body echoes the request headers (User-Agent differs).
const LENGTH_FAMILIES: &[&str] = &[
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
];

/// A duration agrees when both are finite, non-negative and within 100 ms + 50% of the larger one: loopback
/// timings are sub-millisecond, a loaded machine adds tens of milliseconds, while a side reporting milliseconds as
/// seconds, or the timeout instead of the real time, is off by far more.
fn close_enough(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0 && (a - b).abs() <= 0.1 + 0.5 * a.max(b)
}

/// One sample's identity: its name and its labels, sorted.
type SampleKey = (String, Vec<(String, String)>);

/// A parsed `/probe` answer.
struct Exposition {
    families: BTreeSet<String>,
    samples: BTreeMap<SampleKey, f64>,
}

impl Exposition {
    fn parse(body: &str) -> Result<Exposition, String> {
        let mut typed = BTreeSet::new();
        let mut samples = BTreeMap::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split_whitespace().next().unwrap_or("").to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (key, value) = parse_sample(line).ok_or_else(|| format!("bad line: {line}"))?;
            if samples.insert(key, value).is_some() {
                return Err(format!("duplicate sample: {line}"));
            }
        }
        // Families: the typed ones, plus sample names that belong to no typed family (an untyped exposition).
        let mut families = typed.clone();
        for (name, _) in samples.keys() {
            let covered = typed.iter().any(|f| {
                name == f
                    || name.strip_prefix(f.as_str()).is_some_and(|s| {
                        ["_bucket", "_sum", "_count", "_total", "_created", "_info"].contains(&s)
                    })
            });
            if !covered {
                families.insert(name.clone());
            }
        }
        families.retain(|f| !f.starts_with("go_") && !f.starts_with("process_"));
        Ok(Exposition { families, samples })
    }

    /// The samples of `family`, by label set.
    fn family(&self, family: &str) -> BTreeMap<Vec<(String, String)>, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == family)
            .map(|((_, l), v)| (l.clone(), *v))
            .collect()
    }

    fn value(&self, family: &str) -> Option<f64> {
        self.samples.get(&(family.to_string(), Vec::new())).copied()
    }
}

/// `name{a="x",b="y"} value [timestamp]`.
fn parse_sample(line: &str) -> Option<(SampleKey, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end = loop {
            // Skip separators, then read `key="value"` or stop at `}`.
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            let (start, c) = chars.next()?;
            if c == '}' {
                break start + 1;
            }
            let mut key = c.to_string();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key.trim().to_string(), value));
        };
        rest = &inner[end..];
    }
    labels.sort();
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(((name, labels), value))
}

/// Debian's blackbox_exporter on 127.0.0.1 with the module file; killed when dropped.
struct Blackbox {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Blackbox {
    /// Starts it on a port that was free a moment ago; another one if it cannot bind it (it exits), up to 5 tries.
    async fn start(config: &Path, dir: &Path) -> Blackbox {
        assert!(
            Path::new(BLACKBOX).is_file(),
            "{BLACKBOX} is not installed (scripts/test.sh installs prometheus-blackbox-exporter)"
        );
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let log = dir.join(format!("blackbox-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let child = Command::new(BLACKBOX)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log file"))
                .stderr(out)
                .spawn()
                .expect("start prometheus-blackbox-exporter");
            let mut bb = Blackbox {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
            };
            if bb.wait_ready().await {
                return bb;
            }
            last_log = bb.log();
        }
        panic!("blackbox_exporter did not start in 5 tries; its last log:\n{last_log}");
    }

    /// True once it answers its own /metrics (so the port is really its own); false if it exited (cannot bind).
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Some((200, body)) = try_get(&format!("{}/metrics", self.base)).await {
                if body.contains("blackbox_exporter_build_info") {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("blackbox_exporter not ready within 30 s:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn try_get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

async fn get(url: &str) -> (u16, String) {
    try_get(url)
        .await
        .unwrap_or_else(|| panic!("GET {url} got no answer"))
}

/// `/probe?module=M&target=T` plus the case's extra parameters.
fn probe_path(case: &Case) -> String {
    let q: String = url_encode(case.target.as_str());
    format!("/probe?module={}&target={q}{}", case.module, case.params)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The families Vantage must emit for `case`, given blackbox's.
fn expected_families(case: &Case, blackbox: &Exposition) -> BTreeSet<String> {
    let mut expected = blackbox.families.clone();
    if case.module.starts_with("grpc") {
        // blackbox_exporter 0.23 bug: the gRPC prober registers probe_ssl_earliest_cert_expiry before it knows
        // whether TLS is used, so a plaintext probe (and a failed handshake) reports it as 0, which fires every
        // "certificate expires soon" alert (prometheus/blackbox_exporter#1120, fixed upstream by #1338: the TLS
        // metrics only after a successful handshake). Vantage follows the fix: no such family without TLS.
        expected.remove("probe_ssl_earliest_cert_expiry");
    }
    expected
}

/// Everything that differs between the two answers for `case` (empty: they agree).
/// How [`compare`] words a duration outside [`close_enough`].
const NOT_CLOSE: &str = "not within 100 ms + 50%";

fn compare(case: &Case, bb: &Exposition, va: &Exposition) -> Vec<String> {
    let mut problems = Vec::new();
    let bb_success = bb.value("probe_success");
    if bb_success != Some(if case.expect { 1.0 } else { 0.0 }) {
        problems.push(format!(
            "the case is built for probe_success {} but blackbox_exporter answered {bb_success:?} (fixture broken?)",
            u8::from(case.expect)
        ));
    }
    if va.value("probe_success") != bb_success {
        problems.push(format!(
            "probe_success: blackbox {bb_success:?}, vantage {:?}",
            va.value("probe_success")
        ));
    }
    let expected = expected_families(case, bb);
    if va.families != expected {
        let missing: Vec<_> = expected.difference(&va.families).collect();
        let extra: Vec<_> = va.families.difference(&expected).collect();
        let bug = if case.module.starts_with("grpc") {
            " (blackbox 0.23's probe_ssl_earliest_cert_expiry without TLS is a bug Vantage must not copy: \
             blackbox_exporter#1120)"
        } else {
            ""
        };
        problems.push(format!(
            "metric families differ: vantage lacks {missing:?}, has extra {extra:?}{bug}"
        ));
    }
    let echo = case.target.ends_with("/echo");
    let compared = VALUE_FAMILIES
        .iter()
        .chain(if echo { &[][..] } else { LENGTH_FAMILIES });
    for family in compared.filter(|f| expected.contains(**f)) {
        let (b, v) = (bb.family(family), va.family(family));
        if b != v {
            problems.push(format!("{family}: blackbox {b:?}, vantage {v:?}"));
        }
    }
    let both_succeeded = bb_success == Some(1.0) && va.value("probe_success") == Some(1.0);
    for family in DURATION_FAMILIES.iter().filter(|f| expected.contains(**f)) {
        let (b, v) = (bb.family(family), va.family(family));
        if b.keys().ne(v.keys()) {
            problems.push(format!(
                "{family}: label sets differ: blackbox {:?}, vantage {:?}",
                b.keys().collect::<Vec<_>>(),
                v.keys().collect::<Vec<_>>()
            ));
            continue;
        }
        for (labels, bv) in &b {
            let vv = v[labels];
            if !close_enough(*bv, vv) {
                problems.push(format!(
                    "{family}{labels:?}: blackbox {bv}, vantage {vv}: {NOT_CLOSE}"
                ));
            }
            // A phase that took time on blackbox's side must not be 0 on Vantage's when both succeeded (a phase
            // left unmeasured); resolving an IP literal may legitimately be skipped.
            let resolve = *family == "probe_dns_lookup_time_seconds"
                || labels.iter().any(|(k, v)| k == "phase" && v == "resolve");
            if both_succeeded && !resolve && *bv > 0.0 && vv <= 0.0 {
                problems.push(format!(
                    "{family}{labels:?}: blackbox {bv}, vantage {vv}: a phase that took time reported as 0"
                ));
            }
        }
    }
    // The phases are parts of the probe: their sum cannot exceed the whole (1 ms of slack for rounding).
    for (side, e) in [("vantage", va), ("blackbox", bb)] {
        let total = e.value("probe_duration_seconds").unwrap_or(0.0);
        for family in [
            "probe_http_duration_seconds",
            "probe_dns_duration_seconds",
            "probe_icmp_duration_seconds",
            "probe_grpc_duration_seconds",
        ] {
            let sum: f64 = e.family(family).values().sum();
            if sum > total + 0.001 {
                problems.push(format!(
                    "{side}: the {family} phases sum to {sum}, more than probe_duration_seconds {total}"
                ));
            }
        }
    }
    problems
}

/// Both exporters on one module file, and the targets.
struct Setup {
    fixtures: Fixtures,
    blackbox: Blackbox,
    vantage: AgentProcess,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let fixtures = Fixtures::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("blackbox.yml");
        std::fs::write(&config, fixtures.modules_yaml()).expect("write module file");
        let blackbox = Blackbox::start(&config, dir.path()).await;
        let vantage = AgentProcess::spawn_blackbox(&config.display().to_string(), &[]).await;
        Setup {
            fixtures,
            blackbox,
            vantage,
            config,
            _dir: dir,
        }
    }
}

/// Whether this process (the exporters run as the same user) can open an ICMP socket: a raw one (root,
/// CAP_NET_RAW) or an unprivileged ping socket (net.ipv4.ping_group_range).
fn icmp_socket_available() -> Result<(), String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4));
    let dgram = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4));
    match (raw, dgram) {
        (Err(r), Err(d)) => Err(format!(
            "no ICMP socket for this user (raw: {r}; ping socket: {d}): not root, no CAP_NET_RAW, group outside \
             net.ipv4.ping_group_range"
        )),
        _ => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_answers_like_blackbox_exporter() {
    let setup = Setup::start().await;
    let icmp = icmp_socket_available();
    let mut summary = vec![format!(
        "{:<32} {:<22} {:>8} {:>8}  result",
        "case", "module", "blackbox", "vantage"
    )];
    let mut failures = Vec::new();
    for case in setup.fixtures.cases() {
        if case.module.starts_with("icmp") {
            if let Err(reason) = &icmp {
                println!("SKIPPED case {}: {reason}", case.name);
                summary.push(format!("{:<32} skipped: {reason}", case.name));
                continue;
            }
        }
        let path = probe_path(&case);
        // A case whose only disagreement is a duration is probed again, twice at most: a stall of either
        // process on this loaded machine (blackbox once took 385 ms for a loopback probe Vantage did in 3 ms)
        // is not a difference in semantics, which would show in every attempt.
        let mut attempt = 0;
        let (bb_body, va_body, problems, bb_success, va_success) = loop {
            attempt += 1;
            let (bb_status, bb_body) = get(&format!("{}{path}", setup.blackbox.base)).await;
            let (va_status, va_body) = get(&format!("{}{path}", setup.vantage.base)).await;
            let mut problems = Vec::new();
            if (bb_status, va_status) != (200, 200) {
                problems.push(format!(
                    "HTTP status: blackbox {bb_status}, vantage {va_status}"
                ));
            }
            let parsed = (Exposition::parse(&bb_body), Exposition::parse(&va_body));
            let (bb_success, va_success) = match &parsed {
                (Ok(bb), Ok(va)) => {
                    problems.extend(compare(&case, bb, va));
                    (bb.value("probe_success"), va.value("probe_success"))
                }
                (bb, va) => {
                    for (side, r) in [("blackbox", bb), ("vantage", va)] {
                        if let Err(e) = r {
                            problems.push(format!("{side}'s answer does not parse: {e}"));
                        }
                    }
                    (None, None)
                }
            };
            if attempt < 3
                && !problems.is_empty()
                && problems.iter().all(|p| p.ends_with(NOT_CLOSE))
            {
                println!(
                    "case {}: durations only differ, probing again: {problems:?}",
                    case.name
                );
                continue;
            }
            break (bb_body, va_body, problems, bb_success, va_success);
        };
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
        summary.push(format!(
            "{:<32} {:<22} {:>8} {:>8}  {}",
            case.name,
            case.module,
            show(bb_success),
            show(va_success),
            if problems.is_empty() {
                "ok"
            } else {
                "MISMATCH"
            }
        ));
        if !problems.is_empty() {
            failures.push(format!(
                "=== case {} (module {}, GET {path}){}\n- {}\n--- blackbox_exporter 0.23 ---\n{}\n--- vantage-agent \
                 blackbox ---\n{}",
                case.name,
                case.module,
                if case.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", case.note)
                },
                problems.join("\n- "),
                bb_body.trim_end(),
                va_body.trim_end()
            ));
        }
    }
    let summary = summary.join("\n");
    println!("{summary}");
    assert!(
        failures.is_empty(),
        "{} case(s) differ from blackbox_exporter:\n{summary}\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The same (module, target) with `debug=true`: both answer 200 and the metrics in it carry the same
/// probe_success as the normal answer (blackbox_exporter lists them under "Metrics that would have been
/// returned:", after the probe's log lines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_answers_carry_the_probe_result() {
    let setup = Setup::start().await;
    let cases = setup.fixtures.cases();
    for name in ["http_2xx", "http_404_default_codes", "tcp_banner", "dns_a"] {
        let case = cases.iter().find(|c| c.name == name).expect("case");
        let path = format!("{}&debug=true", probe_path(case));
        let want = format!("probe_success {}", u8::from(case.expect));
        for (side, base) in [
            ("blackbox", &setup.blackbox.base),
            ("vantage", &setup.vantage.base),
        ] {
            let (status, body) = get(&format!("{base}{path}")).await;
            assert!(
                status == 200 && body.lines().any(|l| l.trim() == want),
                "{side}: GET {path} -> {status}, want 200 with a line {want:?}:\n{body}"
            );
        }
    }
}

/// The endpoints around /probe: unknown module and missing target are 400 on both, /-/healthy and /metrics
/// answer 200, and a module added to the file is served after POST /-/reload and after SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_reload_behave_like_blackbox_exporter() {
    let setup = Setup::start().await;
    let bases = [
        ("blackbox", setup.blackbox.base.clone()),
        ("vantage", setup.vantage.base.clone()),
    ];
    let target = url_encode(&setup.fixtures.http.url("/ok"));
    for (side, base) in &bases {
        for (path, want) in [
            (format!("/probe?module=nope&target={target}"), 400),
            ("/probe?module=http_2xx".to_string(), 400),
            ("/-/healthy".to_string(), 200),
            ("/metrics".to_string(), 200),
            (format!("/probe?module=http_added&target={target}"), 400),
        ] {
            let (status, body) = get(&format!("{base}{path}")).await;
            assert_eq!(status, want, "{side}: GET {path}: {body}");
        }
    }
    // A new module, loaded by POST /-/reload.
    let added = format!(
        "{}  http_added:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n",
        setup.fixtures.modules_yaml()
    );
    std::fs::write(&setup.config, &added).expect("rewrite module file");
    let client = reqwest::Client::new();
    for (side, base) in &bases {
        let r = client
            .post(format!("{base}/-/reload"))
            .send()
            .await
            .expect("reload");
        assert_eq!(r.status().as_u16(), 200, "{side}: POST /-/reload");
        let (status, body) = get(&format!("{base}/probe?module=http_added&target={target}")).await;
        assert!(
            status == 200 && body.lines().any(|l| l == "probe_success 1"),
            "{side}: the reloaded module: {status}\n{body}"
        );
    }
    // Another one, loaded on SIGHUP.
    std::fs::write(
        &setup.config,
        format!("{added}  http_hup:\n    prober: http\n    timeout: 5s\n"),
    )
    .expect("rewrite module file");
    let pids = [setup.blackbox.child.id(), setup.vantage.child.id()];
    for ((side, base), pid) in bases.iter().zip(pids) {
        let hup = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP");
        assert!(hup.success(), "{side}: kill -HUP {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) =
                get(&format!("{base}/probe?module=http_hup&target={target}")).await;
            if status == 200 {
                assert!(
                    body.lines().any(|l| l == "probe_success 1"),
                    "{side}: {body}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{side}: module http_hup not served 10 s after SIGHUP: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const MODULES: &str = r#"modules:
  # The canonical module from blackbox_exporter's README: no options (preferred_ip_protocol ip6, falling back to
  # ip4 for an IPv4 literal), no explicit timeout.
  http_2xx:
    prober: http
  http_404:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [404]
  http_no_redirect:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      follow_redirects: false
  http_tls:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: CA_FILE
  http_fail_if_not_ssl:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_not_ssl: true
  http_fail_if_ssl:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_ssl: true
      tls_config:
        ca_file: CA_FILE
  http_body_forbid:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_matches_regexp: ['"status":"up"']
  http_body_require:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ['"name":"vantage"']
  http_header_forbid:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_header_matches:
        - header: Cache-Control
          regexp: no-store
          allow_missing: true
  http_header_require:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_header_not_matches:
        - header: Content-Type
          regexp: '^text/plain'
  http_post:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      method: POST
      headers:
        Content-Type: application/json
        X-Probe: vantage
      body: '{"hello":"world"}'
      fail_if_body_not_matches_regexp: ['"method":"POST"', '"x-probe":"vantage"', '"content-type":"application/json"', 'hello.*world']
  http_basic_auth:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      basic_auth:
        username: alice
        password: s3cret
      fail_if_body_not_matches_regexp: ['"authorization":"Basic YWxpY2U6czNjcmV0"']
  http_host:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ['"host":"vantage\.test"']
  http_v11:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_http_versions: [HTTP/1.1]
  http_v2:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_http_versions: [HTTP/2.0]
      tls_config:
        ca_file: CA_FILE
  http_gzip:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      headers: {Accept-Encoding: gzip}
      compression: gzip
      fail_if_body_not_matches_regexp: ['"status":"up"']
  http_proxy:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: PROXY_URL
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  tcp_banner:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: '^SSH-2\.0-'
        - send: hello vantage
        - expect: '^echo: hello vantage$'
  tcp_starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: CA_FILE
        server_name: localhost
      query_response:
        - expect: '^220 ready'
        - send: STARTTLS
        - expect: '^220 go ahead'
        - starttls: true
        - send: EHLO vantage
        - expect: '^250 EHLO vantage$'
  tcp_starttls_wrong_name:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: CA_FILE
        server_name: wrong.example
      query_response:
        - expect: '^220 ready'
        - send: STARTTLS
        - expect: '^220 go ahead'
        - starttls: true
  tcp_banner_mismatch:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: '^220 '
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      query_name: probe.example
      query_type: A
      valid_rcodes: [NOERROR]
      validate_answer_rrs:
        fail_if_not_matches_regexp: ['^probe\.example\.\s+60\s+IN\s+A\s+127\.0\.0\.1$']
  dns_a_mismatch:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      query_name: probe.example
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ['\s10\.0\.0\.1$']
  dns_a_tcp:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: tcp
      query_name: probe.example
      query_type: A
  dns_nxdomain:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      query_name: missing.example
      query_type: A
  dns_nxdomain_ok:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      query_name: missing.example
      query_type: A
      valid_rcodes: [NXDOMAIN]
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
  icmp_df:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
      payload_size: 1200
      dont_fragment: true
  grpc:
    prober: grpc
    timeout: 5s
    grpc:
      preferred_ip_protocol: ip4
  grpc_svc_down:
    prober: grpc
    timeout: 5s
    grpc:
      preferred_ip_protocol: ip4
      service: svc-down
  grpc_svc_unknown:
    prober: grpc
    timeout: 5s
    grpc:
      preferred_ip_protocol: ip4
      service: svc-unknown
"#;

/// One probe both exporters answer: `/probe?module={module}&target={target}`.
struct Case {
    name: &'static str,
    module: &'static str,
    target: String,
    /// More query parameters, e.g. `&hostname=H`.
    params: &'static str,
    /// probe_success the case is built for (checked on blackbox too, so a broken fixture shows as such).
    expect: bool,
    note: &'static str,
}

/// The local targets.
struct Fixtures {
    pki: TestPki,
    http: TestServer,
    https: TestServer,
    https_wrong_host: TestServer,
    https_expired: TestServer,
    banner: TcpServer,
    starttls: StartTlsServer,
    proxy: ProxyServer,
    closed_port: u16,
    dns: DnsServer,
    grpc: GrpcHealthServer,
}

impl Fixtures {
    async fn start() -> Fixtures {
        let pki = TestPki::new();
        let https = TestServer::https(pki.valid_leaf().server_config()).await;
        let https_wrong_host = TestServer::https(pki.wrong_host_leaf().server_config()).await;
        let https_expired = TestServer::https(pki.expired_leaf().server_config()).await;
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let grpc = GrpcHealthServer::plaintext().await;
        grpc.set("svc-down", ServingStatus::NotServing).await;
        Fixtures {
            http: TestServer::http().await,
            https,
            https_wrong_host,
            https_expired,
            banner: TcpServer::start(Some("SSH-2.0-vantage")).await,
            starttls: StartTlsServer::start(pki.valid_leaf().server_config()).await,
            proxy: ProxyServer::start().await,
            closed_port,
            dns: DnsServer::start(&[
                ("probe.example", "A", "127.0.0.1"),
                ("probe.example", "TXT", "vantage"),
            ])
            .await,
            grpc,
            pki,
        }
    }

    fn modules_yaml(&self) -> String {
        MODULES
            .replace("CA_FILE", &self.pki.ca_file.display().to_string())
            .replace("PROXY_URL", &format!("http://{}", self.proxy.addr))
    }

    fn cases(&self) -> Vec<Case> {
        let h = |p: &str| self.http.url(p);
        let s = |p: &str| self.https.url(p);
        let closed = format!("127.0.0.1:{}", self.closed_port);
        let c = |name, module, target: String, expect, note| Case {
            name,
            module,
            target,
            params: "",
            expect,
            note,
        };
        vec![
            // The canonical module without options: ip6 preferred, the IPv4 literal used after the fallback
            // (probe_ip_protocol 4), timeout 119.5 s (no scrape-timeout header, 120 - offset).
            c("http_2xx", "http_2xx", h("/ok"), true, ""),
            c(
                "http_2xx_no_scheme",
                "http_2xx",
                format!("{}/ok", self.http.addr),
                true,
                "a target without scheme is http://",
            ),
            c(
                "http_refused",
                "http_2xx",
                format!("http://{closed}/"),
                false,
                "connection refused",
            ),
            c(
                "http_404_default_codes",
                "http_2xx",
                h("/status/404"),
                false,
                "",
            ),
            c("http_404_valid", "http_404", h("/status/404"), true, ""),
            c(
                "http_redirect_followed",
                "http_2xx",
                h("/redirect/2"),
                true,
                "two 302 hops",
            ),
            // blackbox 0.23 counts the redirect it did not follow: probe_http_redirects 1, status 302 (asserted equal).
            c(
                "http_redirect_not_followed",
                "http_no_redirect",
                h("/redirect/1"),
                false,
                "the 302 itself is not 2xx",
            ),
            c("https_ok", "http_tls", s("/ok"), true, ""),
            c(
                "https_localhost",
                "http_tls",
                self.https.localhost_url("/ok"),
                true,
                "a name: resolve phase, DNS SAN",
            ),
            c(
                "http_fail_if_not_ssl",
                "http_fail_if_not_ssl",
                h("/ok"),
                false,
                "",
            ),
            c("https_fail_if_ssl", "http_fail_if_ssl", s("/ok"), false, ""),
            // A failed handshake: no probe_ssl_* / probe_tls_* families, every phase but resolve 0 on blackbox's
            // side (Vantage may report the connect it did make: durations only within the tolerance).
            c(
                "https_wrong_host",
                "http_tls",
                self.https_wrong_host.url("/ok"),
                false,
                "leaf for wrong.example",
            ),
            c(
                "https_expired",
                "http_tls",
                self.https_expired.url("/ok"),
                false,
                "leaf expired 3 days ago",
            ),
            c("body_forbid_pass", "http_body_forbid", h("/ok"), true, ""),
            c(
                "body_forbid_fail",
                "http_body_forbid",
                h("/json"),
                false,
                "",
            ),
            c(
                "body_require_pass",
                "http_body_require",
                h("/json"),
                true,
                "",
            ),
            c(
                "body_require_fail",
                "http_body_require",
                h("/ok"),
                false,
                "",
            ),
            // blackbox applies `allow_missing` to both header lists: a missing header fails `fail_if_header_matches`
            // too unless allow_missing is true (header_forbid sets it), and fails `fail_if_header_not_matches`.
            c(
                "header_forbid_fail",
                "http_header_forbid",
                h("/headers"),
                false,
                "Cache-Control: no-store",
            ),
            c(
                "header_forbid_missing_allowed",
                "http_header_forbid",
                h("/ok"),
                true,
                "no Cache-Control, allow_missing",
            ),
            c(
                "header_require_pass",
                "http_header_require",
                h("/headers"),
                true,
                "",
            ),
            c(
                "header_require_fail",
                "http_header_require",
                h("/json"),
                false,
                "application/json",
            ),
            c(
                "header_require_missing",
                "http_header_require",
                h("/ok"),
                false,
                "no Content-Type at all",
            ),
            // /echo answers the request as JSON; the modules' regexps check what was sent. Body sizes are not
            // compared on /echo (the User-Agent differs).
            c(
                "http_post",
                "http_post",
                h("/echo"),
                true,
                "the echo shows method, headers and body",
            ),
            c("http_basic_auth", "http_basic_auth", h("/echo"), true, ""),
            c(
                "http_host_default",
                "http_host",
                h("/echo"),
                false,
                "Host is 127.0.0.1:PORT",
            ),
            Case {
                params: "&hostname=vantage.test",
                ..c(
                    "http_hostname_param",
                    "http_host",
                    h("/echo"),
                    true,
                    "hostname= sets the Host header",
                )
            },
            c(
                "http_version_11",
                "http_v11",
                h("/ok"),
                true,
                "plaintext: HTTP/1.1",
            ),
            c(
                "http_version_11_on_h2",
                "http_v11",
                s("/ok"),
                false,
                "TLS with ALPN h2 negotiates HTTP/2.0",
            ),
            c("http_version_2", "http_v2", s("/ok"), true, ""),
            c(
                "tcp_connect",
                "tcp_connect",
                self.banner.addr.to_string(),
                true,
                "",
            ),
            c("tcp_closed", "tcp_connect", closed.clone(), false, ""),
            c(
                "tcp_banner",
                "tcp_banner",
                self.banner.addr.to_string(),
                true,
                "",
            ),
            // compression: the body is gunzipped before the regexp reads it (Accept-Encoding set in the module, as
            // blackbox_exporter's docs ask: else Go's transport would decompress it first); a plain body fails.
            c(
                "http_gzip",
                "http_gzip",
                h("/gzip"),
                true,
                "gzip-encoded JSON",
            ),
            c(
                "http_gzip_plain",
                "http_gzip",
                h("/ok"),
                false,
                "not gzip: cannot decompress",
            ),
            c(
                "http_proxy",
                "http_proxy",
                h("/ok"),
                true,
                "through an HTTP proxy",
            ),
            // SMTP-style STARTTLS: plaintext lines, the upgrade, a line over TLS; the TLS families follow.
            c(
                "tcp_starttls",
                "tcp_starttls",
                self.starttls.addr.to_string(),
                true,
                "STARTTLS, then EHLO over TLS",
            ),
            c(
                "tcp_starttls_wrong_name",
                "tcp_starttls_wrong_name",
                self.starttls.addr.to_string(),
                false,
                "the certificate is not for wrong.example",
            ),
            // No line matches: blackbox keeps reading until the module's 2 s timeout (probe_duration_seconds ~2).
            c(
                "tcp_banner_mismatch",
                "tcp_banner_mismatch",
                self.banner.addr.to_string(),
                false,
                "waits for the timeout (2s)",
            ),
            c("dns_a", "dns_a", self.dns.addr.to_string(), true, ""),
            c(
                "dns_a_mismatch",
                "dns_a_mismatch",
                self.dns.addr.to_string(),
                false,
                "",
            ),
            c(
                "dns_a_tcp",
                "dns_a_tcp",
                self.dns.addr.to_string(),
                true,
                "",
            ),
            // probe_dns_query_succeeded stays 1 on blackbox's side: the query worked, the rcode is what is invalid.
            c(
                "dns_nxdomain",
                "dns_nxdomain",
                self.dns.addr.to_string(),
                false,
                "",
            ),
            c(
                "dns_nxdomain_valid",
                "dns_nxdomain_ok",
                self.dns.addr.to_string(),
                true,
                "",
            ),
            // Skipped, with the reason printed, only when this user can open no ICMP socket at all.
            c("icmp", "icmp", "127.0.0.1".into(), true, ""),
            c(
                "icmp_df",
                "icmp_df",
                "127.0.0.1".into(),
                true,
                "1200 bytes, don't fragment",
            ),
            // gRPC: blackbox 0.23 also emits probe_ssl_earliest_cert_expiry 0 without TLS, a known bug that Vantage
            // must not copy (see expected_families).
            c("grpc_serving", "grpc", self.grpc.target(), true, ""),
            c(
                "grpc_not_serving",
                "grpc_svc_down",
                self.grpc.target(),
                false,
                "",
            ),
            c(
                "grpc_unknown_service",
                "grpc_svc_unknown",
                self.grpc.target(),
                false,
                "NOT_FOUND status",
            ),
            c("grpc_refused", "grpc", closed.clone(), false, ""),
        ]
    }
}
