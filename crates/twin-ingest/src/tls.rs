//! MQTT over TLS (`mqtts://`), for ingestion and for notifications: the rustls client configuration (whom to trust,
//! and the hub's own certificate for mutual TLS) and readable reasons for failed handshakes.
//!
//! Trust is either the certificates of a PEM file (`ca_file`: a city's private CA; it replaces the system's roots)
//! or the machine's root certificates (read from the operating system's store when the configuration is built, no
//! network involved). The crypto provider is rustls' aws-lc-rs, the one reqwest's HTTPS uses too.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// Where the TLS settings come from: all paths to PEM files.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    /// The CA certificate(s) to trust instead of the system's roots.
    pub ca_file: Option<&'a Path>,
    /// The hub's certificate (chain) and its private key, for brokers that require client certificates.
    pub client_cert_file: Option<&'a Path>,
    pub client_key_file: Option<&'a Path>,
}

/// Builds the rustls client configuration. Errors name the file and what is wrong with it, never its content.
pub fn client_config(files: TlsFiles<'_>) -> Result<Arc<ClientConfig>, String> {
    let roots = match files.ca_file {
        Some(path) => ca_roots(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (files.client_cert_file, files.client_key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_cert_file")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "client_key_file {}: no private key could be read ({})",
                    key.display(),
                    pem_error(&e)
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!("client certificate and key do not make a TLS identity: {e}")
            })?
        }
        _ => return Err("client_cert_file and client_key_file go together".into()),
    };
    Ok(Arc::new(config))
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    // fixed texts: a key file's content never goes into a message
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in it".into(),
        Error::MissingSectionEnd { .. } => "not valid PEM: a section has no END line".into(),
        Error::IllegalSectionStart { .. } => "not valid PEM: a malformed BEGIN line".into(),
        Error::Base64Decode(_) => "not valid PEM: bad base64 in a section".into(),
        _ => "not valid PEM".into(),
    }
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn ca_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, "ca_file")? {
        roots.add(cert).map_err(|e| {
            format!(
                "ca_file {}: a certificate is not usable as a CA: {e}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(format!(
            "no root certificates were found on this machine{why}: install the system's CA certificates or give a CA file"
        ));
    }
    Ok(roots)
}

/// The rustls error somewhere in `e`'s chain of causes (rumqttc and tokio-rustls wrap it in I/O errors).
pub fn rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// Says what a TLS failure means for an operator: whether the broker's certificate was not trusted, was for another
/// host or out of date, or the broker refused the hub's certificate (or its lack of one). None when `e` is not a
/// TLS error.
pub fn explain(e: &(dyn StdError + 'static), host: &str) -> Option<String> {
    let r = rustls_error(e)?;
    let what = match r {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the broker's certificate is not signed by a trusted CA (check the CA file, or \
                 the machine's root certificates when none is configured)"
                    .to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the broker's certificate is not valid for the host name {host:?}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet (check the clocks)".to_string()
            }
            CertificateError::Revoked => "the broker's certificate is revoked".to_string(),
            _ => "the broker's certificate was refused".to_string(),
        },
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::CertificateRequired | A::HandshakeFailure => format!(
                    "the broker refused the TLS connection ({alert:?}): it may require a client certificate (client_cert_file and client_key_file)"
                ),
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::UnsupportedCertificate
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::AccessDenied => format!(
                    "the broker refused the hub's client certificate ({alert:?})"
                ),
                _ => format!("the broker ended the TLS handshake ({alert:?})"),
            }
        }
        _ => "the TLS handshake failed".to_string(),
    };
    Some(format!("TLS with the broker {host} failed: {what}: {r}"))
}
