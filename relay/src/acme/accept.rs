//! The TLS handshake on the one port: read the ClientHello first, answer `acme-tls/1` hellos
//! (the ACME server validating a TLS-ALPN-01 challenge) with the challenge certificate and close,
//! let a first handshake for an app name whose certificate a device asked for wait (in its own
//! task) for it, and finish everything else with the normal configuration, whose resolver picks
//! by SNI.

use super::certs::{BySni, Certs, Challenges};
use super::keeper::Keeper;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::Acceptor as HelloReader;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Longest a first handshake for an app name waits for the certificate being obtained; after
/// that it gets the domain's certificate (and the browser a name mismatch) while the order goes
/// on.
const APP_NAME_WAIT: Duration = Duration::from_secs(8);

/// Longest a handshake for an app name nobody asked for yet waits for a device's demand (see
/// [`Keeper::pending`]).
const DEMAND_GRACE: Duration = Duration::from_secs(1);

/// Accepts TLS connections on the relay's port.
#[derive(Clone)]
pub struct Acceptor {
    normal: Arc<ServerConfig>,
    challenge: Option<Arc<ServerConfig>>,
    keeper: Option<Arc<Keeper>>,
}

/// A fixed configuration (tests): no challenges, no app names.
impl From<tokio_rustls::TlsAcceptor> for Acceptor {
    fn from(plain: tokio_rustls::TlsAcceptor) -> Self {
        Self { normal: plain.config().clone(), challenge: None, keeper: None }
    }
}

impl Acceptor {
    /// An acceptor serving `certs`; `keeper` obtains app-name certificates when devices ask.
    pub fn new(certs: Arc<Certs>, keeper: Option<Arc<Keeper>>) -> Result<Self, rustls::Error> {
        let config = |resolver: Arc<dyn rustls::server::ResolvesServerCert>, alpn: &[u8]| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut tls = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(resolver);
            tls.alpn_protocols = vec![alpn.to_vec()];
            Ok::<_, rustls::Error>(Arc::new(tls))
        };
        Ok(Self {
            normal: config(Arc::new(BySni(certs.clone())), b"http/1.1")?,
            challenge: Some(config(Arc::new(Challenges(certs)), ACME_TLS_ALPN)?),
            keeper,
        })
    }

    /// The keeper of app-name certificates (a relay with a domain).
    pub fn keeper(&self) -> Option<&Arc<Keeper>> {
        self.keeper.as_ref()
    }

    /// Reads the ClientHello, and nothing more: a connection that has not sent it yet has cost
    /// no handshake work. Go on with [`Acceptor::finish`].
    pub async fn read_hello(&self, stream: TcpStream) -> io::Result<StartHandshake<TcpStream>> {
        LazyConfigAcceptor::new(HelloReader::default(), stream).await
    }

    /// Runs the rest of the handshake after [`Acceptor::read_hello`]. `Ok(None)` when it was a
    /// TLS-ALPN-01 validation (answered, nothing more to serve on it).
    pub async fn finish(&self, start: StartHandshake<TcpStream>) -> io::Result<Option<TlsStream<TcpStream>>> {
        let hello = start.client_hello();
        let validation = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if let (true, Some(challenge)) = (validation, &self.challenge) {
            let sni = hello.server_name().unwrap_or_default().to_owned();
            let mut tls = start.into_stream(challenge.clone()).await?;
            tracing::info!(name = %sni, "answered a TLS-ALPN-01 validation");
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
            return Ok(None);
        }
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        // A handshake never orders a certificate, nor keeps one in use (anyone can send one, and
        // app names are public in certificate logs); it may wait for one a device asked for.
        if let (Some(keeper), Some(sni)) = (&self.keeper, sni) {
            if keeper.pending(&sni, DEMAND_GRACE).await {
                let _ = tokio::time::timeout(APP_NAME_WAIT, keeper.certs().wait_for(&sni)).await;
            }
        }
        Ok(Some(start.into_stream(self.normal.clone()).await?))
    }
}
