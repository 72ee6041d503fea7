//! Translating the core's errors into [`ClientError`]s a user can act on.

use super::link::ATTEMPT_TIMEOUT;
use crate::error::ClientError;
use hometun_shared::netstack;
use hometun_shared::session::{CloseReason, ConnectionLost, End, Error as SessionError, Refusal};

/// A connection that ended: refused, closed by the relay, failed, or lost.
pub fn ended(end: &End) -> ClientError {
    match end {
        End::Failed(SessionError::Refused(refusal)) => refused(*refusal),
        End::PeerClosed(reason) => closed(*reason),
        End::Failed(SessionError::HandshakeTimeout) => {
            ClientError::Timeout { what: "the handshake with the relay".into(), after_ms: millis(ATTEMPT_TIMEOUT) }
        }
        End::Failed(SessionError::HandshakeFailed) => ClientError::Refused(
            "the relay did not prove its key (the invite belongs to another relay, or the relay's key changed)".into(),
        ),
        other => ClientError::Tunnel(other.clone()),
    }
}

/// The relay refused the hello.
pub fn refused(refusal: Refusal) -> ClientError {
    match refusal {
        Refusal::UnknownDevice => ClientError::DeviceRevoked,
        Refusal::InviteExpired => ClientError::InviteExpired,
        Refusal::InviteUsed => ClientError::InviteUsed,
        Refusal::Busy => ClientError::Tunnel(End::Failed(SessionError::Refused(refusal))),
        other => ClientError::Refused(other.to_string()),
    }
}

/// The relay closed an established session.
pub fn closed(reason: CloseReason) -> ClientError {
    match reason {
        CloseReason::Revoked => ClientError::DeviceRevoked,
        CloseReason::Shutdown | CloseReason::Unavailable | CloseReason::ProtocolError | CloseReason::Other(_) => {
            ClientError::Tunnel(End::PeerClosed(reason))
        }
        other => ClientError::Refused(other.to_string()),
    }
}

/// The WebSocket closed. `cross_origin_tls`: a `wss://` relay on another origin than the page,
/// where a certificate the browser does not trust looks exactly like a relay that is down.
/// `offline`: the browser says the device has no network, which explains a socket that never
/// opened better than a relay that is down.
pub fn socket_closed(
    url: &str,
    was_open: bool,
    code: u16,
    reason: &str,
    cross_origin_tls: bool,
    offline: bool,
) -> ClientError {
    if !was_open && offline {
        ClientError::Offline
    } else if !was_open && cross_origin_tls {
        // Point the user at the relay's page, where the browser shows its certificate warning.
        let page = url.replacen("wss://", "https://", 1);
        let page = page.strip_suffix(crate::profile::SOCKET_PATH).unwrap_or(&page);
        ClientError::CertificateNotTrusted { url: format!("{page}/") }
    } else if !was_open {
        ClientError::RelayUnreachable { url: url.to_owned() }
    } else {
        ClientError::Tunnel(End::ConnectionLost(ConnectionLost::WebSocketClosed { code, reason: reason.to_owned() }))
    }
}

/// A netstack call failed while talking to `host`.
pub fn net_error(error: netstack::Error, host: &str) -> ClientError {
    use netstack::Error as E;
    match error {
        E::ConnectionRefused(addr) => ClientError::ConnectionRefused { host: host.to_owned(), port: addr.port() },
        E::ConnectionReset(addr) | E::NotWritable(addr) => {
            ClientError::ConnectionReset { host: host.to_owned(), port: addr.port() }
        }
        E::TimedOut(addr) => ClientError::Timeout {
            what: format!("the connection to {host}:{}", addr.port()),
            after_ms: millis(netstack::TCP_CONNECT_TIMEOUT),
        },
        E::StoppedAnswering(addr) => ClientError::Timeout {
            what: format!("waiting for {host}:{} to take what was sent", addr.port()),
            after_ms: millis(netstack::TCP_TIMEOUT),
        },
        E::NameNotFound(name) => ClientError::NameNotFound { name },
        E::DnsTimeout(name) => ClientError::Timeout {
            what: format!("looking up {name}"),
            after_ms: millis(netstack::DNS_TIMEOUT_PER_SERVER),
        },
        E::NoDnsServers(name) => ClientError::NoDnsServers { name },
        E::InvalidName(name) => ClientError::InvalidArgument(format!("{name:?} is not a host name")),
        E::Unaddressable(addr) => ClientError::InvalidArgument(format!("{addr} cannot be a destination")),
        E::UnknownHandle(_) => ClientError::ConnectionReset { host: host.to_owned(), port: 0 },
        other => ClientError::Net(other),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn refusals_become_the_errors_the_page_explains() {
        assert_eq!(refused(Refusal::UnknownDevice), ClientError::DeviceRevoked);
        assert_eq!(refused(Refusal::InviteExpired), ClientError::InviteExpired);
        assert_eq!(refused(Refusal::InviteUsed), ClientError::InviteUsed);
        assert!(refused(Refusal::Busy).is_transient());
        assert_eq!(closed(CloseReason::Revoked), ClientError::DeviceRevoked);
        assert!(closed(CloseReason::Shutdown).is_transient());
        assert!(closed(CloseReason::Unavailable).is_transient(), "a relay that could not write its state");
        assert!(!closed(CloseReason::Refused).is_transient());
        assert!(!closed(CloseReason::Replaced).is_transient());
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_socket_that_never_opened_is_unreachable_untrusted_or_offline() {
        assert_eq!(socket_closed("wss://r/tunnel", false, 1006, "", false, false).code(), "relay-unreachable");
        assert_eq!(socket_closed("wss://r/tunnel", false, 1006, "", true, true).code(), "offline", "no network");
        let untrusted = socket_closed("wss://r:8443/tunnel", false, 1006, "", true, false);
        assert_eq!(untrusted, ClientError::CertificateNotTrusted { url: "https://r:8443/".into() });
        let dropped = socket_closed("wss://r/tunnel", true, 1006, "", true, true);
        assert_eq!(dropped.code(), "tunnel-failed");
        assert!(dropped.is_transient());
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_end_keeps_its_error_code() {
        let cases = [
            (End::Failed(SessionError::Refused(Refusal::InviteUsed)), "invite-used"),
            (End::PeerClosed(CloseReason::Revoked), "device-revoked"),
            (End::PeerClosed(CloseReason::Shutdown), "tunnel-failed"),
            (End::Failed(SessionError::HandshakeTimeout), "timeout"),
            (End::Failed(SessionError::HandshakeFailed), "refused"),
            (End::Failed(SessionError::Forged), "tunnel-failed"),
            (End::DeadPeer, "tunnel-failed"),
            (End::ConnectionLost(ConnectionLost::SendFailed), "tunnel-failed"),
        ];
        for (end, code) in cases {
            assert_eq!(ended(&end).code(), code, "{end}");
        }
        let timeout = ended(&End::Failed(SessionError::HandshakeTimeout));
        assert_eq!(timeout, ClientError::Timeout { what: "the handshake with the relay".into(), after_ms: 12_000 });
        assert_eq!(ended(&End::DeadPeer), ClientError::Tunnel(End::DeadPeer), "the end itself, typed");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn netstack_failures_name_the_host() {
        let addr = "192.168.0.10:81".parse().unwrap();
        let refused = net_error(netstack::Error::ConnectionRefused(addr), "nas.lan");
        assert_eq!(refused, ClientError::ConnectionRefused { host: "nas.lan".into(), port: 81 });
        assert_eq!(net_error(netstack::Error::TimedOut(addr), "nas.lan").code(), "timeout");
        let stalled = net_error(netstack::Error::StoppedAnswering(addr), "nas.lan");
        assert_eq!(stalled.to_string(), "waiting for nas.lan:81 to take what was sent timed out after 150000 ms");
        assert_eq!(net_error(netstack::Error::NameNotFound("x.lan".into()), "x.lan").code(), "name-not-found");
        assert_eq!(
            net_error(netstack::Error::PortsExhausted, "x.lan"),
            ClientError::Net(netstack::Error::PortsExhausted)
        );
        assert_eq!(net_error(netstack::Error::PortsExhausted, "x.lan").code(), "tunnel-failed");
    }
}
