//! The TLS certificate: loaded from PEM files, or a self-signed one made once and kept.

use crate::config::Config;
use anyhow::{bail, Context};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// Checks that the relay can serve the certificate `config` names, before anything is saved:
/// both files load as a certificate chain and the key that belongs to it (as `serve` loads
/// them), or they are missing and the relay may make a self-signed one. Returns whether one
/// is to be made; an error names the file at fault.
pub fn check_certificate(dir: &Path, config: &Config) -> anyhow::Result<bool> {
    let cert_path = Config::resolve(dir, &config.tls_cert);
    let key_path = Config::resolve(dir, &config.tls_key);
    if !(cert_path.exists() && key_path.exists()) {
        if config.self_signed {
            return Ok(true);
        }
        bail!(missing(&cert_path, &key_path));
    }
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    crate::acme::certs::Served::from_pem(&read(&cert_path)?, &read(&key_path)?)
        .with_context(|| format!("TLS certificate {} and key {}", cert_path.display(), key_path.display()))?;
    Ok(false)
}

/// Makes the self-signed certificate when it is allowed and the files are missing.
/// Returns whether a new certificate was made.
pub fn ensure_certificate(dir: &Path, config: &Config) -> anyhow::Result<bool> {
    let cert_path = Config::resolve(dir, &config.tls_cert);
    let key_path = Config::resolve(dir, &config.tls_key);
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    if !config.self_signed {
        bail!(missing(&cert_path, &key_path));
    }
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = url_host(&config.public_url) {
        names.insert(0, host.to_owned());
    }
    if !config.listen.ip().is_unspecified() {
        names.push(config.listen.ip().to_string());
    }
    names.dedup();
    let made = rcgen::generate_simple_self_signed(names).context("creating a self-signed certificate")?;
    crate::state::atomic::write(&key_path, made.signing_key.serialize_pem().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", key_path.display()))?;
    crate::state::atomic::write(&cert_path, made.cert.pem().as_bytes(), 0o644)
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(true)
}

/// Which of the two files is not there.
fn missing(cert_path: &Path, key_path: &Path) -> String {
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => {
            format!("TLS certificate {} and key {} are missing", cert_path.display(), key_path.display())
        }
        (false, true) => format!("TLS certificate {} is missing", cert_path.display()),
        _ => format!("TLS key {} is missing", key_path.display()),
    }
}

/// A fixed rustls server configuration (HTTP/1.1 only) from the files; the running relay
/// serves through `crate::acme` instead.
pub fn server_config(dir: &Path, config: &Config) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_path = Config::resolve(dir, &config.tls_cert);
    let key_path = Config::resolve(dir, &config.tls_key);
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate {}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| format!("reading key {}", key_path.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not fit together")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// SHA-256 of the certificate (the first of the chain in `tls_cert`) as `AB:CD:..`: what a
/// browser's certificate viewer, `serve` and `status` show. `None` when the file does not hold
/// a readable certificate.
pub fn certificate_fingerprint(dir: &Path, config: &Config) -> Option<String> {
    let pem = std::fs::read(Config::resolve(dir, &config.tls_cert)).ok()?;
    let first = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    crate::acme::certs::Leaf::parse(&first).ok().map(|leaf| leaf.fingerprint)
}

/// SHA-256 of the certificate key's SubjectPublicKeyInfo, base64: not what a certificate viewer
/// shows, but what Chromium's `--ignore-certificate-errors-spki-list` takes (the end-to-end
/// tests start their browser with it). `None` when the key type is unknown.
pub fn spki_sha256(dir: &Path, config: &Config) -> Option<String> {
    use base64::Engine;
    let pem = std::fs::read_to_string(Config::resolve(dir, &config.tls_key)).ok()?;
    let key = rcgen::KeyPair::from_pem(&pem).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &rcgen::PublicKeyData::subject_public_key_info(&key));
    Some(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

/// The host part of an `https://host[:port][/...]` URL.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if authority.starts_with('[') {
        authority.split_once(']').map(|(h, _)| &h[1..])?
    } else {
        authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        let cases = [
            ("https://home.example.net", Some("home.example.net")),
            ("https://10.0.0.1:8443/x", Some("10.0.0.1")),
            ("https://[::1]:443", Some("::1")),
            ("nonsense", None),
        ];
        for (url, want) in cases {
            assert_eq!(url_host(url), want, "{url}");
        }
    }
}
