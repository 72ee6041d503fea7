//! Trusted HTTPS by itself: the relay gets its certificate from an ACME server (Let's Encrypt
//! by default) with the TLS-ALPN-01 challenge on its one TLS port, keeps it renewed, and gets
//! certificates for app names (`h-A-B-C-D-pPORT.DOMAIN`, see docs/names.md) when an enrolled
//! device asks for one through its tunnel (never because a handshake named it). Without a
//! domain it serves the self-signed fallback and says what that costs.
//!
//! - [`settings`]: the `[acme]` table and its flags.
//! - [`names`]: the app-name encoding and which names may get a certificate.
//! - [`store`]: account and certificates on disk.
//! - [`client`]: one ACME order.
//! - [`certs`]: what the TLS port serves, by SNI.
//! - [`files`]: the operator's own certificate files, read again when they change.
//! - [`keeper`]: obtaining, renewing, backoff, on-demand caps.
//! - [`accept`]: the handshake (ClientHello first).

pub mod accept;
pub mod certs;
pub mod client;
pub mod files;
pub mod keeper;
pub mod names;
pub mod settings;
pub mod store;

pub use certs::{CertificateInfo, Kind};
pub use settings::{AcmeArgs, Settings};

use crate::config::Config;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

static CURRENT: OnceLock<Arc<certs::Certs>> = OnceLock::new();

/// Loads the fallback and stored certificates, starts the ACME tasks when the relay has a
/// domain, and returns the acceptor for the TLS port. Never fails because the ACME server is
/// unreachable: the relay then serves what it has and retries with backoff.
pub fn start(dir: &Path, config: &Config, tunnel_address: Ipv4Addr) -> anyhow::Result<accept::Acceptor> {
    let cert_path = Config::resolve(dir, &config.tls_cert);
    let key_path = Config::resolve(dir, &config.tls_key);
    let fallback = files::load(&cert_path, &key_path)?;
    let fallback_kind = if config.self_signed { Kind::SelfSigned } else { Kind::File };
    let domain = config.self_signed.then(|| config.acme.effective_domain(&config.public_url)).flatten();
    let has_domain = domain.is_some();
    let certs = Arc::new(certs::Certs::new(domain, fallback, fallback_kind));
    let _ = CURRENT.set(certs.clone());
    if fallback_kind == Kind::File {
        tokio::spawn(files::watch(files::FileCert::new(cert_path, key_path), certs.clone()));
    }
    if !has_domain {
        return Ok(accept::Acceptor::new(certs, None)?);
    }

    let store = store::Store::new(dir);
    let now = crate::state::unix_now();
    for name in store.names() {
        let loaded = store.certificate(&name).ok().flatten().map(|s| certs::Served::from_stored(&s));
        match loaded {
            Some(Ok(served)) if served.leaf.not_after > now && served.leaf.names.contains(&name) => {
                tracing::info!(
                    name,
                    "using the stored certificate (valid until {})",
                    crate::qr::utc(served.leaf.not_after)
                );
                certs.install(&name, served);
            }
            Some(Err(e)) => tracing::warn!(name, "stored certificate unusable, ordering a new one: {e}"),
            _ => {}
        }
    }
    let app_names = app_names(config, tunnel_address);
    certs.set_acme_state(format!("obtaining a certificate from {}", config.acme.directory_url()));
    let keeper = keeper::Keeper::new(certs.clone(), store, config.acme.clone(), app_names);
    keeper.start();
    Ok(accept::Acceptor::new(certs, Some(keeper))?)
}

/// The app-name policy of `config` (which names get certificates and are served as app
/// origins): `None` without a domain, or when the relay's own addresses cannot be read (then
/// a warning is logged). `tunnel_address` is the relay's address in the tunnel.
pub fn app_names(config: &Config, tunnel_address: Ipv4Addr) -> Option<names::AppNames> {
    let domain = config.self_signed.then(|| config.acme.effective_domain(&config.public_url)).flatten()?;
    match crate::net::detect::addresses() {
        Ok(addresses) => {
            let mut own: Vec<Ipv4Addr> = addresses.iter().map(|a| a.address).collect();
            own.push(tunnel_address);
            Some(names::AppNames { domain, lan: config.lan, own })
        }
        Err(e) => {
            tracing::warn!("app names disabled: the relay's own addresses are unknown ({e:#})");
            None
        }
    }
}

/// The certificate in use by this running relay (`None` before [`start`]).
pub fn info() -> Option<CertificateInfo> {
    CURRENT.get().map(|certs| certs.info())
}

/// Lines for people: the certificate, and what a self-signed one costs.
pub fn describe(info: &CertificateInfo) -> Vec<String> {
    let until = crate::qr::utc(info.not_after);
    let mut lines = match info.kind {
        Kind::Acme => vec![format!("trusted, for {} from {}, valid until {until}", info.names.join(", "), info.issuer)],
        Kind::File => vec![format!("from your files, issued by {}, valid until {until}", info.issuer)],
        Kind::SelfSigned if info.domain.is_some() => vec![format!(
            "self-signed until the trusted certificate for {} arrives (SHA-256 {})",
            info.domain.as_deref().unwrap_or("-"),
            info.fingerprint
        )],
        Kind::SelfSigned => vec![
            "self-signed: every device shows a certificate warning, and home web apps cannot work.".to_owned(),
            format!("  Before accepting the warning, compare the SHA-256 fingerprint: {}", info.fingerprint),
            "  For a trusted certificate give the relay a DNS name: --domain home.example.net (deploy/README.md)."
                .to_owned(),
        ],
    };
    if let Some(state) = info.acme.as_ref().filter(|s| !s.is_empty()) {
        lines.push(format!("  ACME ({}): {state}", info.domain.as_deref().unwrap_or("-")));
    }
    if info.app_certs > 0 {
        lines.push(format!("  app-name certificates: {}", info.app_certs));
    }
    lines
}
