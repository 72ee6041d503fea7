//! The TLS client's errors: one enum, each variant saying what happened and what to do.
//! Errors are sticky: once a [`Client`](crate::Client) has failed, every later `receive` and
//! `send` returns the same error.

use rustls::{AlertDescription, CertificateError, Error};

/// Everything that can go wrong on a TLS connection to a LAN host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The host's address from JavaScript was not an IPv4 address.
    #[error(
        "{0:?} is not an IPv4 address; a home app's TLS connection needs the device's LAN address, e.g. 192.168.1.10"
    )]
    InvalidAddress(String),
    /// The host and this client share no protocol version, cipher suite or key exchange (the
    /// host answered with a `protocol_version`, `handshake_failure` or `insufficient_security`
    /// alert, or offered something this client never proposed).
    #[error("the host offered no TLS version or cipher hometun supports (TLS 1.2 or 1.3 with ECDHE): {0}")]
    Unsupported(String),
    /// The host's handshake signature did not verify with the key of the certificate it
    /// showed: it does not hold that key (someone may be intercepting the connection), is
    /// misconfigured, or its key is too weak for ring to check (RSA under 2048 bits).
    #[error("the host's TLS handshake failed: its signature does not verify with the certificate it showed; someone may be intercepting the connection, the device's certificate and key may not belong together, or its key is too weak to check (RSA under 2048 bits)")]
    BadSignature,
    /// The handshake failed for another reason (the host sent an alert, a handshake message
    /// out of order, a certificate that cannot be read).
    #[error("the host's TLS handshake failed: {0}")]
    Handshake(String),
    /// The host sent bytes that are not TLS records (for example plain HTTP) or a broken record.
    #[error("the host sent data that is not valid TLS ({0}); check that this port serves https, not http")]
    NotTls(String),
    /// A record failed its integrity check: the data was corrupted or altered on the way.
    #[error("a TLS record from the host failed its integrity check (corrupted or altered on the way); reconnect")]
    Corrupted,
    /// [`Client::send`](crate::Client::send) was called before the handshake finished.
    #[error("the TLS connection cannot send yet: its handshake has not finished (send once it has and the certificate is checked)")]
    NotReady,
    /// [`Client::send`](crate::Client::send) was called after [`Client::close`](crate::Client::close).
    #[error("the TLS connection is closed; open a new one")]
    Closed,
    /// More decrypted bytes were waiting than the bound allows: the caller did not drain
    /// [`Client::take_plaintext`](crate::Client::take_plaintext) after each `receive`.
    #[error("more than {limit} bytes from the host were left unread; take the plaintext after every receive")]
    TooMuchUnread {
        /// The bound, in bytes.
        limit: usize,
    },
    /// The established connection failed (the host sent a fatal alert or broke the protocol).
    #[error("the TLS connection failed: {0}")]
    Failed(String),
}

impl TlsError {
    /// Classifies an error from rustls; `handshaking` tells whether it happened before the
    /// handshake finished.
    pub(crate) fn from_rustls(error: Error, handshaking: bool) -> Self {
        match error {
            Error::AlertReceived(
                alert @ (AlertDescription::ProtocolVersion
                | AlertDescription::HandshakeFailure
                | AlertDescription::InsufficientSecurity),
            ) if handshaking => Self::Unsupported(format!("the host answered with the alert {alert:?}")),
            Error::PeerIncompatible(why) => Self::Unsupported(format!("{why:?}")),
            // The verifier accepts every certificate, so these come from its signature check.
            #[allow(deprecated)] // rustls still returns the context-free spelling for some keys
            Error::InvalidCertificate(
                CertificateError::BadSignature
                | CertificateError::UnsupportedSignatureAlgorithm
                | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
            ) => Self::BadSignature,
            Error::InvalidCertificate(CertificateError::UnsupportedSignatureAlgorithmContext { .. }) => {
                Self::Unsupported("the host signs with an algorithm hometun does not support".into())
            }
            Error::InvalidCertificate(why) => {
                Self::Handshake(format!("the host's certificate cannot be read to check its signature ({why:?})"))
            }
            Error::InvalidMessage(why) => Self::NotTls(format!("{why:?}")),
            Error::DecryptError => Self::Corrupted,
            other if handshaking => Self::Handshake(other.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::{AlertDescription, CertificateError, Error, InvalidMessage, PeerIncompatible};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::TlsError;

    #[test]
    fn rustls_errors_are_classified_by_what_the_user_can_do() {
        type Is = fn(&TlsError) -> bool;
        let unsupported: Is = |e| matches!(e, TlsError::Unsupported(_));
        let handshake: Is = |e| matches!(e, TlsError::Handshake(_));
        let failed: Is = |e| matches!(e, TlsError::Failed(_));
        let bad_signature: Is = |e| *e == TlsError::BadSignature;
        let not_tls: Is = |e| matches!(e, TlsError::NotTls(_));
        let corrupted: Is = |e| *e == TlsError::Corrupted;
        let table: [(u8, Error, bool, Is); 11] = [
            (1, Error::AlertReceived(AlertDescription::ProtocolVersion), true, unsupported),
            (2, Error::AlertReceived(AlertDescription::HandshakeFailure), true, unsupported),
            (3, Error::AlertReceived(AlertDescription::InsufficientSecurity), true, unsupported),
            (4, Error::AlertReceived(AlertDescription::HandshakeFailure), false, failed),
            (5, Error::AlertReceived(AlertDescription::InternalError), true, handshake),
            (6, Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13), true, unsupported),
            (7, Error::InvalidCertificate(CertificateError::BadSignature), true, bad_signature),
            (8, Error::InvalidCertificate(CertificateError::BadEncoding), true, handshake),
            (9, Error::InvalidMessage(InvalidMessage::InvalidContentType), true, not_tls),
            (10, Error::DecryptError, false, corrupted),
            (11, Error::AlertReceived(AlertDescription::BadRecordMac), false, failed),
        ];
        for (case, error, handshaking, expected) in table {
            let got = TlsError::from_rustls(error, handshaking);
            assert!(expected(&got), "case {case}: {got:?}");
        }
    }
}
