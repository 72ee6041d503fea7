//! Certificates for app names, on an enrolled device's demand.
//!
//! Every home web app opens on a name of its own under the relay's domain
//! ([`crate::app_name`]), and each name needs a certificate the relay gets from its ACME server.
//! The relay orders one only when an enrolled device asks for it through its tunnel, never because
//! a TLS handshake named it: anyone on the internet can send a ClientHello, and each order spends
//! the relay's hourly budget and the ACME server's rate limits. Two control messages, after the
//! relay offered them ([`super::Features::app_certs`]):
//!
//! - `AppCert` (client → relay): "I am about to open this LAN app on its app name".
//! - `AppCertReply` (relay → client): [`AppCertOutcome`] for that app. A client that hears
//!   `ordering` may ask again until it hears `ready` (asking again orders nothing new).
//!
//! One field carries the app ([`AppTarget`]): `[address 4][port u16][tls u8: 0 http, 1 https]`;
//! the reply adds the outcome, one byte.

use super::{field, ControlError, REQUIRED};
use crate::app_name::AppTarget;
use core::net::{Ipv4Addr, SocketAddrV4};

const TAG_APP: u8 = 1 | REQUIRED;
const TAG_OUTCOME: u8 = 2 | REQUIRED;

/// What the relay did with a device's demand for an app name's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCertOutcome {
    /// The name has a certificate: open the app.
    Ready,
    /// The relay is obtaining it: open the app, its first handshake waits for the certificate.
    Ordering,
    /// This device's allow list does not reach that host and port.
    NotAllowed,
    /// Not a LAN host the relay serves apps for (outside the LAN, or the relay itself).
    NotLan,
    /// The relay's caps on app-name certificates are reached (names kept, new names per hour).
    Busy,
    /// This relay gets no app-name certificates (no domain, or its ACME setup failed).
    Unavailable,
    /// The ACME server refused this name a few times in a row lately (its DNS record is missing,
    /// say); the relay does not try again for a while.
    Failed,
}

impl AppCertOutcome {
    const ALL: [Self; 7] =
        [Self::Ready, Self::Ordering, Self::NotAllowed, Self::NotLan, Self::Busy, Self::Unavailable, Self::Failed];

    fn code(self) -> u8 {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0) as u8
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Whether the app can be opened now (its name has a certificate or will have one).
    pub fn opens(self) -> bool {
        matches!(self, Self::Ready | Self::Ordering)
    }

    /// A short word for logs and the page: `ready`, `ordering`, `not-allowed`, `not-lan`,
    /// `busy`, `unavailable`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Ordering => "ordering",
            Self::NotAllowed => "not-allowed",
            Self::NotLan => "not-lan",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Failed => "failed",
        }
    }
}

/// The relay's latest answers to a device's demands, numbered as they came, so that a caller
/// can wait for the answer to its own demand while others are in flight.
#[derive(Debug, Clone, Default)]
pub struct AppCertReplies {
    count: u64,
    latest: Vec<(u64, AppTarget, AppCertOutcome)>,
}

impl AppCertReplies {
    /// Answers kept; older ones are forgotten.
    pub const KEPT: usize = 16;

    /// How many answers came so far: read it before sending a demand, then ask [`Self::since`].
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records an answer.
    pub fn push(&mut self, app: AppTarget, outcome: AppCertOutcome) {
        self.count += 1;
        if self.latest.len() == Self::KEPT {
            self.latest.remove(0);
        }
        self.latest.push((self.count, app, outcome));
    }

    /// The latest answer for `app` among those after the first `count`.
    pub fn since(&self, app: AppTarget, count: u64) -> Option<AppCertOutcome> {
        self.latest.iter().rev().find(|(n, a, _)| *n > count && *a == app).map(|(_, _, outcome)| *outcome)
    }
}

/// The fields of an `AppCert` (no outcome) or an `AppCertReply`.
pub(super) fn encode(out: &mut Vec<u8>, app: AppTarget, outcome: Option<AppCertOutcome>) {
    let ([a, b, c, d], [p0, p1]) = (app.addr.ip().octets(), app.addr.port().to_be_bytes());
    field(out, TAG_APP, &[a, b, c, d, p0, p1, u8::from(app.tls)]);
    if let Some(outcome) = outcome {
        field(out, TAG_OUTCOME, &[outcome.code()]);
    }
}

/// Decodes an `AppCert` (`reply` false: no outcome expected) or an `AppCertReply` body.
pub(super) fn decode(rest: &[u8], reply: bool) -> Result<(AppTarget, Option<AppCertOutcome>), ControlError> {
    super::decode_request(rest, reply, (TAG_APP, parse_app), (TAG_OUTCOME, AppCertOutcome::from_code))
}

fn parse_app(value: &[u8]) -> Option<AppTarget> {
    let &[a, b, c, d, p0, p1, tls] = value else { return None };
    let port = u16::from_be_bytes([p0, p1]);
    let addr = SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port);
    match (port, tls) {
        (0, _) => None,
        (_, 0) => Some(AppTarget::http(addr)),
        (_, 1) => Some(AppTarget::https(addr)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode_app_cert, ControlMessage};
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn nas() -> AppTarget {
        AppTarget::https(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 5001))
    }

    #[test]
    fn a_demand_and_every_reply_arrive_as_sent() {
        let demand = encode_app_cert(nas());
        assert_eq!(ControlMessage::decode(&demand), Ok(ControlMessage::AppCert(nas())));
        assert_eq!(ControlMessage::AppCert(nas()).encode(), demand, "one encoding");
        let plain = AppTarget::http(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 1), 80));
        for outcome in AppCertOutcome::ALL {
            for app in [nas(), plain] {
                let reply = ControlMessage::AppCertReply { app, outcome };
                assert_eq!(ControlMessage::decode(&reply.encode()), Ok(reply));
            }
        }
        let words: Vec<_> = AppCertOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(words, ["ready", "ordering", "not-allowed", "not-lan", "busy", "unavailable", "failed"]);
        assert!(AppCertOutcome::Ordering.opens() && !AppCertOutcome::Busy.opens());
    }

    #[test]
    fn each_caller_finds_the_answer_to_its_own_demand() {
        let other = AppTarget::http(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 20), 80));
        let mut replies = AppCertReplies::default();
        replies.push(nas(), AppCertOutcome::Busy);
        let before = replies.count();
        assert_eq!(replies.since(nas(), before), None, "an answer from before the demand does not count");
        replies.push(nas(), AppCertOutcome::Ordering);
        replies.push(other, AppCertOutcome::Ready);
        assert_eq!(replies.since(nas(), before), Some(AppCertOutcome::Ordering));
        assert_eq!(replies.since(other, before), Some(AppCertOutcome::Ready));
        for _ in 0..AppCertReplies::KEPT {
            replies.push(other, AppCertOutcome::Ready);
        }
        assert_eq!(replies.since(nas(), before), None, "at most KEPT answers are kept");
    }

    #[test]
    fn broken_demands_and_replies_are_refused() {
        let demand = encode_app_cert(nas());
        let reply = ControlMessage::AppCertReply { app: nas(), outcome: AppCertOutcome::Ready }.encode();
        let with_app = |value: &[u8]| {
            let mut out = demand[..2].to_vec();
            field(&mut out, TAG_APP, value);
            out
        };
        assert_eq!(
            ControlMessage::decode(&with_app(&[192, 168, 0, 10, 0, 0, 0])),
            Err(ControlError::BadField(TAG_APP))
        );
        assert_eq!(
            ControlMessage::decode(&with_app(&[192, 168, 0, 10, 0, 80, 2])),
            Err(ControlError::BadField(TAG_APP))
        );
        assert_eq!(ControlMessage::decode(&with_app(&[192, 168, 0, 10, 0, 80])), Err(ControlError::BadField(TAG_APP)));
        assert_eq!(ControlMessage::decode(&demand[..2]), Err(ControlError::MissingField(TAG_APP)));
        assert_eq!(ControlMessage::decode(&demand[..demand.len() - 1]), Err(ControlError::Truncated));
        assert_eq!(ControlMessage::decode(&reply[..demand.len()]), Err(ControlError::MissingField(TAG_OUTCOME)));
        let mut unknown = reply.clone();
        *unknown.last_mut().unwrap() = 7;
        assert_eq!(ControlMessage::decode(&unknown), Err(ControlError::BadField(TAG_OUTCOME)));
        let mut required = demand.clone();
        field(&mut required, 0x85, &[]);
        assert_eq!(ControlMessage::decode(&required), Err(ControlError::UnknownRequiredField(0x85)));
        let mut optional = demand.clone();
        field(&mut optional, 0x05, &[1, 2]);
        assert_eq!(ControlMessage::decode(&optional), Ok(ControlMessage::AppCert(nas())), "unknown optional skipped");
    }
}
