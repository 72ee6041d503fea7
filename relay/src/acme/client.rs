//! One ACME order for one name by TLS-ALPN-01 (RFC 8555, RFC 8737), through instant-acme:
//! the account (stored, or created once), the challenge certificate answered on the relay's
//! own TLS port, a fresh key and CSR, and the issued chain.

use super::certs::{Certs, Served};
use super::settings::Settings;
use super::store::{Store, StoreError, Stored};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server could not be reached, or answered with an error.
    #[error("ACME server: {0}")]
    Server(#[from] instant_acme::Error),
    /// The server offers no TLS-ALPN-01 challenge for the name.
    #[error("the ACME server offers no tls-alpn-01 challenge for {0}")]
    NoTlsAlpn(String),
    /// Validation failed.
    #[error("the ACME server could not validate {0}: check that it resolves to the home router and that the router forwards TCP 443 to this relay")]
    Invalid(String),
    /// The trust root file given with `--acme-ca-root` is unusable.
    #[error("ACME trust root: {0}")]
    CaRoot(String),
    /// Making the key, the CSR or the challenge certificate failed.
    #[error("making a key or signing request: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The challenge certificate's key was refused by rustls.
    #[error("challenge key: {0}")]
    Tls(#[from] rustls::Error),
    /// The issued certificate cannot be served.
    #[error("the issued certificate is unusable: {0}")]
    Unusable(#[from] super::certs::CertError),
    /// Storing the account or certificate failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The longest an order may take from start to certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// The longest restoring or creating the account may take: it holds the lock every order of
/// the relay waits for, so a server that stalls must not hold it for ever.
const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(60);

/// Restores the stored account for the configured server, or creates one and stores it.
pub async fn account(settings: &Settings, store: &Store) -> Result<Account, AcmeError> {
    tokio::time::timeout(ACCOUNT_TIMEOUT, account_inner(settings, store))
        .await
        .unwrap_or_else(|_| Err(AcmeError::Server(instant_acme::Error::Str("the ACME account request timed out"))))
}

async fn account_inner(settings: &Settings, store: &Store) -> Result<Account, AcmeError> {
    let directory = settings.directory_url();
    let builder = || match &settings.ca_root {
        Some(root) => {
            Account::builder_with_root(root).map_err(|e| AcmeError::CaRoot(format!("{}: {e}", root.display())))
        }
        None => Account::builder().map_err(AcmeError::from),
    };
    if let Some(credentials) = store.account(directory)? {
        return Ok(builder()?.from_credentials(credentials).await?);
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder()?.create(&new, directory.to_owned(), None).await?;
    store.save_account(directory, credentials)?;
    tracing::info!(directory, "created the ACME account");
    Ok(account)
}

/// Orders a certificate for `name`, answering the challenge through `certs`.
pub async fn order(account: &Account, name: &str, certs: &Arc<Certs>) -> Result<(Stored, Served), AcmeError> {
    let result = tokio::time::timeout(ORDER_TIMEOUT, order_inner(account, name, certs)).await;
    certs.end_challenge(name);
    result.unwrap_or_else(|_| Err(AcmeError::Server(instant_acme::Error::Str("the order timed out"))))
}

async fn order_inner(account: &Account, name: &str, certs: &Arc<Certs>) -> Result<(Stored, Served), AcmeError> {
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    tracing::info!(name, "ACME order placed");
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            _ => return Err(AcmeError::Invalid(name.to_owned())),
        }
        let mut challenge =
            authorization.challenge(ChallengeType::TlsAlpn01).ok_or_else(|| AcmeError::NoTlsAlpn(name.to_owned()))?;
        let identifier = challenge.identifier().to_string();
        let cert = challenge_certificate(&identifier, challenge.key_authorization().digest().as_ref())?;
        certs.begin_challenge(&identifier, cert);
        challenge.set_ready().await?;
    }
    let patient =
        RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(Duration::from_secs(60));
    if order.poll_ready(&patient).await? != OrderStatus::Ready {
        return Err(AcmeError::Invalid(name.to_owned()));
    }
    certs.end_challenge(name);
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&patient).await?;
    let stored = Stored { chain_pem, key_pem: zeroize::Zeroizing::new(key.serialize_pem()) };
    let served = Served::from_stored(&stored)?;
    Ok((stored, served))
}

/// The self-signed certificate that proves control of `name` to the validator: SAN = `name`,
/// the critical acmeIdentifier extension holding the key authorization's SHA-256 (RFC 8737).
fn challenge_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::default_provider().key_provider.load_private_key(der)?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)))
}
