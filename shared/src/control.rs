//! The control plane: what the relay pushes to a client after the handshake.
//!
//! Like OpenVPN's `push "route ..."`: the client's tunnel address, the relay's, routes, DNS
//! servers, MTU, keepalive interval and the allow list (what the device may reach, so a launcher
//! can list it). Beyond the configuration, the relay may offer ([`Features`]) the home's hosts as
//! this device may see them and Wake-on-LAN ([`hosts`]). Encoding: `[type u8][version u8]` then TLV fields
//! `[tag u8][len u16 BE][value]`. Bit 7 of a tag marks a field the receiver must understand:
//! unknown optional fields are skipped, unknown required fields refuse the message.

pub mod app_certs;
pub mod hosts;

pub use app_certs::{AppCertOutcome, AppCertReplies};
pub use hosts::{
    is_host_name, is_label, is_service_type, Host, HostList, Service, WakeOutcome, MAX_HOSTS, MAX_LABEL_LEN, MAX_NAMES,
    MAX_NAME_LEN, MAX_SERVICES,
};

use crate::app_name::AppTarget;
use crate::ipv4::{InterfaceAddress, Network};
use core::net::Ipv4Addr;
use core::time::Duration;

const TYPE_CONFIG: u8 = 1;
const TYPE_HOSTS: u8 = 2;
const TYPE_SUBSCRIBE: u8 = 3;
const TYPE_WAKE: u8 = 4;
const TYPE_WAKE_REPLY: u8 = 5;
const TYPE_APP_CERT: u8 = 6;
const TYPE_APP_CERT_REPLY: u8 = 7;
const VERSION: u8 = 1;
const REQUIRED: u8 = 0x80;
const TAG_ADDRESS: u8 = 1 | REQUIRED;
const TAG_RELAY_ADDRESS: u8 = 2 | REQUIRED;
const TAG_ROUTE: u8 = 3 | REQUIRED;
const TAG_DNS: u8 = 4;
const TAG_MTU: u8 = 5 | REQUIRED;
const TAG_KEEPALIVE: u8 = 6;
/// Optional, so clients from before the allow list skip it.
const TAG_ALLOW: u8 = 7;
/// Optional: what else the relay offers ([`Features`]); clients from before it skip it.
const TAG_FEATURES: u8 = 8;
const FEATURE_HOSTS: u8 = 1;
const FEATURE_WAKE: u8 = 2;
const FEATURE_TCP_CHECKSUM: u8 = 4;
const FEATURE_APP_CERTS: u8 = 8;
/// Optional: a relay from before it lets TCP packets be no larger than the MTU.
const TAG_MAX_PACKET: u8 = 9;
/// Required and empty: [`Features::tcp_checksum_checked`]. Required, so that a client from
/// before it refuses the configuration (and says to update) instead of dropping every TCP
/// packet whose checksum the relay left as the kernel gave it.
const TAG_TCP_CHECKSUM_CHECKED: u8 = 10 | REQUIRED;
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;
/// At most this many routes, DNS servers or allow rules are accepted in one message.
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
    /// More routes, DNS servers or allow rules than [`MAX_LIST_LEN`].
    #[error("control message lists too many routes, servers or allow rules")]
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
    /// Largest TCP packet the device may send, at least `mtu`: a relay that cuts large TCP
    /// segments into MTU-sized ones for the LAN takes up to 64 KiB (UDP and ICMP stay within
    /// `mtu`). Equal to `mtu` from a relay that does not.
    pub max_packet: u16,
    /// How often to send a keepalive when otherwise idle.
    pub keepalive: Duration,
    /// What the relay lets this device reach (its ACL), for display: the relay enforces it per
    /// packet anyway. Empty means everything routed (and is what a relay from before the allow
    /// list sends).
    pub allow: Vec<AllowRule>,
    /// What else this relay offers the device (the host list, waking hosts). All off is what a
    /// relay from before them sends.
    pub features: Features,
}

/// The optional parts of the control plane a relay offers one device. A client sends
/// [`ControlMessage::Subscribe`] or [`ControlMessage::Wake`] only when offered, so an older
/// relay never receives a message type it does not know, and leaves TCP checksums out only
/// when told the relay fills them in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// The relay sends [`ControlMessage::Hosts`] after a [`ControlMessage::Subscribe`].
    pub hosts: bool,
    /// This device may ask the relay to wake hosts ([`ControlMessage::Wake`]).
    pub wake: bool,
    /// The relay has the TCP checksum of every packet from this device computed on its way
    /// to the LAN (by the kernel, or the network card), whatever the packet carries: the
    /// device need not compute it. Records are authenticated, so nothing between the device
    /// and the relay could have broken the data a checksum would protect.
    pub tcp_checksum: bool,
    /// The relay vouches for the TCP checksum of every packet it delivers to this device: it
    /// checked it, or the kernel did (a network card verified it), or the data has not crossed
    /// a wire since the sender summed it (then the field may hold only the pseudo-header's sum,
    /// as the kernel left it). The device must not check TCP checksums. Records are
    /// authenticated, so the device's own pass over every byte would find nothing more.
    pub tcp_checksum_checked: bool,
    /// The relay gets app names' certificates when this device asks
    /// ([`ControlMessage::AppCert`], [`app_certs`]).
    pub app_certs: bool,
}

impl Features {
    fn to_bits(self) -> u8 {
        [
            (self.hosts, FEATURE_HOSTS),
            (self.wake, FEATURE_WAKE),
            (self.tcp_checksum, FEATURE_TCP_CHECKSUM),
            (self.app_certs, FEATURE_APP_CERTS),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |bits, (_, bit)| bits | bit)
    }

    fn from_bits(bits: u8) -> Self {
        Self {
            hosts: bits & FEATURE_HOSTS != 0,
            wake: bits & FEATURE_WAKE != 0,
            tcp_checksum: bits & FEATURE_TCP_CHECKSUM != 0,
            tcp_checksum_checked: false,
            app_certs: bits & FEATURE_APP_CERTS != 0,
        }
    }
}

/// One rule of a device's allow list: `network`, optionally only some ports and one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowRule {
    /// The destination network, e.g. `192.168.0.10/32`.
    pub network: Network,
    /// The destination ports `(first, last)`, both included; `None` is every port and protocol.
    pub ports: Option<(u16, u16)>,
    /// The protocol the ports are for; `None` is TCP and UDP.
    pub protocol: Option<AllowProtocol>,
}

/// The protocol of an [`AllowRule`] with ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowProtocol {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
}

impl AllowRule {
    /// A rule allowing everything to `network`.
    pub fn network(network: Network) -> Self {
        Self { network, ports: None, protocol: None }
    }

    /// Whether a TCP connection to `target` is allowed by this rule (what a launcher lists).
    pub fn allows_tcp(&self, target: core::net::SocketAddrV4) -> bool {
        self.network.contains(*target.ip())
            && self.protocol != Some(AllowProtocol::Udp)
            && self.ports.is_none_or(|(first, last)| (first..=last).contains(&target.port()))
    }

    /// Wire form: prefix (5 bytes), then optionally first and last port (2 + 2) and protocol (1).
    fn to_bytes(self) -> Vec<u8> {
        let mut out = prefix_bytes(self.network.addr(), self.network.prefix_len()).to_vec();
        if let Some((first, last)) = self.ports {
            out.extend_from_slice(&first.to_be_bytes());
            out.extend_from_slice(&last.to_be_bytes());
            out.push(match self.protocol {
                None => 0,
                Some(AllowProtocol::Tcp) => PROTOCOL_TCP,
                Some(AllowProtocol::Udp) => PROTOCOL_UDP,
            });
        }
        out
    }

    fn parse(tag: u8, value: &[u8]) -> Result<Self, ControlError> {
        let bad = || ControlError::BadField(tag);
        let (prefix, rest) = value.split_first_chunk::<5>().ok_or_else(bad)?;
        let (addr, len) = parse_prefix(tag, prefix)?;
        let network = Network::new(addr, len).map_err(|_| bad())?;
        match rest {
            [] => Ok(Self::network(network)),
            &[f0, f1, l0, l1, protocol] => {
                let (first, last) = (u16::from_be_bytes([f0, f1]), u16::from_be_bytes([l0, l1]));
                if first == 0 || first > last {
                    return Err(bad());
                }
                let protocol = match protocol {
                    0 => None,
                    PROTOCOL_TCP => Some(AllowProtocol::Tcp),
                    PROTOCOL_UDP => Some(AllowProtocol::Udp),
                    _ => return Err(bad()),
                };
                Ok(Self { network, ports: Some((first, last)), protocol })
            }
            _ => Err(bad()),
        }
    }
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlMessage {
    /// The client's configuration (relay to client).
    Config(ClientConfig),
    /// The hosts of the home LAN this device may reach (relay to client).
    Hosts(HostList),
    /// The client wants [`ControlMessage::Hosts`] now and on every change (client to relay).
    Subscribe,
    /// The client asks the relay to wake the host at this address (client to relay).
    Wake(Ipv4Addr),
    /// What became of a wake request (relay to client).
    WakeReply {
        /// The host asked for.
        address: Ipv4Addr,
        /// What the relay did.
        outcome: WakeOutcome,
    },
    /// The client is about to open this LAN app on its app name and asks the relay to get the
    /// name's certificate if it has none (client to relay).
    AppCert(AppTarget),
    /// What became of an app-name certificate demand (relay to client).
    AppCertReply {
        /// The app asked for.
        app: AppTarget,
        /// What the relay did.
        outcome: AppCertOutcome,
    },
}

impl ControlMessage {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Config(config) => encode_config(config),
            Self::Hosts(list) => {
                let mut out = vec![TYPE_HOSTS, VERSION];
                list.encode_fields(&mut out);
                out
            }
            Self::Subscribe => encode_subscribe(),
            Self::Wake(address) => encode_wake(*address),
            Self::WakeReply { address, outcome } => {
                let mut out = vec![TYPE_WAKE_REPLY, VERSION];
                hosts::encode_wake_reply(&mut out, *address, *outcome);
                out
            }
            Self::AppCert(app) => encode_app_cert(*app),
            Self::AppCertReply { app, outcome } => {
                let mut out = vec![TYPE_APP_CERT_REPLY, VERSION];
                app_certs::encode(&mut out, *app, Some(*outcome));
                out
            }
        }
    }

    /// Decodes a message from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        let (&[kind, version], rest) = bytes.split_first_chunk::<2>().ok_or(ControlError::Truncated)?;
        if !(TYPE_CONFIG..=TYPE_APP_CERT_REPLY).contains(&kind) {
            return Err(ControlError::UnknownType(kind));
        }
        if version > VERSION {
            return Err(ControlError::UnsupportedVersion(version));
        }
        match kind {
            TYPE_HOSTS => HostList::decode_fields(rest).map(Self::Hosts),
            TYPE_SUBSCRIBE => Ok(Self::Subscribe),
            TYPE_WAKE => hosts::decode_wake(rest, false).map(|(address, _)| Self::Wake(address)),
            TYPE_WAKE_REPLY => match hosts::decode_wake(rest, true)? {
                (address, Some(outcome)) => Ok(Self::WakeReply { address, outcome }),
                (_, None) => Err(ControlError::Truncated),
            },
            TYPE_APP_CERT => app_certs::decode(rest, false).map(|(app, _)| Self::AppCert(app)),
            TYPE_APP_CERT_REPLY => match app_certs::decode(rest, true)? {
                (app, Some(outcome)) => Ok(Self::AppCertReply { app, outcome }),
                (_, None) => Err(ControlError::Truncated),
            },
            _ => decode_config(rest).map(Self::Config),
        }
    }
}

/// [`ControlMessage::Subscribe`], encoded. The messages a client sends have encoders of
/// their own, so that a client (the page) carries none of the relay's.
pub fn encode_subscribe() -> Vec<u8> {
    vec![TYPE_SUBSCRIBE, VERSION]
}

/// [`ControlMessage::Wake`] for `address`, encoded.
pub fn encode_wake(address: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![TYPE_WAKE, VERSION];
    hosts::encode_wake(&mut out, address);
    out
}

/// [`ControlMessage::AppCert`] for `app`, encoded.
pub fn encode_app_cert(app: AppTarget) -> Vec<u8> {
    let mut out = vec![TYPE_APP_CERT, VERSION];
    app_certs::encode(&mut out, app, None);
    out
}

fn encode_config(config: &ClientConfig) -> Vec<u8> {
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
    if config.max_packet > config.mtu {
        field(&mut out, TAG_MAX_PACKET, &config.max_packet.to_be_bytes());
    }
    let keepalive = u16::try_from(config.keepalive.as_secs()).unwrap_or(u16::MAX);
    field(&mut out, TAG_KEEPALIVE, &keepalive.to_be_bytes());
    for rule in config.allow.iter().take(MAX_LIST_LEN) {
        field(&mut out, TAG_ALLOW, &rule.to_bytes());
    }
    let bits = config.features.to_bits();
    if bits != 0 {
        field(&mut out, TAG_FEATURES, &[bits]);
    }
    if config.features.tcp_checksum_checked {
        field(&mut out, TAG_TCP_CHECKSUM_CHECKED, &[]);
    }
    out
}

fn decode_config(mut rest: &[u8]) -> Result<ClientConfig, ControlError> {
    let (mut features, mut tcp_checksum_checked) = (Features::default(), false);
    let (mut address, mut relay_address, mut mtu, mut max_packet) = (None, None, None, None);
    let (mut routes, mut dns, mut allow, mut keepalive) =
        (Vec::new(), Vec::new(), Vec::new(), crate::session::Params::default().keepalive);
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
            TAG_MAX_PACKET => {
                max_packet = Some(u16::from_be_bytes(value.try_into().map_err(|_| ControlError::BadField(tag))?));
            }
            TAG_KEEPALIVE => {
                let secs = u16::from_be_bytes(value.try_into().map_err(|_| ControlError::BadField(tag))?);
                keepalive = Duration::from_secs(u64::from(secs.max(1)));
            }
            TAG_ALLOW => push_bounded(&mut allow, AllowRule::parse(tag, value)?)?,
            TAG_FEATURES => {
                let &[bits] = value else { return Err(ControlError::BadField(tag)) };
                features = Features::from_bits(bits);
            }
            TAG_TCP_CHECKSUM_CHECKED if value.is_empty() => tcp_checksum_checked = true,
            TAG_TCP_CHECKSUM_CHECKED => return Err(ControlError::BadField(tag)),
            unknown if unknown & REQUIRED != 0 => return Err(ControlError::UnknownRequiredField(unknown)),
            _ => {}
        }
    }
    let address = address.ok_or(ControlError::MissingField(TAG_ADDRESS))?;
    let relay_address = relay_address.ok_or(ControlError::MissingField(TAG_RELAY_ADDRESS))?;
    let mtu = mtu.ok_or(ControlError::MissingField(TAG_MTU))?;
    let max_packet = match max_packet {
        None => mtu,
        Some(larger) if larger > mtu => larger,
        Some(_) => return Err(ControlError::BadField(TAG_MAX_PACKET)),
    };
    features.tcp_checksum_checked = tcp_checksum_checked;
    Ok(ClientConfig { address, relay_address, routes, dns, mtu, max_packet, keepalive, allow, features })
}

/// The body of a request that names one thing (field `subject_tag`, read by `subject`), or of its
/// reply (`reply`), which adds an outcome code (field `outcome_tag`, one byte, read by
/// `outcome`): the shape of the wake and the app-certificate messages.
fn decode_request<S, O>(
    mut rest: &[u8],
    reply: bool,
    (subject_tag, subject): (u8, impl Fn(&[u8]) -> Option<S>),
    (outcome_tag, outcome): (u8, impl Fn(u8) -> Option<O>),
) -> Result<(S, Option<O>), ControlError> {
    let (mut named, mut answer) = (None, None);
    while let Some((tag, value, after)) = hosts::next_field(rest)? {
        rest = after;
        match tag {
            tag if tag == subject_tag => named = Some(subject(value).ok_or(ControlError::BadField(tag))?),
            tag if tag == outcome_tag && reply => {
                let &[code] = value else { return Err(ControlError::BadField(tag)) };
                answer = Some(outcome(code).ok_or(ControlError::BadField(tag))?);
            }
            unknown if unknown & REQUIRED != 0 => return Err(ControlError::UnknownRequiredField(unknown)),
            _ => {}
        }
    }
    let named = named.ok_or(ControlError::MissingField(subject_tag))?;
    if reply && answer.is_none() {
        return Err(ControlError::MissingField(outcome_tag));
    }
    Ok((named, answer))
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
    fn a_relay_that_cuts_segments_says_how_large_and_nothing_smaller_than_the_mtu_is_taken() {
        let mut config = home_config();
        config.max_packet = 65535;
        let message = ControlMessage::Config(config.clone());
        assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));

        // A relay from before the field: TCP packets stay within the MTU.
        let mut old = vec![TYPE_CONFIG, VERSION];
        field(&mut old, TAG_ADDRESS, &prefix_bytes(config.address.addr(), config.address.prefix_len()));
        field(&mut old, TAG_RELAY_ADDRESS, &config.relay_address.octets());
        field(&mut old, TAG_MTU, &1420u16.to_be_bytes());
        let Ok(ControlMessage::Config(decoded)) = ControlMessage::decode(&old) else { panic!("old config refused") };
        assert_eq!((decoded.mtu, decoded.max_packet), (1420, 1420));

        let mut smaller = old.clone();
        field(&mut smaller, TAG_MAX_PACKET, &1000u16.to_be_bytes());
        assert_eq!(ControlMessage::decode(&smaller), Err(ControlError::BadField(TAG_MAX_PACKET)));
    }

    fn config_with_allow_list() -> ClientConfig {
        let mut config = home_config();
        config.allow = vec![
            AllowRule::network("192.168.1.0/28".parse().unwrap()),
            AllowRule { network: "192.168.0.10/32".parse().unwrap(), ports: Some((80, 80)), protocol: None },
            AllowRule {
                network: "192.168.0.20/32".parse().unwrap(),
                ports: Some((8000, 8100)),
                protocol: Some(AllowProtocol::Tcp),
            },
            AllowRule {
                network: "192.168.0.30/32".parse().unwrap(),
                ports: Some((53, 53)),
                protocol: Some(AllowProtocol::Udp),
            },
        ];
        config
    }

    #[test]
    fn offered_features_arrive_as_sent_and_old_clients_skip_them() {
        let mut config = home_config();
        config.features = Features { hosts: true, tcp_checksum: true, ..Features::default() };
        let message = ControlMessage::Config(config);
        let bytes = message.encode();
        assert_eq!(ControlMessage::decode(&bytes), Ok(message));
        assert_eq!(TAG_FEATURES & REQUIRED, 0, "the features must stay optional");
        assert_eq!(&bytes[bytes.len() - 4..], &[TAG_FEATURES, 0, 1, FEATURE_HOSTS | FEATURE_TCP_CHECKSUM]);
        // Each feature travels on its own bit.
        for features in [
            Features { hosts: true, ..Features::default() },
            Features { wake: true, ..Features::default() },
            Features { tcp_checksum: true, ..Features::default() },
            Features { app_certs: true, ..Features::default() },
        ] {
            assert_eq!(Features::from_bits(features.to_bits()), features);
            assert_eq!(features.to_bits().count_ones(), 1);
        }
    }

    #[test]
    fn checked_tcp_checksums_are_a_field_an_older_client_must_refuse() {
        let mut config = home_config();
        config.features.tcp_checksum_checked = true;
        let message = ControlMessage::Config(config);
        let bytes = message.encode();
        assert_eq!(ControlMessage::decode(&bytes), Ok(message));
        assert_eq!(&bytes[bytes.len() - 3..], &[TAG_TCP_CHECKSUM_CHECKED, 0, 0]);
        assert_ne!(TAG_TCP_CHECKSUM_CHECKED & REQUIRED, 0, "a client that would check them must not go on");
        let mut with_value = bytes.clone();
        with_value.truncate(bytes.len() - 3);
        field(&mut with_value, TAG_TCP_CHECKSUM_CHECKED, &[1]);
        assert_eq!(ControlMessage::decode(&with_value), Err(ControlError::BadField(TAG_TCP_CHECKSUM_CHECKED)));
    }

    #[test]
    fn an_allow_list_arrives_as_sent() {
        let message = ControlMessage::Config(config_with_allow_list());
        assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn a_client_from_before_the_allow_list_skips_it() {
        // An old client does not know tag 7; it sees it as this decoder sees any unknown
        // optional tag. Renaming the allow fields to such a tag shows what the old client gets.
        assert_eq!(TAG_ALLOW & REQUIRED, 0, "the allow list must stay optional");
        let mut bytes = ControlMessage::Config(config_with_allow_list()).encode();
        let mut at = 2;
        let mut renamed = 0;
        while at < bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]));
            if bytes[at] == TAG_ALLOW {
                bytes[at] = 0x3f;
                renamed += 1;
            }
            at += 3 + len;
        }
        assert_eq!(renamed, 4, "one field per rule");
        assert_eq!(ControlMessage::decode(&bytes), Ok(ControlMessage::Config(home_config())));
    }

    #[test]
    fn allow_rules_tell_which_tcp_targets_a_launcher_lists() {
        let allow = config_with_allow_list().allow;
        let allowed = |target: &str| allow.iter().any(|r| r.allows_tcp(target.parse().unwrap()));
        assert!(allowed("192.168.1.5:22"));
        assert!(allowed("192.168.0.10:80"));
        assert!(!allowed("192.168.0.10:81"));
        assert!(allowed("192.168.0.20:8080"));
        assert!(!allowed("192.168.0.30:53"), "a UDP-only rule lists no web app");
        assert!(!allowed("192.168.0.40:80"));
    }

    #[test]
    fn malformed_allow_rules_and_too_many_are_refused() {
        let base = ControlMessage::Config(home_config()).encode();
        let with = |value: &[u8]| {
            let mut bytes = base.clone();
            field(&mut bytes, TAG_ALLOW, value);
            ControlMessage::decode(&bytes)
        };
        let bad: [&[u8]; 5] = [
            &[192, 168, 0, 10],                      // short prefix
            &[192, 168, 0, 10, 33],                  // prefix too long
            &[192, 168, 0, 10, 32, 0, 80],           // ports cut short
            &[192, 168, 0, 10, 32, 0, 81, 0, 80, 6], // first port after last
            &[192, 168, 0, 10, 32, 0, 80, 0, 80, 1], // unknown protocol
        ];
        for (i, value) in bad.into_iter().enumerate() {
            assert_eq!(with(value), Err(ControlError::BadField(TAG_ALLOW)), "case {i}");
        }
        let mut many = base.clone();
        for _ in 0..=MAX_LIST_LEN {
            field(&mut many, TAG_ALLOW, &[192, 168, 0, 10, 32]);
        }
        assert_eq!(ControlMessage::decode(&many), Err(ControlError::TooMany));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = ControlMessage::Config(home_config()).encode();
        let cases: Vec<(Vec<u8>, ControlError)> = vec![
            (vec![], ControlError::Truncated),
            (vec![9, 1], ControlError::UnknownType(9)),
            (vec![0, 1], ControlError::UnknownType(0)),
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
