//! The control plane: what the relay pushes to a client after the handshake.
//!
//! Like OpenVPN's `push "route ..."`: the client's tunnel address, the relay's, routes, DNS
//! servers, MTU and keepalive interval. Encoding: `[type u8][version u8]` then TLV fields
//! `[tag u8][len u16 BE][value]`. Bit 7 of a tag marks a field the receiver must understand:
//! unknown optional fields are skipped, unknown required fields refuse the message.

use crate::ipv4::{InterfaceAddress, Network};
use core::net::Ipv4Addr;
use core::time::Duration;

const TYPE_CONFIG: u8 = 1;
const VERSION: u8 = 1;
const REQUIRED: u8 = 0x80;
const TAG_ADDRESS: u8 = 1 | REQUIRED;
const TAG_RELAY_ADDRESS: u8 = 2 | REQUIRED;
const TAG_ROUTE: u8 = 3 | REQUIRED;
const TAG_DNS: u8 = 4;
const TAG_MTU: u8 = 5 | REQUIRED;
const TAG_KEEPALIVE: u8 = 6;
/// At most this many routes or DNS servers are accepted in one message.
pub const MAX_LIST_LEN: usize = 64;

/// Why a control message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The message ends inside a header or a field.
    #[error("control message truncated")]
    Truncated,
    /// A message type this version does not know.
    #[error("unknown control message type {0}")]
    UnknownType(u8),
    /// A newer encoding version than this client understands.
    #[error("control message version {0} is newer than this client; update hometun")]
    UnsupportedVersion(u8),
    /// A field the sender marked required is unknown here.
    #[error("control message requires field {0:#04x}, which this client does not know; update hometun")]
    UnknownRequiredField(u8),
    /// A known field has the wrong length or an impossible value.
    #[error("control field {0:#04x} is malformed")]
    BadField(u8),
    /// A required field is absent.
    #[error("control message lacks field {0:#04x}")]
    MissingField(u8),
    /// More routes or DNS servers than [`MAX_LIST_LEN`].
    #[error("control message lists too many routes or servers")]
    TooMany,
}

/// The configuration a relay pushes to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client's tunnel address and prefix, e.g. `10.8.0.6/24`.
    pub address: InterfaceAddress,
    /// The relay's tunnel address, e.g. `10.8.0.1`.
    pub relay_address: Ipv4Addr,
    /// Networks reachable through the tunnel, e.g. `192.168.0.0/24`.
    pub routes: Vec<Network>,
    /// DNS servers to ask through the tunnel.
    pub dns: Vec<Ipv4Addr>,
    /// Largest IP packet the tunnel carries.
    pub mtu: u16,
    /// How often to send a keepalive when otherwise idle.
    pub keepalive: Duration,
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlMessage {
    /// The client's configuration (relay to client).
    Config(ClientConfig),
}

impl ControlMessage {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let Self::Config(config) = self;
        let mut out = vec![TYPE_CONFIG, VERSION];
        field(&mut out, TAG_ADDRESS, &prefix_bytes(config.address.addr(), config.address.prefix_len()));
        field(&mut out, TAG_RELAY_ADDRESS, &config.relay_address.octets());
        for route in config.routes.iter().take(MAX_LIST_LEN) {
            field(&mut out, TAG_ROUTE, &prefix_bytes(route.addr(), route.prefix_len()));
        }
        for server in config.dns.iter().take(MAX_LIST_LEN) {
            field(&mut out, TAG_DNS, &server.octets());
        }
        field(&mut out, TAG_MTU, &config.mtu.to_be_bytes());
        let keepalive = u16::try_from(config.keepalive.as_secs()).unwrap_or(u16::MAX);
        field(&mut out, TAG_KEEPALIVE, &keepalive.to_be_bytes());
        out
    }

    /// Decodes a message from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        let (&[kind, version], mut rest) = bytes.split_first_chunk::<2>().ok_or(ControlError::Truncated)?;
        if kind != TYPE_CONFIG {
            return Err(ControlError::UnknownType(kind));
        }
        if version > VERSION {
            return Err(ControlError::UnsupportedVersion(version));
        }
        let (mut address, mut relay_address, mut mtu) = (None, None, None);
        let (mut routes, mut dns, mut keepalive) =
            (Vec::new(), Vec::new(), crate::session::Params::default().keepalive);
        while !rest.is_empty() {
            let (&[tag, hi, lo], after) = rest.split_first_chunk::<3>().ok_or(ControlError::Truncated)?;
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if after.len() < len {
                return Err(ControlError::Truncated);
            }
            let (value, after) = after.split_at(len);
            rest = after;
            match tag {
                TAG_ADDRESS => {
                    let (addr, len) = parse_prefix(tag, value)?;
                    address = Some(InterfaceAddress::new(addr, len).map_err(|_| ControlError::BadField(tag))?);
                }
                TAG_RELAY_ADDRESS => relay_address = Some(parse_ip(tag, value)?),
                TAG_ROUTE => {
                    let (addr, len) = parse_prefix(tag, value)?;
                    push_bounded(&mut routes, Network::new(addr, len).map_err(|_| ControlError::BadField(tag))?)?;
                }
                TAG_DNS => push_bounded(&mut dns, parse_ip(tag, value)?)?,
                TAG_MTU => {
                    let mtu_value = u16::from_be_bytes(value.try_into().map_err(|_| ControlError::BadField(tag))?);
                    if mtu_value < 576 {
                        return Err(ControlError::BadField(tag));
                    }
                    mtu = Some(mtu_value);
                }
                TAG_KEEPALIVE => {
                    let secs = u16::from_be_bytes(value.try_into().map_err(|_| ControlError::BadField(tag))?);
                    keepalive = Duration::from_secs(u64::from(secs.max(1)));
                }
                unknown if unknown & REQUIRED != 0 => return Err(ControlError::UnknownRequiredField(unknown)),
                _ => {}
            }
        }
        Ok(Self::Config(ClientConfig {
            address: address.ok_or(ControlError::MissingField(TAG_ADDRESS))?,
            relay_address: relay_address.ok_or(ControlError::MissingField(TAG_RELAY_ADDRESS))?,
            routes,
            dns,
            mtu: mtu.ok_or(ControlError::MissingField(TAG_MTU))?,
            keepalive,
        }))
    }
}

fn field(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

fn prefix_bytes(addr: Ipv4Addr, prefix_len: u8) -> [u8; 5] {
    let [a, b, c, d] = addr.octets();
    [a, b, c, d, prefix_len]
}

fn parse_ip(tag: u8, value: &[u8]) -> Result<Ipv4Addr, ControlError> {
    <[u8; 4]>::try_from(value).map(Ipv4Addr::from).map_err(|_| ControlError::BadField(tag))
}

/// A prefix on the wire: four address bytes and the prefix length (host bits as sent).
fn parse_prefix(tag: u8, value: &[u8]) -> Result<(Ipv4Addr, u8), ControlError> {
    let [a, b, c, d, len] = <[u8; 5]>::try_from(value).map_err(|_| ControlError::BadField(tag))?;
    Ok((Ipv4Addr::new(a, b, c, d), len))
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) -> Result<(), ControlError> {
    if list.len() >= MAX_LIST_LEN {
        return Err(ControlError::TooMany);
    }
    list.push(item);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    include!("../tests/sim/home_config.rs");

    #[test]
    fn a_pushed_config_arrives_as_sent() {
        let message = ControlMessage::Config(home_config());
        assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn unknown_optional_fields_are_ignored_and_required_ones_refused() {
        let mut optional = ControlMessage::Config(home_config()).encode();
        field(&mut optional, 0x33, b"from the future");
        assert_eq!(ControlMessage::decode(&optional), Ok(ControlMessage::Config(home_config())));

        let mut required = ControlMessage::Config(home_config()).encode();
        field(&mut required, 0x33 | REQUIRED, b"must understand");
        assert_eq!(ControlMessage::decode(&required), Err(ControlError::UnknownRequiredField(0xB3)));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = ControlMessage::Config(home_config()).encode();
        let cases: Vec<(Vec<u8>, ControlError)> = vec![
            (vec![], ControlError::Truncated),
            (vec![9, 1], ControlError::UnknownType(9)),
            (vec![1, 2], ControlError::UnsupportedVersion(2)),
            (good[..good.len() - 1].to_vec(), ControlError::Truncated),
            (vec![1, 1], ControlError::MissingField(TAG_ADDRESS)),
            (vec![1, 1, TAG_ADDRESS, 0, 5, 10, 8, 0, 6, 33], ControlError::BadField(TAG_ADDRESS)),
        ];
        for (i, (input, expected)) in cases.into_iter().enumerate() {
            assert_eq!(ControlMessage::decode(&input), Err(expected), "case {i}");
        }
    }
}
