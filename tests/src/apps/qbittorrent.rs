//! qBittorrent (Debian's `qbittorrent-nox` 4.5), a NAS's download manager, with its Web UI on
//! `192.168.0.20:8090`: its own login page (an `HttpOnly`, `SameSite=Strict` session cookie), a
//! single-page UI that polls its JSON API, dialogs in same-origin frames, and CSRF protection
//! that refuses any request whose `Origin` or `Referer` is not the address it serves (the app
//! origin's name would be refused: hometun maps them to the LAN origin). It keeps its
//! out-of-the-box login, `admin` / `adminadmin`. Configured offline: DHT, peer exchange, local
//! peer discovery, port forwarding (UPnP, NAT-PMP) and peers' countries (a monthly download of
//! a GeoIP database) off; the lab's torrents have no trackers.
//! State under the lab's scratch directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::lab::{addr, Lab, Node};

/// Where its Web UI listens.
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST20), 8090);
/// Its out-of-the-box login.
pub const USER: &str = "admin";
pub const PASSWORD: &str = "adminadmin";
/// Its log name in the lab.
pub const LOG: &str = "qbittorrent";

/// A running qBittorrent; stopped and its directory removed on drop.
pub struct Qbittorrent {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
}

impl Qbittorrent {
    /// Writes its configuration, starts it on host 20 and waits (at most 30 s) until its Web UI
    /// answers.
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        let dir = lab.dir().join("qbittorrent");
        let config = dir.join("qBittorrent/config");
        std::fs::create_dir_all(&config)?;
        std::fs::create_dir_all(dir.join("downloads"))?;
        std::fs::write(config.join("qBittorrent.conf"), offline_config(&dir))?;
        let pid = lab.spawn(Node::Host20, LOG, "qbittorrent-nox", [format!("--profile={}", dir.display())])?;
        let qbittorrent = Self { lab: lab.clone(), pid: Some(pid), dir };
        super::wait_ready(lab, Node::Router, ADDR, "/", 200, LOG, Duration::from_secs(30))?;
        Ok(qbittorrent)
    }

    /// Whether it holds the torrent with this info hash (lower-case hex): its resume data, which
    /// it writes as a torrent is added.
    pub fn has_torrent(&self, info_hash: &str) -> bool {
        self.dir.join(format!("qBittorrent/data/BT_backup/{info_hash}.fastresume")).exists()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.lab.log(LOG)
    }
}

impl Drop for Qbittorrent {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `qBittorrent.conf`: the legal notice accepted (it would ask on the terminal), everything that
/// would reach beyond the LAN off, the Web UI on [`ADDR`] in English, downloads under `dir`.
fn offline_config(dir: &std::path::Path) -> String {
    format!(
        "[LegalNotice]\nAccepted=true\n\n\
         [BitTorrent]\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\nSession\\PeXEnabled=false\n\
         Session\\DefaultSavePath={}/downloads\nSession\\Port=6881\n\n\
         [Network]\nPortForwardingEnabled=false\n\n\
         [Preferences]\nConnection\\ResolvePeerCountries=false\nWebUI\\Address={}\nWebUI\\Port={}\n\
         WebUI\\UseUPnP=false\nGeneral\\Locale=en\n",
        dir.display(),
        ADDR.ip(),
        ADDR.port(),
    )
}

/// The Web UI's LAN URL (what a user would type at home).
pub fn lan_url() -> String {
    format!("http://{ADDR}/")
}
