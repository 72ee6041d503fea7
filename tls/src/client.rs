//! The TLS connection to one LAN host, sans-IO: bytes from the TCP stream go in through
//! [`Client::receive`], bytes for the stream come out of [`Client::take_outgoing`], decrypted
//! application bytes out of [`Client::take_plaintext`].
//!
//! A caller's loop: `new`, send `take_outgoing()` (the ClientHello); on every chunk from TCP,
//! `receive` it, send `take_outgoing()`, use `take_plaintext()`. When `is_handshaking()` turns
//! false, compare the SHA-256 of `peer_certificate()` with the pinned one, and only then `send`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion};

use crate::error::TlsError;
use crate::verifier::AnyCertificate;

/// The most decrypted bytes a [`Client`] keeps for the caller: [`Client::receive`] fails
/// with [`TlsError::TooMuchUnread`] beyond it. A caller that takes the plaintext after every
/// `receive` of at most this many bytes never reaches it.
pub const MAX_UNREAD_PLAINTEXT: usize = 1 << 20;

/// A TLS client connection to one LAN host (wraps [`rustls::ClientConnection`]).
///
/// TLS 1.3 and 1.2 with ECDHE key exchange (X25519, P-256, P-384) and AEAD ciphers
/// (AES-GCM, ChaCha20-Poly1305), ring's suites. Any certificate is accepted; the caller pins
/// it (see the crate documentation).
pub struct Client {
    connection: ClientConnection,
    /// Decrypted bytes not yet taken by the caller (at most [`MAX_UNREAD_PLAINTEXT`]).
    plaintext: Vec<u8>,
    /// The first error; every later `receive` and `send` returns it again.
    failed: Option<TlsError>,
    /// The caller queued close_notify.
    closed: bool,
    /// The host sent close_notify.
    peer_closed: bool,
}

impl Client {
    /// A client for the LAN host at `ip` (no SNI is sent for an IP address). The ClientHello
    /// is ready in [`take_outgoing`](Self::take_outgoing) at once.
    pub fn new(ip: Ipv4Addr) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate::new(provider.signature_verification_algorithms));
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Handshake(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Every connection shows its certificate and proves it holds its key (a resumed
        // session would skip both, and each Client has its own config anyway).
        config.resumption = Resumption::disabled();
        let server = ServerName::IpAddress(IpAddr::V4(ip).into());
        let mut connection =
            ClientConnection::new(Arc::new(config), server).map_err(|e| TlsError::Handshake(e.to_string()))?;
        // What `send` encrypts waits in rustls until `take_outgoing`; the caller bounds it by
        // what it sends (rustls' default 64 KiB limit would make a larger `send` fail).
        connection.set_buffer_limit(None);
        Ok(Self { connection, plaintext: Vec::new(), failed: None, closed: false, peer_closed: false })
    }

    /// Feeds bytes received from the TCP stream (any amount, any split) and processes the
    /// complete records among them; an incomplete record waits for the next call. Bytes after
    /// the host's close_notify are ignored.
    ///
    /// On error (not TLS, a failed handshake, a corrupted record, more than
    /// [`MAX_UNREAD_PLAINTEXT`] bytes left untaken) the connection is dead: the same error comes
    /// back from every later call, and [`take_outgoing`](Self::take_outgoing) may still hold
    /// an alert telling the host why.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), TlsError> {
        self.check()?;
        let mut rest = bytes;
        // Never hand rustls an empty read: it takes one as the end of the TCP stream.
        while !rest.is_empty() {
            match self.connection.read_tls(&mut rest) {
                Ok(0) => break, // close_notify seen: nothing more is read
                Ok(_) => {}
                Err(e) => return self.fail(TlsError::NotTls(e.to_string())),
            }
            let handshaking = self.connection.is_handshaking();
            let state = match self.connection.process_new_packets() {
                Ok(state) => state,
                Err(e) => return self.fail(TlsError::from_rustls(e, handshaking)),
            };
            let available = state.plaintext_bytes_to_read();
            self.peer_closed |= state.peer_has_closed();
            if self.plaintext.len() + available > MAX_UNREAD_PLAINTEXT {
                return self.fail(TlsError::TooMuchUnread { limit: MAX_UNREAD_PLAINTEXT });
            }
            let start = self.plaintext.len();
            self.plaintext.resize(start + available, 0);
            if let Err(e) = self.connection.reader().read_exact(&mut self.plaintext[start..]) {
                self.plaintext.truncate(start);
                return self.fail(TlsError::Failed(e.to_string()));
            }
        }
        Ok(())
    }

    /// Bytes to send on the TCP stream now (handshake messages, records, alerts,
    /// close_notify); empty if none. Call after `new`, `receive`, `send` and `close`.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.connection.wants_write() {
            // Writing into a Vec cannot fail; stop on the impossible rather than spin.
            match self.connection.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    /// Decrypted application bytes received so far (empty if none); take them after every
    /// `receive`.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.plaintext)
    }

    /// Queues application bytes to send (encrypted into [`take_outgoing`](Self::take_outgoing)).
    ///
    /// Refused with [`TlsError::NotReady`] before the handshake is done (the caller checks the
    /// certificate first), with [`TlsError::Closed`] after [`close`](Self::close), and with the
    /// connection's error once it has failed.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), TlsError> {
        self.check()?;
        if self.closed {
            return Err(TlsError::Closed);
        }
        if self.connection.is_handshaking() {
            return Err(TlsError::NotReady);
        }
        if let Err(e) = self.connection.writer().write_all(plaintext) {
            return self.fail(TlsError::Failed(e.to_string()));
        }
        Ok(())
    }

    /// True until the handshake has finished (successfully: a failed one stays "handshaking"
    /// and `receive` reports the error).
    pub fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// True once the host sent close_notify: all its data has arrived. A TCP stream that ends
    /// while this is false was cut short (the caller sees that end itself).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The host's end-entity certificate (DER) once the handshake has got that far (its
    /// signature checked); the caller compares its SHA-256 with the pinned one.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.connection.peer_certificates()?.first().map(|cert| cert.to_vec())
    }

    /// The SHA-256 of [`peer_certificate`](Self::peer_certificate) as upper-case hex pairs
    /// joined by `:` (`AB:CD:…`, 95 characters), the form the caller pins and shows.
    pub fn peer_certificate_sha256(&self) -> Option<String> {
        self.peer_certificate().map(|der| fingerprint(&der))
    }

    /// The negotiated protocol for display, "TLSv1.3" or "TLSv1.2" (None while handshaking).
    pub fn protocol(&self) -> Option<String> {
        if self.connection.is_handshaking() {
            return None;
        }
        Some(match self.connection.protocol_version()? {
            ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
            ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
            other => format!("{other:?}"),
        })
    }

    /// Queues close_notify (in [`take_outgoing`](Self::take_outgoing)); `send` is refused
    /// afterwards, while what the host still sends can be received.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.connection.send_close_notify();
        }
    }

    fn check(&self) -> Result<(), TlsError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    fn fail(&mut self, error: TlsError) -> Result<(), TlsError> {
        self.failed = Some(error.clone());
        Err(error)
    }
}

/// SHA-256 of `bytes` as `AB:CD:…`.
fn fingerprint(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("handshaking", &self.is_handshaking())
            .field("protocol", &self.protocol())
            .field("unread", &self.plaintext.len())
            .field("failed", &self.failed)
            .field("closed", &self.closed)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_fingerprint_is_the_sha256_as_colon_separated_upper_case_hex() {
        // FIPS 180-2's example: SHA-256("abc").
        assert_eq!(
            super::fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
