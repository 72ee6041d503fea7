//! The relay's settings (`DIR/relay.toml`): every knob in one file, checked completely before
//! anything starts. A bad file yields an error naming the line and the field.

use hometun_shared::control::MAX_LIST_LEN;
use hometun_shared::ipv4::Network;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// File name of the configuration inside the state directory.
pub const FILE_NAME: &str = "relay.toml";

/// How client traffic reaches the LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Source-NAT the pool out of the LAN interface; LAN hosts need no change.
    Masquerade,
    /// No NAT; the home router needs a route to the pool via the relay.
    Routed,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Masquerade => "masquerade",
            Self::Routed => "routed",
        })
    }
}

/// Everything the relay needs to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// TCP address the TLS port listens on.
    pub listen: SocketAddr,
    /// The URL clients use to reach the relay (goes into invite links).
    pub public_url: String,
    /// masquerade or routed.
    pub mode: Mode,
    /// The home LAN subnet clients may reach by default.
    pub lan: Network,
    /// The interface facing the LAN (NAT goes out of it; forwarding is enabled on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lan_interface: Option<String>,
    /// The client address pool; the relay takes its first host address.
    pub pool: Network,
    /// Name of the tun device.
    pub tun_name: String,
    /// MTU of the tun device and of clients.
    pub mtu: u16,
    /// Segmentation offload on the tun, both ways: the kernel hands the relay TCP
    /// super-packets (one read for up to 64 KiB instead of one per MTU-sized packet), and
    /// clients send TCP segments of up to 64 KiB that the kernel cuts for the LAN. On by
    /// default; `false` keeps every packet within the MTU, as before it existed.
    #[serde(default = "yes")]
    pub tun_offload: bool,
    /// Worker threads for the tunnels, the page and everything else the relay serves (blocking
    /// work such as state writes has threads of its own). One (the default) carries every
    /// tunnel on one core: on a 2-core machine that moved ~1.6 Gbit/s for one device, more than
    /// most home uplinks, with fewer wake-ups and less CPU per GB than two (bench/README.md).
    /// Raise it when several devices move bulk data at once and the machine has idle cores; a
    /// single device's tunnel runs on one thread either way.
    #[serde(default = "one")]
    pub threads: usize,
    /// A directory that overrides the page built into the binary while it holds an index.html.
    pub www: PathBuf,
    /// TLS certificate chain (PEM), relative to the state directory unless absolute.
    pub tls_cert: PathBuf,
    /// TLS private key (PEM), relative to the state directory unless absolute.
    pub tls_key: PathBuf,
    /// Whether the relay may create a self-signed certificate when the files are missing.
    #[serde(default = "yes")]
    pub self_signed: bool,
    /// Whether clients may reach each other (where their allow rules include the pool).
    #[serde(default)]
    pub client_to_client: bool,
    /// DNS servers pushed to clients.
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// Web origins besides the relay's own whose pages may open `/tunnel` (for example a
    /// development server's `http://127.0.0.1:8000`); each `scheme://host[:port]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_origins: Vec<String>,
    /// Control socket path; default `DIR/control.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Trusted certificate by ACME (`[acme]`).
    #[serde(default, skip_serializing_if = "crate::acme::Settings::is_empty")]
    pub acme: crate::acme::Settings,
    /// Discovery of the home's devices and Wake-on-LAN (`[discovery]`).
    #[serde(default, skip_serializing_if = "crate::discovery::Settings::is_default")]
    pub discovery: crate::discovery::Settings,
}

/// Resource limits against slow, broken or hostile peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Seconds a connection may take from TCP accept to an established session.
    pub handshake_timeout_secs: u64,
    /// Seconds from TCP accept by which a connection must have asked for the tunnel; others
    /// (page loads, slow or trickling clients) are closed then.
    pub upgrade_deadline_secs: u64,
    /// Largest WebSocket message accepted, bytes.
    pub max_message_bytes: usize,
    /// Open connections allowed from one source IP.
    pub max_connections_per_ip: usize,
    /// Connections from one source IP still in TLS/WebSocket/Noise handshakes.
    pub max_unauthenticated_per_ip: usize,
    /// New connections per second allowed from one source IP (sustained).
    pub new_connections_per_ip_per_sec: u32,
    /// Burst of new connections allowed from one source IP.
    pub new_connections_per_ip_burst: u32,
    /// Packets queued towards one client before further ones are dropped.
    pub session_queue_packets: usize,
    /// Keepalive interval pushed to clients, seconds.
    pub keepalive_secs: u64,
    /// A session with no traffic for this long is closed, seconds.
    pub idle_timeout_secs: u64,
}

/// The longest keepalive or idle timeout, seconds (a day).
const MAX_TIMER_SECS: u64 = 86_400;

/// The smallest WebSocket message limit: a device's largest message must fit.
const MIN_MESSAGE_BYTES: usize = hometun_shared::wire::MAX_MESSAGE_LEN;

/// The largest WebSocket message limit (8 times what devices send): each tunnel may make the
/// relay hold a message this large.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The longest handshake timeout, seconds (a handshake is a few round trips).
const MAX_HANDSHAKE_TIMEOUT_SECS: u64 = 300;

/// The longest queue of packets towards one client (about 100 MB of full-size packets).
const MAX_SESSION_QUEUE_PACKETS: usize = 65_536;

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout_secs: 10,
            upgrade_deadline_secs: 60,
            max_message_bytes: 256 * 1024,
            max_connections_per_ip: 256,
            max_unauthenticated_per_ip: 64,
            new_connections_per_ip_per_sec: 50,
            new_connections_per_ip_burst: 400,
            session_queue_packets: 1024,
            keepalive_secs: 15,
            idle_timeout_secs: 60,
        }
    }
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// The most worker threads [`Config::threads`] may ask for.
pub const MAX_THREADS: usize = 64;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}{hint}", hint = crate::state::root::hint(.source))]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a field has a wrong value.
    #[error("{path}: line {line}, field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field concerned.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source}{hint}", hint = crate::state::root::hint(.source))]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Config {
    /// Reads and checks `DIR/relay.toml`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        Self::parse(&text, &path)
    }

    /// Parses and checks configuration text; `path` only labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let line = line_of(text, offset);
            let field = field_on_line(text, line).or_else(|| backticked(e.message())).unwrap_or_else(|| "-".to_owned());
            ConfigError::Invalid { path: path.to_owned(), line, field, message: e.message().trim().to_owned() }
        })?;
        config.check().map_err(|(field, message)| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of_field(text, field),
            field: field.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Writes the configuration atomically.
    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(FILE_NAME);
        let body = toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Write { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
        let text = format!("# hometun relay configuration. Edit, then restart the relay.\n{body}");
        crate::state::atomic::write(&path, text.as_bytes(), 0o600).map_err(|source| ConfigError::Write { path, source })
    }

    /// Semantic checks serde cannot express. Returns the field at fault and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(problem) = self.public_url_problem() {
            return Err(("public_url", format!("`{}` {problem}", self.public_url)));
        }
        if self.listen.port() == 0 {
            return Err((
                "listen",
                format!(
                    "{}: port 0 would be a random one the router cannot forward to; give one, e.g. 443",
                    self.listen
                ),
            ));
        }
        if self.pool.prefix_len() > 29 || self.pool.prefix_len() < 8 {
            return Err(("pool", format!("{} must have a prefix from /8 to /29", self.pool)));
        }
        if self.pool.overlaps(&self.lan) {
            return Err(("pool", format!("{} overlaps the LAN {}", self.pool, self.lan)));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(("threads", format!("{} is outside 1..={MAX_THREADS}", self.threads)));
        }
        if !(576..=9000).contains(&self.mtu) {
            return Err(("mtu", format!("{} is outside 576..=9000", self.mtu)));
        }
        if !is_interface_name(&self.tun_name)
            || !self.tun_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err((
                "tun_name",
                format!("`{}` must be 1-15 letters, digits, - or _, and not all or default", self.tun_name),
            ));
        }
        if let Some(ifname) = &self.lan_interface {
            if !is_interface_name(ifname) {
                return Err((
                    "lan_interface",
                    format!(
                        "`{}` is not the name of one interface (1-15 bytes, no spaces, control characters \
                         or / : * % \" \\, not . .. all default); `ip link` lists them",
                        ifname.escape_debug()
                    ),
                ));
            }
        }
        if self.dns.len() > MAX_LIST_LEN {
            return Err((
                "dns",
                format!("{} servers, but a device can be sent at most {MAX_LIST_LEN}", self.dns.len()),
            ));
        }
        for origin in &self.extra_origins {
            if !crate::web::origin::is_origin(origin) {
                return Err(("extra_origins", format!("`{origin}` is not an origin like https://host:port")));
            }
        }
        self.acme.check()?;
        self.discovery.check()?;
        let l = &self.limits;
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&l.max_message_bytes) {
            let bytes = l.max_message_bytes;
            return Err((
                "max_message_bytes",
                format!(
                    "{bytes} is outside {MIN_MESSAGE_BYTES}..={MAX_MESSAGE_BYTES} bytes (devices send up to 128 KiB)"
                ),
            ));
        }
        // No upper bound: the caps over all sources bound these anyway, and a benchmark from one
        // address wants them high.
        for (field, zero, what_zero_does) in [
            ("max_connections_per_ip", l.max_connections_per_ip == 0, "refuses every connection"),
            ("max_unauthenticated_per_ip", l.max_unauthenticated_per_ip == 0, "refuses every handshake"),
            (
                "new_connections_per_ip_per_sec",
                l.new_connections_per_ip_per_sec == 0,
                "never refills a source's allowance, so each source is refused for good once its burst is spent",
            ),
            ("new_connections_per_ip_burst", l.new_connections_per_ip_burst == 0, "refuses every connection"),
        ] {
            if zero {
                return Err((field, format!("0 {what_zero_does}; it must be at least 1")));
            }
        }
        if !(1..=MAX_HANDSHAKE_TIMEOUT_SECS).contains(&l.handshake_timeout_secs) {
            let secs = l.handshake_timeout_secs;
            return Err((
                "handshake_timeout_secs",
                format!("{secs} is outside 1..={MAX_HANDSHAKE_TIMEOUT_SECS} seconds"),
            ));
        }
        if !(1..=MAX_SESSION_QUEUE_PACKETS).contains(&l.session_queue_packets) {
            let packets = l.session_queue_packets;
            return Err((
                "session_queue_packets",
                format!("{packets} is outside 1..={MAX_SESSION_QUEUE_PACKETS} packets"),
            ));
        }
        for (field, secs) in [
            ("keepalive_secs", l.keepalive_secs),
            ("idle_timeout_secs", l.idle_timeout_secs),
            ("upgrade_deadline_secs", l.upgrade_deadline_secs),
        ] {
            if !(1..=MAX_TIMER_SECS).contains(&secs) {
                return Err((field, format!("{secs} is outside 1..={MAX_TIMER_SECS} seconds")));
            }
        }
        if l.idle_timeout_secs <= l.keepalive_secs {
            return Err((
                "idle_timeout_secs",
                format!("{} must exceed keepalive_secs ({})", l.idle_timeout_secs, l.keepalive_secs),
            ));
        }
        Ok(())
    }

    /// What is wrong with `public_url`, if anything. The relay serves TLS only, and the
    /// relay's own page must pass its own Origin check (`web::origin`, which takes the page's
    /// origin from this URL): one that does not would be refused every tunnel, with 403.
    fn public_url_problem(&self) -> Option<&'static str> {
        let url = self.public_url.as_str();
        if !url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
            return Some("must start with https:// (the relay serves TLS only)");
        }
        let own_page_allowed = crate::web::origin::Origins::of(self).allows(Some(url.as_bytes()));
        if url.contains(|c: char| c.is_whitespace() || c.is_control())
            || crate::web::tls::url_host(url).is_none()
            || !own_page_allowed
        {
            return Some("is not a URL like https://home.example.net[:port]");
        }
        None
    }

    /// Resolves a path from the config against the state directory.
    pub fn resolve(dir: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            dir.join(path)
        }
    }

    /// The control socket path for this configuration.
    pub fn control_socket_path(&self, dir: &Path) -> PathBuf {
        match &self.control_socket {
            Some(p) => Self::resolve(dir, p),
            None => dir.join("control.sock"),
        }
    }
}

/// Whether `name` names one network interface. Linux takes 1-15 bytes, not `.` or `..`, without
/// `/`, `:` or whitespace (`dev_valid_name`), and `%` only as a template for a new name. `all`
/// and `default` are the sysctl directories that set every interface
/// (`/proc/sys/net/ipv4/conf/all/forwarding`) and match no interface in nftables; `*` is a
/// wildcard there, and `"` and `\` would break the rule's quoting; control characters have no
/// business in a name.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !matches!(name, "." | ".." | "all" | "default")
        && !name
            .contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | ':' | '*' | '%' | '"' | '\\'))
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

fn field_on_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = content.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#') && !key.starts_with('[')).then(|| key.to_owned())
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn line_of_field(text: &str, field: &str) -> usize {
    text.lines().position(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == field)).map(|i| i + 1).unwrap_or(1)
}

/// A complete, valid configuration for tests.
#[cfg(test)]
pub(crate) const EXAMPLE: &str = r#"
listen = "0.0.0.0:443"
public_url = "https://home.example.net"
mode = "masquerade"
lan = "192.168.0.0/24"
pool = "10.8.0.0/24"
tun_name = "hometun0"
mtu = 1420
www = "/usr/share/hometun/www"
tls_cert = "tls-cert.pem"
tls_key = "tls-key.pem"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    use super::EXAMPLE as GOOD;

    fn error_of(text: &str) -> (usize, String) {
        match Config::parse(text, Path::new("relay.toml")) {
            Err(ConfigError::Invalid { line, field, .. }) => (line, field),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn good_file_round_trips() {
        let config = Config::parse(GOOD, Path::new("relay.toml")).unwrap();
        assert_eq!(config.mode, Mode::Masquerade);
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.threads, 1, "one worker thread unless asked");
        let dir = tempfile::tempdir().unwrap();
        config.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), config);
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("listen = \"0.0.0.0:443\"", "listen = \"nowhere\"", 2, "listen"),
            ("mode = \"masquerade\"", "mode = \"bridge\"", 4, "mode"),
            ("lan = \"192.168.0.0/24\"", "lan = \"192.168.0.0/99\"", 5, "lan"),
            ("mtu = 1420", "mtu = 100", 8, "mtu"),
            ("pool = \"10.8.0.0/24\"", "pool = \"192.168.0.0/25\"", 6, "pool"),
            ("mtu = 1420", "mtu = 1420\ncolour = \"blue\"", 9, "colour"),
            ("mtu = 1420", "mtu = 1420\nextra_origins = [\"https://dev/path\"]", 9, "extra_origins"),
            ("mtu = 1420", "mtu = 1420\nthreads = 0", 9, "threads"),
            ("mtu = 1420", "mtu = 1420\nthreads = 65", 9, "threads"),
            ("mtu = 1420", "mtu = 1420\nthreads = -2", 9, "threads"),
        ];
        for (from, to, line, field) in cases {
            let (got_line, got_field) = error_of(&GOOD.replace(from, to));
            assert_eq!((got_line, got_field.as_str()), (*line, *field), "{to}");
        }
    }

    #[test]
    fn keepalive_and_idle_timeout_are_range_checked_and_the_idle_timeout_exceeds_the_keepalive() {
        let cases: &[(&str, &str)] = &[
            ("keepalive_secs = 0", "keepalive_secs"),
            ("keepalive_secs = 86401", "keepalive_secs"),
            ("keepalive_secs = 18446744073709551615", "keepalive_secs"),
            ("idle_timeout_secs = 0", "idle_timeout_secs"),
            ("upgrade_deadline_secs = 0", "upgrade_deadline_secs"),
            ("idle_timeout_secs = 18446744073709551615", "idle_timeout_secs"),
            ("keepalive_secs = 60", "idle_timeout_secs"),
            ("keepalive_secs = 30\nidle_timeout_secs = 20", "idle_timeout_secs"),
        ];
        for (limits, field) in cases {
            let (_, got) = error_of(&format!("{GOOD}\n[limits]\n{limits}\n"));
            assert_eq!(got, *field, "{limits}");
        }
        let fine = format!("{GOOD}\n[limits]\nkeepalive_secs = 1\nidle_timeout_secs = 86400\n");
        Config::parse(&fine, Path::new("relay.toml")).unwrap();
    }

    #[test]
    fn the_handshake_timeout_the_session_queue_and_the_message_size_are_range_checked() {
        let cases: &[(&str, &str)] = &[
            ("handshake_timeout_secs = 0", "handshake_timeout_secs"),
            ("handshake_timeout_secs = 301", "handshake_timeout_secs"),
            ("handshake_timeout_secs = 9223372036854775807", "handshake_timeout_secs"),
            ("handshake_timeout_secs = 18446744073709551615", "handshake_timeout_secs"),
            ("session_queue_packets = 0", "session_queue_packets"),
            ("session_queue_packets = 65537", "session_queue_packets"),
            ("session_queue_packets = 18446744073709551615", "session_queue_packets"),
            ("max_message_bytes = 4096", "max_message_bytes"),
            ("max_message_bytes = 1048577", "max_message_bytes"),
            ("max_message_bytes = 16777216", "max_message_bytes"),
        ];
        for (limits, field) in cases {
            let (_, got) = error_of(&format!("{GOOD}\n[limits]\n{limits}\n"));
            assert_eq!(got, *field, "{limits}");
        }
        let fine = format!(
            "{GOOD}\n[limits]\nhandshake_timeout_secs = 300\nsession_queue_packets = 65536\nmax_message_bytes = 131072\n"
        );
        Config::parse(&fine, Path::new("relay.toml")).unwrap();
    }

    #[test]
    fn a_zero_per_source_limit_is_refused_naming_its_field_and_line() {
        for field in [
            "max_connections_per_ip",
            "max_unauthenticated_per_ip",
            "new_connections_per_ip_per_sec",
            "new_connections_per_ip_burst",
        ] {
            let text = format!("{GOOD}\n[limits]\n{field} = 0\n");
            let line = text.lines().position(|l| l.starts_with(field)).unwrap() + 1;
            match Config::parse(&text, Path::new("relay.toml")) {
                Err(e @ ConfigError::Invalid { .. }) => {
                    let shown = e.to_string();
                    assert!(shown.contains(&format!("line {line}, field `{field}`")), "{shown}");
                    assert!(shown.contains("at least 1"), "{shown}");
                }
                other => panic!("{field} = 0 accepted: {other:?}"),
            }
        }
        let least = "max_connections_per_ip = 1\nmax_unauthenticated_per_ip = 1\n\
                     new_connections_per_ip_per_sec = 1\nnew_connections_per_ip_burst = 1\n";
        Config::parse(&format!("{GOOD}\n[limits]\n{least}"), Path::new("relay.toml")).unwrap();
    }

    #[test]
    fn public_url_must_be_https_with_a_host_and_listen_must_name_a_port() {
        let url = "public_url = \"https://home.example.net\"";
        let cases: &[(&str, &str, &str)] = &[
            (url, "public_url = \"https://\"", "public_url"),
            (url, "public_url = \"https://:8443\"", "public_url"),
            (url, "public_url = \"https://user@home.example.net\"", "public_url"),
            (url, "public_url = \"https://home example.net\"", "public_url"),
            (url, "public_url = \"http://home.example.net\"", "public_url"),
            (url, "public_url = \"home.example.net\"", "public_url"),
            ("listen = \"0.0.0.0:443\"", "listen = \"0.0.0.0:0\"", "listen"),
        ];
        for (from, to, field) in cases {
            let (line, got) = error_of(&GOOD.replace(from, to));
            let want_line = GOOD.lines().position(|l| l == *from).unwrap() + 1;
            assert_eq!((line, got.as_str()), (want_line, *field), "{to}");
        }
        let shown = Config::parse(&GOOD.replace(url, "public_url = \"http://home.example.net\""), Path::new("r"))
            .unwrap_err()
            .to_string();
        assert!(shown.contains("https://"), "{shown}");
        for fine in ["HTTPS://Home.Example.NET:8443", "https://[::1]:8443", "https://192.168.0.2"] {
            let text = GOOD.replace(url, &format!("public_url = \"{fine}\""));
            Config::parse(&text, Path::new("relay.toml")).unwrap();
        }
    }

    #[test]
    fn an_interface_name_linux_would_refuse_or_that_names_every_interface_is_refused() {
        let line = |text: &str, field: &str| text.lines().position(|l| l.starts_with(field)).unwrap() + 1;
        for bad in [
            "all",
            "default",
            ".",
            "..",
            "eth\\t0",
            "eth 0",
            " eth0",
            "eth0\\n",
            "eth\\u00010",
            "eth0/1",
            "eth0:1",
            "eth*",
            "",
            "sixteen-letters0",
        ] {
            let text = GOOD.replace("mtu = 1420", &format!("mtu = 1420\nlan_interface = \"{bad}\""));
            assert_eq!(error_of(&text), (line(&text, "lan_interface"), "lan_interface".into()), "{bad}");
        }
        for bad in ["all", "default"] {
            let text = GOOD.replace("tun_name = \"hometun0\"", &format!("tun_name = \"{bad}\""));
            assert_eq!(error_of(&text), (line(&text, "tun_name"), "tun_name".into()), "{bad}");
        }
        for fine in ["eth0", "enp3s0", "br-lan", "wlan0.100", "fifteen-letters"] {
            let text = GOOD.replace("mtu = 1420", &format!("mtu = 1420\nlan_interface = \"{fine}\""));
            assert_eq!(Config::parse(&text, Path::new("relay.toml")).unwrap().lan_interface.as_deref(), Some(fine));
        }
    }

    #[test]
    fn more_dns_servers_than_a_device_can_be_told_are_refused() {
        let servers = |n: u8| (1..=n).map(|i| format!("\"192.168.0.{i}\"")).collect::<Vec<_>>().join(", ");
        let text = GOOD.replace("mtu = 1420", &format!("mtu = 1420\ndns = [{}]", servers(65)));
        assert_eq!(error_of(&text), (9, "dns".to_owned()));
        let shown = Config::parse(&text, Path::new("relay.toml")).unwrap_err().to_string();
        assert!(shown.contains("65 servers") && shown.contains("at most 64"), "{shown}");
        let text = GOOD.replace("mtu = 1420", &format!("mtu = 1420\ndns = [{}]", servers(64)));
        assert_eq!(Config::parse(&text, Path::new("relay.toml")).unwrap().dns.len(), 64);
    }

    #[test]
    fn threads_are_taken_from_one_to_the_most() {
        for threads in [1, 4, MAX_THREADS] {
            let config = Config::parse(
                &GOOD.replace("mtu = 1420", &format!("mtu = 1420\nthreads = {threads}")),
                Path::new("relay.toml"),
            );
            assert_eq!(config.unwrap().threads, threads);
        }
    }

    #[test]
    fn a_file_only_root_may_read_says_to_run_as_root() {
        let path = PathBuf::from("/etc/hometun/relay.toml");
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let read = ConfigError::Read { path: path.clone(), source: denied() }.to_string();
        assert!(read.starts_with("cannot read /etc/hometun/relay.toml: "), "{read}");
        assert!(read.ends_with(" — run it as root (sudo)"), "{read}");
        let write = ConfigError::Write { path: path.clone(), source: denied() }.to_string();
        assert!(write.ends_with(" — run it as root (sudo)"), "{write}");
        let missing = ConfigError::Read { path, source: std::io::ErrorKind::NotFound.into() }.to_string();
        assert!(!missing.contains("sudo"), "{missing}");
    }

    #[test]
    fn missing_field_is_named() {
        let (_, field) = error_of(&GOOD.replace("tun_name = \"hometun0\"\n", ""));
        assert_eq!(field, "tun_name");
    }
}
