//! Test PKI made with rcgen: a CA, leaf certificates (valid, expired, wrong host, client) and rustls configs.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A throw-away certificate authority; its PEM is written to `ca_file` (inside `dir`, removed on drop).
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_pem: String,
    /// The CA certificate as a PEM file, for `tls.ca_file`.
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A leaf certificate and its key, in DER and PEM.
pub struct Leaf {
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
    /// The leaf's `notAfter`.
    pub not_after: OffsetDateTime,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    pub fn new() -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Vantage Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        let key = KeyPair::generate().expect("ca key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("self-signed ca");
        let ca_pem = ca.pem();
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write ca.pem");
        TestPki {
            ca,
            ca_pem,
            ca_file,
            dir,
        }
    }

    /// A server leaf for `names` (DNS names or IP literals) valid from `not_before` to `not_after`.
    pub fn leaf_with(
        &self,
        names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        client: bool,
    ) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        for n in names {
            params
                .subject_alt_names
                .push(match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName((*n).try_into().expect("dns name")),
                });
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            not_after,
        }
    }

    /// Valid for 127.0.0.1 and localhost, expiring in 90 days.
    pub fn valid_leaf(&self) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["localhost", "127.0.0.1"],
            now - Duration::days(1),
            now + Duration::days(90),
            false,
        )
    }

    /// Valid for 127.0.0.1 and localhost, expiring in `days` days (for `cert_valid_days` tests).
    pub fn leaf_expiring_in(&self, days: i64) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["localhost", "127.0.0.1"],
            now - Duration::days(1),
            now + Duration::days(days),
            false,
        )
    }

    /// Right names, but expired `days` days ago (valid for the 30 days before that).
    pub fn leaf_expired_days_ago(&self, days: i64) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["localhost", "127.0.0.1"],
            now - Duration::days(days + 30),
            now - Duration::days(days),
            false,
        )
    }

    /// Right names, but expired three days ago.
    pub fn expired_leaf(&self) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["localhost", "127.0.0.1"],
            now - Duration::days(30),
            now - Duration::days(3),
            false,
        )
    }

    /// Valid dates, but for another host (`wrong.example`).
    pub fn wrong_host_leaf(&self) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["wrong.example"],
            now - Duration::days(1),
            now + Duration::days(90),
            false,
        )
    }

    /// A client certificate (for mutual TLS tests).
    pub fn client_leaf(&self) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            &["vantage-client"],
            now - Duration::days(1),
            now + Duration::days(90),
            true,
        )
    }

    /// A server config for `leaf` that requires a client certificate signed by this CA.
    pub fn mtls_server_config(&self, leaf: &Leaf) -> Arc<ServerConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("add ca");
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("client verifier");
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![leaf.cert_der.clone()], leaf.private_key())
            .expect("server cert");
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

impl Leaf {
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server config presenting this leaf, offering h2 and http/1.1 by ALPN.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_alpn(&[b"h2", b"http/1.1"])
    }

    /// A rustls server config presenting this leaf with the given ALPN protocols (empty: no ALPN).
    pub fn server_config_alpn(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], self.private_key())
            .expect("server cert");
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// Write `cert.pem` and `key.pem` (prefixed by `stem`) into `dir`; returns (cert path, key path).
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt.pem"));
        let key = dir.join(format!("{stem}.key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}
