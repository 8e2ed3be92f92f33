//! TLS settings, built once from the config: the acceptor for clients (`[tls]`) and, per
//! database, how to connect to its servers (`server_tls`, `server_ca`). Certificates and keys
//! are read here; a file that cannot be read or parsed is an error that names its key. The
//! crypto is rustls with the `ring` provider.

use crate::config::{ClientTls, ClientTlsMode, ServerTlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The ALPN protocol name PostgreSQL 17 clients offer (and require for direct TLS).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{key}: cannot read certificates from {}: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("{key}: no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn root_store(path: &Path, key: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, key)? {
        roots
            .add(cert)
            .map_err(|e| format!("{key}: unusable CA certificate in {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// TLS toward clients (`[tls]`).
pub struct ClientTlsConfig {
    pub acceptor: TlsAcceptor,
    /// `mode = "require"`: logins without TLS are refused.
    pub required: bool,
    /// `ca` is set: clients are asked for certificates.
    pub asks_for_certificates: bool,
    /// The channel-binding hash of our certificate, for SCRAM-SHA-256-PLUS.
    pub cert_hash: Vec<u8>,
}

impl ClientTlsConfig {
    pub fn load(t: &ClientTls) -> Result<ClientTlsConfig, String> {
        let certs = read_certs(&t.cert, "tls.cert")?;
        crate::util::files::warn_if_others_can_read(&t.key, "the TLS key (tls.key)");
        let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| {
            format!(
                "tls.key: cannot read a private key from {}: {e}",
                t.key.display()
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?;
        let builder = match &t.ca {
            Some(ca) => {
                // As PostgreSQL's ssl_ca_file: a certificate presented must verify; a client
                // without one may still log in (unless an authentication rule says `cert`).
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(root_store(ca, "tls.ca")?),
                    provider(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls.ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let cert_hash = end_point_hash(&certs[0]);
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls: the certificate and key do not fit together: {e}"))?;
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(ClientTlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            required: t.mode == ClientTlsMode::Require,
            asks_for_certificates: t.ca.is_some(),
            cert_hash,
        })
    }
}

/// How to connect to one database's servers.
pub struct ServerTlsConfig {
    pub mode: ServerTlsMode,
    /// None for `disable`.
    connector: Option<TlsConnector>,
}

impl ServerTlsConfig {
    /// `key` names the settings in errors (e.g. `databases.app`).
    pub fn load(
        mode: ServerTlsMode,
        ca: Option<&Path>,
        key: &str,
    ) -> Result<ServerTlsConfig, String> {
        let ca_key = format!("{key}.server_ca");
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            ServerTlsMode::Disable => {
                return Ok(ServerTlsConfig {
                    mode,
                    connector: None,
                })
            }
            // As libpq: "prefer" and "require" encrypt without checking who answers.
            ServerTlsMode::Prefer | ServerTlsMode::Require => Arc::new(AnyCertificate(provider())),
            ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull => {
                let ca = ca.ok_or_else(|| format!("{ca_key}: required by server_tls"))?;
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(root_store(ca, &ca_key)?),
                    provider(),
                )
                .build()
                .map_err(|e| format!("{ca_key}: {e}"))?;
                if mode == ServerTlsMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(AnyName(webpki))
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{key}: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(ServerTlsConfig {
            mode,
            connector: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// Plain TCP, no SSLRequest.
    pub fn disabled() -> ServerTlsConfig {
        ServerTlsConfig {
            mode: ServerTlsMode::Disable,
            connector: None,
        }
    }

    pub fn connector(&self) -> Option<&TlsConnector> {
        self.connector.as_ref()
    }
}

/// The `tls-server-end-point` channel-binding value of a certificate (RFC 5929): its hash
/// with the hash function of its signature algorithm, SHA-256 for MD5, SHA-1 and anything
/// unrecognised.
pub fn end_point_hash(der: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let algorithm = x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.signature_algorithm.algorithm.to_id_string())
        .unwrap_or_default();
    match algorithm.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => sha2::Sha384::digest(der).to_vec(),
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => sha2::Sha512::digest(der).to_vec(),
        _ => sha2::Sha256::digest(der).to_vec(),
    }
}

/// The subject's common name of a certificate (DER).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// The name a server's certificate must carry: the host part of `host:port` (a DNS name or
/// an IP address, brackets removed).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))
}

/// `prefer` / `require`: any certificate is taken (the handshake's signatures are still
/// checked, so the session key belongs to whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// `verify-ca`: the chain must lead to `server_ca`; the host name is not compared.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(e)) if name_mismatch(&e) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The chain verified but names another host (webpki checks the name last).
fn name_mismatch(e: &CertificateError) -> bool {
    matches!(
        e,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    )
}
