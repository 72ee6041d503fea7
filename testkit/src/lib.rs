//! How a test reaches a relay as a client does, in one place for the relay's own tests and the
//! end-to-end tests:
//!
//! - [`PinnedCert`]: TLS that trusts exactly the relay's certificate (its signatures are still
//!   checked) and nothing else;
//! - [`connect`]: TCP, that TLS and the `/tunnel` WebSocket upgrade;
//! - [`handshake`]: the Noise hello and the relay's reply, giving the client's session;
//! - [`packet`]: hand-built IPv4 packets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod packet;

use futures_util::{SinkExt, StreamExt};
use hometun_shared::handshake::Initiator;
use hometun_shared::invite::Invite;
use hometun_shared::keys::{PublicKey, SecretKey};
use hometun_shared::session::{self, Params, Session};
use hometun_shared::time::Instant;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub use tokio_rustls::rustls::pki_types;
pub use tokio_tungstenite::tungstenite;

/// The WebSocket to the relay, over TLS.
pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// Why a test could not reach the relay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("tcp: {0}")]
    Tcp(std::io::Error),
    /// The TLS handshake failed (for example another certificate than the pinned one).
    #[error("tls: {0}")]
    Tls(std::io::Error),
    /// The client's TLS settings could not be built.
    #[error("tls settings: {0}")]
    TlsSettings(rustls::Error),
    /// The WebSocket upgrade failed, or the WebSocket broke.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The Noise handshake failed or the relay refused (see [`session::Error::Refused`]).
    #[error("handshake: {0}")]
    Handshake(session::Error),
    /// The relay closed the WebSocket before answering the hello.
    #[error("the relay closed the connection during the handshake")]
    ClosedDuringHandshake,
}

/// Reads the certificate to pin from a PEM file (the relay's `tls-cert.pem`).
pub fn cert_from_file(cert_pem: &std::path::Path) -> Result<CertificateDer<'static>, pki_types::pem::Error> {
    use pki_types::pem::PemObject;
    CertificateDer::from_pem_file(cert_pem)
}

/// Opens TCP to `addr` (from `bind`, if given), TLS trusting only `cert`, and the WebSocket
/// upgrade to `/tunnel`, accepting messages up to `max_message` bytes.
pub async fn connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    bind: Option<IpAddr>,
    max_message: usize,
) -> Result<Ws, Error> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(Error::Tcp)?;
    if let Some(bind) = bind {
        socket.bind(SocketAddr::new(bind, 0)).map_err(Error::Tcp)?;
    }
    let tcp = socket.connect(addr).await.map_err(Error::Tcp)?;
    tcp.set_nodelay(true).map_err(Error::Tcp)?;
    let tls = tokio_rustls::TlsConnector::from(tls_config(cert)?)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(Error::Tls)?;
    let url = format!("wss://{addr}/tunnel");
    let config = WebSocketConfig::default().max_message_size(Some(max_message)).max_frame_size(Some(max_message));
    let (ws, _response) = tokio_tungstenite::client_async_with_config(url, tls, Some(config)).await?;
    Ok(ws)
}

/// Sends the hello for `key` (enrolling with `invite`, if given) and reads the relay's reply:
/// the client's fresh session. What the session then queues is left to the caller to send.
/// `now` is the caller's clock, the one it will drive the session with.
pub async fn handshake(
    ws: &mut Ws,
    key: &SecretKey,
    relay_key: &PublicKey,
    invite: Option<&Invite>,
    params: &Params,
    now: impl Fn() -> Instant,
) -> Result<Session, Error> {
    let (initiator, hello) =
        Initiator::start(key, relay_key, invite, params, now(), &mut rand_core::OsRng).map_err(Error::Handshake)?;
    ws.send(Message::Binary(hello.into())).await?;
    let reply = loop {
        match ws.next().await {
            Some(Ok(Message::Binary(reply))) => break reply,
            Some(Ok(Message::Close(_))) | None => return Err(Error::ClosedDuringHandshake),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    };
    initiator.handle_reply(now(), &reply).map_err(Error::Handshake)
}

/// Client TLS settings that trust exactly `cert`.
pub fn tls_config(cert: &CertificateDer<'static>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCert { cert: cert.clone(), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::TlsSettings)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts exactly one certificate (the relay's, typically self-signed); signatures are still
/// checked.
#[derive(Debug)]
pub struct PinnedCert {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
