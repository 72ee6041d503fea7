//! The home's devices as one device may see them, and Wake-on-LAN requests.
//!
//! Four control messages, after the relay offered them in [`super::Features`] (a client from
//! before them never receives one, and a client never sends one to a relay that did not offer
//! them):
//!
//! - `Subscribe` (client → relay): "send me the host list, now and on every change".
//! - `Hosts` (relay → client): the hosts this device may reach, already filtered by its ACL.
//! - `Wake` (client → relay): send a magic packet to this host.
//! - `WakeReply` (relay → client): what became of it.
//!
//! A host is a nested TLV (same `[tag][len u16][value]` fields): its address (required), DNS
//! names it answers to (`nas.local`, reverse names), a friendly label, services
//! (`[port u16][type]`, e.g. `_http._tcp`) and flags (online, wakeable). Everything is bounded
//! ([`MAX_HOSTS`], [`MAX_NAMES`], [`MAX_SERVICES`], the lengths below) and checked on decode:
//! names are DNS names, labels printable (no control, bidi-control or zero-width characters),
//! service types `_name._tcp|_udp`.

use super::{field, parse_ip, ControlError, REQUIRED};
use core::net::Ipv4Addr;

/// At most this many hosts in one list.
pub const MAX_HOSTS: usize = 128;
/// At most this many DNS names per host.
pub const MAX_NAMES: usize = 4;
/// At most this many services per host.
pub const MAX_SERVICES: usize = 16;
/// Longest DNS name (bytes).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (bytes of UTF-8).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest service type (`_device-info._tcp` fits with room).
pub const MAX_SERVICE_TYPE_LEN: usize = 40;
/// An encoded host list stays below this size (one control frame holds 65535 bytes): hosts
/// beyond it are left out, the last ones first.
pub const MAX_ENCODED_LEN: usize = 60_000;

const TAG_HOST: u8 = 1;
const TAG_MAY_WAKE: u8 = 2;
const TAG_HOST_ADDRESS: u8 = 1 | REQUIRED;
const TAG_HOST_NAME: u8 = 2;
const TAG_HOST_LABEL: u8 = 3;
const TAG_HOST_SERVICE: u8 = 4;
const TAG_HOST_FLAGS: u8 = 5;
const TAG_WAKE_ADDRESS: u8 = 1 | REQUIRED;
const TAG_WAKE_OUTCOME: u8 = 2 | REQUIRED;
const FLAG_ONLINE: u8 = 1;
const FLAG_WAKEABLE: u8 = 2;

/// The hosts one device may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList {
    /// The hosts, in the relay's order (by address).
    pub hosts: Vec<Host>,
    /// Whether this device may ask the relay to wake hosts.
    pub may_wake: bool,
}

/// One device of the home LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its IPv4 address on the LAN.
    pub address: Ipv4Addr,
    /// DNS names that resolve to it (mDNS `nas.local`, the LAN's reverse name), best first.
    pub names: Vec<String>,
    /// A friendly name (an mDNS instance name such as `My NAS`), if any.
    pub label: Option<String>,
    /// Services it announces (only the ports this device may reach).
    pub services: Vec<Service>,
    /// Seen recently (neighbour table or announcements).
    pub online: bool,
    /// The relay knows its MAC address, so it can be woken.
    pub wakeable: bool,
}

/// One announced service of a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Service {
    /// The DNS-SD service type without the domain, e.g. `_http._tcp`.
    pub kind: String,
    /// The port.
    pub port: u16,
}

/// What the relay did with a wake request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOutcome {
    /// The magic packet went out on the LAN.
    Sent,
    /// This device may not wake hosts (or not this one).
    NotAllowed,
    /// The relay has never seen this host's MAC address.
    UnknownHost,
    /// Too many wake requests: for this host (1 per 10 s) or from this device (10 a minute).
    RateLimited,
    /// The relay could not send the packet.
    Failed,
}

impl WakeOutcome {
    fn code(self) -> u8 {
        match self {
            Self::Sent => 0,
            Self::NotAllowed => 1,
            Self::UnknownHost => 2,
            Self::RateLimited => 3,
            Self::Failed => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Sent,
            1 => Self::NotAllowed,
            2 => Self::UnknownHost,
            3 => Self::RateLimited,
            4 => Self::Failed,
            _ => return None,
        })
    }

    /// A short word for logs and the page: `sent`, `not-allowed`, `unknown-host`,
    /// `rate-limited`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::NotAllowed => "not-allowed",
            Self::UnknownHost => "unknown-host",
            Self::RateLimited => "rate-limited",
            Self::Failed => "failed",
        }
    }
}

/// Whether `name` is a DNS host name this protocol carries: 1..=253 bytes of letters, digits,
/// `-`, `_` and dots, no empty label, no label over 63 bytes.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether `name` is an mDNS host name: a host name under `.local` (`nas.local`, `NAS.Local.`).
/// Only these are taken from mDNS and looked up in the host list: any host on the LAN may
/// announce any name, so every other name is left to the DNS.
pub fn is_mdns_name(name: &str) -> bool {
    let bare = name.strip_suffix('.').unwrap_or(name);
    is_host_name(name) && bare.rsplit_once('.').is_some_and(|(_, top)| top.eq_ignore_ascii_case("local"))
}

/// Whether `label` is a friendly name this protocol carries: 1..=63 bytes, no control chars,
/// and none that reorder or hide text (bidi controls, zero-width characters): a label is shown
/// next to other text.
pub fn is_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= MAX_LABEL_LEN && !label.chars().any(|c| c.is_control() || hides_text(c))
}

/// Unicode's bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which
/// reorder the text around them, and the zero-width characters (U+200B–U+200D, U+FEFF), which
/// hide inside it. (A label that needs U+200C or U+200D, as some scripts and emoji do, is not
/// carried: safe first.)
fn hides_text(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether `kind` is a service type like `_http._tcp`.
pub fn is_service_type(kind: &str) -> bool {
    let Some((name, proto)) = kind.rsplit_once('.') else { return false };
    kind.len() <= MAX_SERVICE_TYPE_LEN
        && (proto == "_tcp" || proto == "_udp")
        && name.len() > 1
        && name.starts_with('_')
        && name[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl HostList {
    /// The hosts of `hosts` that one list carries ([`MAX_HOSTS`], [`MAX_ENCODED_LEN`]), those
    /// `rank` puts first (smallest) kept, in address order.
    pub fn best_that_fit<K: Ord>(mut hosts: Vec<Host>, rank: impl Fn(&Host) -> K) -> Vec<Host> {
        hosts.sort_by_key(|h| (rank(h), h.address));
        // The message's type, version and flag field come first.
        let mut room = MAX_ENCODED_LEN - 16;
        hosts.retain(|host| {
            let len = 3 + host.to_bytes().len();
            let fits = len <= room;
            room = room.saturating_sub(if fits { len } else { 0 });
            fits
        });
        hosts.truncate(MAX_HOSTS);
        hosts.sort_by_key(|h| h.address);
        hosts
    }

    /// The message body fields (after type and version).
    pub(super) fn encode_fields(&self, out: &mut Vec<u8>) {
        field(out, TAG_MAY_WAKE, &[u8::from(self.may_wake)]);
        for host in self.hosts.iter().take(MAX_HOSTS) {
            let value = host.to_bytes();
            if out.len() + 3 + value.len() > MAX_ENCODED_LEN {
                break;
            }
            field(out, TAG_HOST, &value);
        }
    }

    pub(super) fn decode_fields(mut rest: &[u8]) -> Result<Self, ControlError> {
        let mut list = Self::default();
        while let Some((tag, value, after)) = next_field(rest)? {
            rest = after;
            match tag {
                TAG_HOST => {
                    if list.hosts.len() >= MAX_HOSTS {
                        return Err(ControlError::TooMany);
                    }
                    list.hosts.push(Host::parse(value)?);
                }
                TAG_MAY_WAKE => list.may_wake = flag_byte(tag, value)? != 0,
                unknown if unknown & REQUIRED != 0 => return Err(ControlError::UnknownRequiredField(unknown)),
                _ => {}
            }
        }
        Ok(list)
    }
}

impl Host {
    /// A host known only by its address.
    pub fn new(address: Ipv4Addr) -> Self {
        Self { address, names: Vec::new(), label: None, services: Vec::new(), online: false, wakeable: false }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        field(&mut out, TAG_HOST_ADDRESS, &self.address.octets());
        for name in self.names.iter().filter(|n| is_host_name(n)).take(MAX_NAMES) {
            field(&mut out, TAG_HOST_NAME, name.as_bytes());
        }
        if let Some(label) = self.label.as_deref().filter(|l| is_label(l)) {
            field(&mut out, TAG_HOST_LABEL, label.as_bytes());
        }
        for service in self.services.iter().filter(|s| is_service_type(&s.kind)).take(MAX_SERVICES) {
            let mut value = service.port.to_be_bytes().to_vec();
            value.extend_from_slice(service.kind.as_bytes());
            field(&mut out, TAG_HOST_SERVICE, &value);
        }
        let flags = (if self.online { FLAG_ONLINE } else { 0 }) | (if self.wakeable { FLAG_WAKEABLE } else { 0 });
        field(&mut out, TAG_HOST_FLAGS, &[flags]);
        out
    }

    fn parse(mut rest: &[u8]) -> Result<Self, ControlError> {
        let mut address = None;
        let mut host = Self::new(Ipv4Addr::UNSPECIFIED);
        while let Some((tag, value, after)) = next_field(rest)? {
            rest = after;
            let bad = || ControlError::BadField(tag);
            match tag {
                TAG_HOST_ADDRESS => address = Some(parse_ip(tag, value)?),
                TAG_HOST_NAME => {
                    let name = core::str::from_utf8(value).ok().filter(|n| is_host_name(n)).ok_or_else(bad)?;
                    if host.names.len() >= MAX_NAMES {
                        return Err(ControlError::TooMany);
                    }
                    host.names.push(name.to_owned());
                }
                TAG_HOST_LABEL => {
                    let label = core::str::from_utf8(value).ok().filter(|l| is_label(l)).ok_or_else(bad)?;
                    host.label = Some(label.to_owned());
                }
                TAG_HOST_SERVICE => {
                    let (port, kind) = value.split_first_chunk::<2>().ok_or_else(bad)?;
                    let kind = core::str::from_utf8(kind).ok().filter(|k| is_service_type(k)).ok_or_else(bad)?;
                    let port = u16::from_be_bytes(*port);
                    if port == 0 {
                        return Err(bad());
                    }
                    if host.services.len() >= MAX_SERVICES {
                        return Err(ControlError::TooMany);
                    }
                    host.services.push(Service { kind: kind.to_owned(), port });
                }
                TAG_HOST_FLAGS => {
                    let flags = flag_byte(tag, value)?;
                    host.online = flags & FLAG_ONLINE != 0;
                    host.wakeable = flags & FLAG_WAKEABLE != 0;
                }
                unknown if unknown & REQUIRED != 0 => return Err(ControlError::UnknownRequiredField(unknown)),
                _ => {}
            }
        }
        host.address = address.ok_or(ControlError::MissingField(TAG_HOST_ADDRESS))?;
        Ok(host)
    }
}

/// The fields of a `Wake` request.
pub(super) fn encode_wake(out: &mut Vec<u8>, address: Ipv4Addr) {
    field(out, TAG_WAKE_ADDRESS, &address.octets());
}

/// The fields of a `WakeReply`.
pub(super) fn encode_wake_reply(out: &mut Vec<u8>, address: Ipv4Addr, outcome: WakeOutcome) {
    field(out, TAG_WAKE_ADDRESS, &address.octets());
    field(out, TAG_WAKE_OUTCOME, &[outcome.code()]);
}

/// Decodes a `Wake` (no outcome expected) or a `WakeReply` body.
pub(super) fn decode_wake(rest: &[u8], reply: bool) -> Result<(Ipv4Addr, Option<WakeOutcome>), ControlError> {
    let address = |value: &[u8]| parse_ip(TAG_WAKE_ADDRESS, value).ok();
    super::decode_request(rest, reply, (TAG_WAKE_ADDRESS, address), (TAG_WAKE_OUTCOME, WakeOutcome::from_code))
}

/// One field: its tag, its value and the bytes after it.
pub(super) type Field<'a> = (u8, &'a [u8], &'a [u8]);

/// The next `[tag][len u16][value]` field, or `None` at the end.
pub(super) fn next_field(rest: &[u8]) -> Result<Option<Field<'_>>, ControlError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let (&[tag, hi, lo], after) = rest.split_first_chunk::<3>().ok_or(ControlError::Truncated)?;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if after.len() < len {
        return Err(ControlError::Truncated);
    }
    let (value, after) = after.split_at(len);
    Ok(Some((tag, value, after)))
}

fn flag_byte(tag: u8, value: &[u8]) -> Result<u8, ControlError> {
    match value {
        &[byte] => Ok(byte),
        _ => Err(ControlError::BadField(tag)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ControlMessage;
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn nas() -> Host {
        Host {
            address: Ipv4Addr::new(192, 168, 0, 10),
            names: vec!["nas.local".into(), "nas.home.arpa".into()],
            label: Some("Büro NAS".into()),
            services: vec![
                Service { kind: "_http._tcp".into(), port: 5000 },
                Service { kind: "_ssh._tcp".into(), port: 22 },
            ],
            online: true,
            wakeable: true,
        }
    }

    #[test]
    fn a_host_list_arrives_as_sent() {
        let printer = Host::new(Ipv4Addr::new(192, 168, 0, 20));
        let message = ControlMessage::Hosts(HostList { hosts: vec![nas(), printer], may_wake: true });
        assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn subscribe_wake_and_reply_arrive_as_sent() {
        let address = Ipv4Addr::new(192, 168, 0, 10);
        for message in [
            ControlMessage::Subscribe,
            ControlMessage::Wake(address),
            ControlMessage::WakeReply { address, outcome: WakeOutcome::RateLimited },
        ] {
            assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn names_labels_and_service_types_are_checked() {
        assert!(is_host_name("nas.local") && is_host_name("nas.local.") && is_host_name("my_pc-2.home.arpa"));
        for bad in ["", ".", "a..b", "nas local", "nas\u{0}.local", &"a".repeat(64), "ünï.local"] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
        assert!(is_label("Büro NAS") && !is_label("a\nb") && !is_label("") && !is_label(&"x".repeat(64)));
        assert!(is_service_type("_device-info._tcp") && is_service_type("_ipp._udp"));
        for bad in ["_http", "http._tcp", "_._tcp", "_http._sctp", "_ht tp._tcp"] {
            assert!(!is_service_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn mdns_names_are_host_names_under_local() {
        for good in ["nas.local", "NAS.Local.", "my-pc.sub.local"] {
            assert!(is_mdns_name(good), "{good:?}");
        }
        for bad in ["local", "local.", ".local", "nas.home.arpa", "nas.local.evil", "nas.localhost", "nas .local"] {
            assert!(!is_mdns_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_label_cannot_hide_or_reorder_text_around_it() {
        let hiding = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', // embeddings and overrides
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', // isolates
            '\u{061C}', '\u{200E}', '\u{200F}', // direction marks
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{FEFF}', // zero-width
        ];
        for c in hiding {
            let label = format!("NAS{c}fdp.exe");
            assert!(!is_label(&label), "U+{:04X}", u32::from(c));
        }
        assert!(is_label("Büro NAS") && is_label("تخزين") && is_label("家のNAS"), "scripts of any direction");
        let mut bytes = vec![2, 1];
        let mut host = Vec::new();
        field(&mut host, TAG_HOST_ADDRESS, &[192, 168, 0, 10]);
        field(&mut host, TAG_HOST_LABEL, "exe.\u{202E}gnp.NAS".as_bytes());
        field(&mut bytes, TAG_HOST, &host);
        assert_eq!(ControlMessage::decode(&bytes), Err(ControlError::BadField(TAG_HOST_LABEL)));
    }

    #[test]
    fn malformed_hosts_are_refused() {
        let mut good_host = Vec::new();
        field(&mut good_host, TAG_HOST_ADDRESS, &[192, 168, 0, 10]);
        let with_host_field = |tag: u8, value: &[u8]| {
            let mut host = good_host.clone();
            field(&mut host, tag, value);
            let mut bytes = vec![2, 1];
            field(&mut bytes, TAG_HOST, &host);
            ControlMessage::decode(&bytes)
        };
        let cases: Vec<(u8, &[u8], ControlError)> = vec![
            (TAG_HOST_NAME, b"bad name", ControlError::BadField(TAG_HOST_NAME)),
            (TAG_HOST_NAME, &[0xff, 0xfe], ControlError::BadField(TAG_HOST_NAME)),
            (TAG_HOST_LABEL, b"line\nbreak", ControlError::BadField(TAG_HOST_LABEL)),
            (TAG_HOST_SERVICE, b"\x00\x50_http", ControlError::BadField(TAG_HOST_SERVICE)),
            (TAG_HOST_SERVICE, b"\x00\x00_http._tcp", ControlError::BadField(TAG_HOST_SERVICE)),
            (TAG_HOST_SERVICE, b"\x00", ControlError::BadField(TAG_HOST_SERVICE)),
            (TAG_HOST_FLAGS, &[1, 2], ControlError::BadField(TAG_HOST_FLAGS)),
            (0x40 | REQUIRED, b"future", ControlError::UnknownRequiredField(0x40 | REQUIRED)),
        ];
        for (i, (tag, value, expected)) in cases.into_iter().enumerate() {
            assert_eq!(with_host_field(tag, value), Err(expected), "case {i}");
        }
        assert!(with_host_field(0x40, b"optional, from the future").is_ok());
        let mut no_address = vec![2, 1];
        field(&mut no_address, TAG_HOST, &[]);
        assert_eq!(ControlMessage::decode(&no_address), Err(ControlError::MissingField(TAG_HOST_ADDRESS)));
        assert_eq!(
            ControlMessage::decode(&[5, 1, TAG_WAKE_ADDRESS, 0, 4, 192, 168, 0, 10, TAG_WAKE_OUTCOME, 0, 1, 9]),
            Err(ControlError::BadField(TAG_WAKE_OUTCOME))
        );
    }

    #[test]
    fn a_huge_list_is_cut_to_fit_one_frame_and_bounded_on_decode() {
        let mut big = nas();
        let long = "n".repeat(60);
        big.names = (0..MAX_NAMES).map(|i| format!("h{i}.{long}.{long}.{long}.local")).collect();
        big.services =
            (1..=MAX_SERVICES as u16).map(|p| Service { kind: "_device-info._tcp".into(), port: p }).collect();
        let list = HostList { hosts: vec![big; MAX_HOSTS], may_wake: false };
        let bytes = ControlMessage::Hosts(list).encode();
        assert!(bytes.len() <= MAX_ENCODED_LEN, "{}", bytes.len());
        let Ok(ControlMessage::Hosts(decoded)) = ControlMessage::decode(&bytes) else { panic!("decodes") };
        assert!(!decoded.hosts.is_empty() && decoded.hosts.len() < MAX_HOSTS);

        let mut many = vec![2, 1];
        for _ in 0..=MAX_HOSTS {
            field(&mut many, TAG_HOST, &[TAG_HOST_ADDRESS, 0, 4, 10, 0, 0, 1]);
        }
        assert_eq!(ControlMessage::decode(&many), Err(ControlError::TooMany));
    }
}
