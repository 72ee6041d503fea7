//! Cockpit (Debian's `cockpit-ws`, `cockpit-bridge`, `cockpit-system` 287), the web console many
//! home servers and NAS builds use, on `192.168.0.10:9090`: its login page sends the user and
//! password in an `Authorization` header by XHR and gets an `HttpOnly`, `SameSite=Strict` session
//! cookie; the console is a shell page whose tools are same-origin frames, all talking over one
//! WebSocket (`/cockpit/socket`); its terminal is a real shell through that WebSocket. Logins go
//! through PAM as the lab user ([`super::lab_user`]). Served without TLS (`--no-tls`,
//! `AllowUnencrypted`), as behind a home router; its configuration under the lab's scratch
//! directory. Nothing phones home.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;

use super::lab_user;
use crate::lab::{addr, Lab, Node};

/// Where it listens.
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST10), 9090);
/// The title its login page shows.
pub const TITLE: &str = "Lab NAS";
/// Its log name in the lab.
pub const LOG: &str = "cockpit";
const WS: &str = "/usr/lib/cockpit/cockpit-ws";

/// A running Cockpit; stopped, its directory removed and the lab user given back on drop.
pub struct Cockpit {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    _user: lab_user::Unlocked,
}

impl Cockpit {
    /// Unlocks the lab user, starts `cockpit-ws` on host 10 and waits (at most 30 s) until it
    /// listens.
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        ensure!(std::path::Path::new(WS).exists(), "{WS} missing: install cockpit-ws (scripts/install.sh)");
        let user = lab_user::unlock()?;
        let dir = lab.dir().join(LOG);
        std::fs::create_dir_all(dir.join("cockpit"))?;
        std::fs::write(
            dir.join("cockpit/cockpit.conf"),
            format!("[WebService]\nAllowUnencrypted = true\nLoginTitle = {TITLE}\n"),
        )?;
        let pid = lab.spawn(
            Node::Host10,
            LOG,
            "env",
            [
                format!("XDG_CONFIG_DIRS={}", dir.display()).as_str(),
                WS,
                "--no-tls",
                "--address",
                &ADDR.ip().to_string(),
                "--port",
                &ADDR.port().to_string(),
            ],
        )?;
        let cockpit = Self { lab: lab.clone(), pid: Some(pid), dir, _user: user };
        // It keeps an HTTP/1.0 connection open after answering, so the lab's HTTP client would
        // wait for an end that does not come: ready is when it accepts connections.
        crate::lab::wait_until(Duration::from_secs(30), || {
            crate::browser::connect_in(&lab.netns(Node::Router), ADDR, Duration::from_secs(1)).ok()
        })
        .map_err(|_| anyhow::anyhow!("cockpit-ws not listening on {ADDR} after 30 s; log:\n{}", lab.log(LOG)))?;
        Ok(cockpit)
    }
}

impl Drop for Cockpit {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // `env` execs cockpit-ws; its sessions end with it (and with the lab's namespaces).
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Its own address as a LAN URL (what a user would type at home).
pub fn lan_url() -> String {
    format!("http://{ADDR}/")
}
