//! WebKit, the engine of Safari on every iPhone, in a lab namespace: WebKitGTK's MiniBrowser
//! driven by WebKitWebDriver (Debian's `webkit2gtk-driver`) on a virtual X display (`xvfb-run`).
//!
//! WebKitGTK takes its trust anchors from the system's bundle and resolves names through
//! `/etc/hosts`. The driver runs in a mount namespace of its own in which both are the lab's:
//! the bundle holds only the lab CA's root, and the hosts file maps the relay's names to the
//! router's public address. So the browser trusts the lab's certificates the way a phone trusts
//! a public CA, with no certificate exception, and the host's own files are untouched.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use super::webdriver::{self, Driver, Session};
use crate::lab::{Lab, Node};

/// WebKitWebDriver's port inside the lab namespace.
const PORT: u16 = 9516;

/// Mounts the lab's trust bundle and hosts file over the system's (in the private mount
/// namespace `unshare` made), then runs the driver on a free virtual display.
const START: &str = r#"set -e
mount --bind "$1" /etc/ssl/certs/ca-certificates.crt
mount --bind "$2" /etc/hosts
export HOME="$3" XDG_CACHE_HOME="$3/cache" XDG_DATA_HOME="$3/data" XDG_CONFIG_HOME="$3/config"
exec xvfb-run -a -s "-screen 0 1280x1024x24 -nolisten tcp" WebKitWebDriver --port="$4"
"#;

/// A WebKitWebDriver process in a lab namespace; stopped when dropped (the lab ends the
/// browser and the display with the rest of its namespace).
pub struct WebKitDriver {
    lab: Lab,
    netns: String,
    pid: Option<u32>,
}

impl WebKitDriver {
    /// Starts the driver inside `node`, trusting only `root_pem` and resolving `hosts`, and waits
    /// (at most 20 s) until it is ready.
    pub fn start(lab: &Lab, node: Node, root_pem: &str, hosts: &[(&str, Ipv4Addr)]) -> anyhow::Result<Self> {
        let dir = lab.dir().join("webkit");
        std::fs::create_dir_all(&dir)?;
        let bundle = dir.join("ca-certificates.crt");
        std::fs::write(&bundle, root_pem)?;
        let hosts_file = dir.join("hosts");
        super::write_hosts_file(&hosts_file, "", hosts)?;
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        let port = PORT.to_string();
        let args = [bundle.as_os_str(), hosts_file.as_os_str(), home.as_os_str(), OsStr::new(&port)];
        let pid = super::spawn_unshared(lab, node, "webkitdriver", false, START, &args)?;
        let driver = Self { lab: lab.clone(), netns: lab.netns(node), pid: Some(pid) };
        webdriver::wait_ready(&driver, lab, "webkitdriver")?;
        Ok(driver)
    }

    /// Opens a MiniBrowser window of `width`×`height` CSS pixels.
    pub fn session(&self, width: u32, height: u32) -> anyhow::Result<Session<'_>> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "MiniBrowser",
            "acceptInsecureCerts": false,
            "timeouts": {"script": 60_000, "pageLoad": 60_000, "implicit": 0},
            "webkitgtk:browserOptions": {"binary": minibrowser()?, "args": ["--automation"]},
        }}});
        let value = self.call("POST", "/session", Some(&capabilities)).context("starting MiniBrowser")?;
        let session = Session::new(self, &value)?;
        session.set_window_size(width, height)?;
        Ok(session)
    }

    /// What the driver logged so far.
    pub fn log(&self) -> String {
        self.lab.log("webkitdriver")
    }
}

impl Driver for WebKitDriver {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        webdriver::call(&self.netns, PORT, method, path, body)
    }
}

impl Drop for WebKitDriver {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
    }
}

/// WebKitGTK's MiniBrowser (it lives under the architecture's library directory).
fn minibrowser() -> anyhow::Result<String> {
    let found = std::fs::read_dir("/usr/lib")?
        .filter_map(Result::ok)
        .map(|e| e.path().join("webkit2gtk-4.1/MiniBrowser"))
        .find(|p| p.exists())
        .context("no MiniBrowser under /usr/lib/*/webkit2gtk-4.1 (Debian's webkit2gtk-driver)")?;
    found.to_str().map(str::to_owned).context("MiniBrowser's path is not UTF-8")
}
