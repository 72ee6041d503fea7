//! The certificates the TLS port serves, picked by SNI: the ones ACME issued (the relay's
//! domain and app names), the fallback (self-signed or the operator's files) for everything
//! else until the domain's own certificate exists, and TLS-ALPN-01 challenge certificates,
//! which only `acme-tls/1` handshakes ever see.

use super::store::Stored;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why PEM text is not a usable certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The PEM does not parse.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// The chain holds no certificate.
    #[error("no certificate in the chain")]
    Empty,
    /// The key is of an unsupported type or does not fit.
    #[error("unusable private key: {0}")]
    Key(rustls::Error),
    /// The leaf certificate does not parse as X.509.
    #[error("the certificate does not parse: {0}")]
    X509(String),
}

/// Where the certificate in use comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Issued by the ACME server for the relay's domain.
    Acme,
    /// Made by the relay itself: browsers warn on every device.
    SelfSigned,
    /// The operator's own files (`--tls-cert`).
    File,
}

/// Facts about one leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// DNS names it is valid for.
    pub names: Vec<String>,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Valid from, Unix seconds.
    pub not_before: u64,
    /// Valid until, Unix seconds.
    pub not_after: u64,
    /// SHA-256 of the certificate (what browsers show as its fingerprint), `AB:CD:..`.
    pub fingerprint: String,
}

impl Leaf {
    /// Reads the facts of a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::X509(e.to_string()))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => names.push((*n).to_owned()),
                    GeneralName::IPAddress(&[a, b, c, d]) => {
                        names.push(std::net::Ipv4Addr::new(a, b, c, d).to_string());
                    }
                    _ => {}
                }
            }
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let fingerprint = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let unix = |t: i64| u64::try_from(t).unwrap_or(0);
        Ok(Self {
            names,
            issuer: cert.issuer().to_string(),
            not_before: unix(cert.validity().not_before.timestamp()),
            not_after: unix(cert.validity().not_after.timestamp()),
            fingerprint,
        })
    }
}

/// A certificate ready to serve, with its facts.
#[derive(Clone)]
pub struct Served {
    /// The chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// The leaf's facts.
    pub leaf: Leaf,
}

impl Served {
    /// Loads PEM text.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let first = chain.first().ok_or(CertError::Empty)?;
        let leaf = Leaf::parse(first)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::Pem(e.to_string()))?;
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider.key_provider.load_private_key(key).map_err(CertError::Key)?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(CertError::Key)?;
        Ok(Self { key: Arc::new(certified), leaf })
    }

    /// Loads a stored ACME certificate.
    pub fn from_stored(stored: &Stored) -> Result<Self, CertError> {
        Self::from_pem(&stored.chain_pem, &stored.key_pem)
    }
}

/// Every certificate the relay serves. Shared by the TLS configurations and the ACME tasks.
pub struct Certs {
    domain: Option<String>,
    fallback: RwLock<Served>,
    fallback_kind: Kind,
    issued: RwLock<HashMap<String, Served>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    acme_state: Mutex<String>,
    installed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("domain", &self.domain)
            .field("fallback", &self.fallback_kind)
            .finish_non_exhaustive()
    }
}

impl Certs {
    /// Certificates for `domain` (none: only the fallback is ever served).
    pub fn new(domain: Option<String>, fallback: Served, fallback_kind: Kind) -> Self {
        Self {
            domain,
            fallback: RwLock::new(fallback),
            fallback_kind,
            issued: RwLock::default(),
            challenges: RwLock::default(),
            acme_state: Mutex::new(String::new()),
            installed: tokio::sync::watch::channel(0).0,
        }
    }

    /// The relay's domain, when it gets certificates by ACME.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Starts serving `served` for `name` (replacing an older one).
    pub fn install(&self, name: &str, served: Served) {
        self.issued.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), served);
        self.installed.send_modify(|n| *n += 1);
    }

    /// Serves `served` where the fallback was served (the operator's files were renewed).
    pub fn replace_fallback(&self, served: Served) {
        *self.fallback.write().unwrap_or_else(|p| p.into_inner()) = served;
    }

    /// Stops serving `name`'s certificate (handshakes naming it get the domain's again).
    pub fn remove(&self, name: &str) {
        self.issued.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// The issued certificate's facts for `name`.
    pub fn leaf(&self, name: &str) -> Option<Leaf> {
        self.issued.read().unwrap_or_else(|p| p.into_inner()).get(name).map(|s| s.leaf.clone())
    }

    /// Names with an issued certificate.
    pub fn issued_names(&self) -> Vec<String> {
        self.issued.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Waits until `name` has an issued certificate.
    pub async fn wait_for(&self, name: &str) {
        let mut installed = self.installed.subscribe();
        let _ = installed.wait_for(|_| self.leaf(name).is_some()).await;
    }

    /// Answers the TLS-ALPN-01 challenge for `name` with `cert` until [`Certs::end_challenge`].
    pub fn begin_challenge(&self, name: &str, cert: Arc<CertifiedKey>) {
        self.challenges.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), cert);
    }

    /// Stops answering the challenge for `name`.
    pub fn end_challenge(&self, name: &str) {
        self.challenges.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// Records what ACME is doing, for `status`.
    pub fn set_acme_state(&self, state: String) {
        *self.acme_state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The certificate a handshake naming `sni` gets, and its kind.
    pub fn pick(&self, sni: Option<&str>) -> (Served, Kind) {
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        let by_sni = sni.and_then(|name| issued.get(&name.to_ascii_lowercase()));
        let main = self.domain.as_ref().and_then(|d| issued.get(d));
        match by_sni.or(main) {
            Some(served) => (served.clone(), Kind::Acme),
            None => (self.fallback.read().unwrap_or_else(|p| p.into_inner()).clone(), self.fallback_kind),
        }
    }

    /// What `status` and the page show: the certificate served for the relay's own name.
    pub fn info(&self) -> CertificateInfo {
        let (served, kind) = self.pick(self.domain.as_deref());
        let app_certs = self.issued_names().iter().filter(|n| Some(n.as_str()) != self.domain.as_deref()).count();
        CertificateInfo {
            kind,
            domain: self.domain.clone(),
            names: served.leaf.names,
            issuer: served.leaf.issuer,
            not_after: served.leaf.not_after,
            fingerprint: served.leaf.fingerprint,
            acme: self.domain.as_ref().map(|_| self.acme_state.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            app_certs,
        }
    }
}

/// The certificate in use, as `status` and `/relay.json` report it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// acme, self-signed or file.
    pub kind: Kind,
    /// The relay's domain when it uses ACME.
    pub domain: Option<String>,
    /// Names the certificate is valid for.
    pub names: Vec<String>,
    /// Its issuer.
    pub issuer: String,
    /// Valid until, Unix seconds.
    pub not_after: u64,
    /// SHA-256 fingerprint, `AB:CD:..`.
    pub fingerprint: String,
    /// What ACME is doing (only with a domain).
    pub acme: Option<String>,
    /// App-name certificates held.
    pub app_certs: usize,
}

/// The resolver of ordinary handshakes: by SNI, else the domain's, else the fallback.
#[derive(Debug)]
pub struct BySni(pub Arc<Certs>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.pick(hello.server_name()).0.key)
    }
}

/// The resolver of `acme-tls/1` handshakes: only a live challenge for the exact SNI.
#[derive(Debug)]
pub struct Challenges(pub Arc<Certs>);

impl ResolvesServerCert for Challenges {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0.challenges.read().unwrap_or_else(|p| p.into_inner()).get(&name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(name: &str) -> Served {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        Served::from_pem(&made.cert.pem(), &made.signing_key.serialize_pem()).unwrap()
    }

    #[test]
    fn handshakes_get_their_names_certificate_else_the_domains_else_the_fallback() {
        let certs = Certs::new(Some("home.example.net".into()), served("fallback.invalid"), Kind::SelfSigned);
        let names = |sni: Option<&str>| {
            let (served, kind) = certs.pick(sni);
            (served.leaf.names, kind)
        };
        assert_eq!(
            names(Some("home.example.net")),
            (vec!["fallback.invalid".to_owned()], Kind::SelfSigned),
            "before the first order"
        );
        certs.install("home.example.net", served("home.example.net"));
        let app = "h-192-168-0-10-p80.home.example.net";
        certs.install(app, served(app));
        assert_eq!(names(Some("HOME.example.net")).0, vec!["home.example.net".to_owned()]);
        assert_eq!(names(Some(app)), (vec![app.to_owned()], Kind::Acme));
        assert_eq!(
            names(Some("h-10-0-0-1-p80.home.example.net")).0,
            vec!["home.example.net".to_owned()],
            "unknown names get the domain's"
        );
        assert_eq!(names(None).0, vec!["home.example.net".to_owned()]);
        let info = certs.info();
        assert_eq!((info.kind, info.app_certs), (Kind::Acme, 1));
        assert_eq!(info.fingerprint.len(), 32 * 3 - 1);
    }
}
