//! Syncthing (Debian's `syncthing` 1.19) on `192.168.0.20:8384`: its web GUI talks to REST APIs
//! with a CSRF token that the server sets as a cookie (`CSRF-Token-<short id>`) and the GUI's
//! script sends back as a header read through `document.cookie`; `/rest/events` is a long poll.
//! Configured offline: global and local discovery, relays, NAT traversal, STUN, usage reporting,
//! upgrades and crash reporting off; it syncs only over TCP on the LAN. State under the lab's
//! scratch directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::lab::{addr, Lab, Node};

/// Where its GUI listens.
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST20), 8384);
/// Its sync protocol port (LAN only).
pub const SYNC_PORT: u16 = 22000;
/// The device name it shows.
pub const DEVICE_NAME: &str = "lab-nas";
/// The REST API key (for checks from outside the browser).
pub const API_KEY: &str = "hometun-lab-syncthing-api-key";
/// Its log name in the lab.
pub const LOG: &str = "syncthing";

/// A running Syncthing; stopped and its directory removed on drop.
pub struct Syncthing {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    /// This device's ID (`XXXXXXX-…`).
    pub device_id: String,
}

impl Syncthing {
    /// Generates its keys and configuration, starts it on host 20 and waits (at most 30 s) until
    /// its GUI answers.
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        let dir = lab.dir().join("syncthing");
        std::fs::create_dir_all(&dir)?;
        let home = format!("--home={}", dir.display());
        let out = lab.exec(
            Node::Host20,
            "env",
            [
                format!("HOME={}", dir.display()).as_str(),
                "syncthing",
                "generate",
                &home,
                "--no-default-folder",
                "--skip-port-probing",
            ],
        )?;
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success(), "syncthing generate failed: {said}");
        let device_id = said
            .lines()
            .find_map(|l| l.split("Device ID:").nth(1))
            .map(|id| id.trim().to_owned())
            .with_context(|| format!("no device ID in: {said}"))?;
        let config = dir.join("config.xml");
        let text = std::fs::read_to_string(&config).context("reading Syncthing's config.xml")?;
        std::fs::write(&config, offline_config(&text, &device_id)?)?;
        let pid = lab.spawn(
            Node::Host20,
            LOG,
            "env",
            [
                format!("HOME={}", dir.display()).as_str(),
                "STNODEFAULTFOLDER=1",
                "STNOUPGRADE=1",
                "syncthing",
                "serve",
                &home,
                "--no-browser",
                "--no-restart",
                "--no-upgrade",
                &format!("--gui-address=http://{ADDR}"),
            ],
        )?;
        let syncthing = Self { lab: lab.clone(), pid: Some(pid), dir, device_id };
        super::wait_ready(lab, Node::Router, ADDR, "/", 200, LOG, Duration::from_secs(30))?;
        Ok(syncthing)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.lab.log(LOG)
    }

    /// The device ID's first five characters: the suffix of its CSRF cookie and header names
    /// (`CSRF-Token-XXXXX`, `X-CSRF-Token-XXXXX`).
    pub fn short_id(&self) -> &str {
        self.device_id.get(..5).unwrap_or_default()
    }
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `config.xml` as `syncthing generate` wrote it, set to stay inside the LAN: every option that
/// would reach the internet off, listening on TCP only, the GUI on [`ADDR`] with [`API_KEY`],
/// this device named [`DEVICE_NAME`].
fn offline_config(text: &str, device_id: &str) -> anyhow::Result<String> {
    let mut text = text.to_owned();
    for (element, value) in [
        ("listenAddress", format!("tcp://{}:{SYNC_PORT}", addr::HOST20)),
        ("globalAnnounceEnabled", "false".to_owned()),
        ("localAnnounceEnabled", "false".to_owned()),
        ("relaysEnabled", "false".to_owned()),
        ("startBrowser", "false".to_owned()),
        ("natEnabled", "false".to_owned()),
        ("urAccepted", "-1".to_owned()),
        ("autoUpgradeIntervalH", "0".to_owned()),
        ("crashReportingEnabled", "false".to_owned()),
        ("stunKeepaliveStartS", "0".to_owned()),
        ("announceLANAddresses", "false".to_owned()),
        ("address", ADDR.to_string()),
        ("apikey", API_KEY.to_owned()),
    ] {
        text = set_element(&text, element, &value, element == "address")
            .with_context(|| format!("no <{element}> in Syncthing's config.xml"))?;
    }
    // The first <device> is this one; its name defaults to the machine's host name.
    let own = format!("<device id=\"{device_id}\" name=\"");
    let start = text.find(&own).context("this device is not in config.xml")? + own.len();
    let end = start + text[start..].find('"').context("unterminated device name")?;
    text.replace_range(start..end, DEVICE_NAME);
    Ok(text)
}

/// Replaces the contents of the first `<element>` (`in_gui`: the one inside `<gui>`).
fn set_element(text: &str, element: &str, value: &str, in_gui: bool) -> Option<String> {
    let from = if in_gui { text.find("<gui ")? } else { 0 };
    let open = format!("<{element}>");
    let start = from + text[from..].find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{element}>"))?;
    let mut out = text.to_owned();
    out.replace_range(start..end, value);
    Some(out)
}

/// The GUI's LAN URL (what a user would type at home).
pub fn lan_url() -> String {
    format!("http://{ADDR}/")
}
