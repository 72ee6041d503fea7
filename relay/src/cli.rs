//! The command line.

use crate::config::Mode;
use clap::{Args, Parser, Subcommand};
use hometun_shared::ipv4::Network;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default state directory.
pub const DEFAULT_DIR: &str = "/etc/hometun";

/// hometun relay: reach your home network from any web browser.
#[derive(Debug, Parser)]
#[command(name = "hometun-relay", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (creates a configuration first when DIR has none).
    Serve {
        /// Settings; given ones are saved to DIR/relay.toml.
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Create the configuration, relay key and certificate, then exit.
    Init {
        /// Settings to write.
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Create a single-use invite link (also shown as a QR code).
    Invite {
        /// State directory.
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Name of the device that will use the invite.
        #[arg(long, default_value = "device")]
        name: String,
        /// How long the invite stays valid: 90s, 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: u64,
        /// What the client may reach: CIDR[:PORT[-PORT]][/tcp|/udp],... (default: the LAN).
        #[arg(long)]
        allow: Option<String>,
        /// Let the device wake sleeping LAN hosts (Wake-on-LAN); off by default.
        #[arg(long)]
        wake: bool,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// List the hosts the running relay sees on the LAN: names, addresses, MACs, services.
    Hosts {
        /// State directory.
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List clients, or revoke one.
    Clients {
        /// State directory.
        #[arg(long, default_value = DEFAULT_DIR, global = true)]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// Revoke a client.
        #[command(subcommand)]
        action: Option<ClientsAction>,
    },
    /// Show the running relay.
    Status {
        /// State directory.
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `clients` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// Revoke a client: a running relay closes its session within a second and refuses it after.
    Revoke {
        /// The client's name.
        name: String,
    },
}

/// Settings shared by `serve` and `init`.
#[derive(Debug, Args, Clone, Default)]
pub struct SetupArgs {
    /// State directory.
    #[arg(long, default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Address of the TLS port [default: 0.0.0.0:443].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The home LAN subnet [default: detected from the default route's interface].
    #[arg(long)]
    pub lan: Option<Network>,
    /// The interface facing the LAN [default: the one holding the LAN subnet].
    #[arg(long)]
    pub lan_interface: Option<String>,
    /// Client address pool [default: 10.8.0.0/24].
    #[arg(long)]
    pub pool: Option<Network>,
    /// How clients reach the LAN [default: masquerade].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// URL clients use, e.g. https://home.example.net [default: from the listen address].
    #[arg(long)]
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM) [default: a self-signed one in DIR].
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A directory whose index.html and files override the page built into the relay (for
    /// development) [default: DIR/www, else /usr/share/hometun/www; unused while it has no index.html].
    #[arg(long)]
    pub www: Option<PathBuf>,
    /// Name of the tun device [default: hometun0].
    #[arg(long)]
    pub tun_name: Option<String>,
    /// MTU of the tunnel [default: 1420].
    #[arg(long)]
    pub mtu: Option<u16>,
    /// Let clients reach each other.
    #[arg(long)]
    pub client_to_client: Option<bool>,
    /// DNS servers pushed to clients, reached through the tunnel (e.g. the home router).
    #[arg(long, value_delimiter = ',')]
    pub dns: Option<Vec<std::net::Ipv4Addr>>,
    /// Trusted certificate by ACME.
    #[command(flatten)]
    pub acme: crate::acme::AcmeArgs,
}

/// Parses `90s`, `30m`, `24h`, `7d` (or plain seconds) into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 30m, 24h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{text}`: unit must be s, m, h or d")),
    };
    n.checked_mul(scale).filter(|s| *s > 0).ok_or_else(|| format!("`{text}` is not a positive duration"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        let cases: &[(&str, Option<u64>)] = &[
            ("90s", Some(90)),
            ("30m", Some(1800)),
            ("24h", Some(86400)),
            ("7d", Some(604800)),
            ("5", Some(5)),
            ("0h", None),
            ("h", None),
            ("3w", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), *want, "{text}");
        }
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["hometun-relay", "clients", "revoke", "phone", "--dir", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Command::Clients { action: Some(ClientsAction::Revoke { .. }), .. }));
        let cli = Cli::try_parse_from([
            "hometun-relay",
            "serve",
            "--dir",
            "/tmp/x",
            "--listen",
            "10.0.0.1:8443",
            "--lan",
            "192.168.0.0/24",
            "--lan-interface",
            "veth0",
            "--www",
            "/tmp/www",
            "--mode",
            "routed",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Serve { .. }));
    }
}
