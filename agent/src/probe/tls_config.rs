//! TLS client options of a check and the rustls `ClientConfig` built from them once per config load.

use super::SpecError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// TLS options of an HTTP or TLS check.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM file of extra CA certificates to trust, added to the bundled Mozilla roots (webpki-roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (expired, self-signed, wrong host). Expiry is still reported.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM client certificate chain for mutual TLS (requires `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Name to send as SNI and verify the certificate against, instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
}

pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn webpki_roots() -> RootCertStore {
    // Cloning a prepared store is far cheaper than re-parsing the bundle for each check.
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS
        .get_or_init(|| RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .clone()
}

/// See [`TlsOptions::client_config`].
#[derive(PartialEq, Eq)]
struct ShareKey {
    alpn: Vec<Vec<u8>>,
    insecure_skip_verify: bool,
    ca: Option<[u8; 32]>,
    client_cert: Option<[u8; 32]>,
    client_key: Option<[u8; 32]>,
}

impl TlsOptions {
    /// Build the client config: reads the CA and client-certificate files. `alpn` e.g. `[b"h2", b"http/1.1"]`.
    /// Errors name the field inside `tls` (`ca_file`); callers put `tls` in front with [`SpecError::within`].
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, SpecError> {
        // Checks with the same options share one config instead of building one each: a config holds its own root
        // store and session cache (~20 KB), which at 50,000 checks with a `ca_file` or `insecure_skip_verify` was
        // most of the agent's memory. The key holds the files' contents (digests), not their names, so a reload
        // after a CA file changed builds a new config; entries are weak, so a config no check uses any more goes.
        // `server_name` is applied per connection, so it does not make a config different.
        let Some(key) = self.share_key(alpn) else {
            // A file could not be read: building reports which and why.
            return self.build_client_config(alpn);
        };
        type Shared = Vec<(ShareKey, std::sync::Weak<ClientConfig>)>;
        static SHARED: std::sync::Mutex<Shared> = std::sync::Mutex::new(Vec::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = shared
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, c)| c.upgrade())
        {
            return Ok(config);
        }
        let config = self.build_client_config(alpn)?;
        shared.retain(|(k, c)| c.strong_count() > 0 && *k != key);
        shared.push((key, Arc::downgrade(&config)));
        Ok(config)
    }

    /// What makes two checks' configs the same; `None` when one of the files cannot be read.
    fn share_key(&self, alpn: &[&[u8]]) -> Option<ShareKey> {
        use sha2::Digest;
        let digest = |path: &Option<PathBuf>| -> Option<Option<[u8; 32]>> {
            match path {
                None => Some(None),
                Some(p) => std::fs::read(p)
                    .ok()
                    .map(|data| Some(sha2::Sha256::digest(data).into())),
            }
        };
        Some(ShareKey {
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            insecure_skip_verify: self.insecure_skip_verify,
            ca: digest(&self.ca_file)?,
            client_cert: digest(&self.client_cert)?,
            client_key: digest(&self.client_key)?,
        })
    }

    fn build_client_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, SpecError> {
        let mut roots = webpki_roots();
        if let Some(path) = &self.ca_file {
            let certs = read_certs(path).map_err(|e| SpecError::new("ca_file", e))?;
            if certs.is_empty() {
                return Err(SpecError::new(
                    "ca_file",
                    format!("{}: no PEM certificate found", path.display()),
                ));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    SpecError::new(
                        "ca_file",
                        format!("{}: unusable CA certificate: {e}", path.display()),
                    )
                })?;
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| SpecError::new("", e.to_string()))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert).map_err(|e| SpecError::new("client_cert", e))?;
                if chain.is_empty() {
                    return Err(SpecError::new(
                        "client_cert",
                        format!("{}: no PEM certificate found", cert.display()),
                    ));
                }
                let key = read_key(key).map_err(|e| SpecError::new("client_key", e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    SpecError::new(
                        "client_key",
                        format!("client certificate and key do not match: {e}"),
                    )
                })?
            }
            (Some(_), None) => {
                return Err(SpecError::new("client_key", "client_cert needs client_key"))
            }
            (None, Some(_)) => {
                return Err(SpecError::new(
                    "client_cert",
                    "client_key needs client_cert",
                ))
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn read_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))
}

fn read_key(path: &PathBuf) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key found", path.display()))
}

/// `insecure_skip_verify`: accepts any chain but still checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The earliest `notAfter` of a presented chain.
pub fn earliest_expiry(chain: &[CertificateDer<'_>]) -> Option<std::time::SystemTime> {
    chain
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
}

/// The facts every probe reports from a finished handshake: version and earliest certificate expiry.
/// The TLS handshake of a probe over a connection it opened, timed as the `tls` phase; a failure is `tls` and
/// names `host` (HTTP exchanges, TLS and gRPC checks).
pub(crate) async fn handshake<S>(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    stream: S,
    host: &str,
    phases: &mut crate::result::Phases,
) -> Result<tokio_rustls::client::TlsStream<S>, crate::result::ProbeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let t = std::time::Instant::now();
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| {
            crate::result::ProbeError::new(
                crate::result::ErrorType::Tls,
                describe_tls_error(&e, host),
            )
        })?;
    phases.add(crate::result::Phase::Tls, t.elapsed());
    Ok(tls)
}

pub fn facts(conn: &rustls::ClientConnection) -> crate::result::TlsFacts {
    crate::result::TlsFacts {
        version: version_name(conn.protocol_version()),
        earliest_cert_expiry: conn.peer_certificates().and_then(earliest_expiry),
    }
}

/// `TLS 1.3` style name of a negotiated version.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "unknown".into(),
    }
}

/// A human message for a failed handshake, naming what was wrong with the certificate.
pub fn describe_tls_error(err: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let Some(rustls_err) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return format!("TLS handshake with {host} failed: {err}");
    };
    match rustls_err {
        rustls::Error::InvalidCertificate(cert_err) => match cert_err {
            C::ExpiredContext { time, not_after } => {
                let ago = time.as_secs().saturating_sub(not_after.as_secs());
                format!(
                    "certificate of {host} expired {} ago (notAfter {})",
                    human_days(ago),
                    format_date(not_after.as_secs())
                )
            }
            C::Expired => format!("certificate of {host} expired"),
            C::NotValidYetContext { not_before, .. } => {
                format!(
                    "certificate of {host} not valid before {}",
                    format_date(not_before.as_secs())
                )
            }
            C::UnknownIssuer => {
                format!("certificate of {host} is not trusted (unknown issuer; self-signed or CA missing from ca_file)")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("certificate is not valid for host {host}")
            }
            other => format!("invalid certificate from {host}: {other:?}"),
        },
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// When a certificate's `notAfter` comes, for a person: `expires in 9 days (notAfter 2026-12-12)`, or once
/// passed `expired 30 days ago (notAfter ...)`: the remaining time is negative, never `expires in 0 days`.
pub fn describe_expiry(expiry: std::time::SystemTime, now: std::time::SystemTime) -> String {
    let date = format_date(
        expiry
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    );
    match expiry.duration_since(now) {
        Ok(left) => match left.as_secs() / 86_400 {
            1 => format!("expires in 1 day (notAfter {date})"),
            d => format!("expires in {d} days (notAfter {date})"),
        },
        Err(passed) => format!(
            "expired {} ago (notAfter {date})",
            human_days(passed.duration().as_secs())
        ),
    }
}

fn human_days(secs: u64) -> String {
    let days = secs / 86_400;
    match days {
        0 => format!("{} hours", secs / 3600),
        1 => "1 day".into(),
        d => format!("{d} days"),
    }
}

/// `2026-11-20` for a Unix timestamp.
pub fn format_date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_with_the_same_options_share_one_config_until_a_file_changes() {
        let pki = vantage_testkit::tls::TestPki::new();
        let with_ca = |path: &std::path::Path| TlsOptions {
            ca_file: Some(path.to_path_buf()),
            ..TlsOptions::default()
        };
        let a = with_ca(&pki.ca_file).client_config(&[b"h2"]).unwrap();
        let b = with_ca(&pki.ca_file).client_config(&[b"h2"]).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same CA file and ALPN: one config");
        // Another ALPN list, skipping verification, or another CA: configs of their own.
        let h1 = with_ca(&pki.ca_file).client_config(&[b"http/1.1"]).unwrap();
        assert!(!Arc::ptr_eq(&a, &h1));
        let insecure = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let i1 = insecure.client_config(&[b"h2"]).unwrap();
        assert!(Arc::ptr_eq(&i1, &insecure.client_config(&[b"h2"]).unwrap()));
        assert!(!Arc::ptr_eq(&a, &i1));
        // The same path with other contents (a CA rotated before a reload) is another config.
        let other = vantage_testkit::tls::TestPki::new();
        let copy = pki.dir.path().join("rotated.pem");
        std::fs::write(&copy, &pki.ca_pem).unwrap();
        let before = with_ca(&copy).client_config(&[b"h2"]).unwrap();
        assert!(Arc::ptr_eq(&before, &a), "same contents under another name");
        std::fs::write(&copy, &other.ca_pem).unwrap();
        let after = with_ca(&copy).client_config(&[b"h2"]).unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        // A file that cannot be read is still reported by name.
        let missing = with_ca(&pki.dir.path().join("missing.pem"))
            .client_config(&[b"h2"])
            .unwrap_err();
        assert_eq!(missing.field, "ca_file");
    }
}
