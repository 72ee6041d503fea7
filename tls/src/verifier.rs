//! The certificate policy: any certificate is accepted, but the host must prove it holds the
//! certificate's key.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// Accepts any end-entity certificate, and checks the handshake signature made with its key.
///
/// Why accept any certificate: the LAN devices this client talks to (a NAS, Proxmox, UniFi)
/// show self-signed certificates for names and addresses no public CA vouches for, so a chain
/// check would refuse them all. Trust is decided by the caller instead: after the handshake and
/// before sending any application data it compares the SHA-256 of
/// [`Client::peer_certificate`](crate::Client::peer_certificate) with the one it pinned the
/// first time (trust on first use), as SSH does with host keys.
///
/// Why the signatures are still checked: a pin on a certificate is only worth something if the
/// host showing that certificate holds its private key. Anybody can copy a certificate (it is
/// public); only the holder of its key can sign the handshake. The host signs the handshake
/// transcript (TLS 1.3 `CertificateVerify`) or its ephemeral key exchange parameters (TLS 1.2
/// `ServerKeyExchange`) with the certificate's key, and these two methods verify that
/// signature with rustls' own [`verify_tls12_signature`] / [`verify_tls13_signature`] and the
/// crypto provider's algorithms. Without them an interceptor could replay a pinned
/// certificate while negotiating keys of its own, and the pin would pass.
///
/// Validity dates, names and key usages are not checked: a pinned self-signed certificate
/// that has expired still identifies the same key, and home devices rarely renew theirs.
/// Session resumption is turned off in the client (`Client::new`), so every connection shows
/// its certificate and signs anew.
#[derive(Debug)]
pub(crate) struct AnyCertificate {
    /// The provider's signature algorithms (ECDSA, Ed25519, RSA PKCS#1 and PSS).
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    pub(crate) fn new(algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { algorithms }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The caller pins the certificate after the handshake (see the type's documentation).
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
