//! The browser client's errors: one enum, each variant saying what happened and what to do.
//!
//! JavaScript sees them as `Error` objects with `name = "HometunError"` and a stable
//! kebab-case `code` (see [`ClientError::code`]), so scripts can branch without parsing text.

use crate::apps::AppError;
use crate::http::{HttpError, UrlError};
use hometun_shared::control::AppCertOutcome;
use hometun_shared::netstack;
use hometun_shared::session::End;

/// Everything that can go wrong in the browser client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The invite text is not an invite.
    #[error("invalid invite: {0}")]
    InvalidInvite(String),
    /// No device key is stored: this browser was never enrolled (or was forgotten).
    #[error("this browser is not enrolled yet; open an invite link first")]
    NotEnrolled,
    /// The WebSocket to the relay could not be opened or dropped before the handshake.
    #[error("the relay at {url} cannot be reached; check the address and that it is running")]
    RelayUnreachable {
        /// The WebSocket URL tried.
        url: String,
    },
    /// The WebSocket to the relay could not be opened while the browser says the device has no
    /// network. The tunnel tries again, at once when the network is back.
    #[error("this device has no network; the tunnel comes back as soon as it has")]
    Offline,
    /// A `wss://` relay on another origin than the page could not be opened: browsers do not
    /// say whether it is down or its certificate is not trusted.
    #[error("could not open a secure connection to the relay at {url}: it is down or this browser does not trust its certificate; open {url} in a tab to check")]
    CertificateNotTrusted {
        /// The relay's page URL.
        url: String,
    },
    /// The relay no longer knows this device (it was revoked or removed).
    #[error("this device was revoked on the relay; ask for a new invite")]
    DeviceRevoked,
    /// The invite expired before it was used.
    #[error("this invite has expired; ask for a new one")]
    InviteExpired,
    /// The invite was already used by another device.
    #[error("this invite was already used; ask for a new one")]
    InviteUsed,
    /// The relay refused for another stated reason.
    #[error("the relay refused the connection: {0}")]
    Refused(String),
    /// The tunnel ended: the relay closed it (shutting down, protocol error), the connection
    /// dropped, or a record or the pushed configuration was unusable. Reconnecting may help.
    #[error("the tunnel failed: {0}")]
    Tunnel(End),
    /// The tunnel's network stack refused an operation (no free port, too many connections,
    /// a payload too large for the tunnel MTU, ...); the message says which and what to do.
    #[error("the tunnel's network stack failed: {0}")]
    Net(netstack::Error),
    /// An operation needs the tunnel, but it is not up.
    #[error("not connected; call connect() first")]
    NotConnected,
    /// The host is not inside the routes the relay pushed, or answered unreachable.
    #[error("host {host} is unreachable through the tunnel")]
    HostUnreachable {
        /// Host as given.
        host: String,
    },
    /// The host answered the TCP connection with a reset.
    #[error("{host}:{port} refused the connection (nothing listens on that port)")]
    ConnectionRefused {
        /// Host as given.
        host: String,
        /// Port.
        port: u16,
    },
    /// No answer in time.
    #[error("{what} timed out after {after_ms} ms")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after_ms: u64,
    },
    /// The pushed DNS servers know no address for the name.
    #[error("no address found for {name}")]
    NameNotFound {
        /// The name looked up.
        name: String,
    },
    /// A name was given, but the relay pushed no DNS server to look it up.
    #[error("cannot look up {name}: the relay pushed no DNS server; use an IP address")]
    NoDnsServers {
        /// The name.
        name: String,
    },
    /// The URL cannot be fetched through the tunnel.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The home host's HTTP response could not be read.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A redirect chain went on too long or left the home hosts.
    #[error("redirect not followed: {0}")]
    Redirect(String),
    /// The TCP connection was closed or reset mid-way.
    #[error("the connection to {host}:{port} was reset")]
    ConnectionReset {
        /// Host as given.
        host: String,
        /// Port.
        port: u16,
    },
    /// Reading or writing the browser's storage (IndexedDB) failed.
    #[error("browser storage failed: {0}; is this a private window with storage disabled?")]
    Storage(String),
    /// An enrolment succeeded but the browser would not store the new device (the tunnel is up
    /// on it until the page closes).
    #[error(
        "connected, but this browser did not keep the new device ({0}); export it (Device, Export) \
         before closing this page, or this browser will need a new invite"
    )]
    DeviceNotSaved(String),
    /// An argument from JavaScript was not usable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// TLS with an `https://` home app failed (handshake, a bad record, the TLS module did not
    /// load).
    #[error("the TLS connection to {origin} failed: {message}")]
    Tls {
        /// The app's LAN origin.
        origin: String,
        /// What failed.
        message: String,
    },
    /// An `https://` home app showed a certificate that nobody has trusted on this device yet.
    #[error("{origin} shows a certificate this device has not trusted yet (SHA-256 {fingerprint}); open it from the hometun page's Apps card to check and trust it")]
    AppCertificateNew {
        /// The app's LAN origin.
        origin: String,
        /// SHA-256 of the certificate shown.
        fingerprint: String,
    },
    /// An `https://` home app showed another certificate than the one trusted before.
    #[error("the certificate of {origin} changed: trusted SHA-256 {pinned}, now SHA-256 {shown}. If you did not replace it, another machine may be posing as that device; if you did, trust the new one from the hometun page's Apps card")]
    AppCertificateChanged {
        /// The app's LAN origin.
        origin: String,
        /// SHA-256 of the certificate trusted before.
        pinned: String,
        /// SHA-256 of the certificate shown now.
        shown: String,
    },
    /// The relay will not get the certificate of an app's name, so the app cannot open on it.
    #[error("cannot open {origin} as an app: {}", app_cert_reason(*.outcome))]
    AppNameRefused {
        /// The app's LAN origin.
        origin: String,
        /// What the relay answered.
        outcome: AppCertOutcome,
    },
    /// A home web app request was refused: not an app origin of this page (or the page is not on
    /// a domain name), a header or cookie that cannot be carried, a failed WebSocket upgrade.
    #[error(transparent)]
    App(#[from] AppError),
}

impl ClientError {
    /// Stable machine-readable code, the `code` property of the JavaScript error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInvite(_) => "invalid-invite",
            Self::NotEnrolled => "not-enrolled",
            Self::RelayUnreachable { .. } => "relay-unreachable",
            Self::Offline => "offline",
            Self::CertificateNotTrusted { .. } => "certificate-not-trusted",
            Self::DeviceRevoked => "device-revoked",
            Self::InviteExpired => "invite-expired",
            Self::InviteUsed => "invite-used",
            Self::Refused(_) => "refused",
            Self::Tunnel(_) | Self::Net(_) => "tunnel-failed",
            Self::NotConnected => "not-connected",
            Self::HostUnreachable { .. } => "host-unreachable",
            Self::ConnectionRefused { .. } => "connection-refused",
            Self::Timeout { .. } => "timeout",
            Self::NameNotFound { .. } => "name-not-found",
            Self::NoDnsServers { .. } => "no-dns-servers",
            Self::Url(_) => "invalid-url",
            Self::Http(_) => "bad-response",
            Self::Redirect(_) => "redirect",
            Self::ConnectionReset { .. } => "connection-reset",
            Self::Storage(_) => "storage",
            Self::DeviceNotSaved(_) => "device-not-saved",
            Self::InvalidArgument(_) => "invalid-argument",
            Self::Tls { .. } => "tls-failed",
            Self::AppCertificateNew { .. } => "app-certificate-new",
            Self::AppCertificateChanged { .. } => "app-certificate-changed",
            Self::AppNameRefused { outcome, .. } => match outcome {
                AppCertOutcome::NotAllowed => "app-not-allowed",
                AppCertOutcome::Busy => "app-names-busy",
                AppCertOutcome::Failed => "app-name-failed",
                _ => "app-names-unavailable",
            },
            Self::App(AppError::TunnelOrigin(_)) => "no-app-origins",
            Self::App(_) => "not-an-app",
        }
    }

    /// Whether reconnecting later may help (the relay or network was down), as opposed to a
    /// decision by the relay that retrying cannot change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RelayUnreachable { .. }
                | Self::Offline
                | Self::CertificateNotTrusted { .. }
                | Self::Tunnel(_)
                | Self::Net(_)
                | Self::Timeout { .. }
        )
    }
}

/// Why the relay refused an app name's certificate, for people.
fn app_cert_reason(outcome: AppCertOutcome) -> &'static str {
    match outcome {
        AppCertOutcome::NotAllowed => "this device's allow list on the relay does not reach it",
        AppCertOutcome::NotLan => "the relay serves apps only for hosts of its LAN, and not for itself",
        AppCertOutcome::Busy => {
            "the relay has reached its limit on app-name certificates (new names per hour, names kept); \
             try again later, or raise app_certs_per_hour or max_app_certs in the [acme] table of relay.toml"
        }
        AppCertOutcome::Failed => {
            "the certificate authority refused this name several times lately (is the wildcard DNS \
             record for the relay's domain in place?); the relay tries again in 10 minutes, and its log says why"
        }
        _ => {
            "the relay gets no certificates for app names (no domain, or its certificate setup failed: see its status)"
        }
    }
}

impl From<hometun_shared::invite::InviteError> for ClientError {
    fn from(e: hometun_shared::invite::InviteError) -> Self {
        Self::InvalidInvite(e.to_string())
    }
}

impl From<ClientError> for wasm_bindgen::JsValue {
    fn from(e: ClientError) -> Self {
        let error = js_sys::Error::new(&e.to_string());
        error.set_name("HometunError");
        let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
        error.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_failure_the_issue_names_has_its_own_code() {
        let cases = [
            (ClientError::RelayUnreachable { url: "wss://r/".into() }, "relay-unreachable"),
            (ClientError::Offline, "offline"),
            (ClientError::CertificateNotTrusted { url: "wss://r/".into() }, "certificate-not-trusted"),
            (ClientError::DeviceRevoked, "device-revoked"),
            (ClientError::InviteExpired, "invite-expired"),
            (ClientError::InviteUsed, "invite-used"),
            (ClientError::HostUnreachable { host: "10.9.9.9".into() }, "host-unreachable"),
            (ClientError::ConnectionRefused { host: "pi".into(), port: 22 }, "connection-refused"),
            (ClientError::Timeout { what: "ping 192.168.0.10".into(), after_ms: 3000 }, "timeout"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn messages_say_what_to_do() {
        assert_eq!(ClientError::InviteUsed.to_string(), "this invite was already used; ask for a new one");
        assert_eq!(
            ClientError::ConnectionRefused { host: "192.168.0.10".into(), port: 81 }.to_string(),
            "192.168.0.10:81 refused the connection (nothing listens on that port)"
        );
        let from_url: ClientError = UrlError::MissingHost.into();
        assert_eq!(from_url.code(), "invalid-url");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn only_network_trouble_is_worth_retrying() {
        assert!(ClientError::RelayUnreachable { url: String::new() }.is_transient());
        assert!(ClientError::Offline.is_transient());
        assert!(!ClientError::DeviceRevoked.is_transient());
        assert!(!ClientError::InviteExpired.is_transient());
    }
}
