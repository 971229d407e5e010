//! blackbox_exporter's `tcp` prober: connect (over TLS with `tls: true`), then `query_response` in order: read
//! lines until one matches `expect` (its groups fill `${1}` in `send`), send `send` and a newline, upgrade to
//! TLS on `starttls`. A silent peer holds the probe until its deadline, as in blackbox_exporter.

use super::families::Families;
use super::modules::{Module, TlsConfig};
use super::ProbeLog;
use crate::result::Phases;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The longest line read while waiting for `expect` (Go's bufio.Scanner default).
const MAX_LINE: usize = 64 * 1024;

pub async fn probe(module: &Module, target: &str, f: &mut Families, log: &mut ProbeLog) -> bool {
    let t = &module.tcp;
    f.set(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        0.0,
    );
    let (host, port) = match super::host_port(target, None) {
        Ok(hp) => hp,
        Err(e) => {
            log.error("Error splitting target address and port", &[("err", e)]);
            return false;
        }
    };
    let Some(ip) = super::resolve_target(
        &host,
        t.preferred_ip_protocol,
        t.ip_protocol_fallback,
        None,
        f,
        log,
    )
    .await
    else {
        return false;
    };
    log.info("Dialing TCP without TLS", &[]);
    let stream = match tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await {
        Ok(s) => s,
        Err(e) => {
            log.error("Error dialing TCP", &[("err", e.to_string())]);
            return false;
        }
    };
    let mut conn: Box<dyn Io> = Box::new(stream);
    if t.tls {
        conn = match upgrade(conn, &t.tls_config, &host, f, log).await {
            Some(c) => c,
            None => return false,
        };
    }
    log.info("Successfully dialed", &[]);
    let mut lines = LineReader::default();
    for (i, (qr, expect)) in t
        .query_response
        .iter()
        .zip(&module.compiled.expects)
        .enumerate()
    {
        log.info(
            "Processing query response entry",
            &[("entry_number", i.to_string())],
        );
        let mut send = qr.send.clone().unwrap_or_default();
        if let Some(re) = expect {
            let matched = loop {
                match lines.next(&mut conn).await {
                    Ok(Some(line)) => {
                        if let Some(caps) = re.captures(&line) {
                            log.info(
                                "Regexp matched",
                                &[("regexp", re.to_string()), ("line", line.clone())],
                            );
                            let mut expanded = String::new();
                            caps.expand(&send, &mut expanded);
                            send = expanded;
                            break true;
                        }
                    }
                    Ok(None) => break false,
                    Err(e) => {
                        log.error("Error reading from connection", &[("err", e)]);
                        return false;
                    }
                }
            };
            if !matched {
                f.set("probe_failed_due_to_regex", "", 1.0);
                log.error("Regexp did not match", &[("regexp", re.to_string())]);
                return false;
            }
            f.set("probe_failed_due_to_regex", "", 0.0);
        }
        if !send.is_empty() {
            send.push('\n');
            if let Err(e) = conn.write_all(send.as_bytes()).await {
                log.error("Failed to send", &[("err", e.to_string())]);
                return false;
            }
        }
        if qr.starttls {
            conn = match upgrade(conn, &t.tls_config, &host, f, log).await {
                Some(c) => c,
                None => return false,
            };
            // What was read before the handshake belonged to the plaintext session.
            lines = LineReader::default();
        }
    }
    true
}

/// A TLS handshake over `conn`; registers the TLS families on success.
async fn upgrade(
    conn: Box<dyn Io>,
    tls: &TlsConfig,
    host: &str,
    f: &mut Families,
    log: &mut ProbeLog,
) -> Option<Box<dyn Io>> {
    let options = super::tls_options(tls);
    let config = match options.client_config(&[]) {
        Ok(c) => c,
        Err(e) => {
            log.error(
                "Failed to create TLS configuration",
                &[("err", e.to_string())],
            );
            return None;
        }
    };
    let name = tls.server_name.clone().unwrap_or_else(|| host.to_string());
    let Ok(name) = ServerName::try_from(
        name.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    ) else {
        log.error("Invalid TLS server name", &[("server_name", name)]);
        return None;
    };
    let mut phases = Phases::default();
    match crate::probe::tls_config::handshake(&config, name, conn, host, &mut phases).await {
        Ok(stream) => {
            log.info("TLS Handshake (client) succeeded.", &[]);
            let (_, c) = stream.get_ref();
            let facts = crate::probe::tls_config::facts(c);
            let chain = c.peer_certificates().map(|c| c.to_vec());
            super::tls_families(f, &facts, chain.as_deref());
            Some(Box::new(stream))
        }
        Err(e) => {
            log.error("TLS Handshake (client) failed", &[("err", e.message)]);
            None
        }
    }
}

/// Lines read off a connection (`\n`, an optional `\r` dropped), each at most [`MAX_LINE`] bytes.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    /// The next line; `None` at the end of the stream (a last line without a newline still counts).
    async fn next(&mut self, conn: &mut Box<dyn Io>) -> Result<Option<String>, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > MAX_LINE {
                return Err(format!("a line longer than {MAX_LINE} bytes"));
            }
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let line = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                return Ok(Some(line));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
