//! Real home web apps on the lab's LAN hosts, from Debian packages, each a child process in its
//! host's namespace with its state under the lab's scratch directory, configured offline (nothing
//! phones home; the lab has no route out anyway), stopped and cleaned up on drop — also when a
//! test fails.
//!
//! - [`jupyter`]: Jupyter Notebook on `192.168.0.10:8888` with a password (cookie login form with
//!   `_xsrf`, redirects, JSON APIs, a kernel WebSocket, `/files/` with `Range`); also over HTTPS
//!   on `:8443` with a [`selfsigned`] certificate, as a NAS or Proxmox serves its UI.
//! - [`syncthing`]: the Syncthing GUI on `192.168.0.20:8384` (REST with the `X-CSRF-Token-…`
//!   header read from a cookie, the long-poll `/rest/events`).
//! - [`cockpit`]: Cockpit, a home server's web console, on `192.168.0.10:9090` (login as the
//!   [`lab_user`] through PAM, tools in same-origin frames on one WebSocket, a terminal).
//! - [`lab_user`]: the one system account the LAN hosts' login servers use.
//! - [`home_assistant`]: Home Assistant on `192.168.0.20:8123` (from PyPI, in a venv of its own),
//!   onboarded, with a switch: its own sign-in flow, tokens in `localStorage`, one WebSocket.
//! - [`nginx`]: nginx serving a directory (a 64 MiB random file of known SHA-256, static pages),
//!   logging every request it gets.
//! - [`qbittorrent`]: qBittorrent's Web UI on `192.168.0.20:8090`, a NAS's download manager
//!   (its login page, a session cookie, CSRF checks of `Origin` and `Referer`, dialogs in frames).
//! - [`lighttpd`]: lighttpd with `/admin/` behind HTTP Digest authentication (an IP camera's
//!   or a router's pages).
//! - [`vnc`]: a VNC desktop (TigerVNC's Xvnc) painted a known colour, recording the keys it gets.
//! - [`WORKERS_PAGE`] and [`WORKER_SCRIPT`]: a page whose worker scripts use hard-coded LAN
//!   URLs (served by nginx with the LAN host's `/blob/` and WebSocket echo passed through).
//! - [`HOSTILE_PAGE`]: a LAN page that tries to reach other hosts and ports through hometun and
//!   to read the tunnel origin's storage, writing each result into its DOM.
//! - [`sshd`]: OpenSSH on a LAN host (port 2222; password and key login for a lab user).
//! - [`mdns`]: an mDNS responder announcing a host's services and a DNS server with only
//!   reverse names, for discovery.
//! - [`http`]: a plain HTTP/1.0 client inside a lab namespace, for readiness waits and for
//!   checking the apps directly from inside the LAN.
//!
//! Ports: the LAN hosts' own services use 80, 7 and 22 ([`crate::lab`]); the apps use 8888, 8443, 8384
//! (with Syncthing's sync port 22000), 8123, 9090, 8080, 8090 and the VNC desktops 5900-5901.

pub mod cockpit;
pub mod home_assistant;
pub mod http;
pub mod jupyter;
pub mod lab_user;
pub mod lighttpd;
pub mod mdns;
pub mod nginx;
pub mod qbittorrent;
pub mod selfsigned;
pub mod sshd;
pub mod syncthing;
pub mod vnc;

use std::time::Duration;

/// The hostile page (`hostile.html`): a JSON object of attempt → `ok: …` / `blocked: …` in
/// `#results` and `data-done` on its body when finished. Attempts named `control…` must work,
/// every other one must be blocked.
pub const HOSTILE_PAGE: &str = include_str!("hostile.html");

/// A page (`workers.html`) that starts [`WORKER_SCRIPT`] as a dedicated, a shared and a module
/// worker and puts their reports (JSON, by kind) in `#results`, with `data-done` on its body.
pub const WORKERS_PAGE: &str = include_str!("workers.html");

/// A worker script (`worker.js`) with hard-coded LAN URLs on `192.168.0.10:8080`: it fetches
/// `/blob/100000` and exchanges a message with the WebSocket `/ws/echo`, then reports the status,
/// length and SHA-256, the echo, whether it runs in strict mode, and the messages its own code saw.
pub const WORKER_SCRIPT: &str = include_str!("worker.js");

use anyhow::Context;

use crate::lab::{Lab, Node};

/// Waits until `GET path` on `addr`, asked from `from`, answers with `status`; fails after
/// `timeout` with the last answer or error and the app's log.
pub fn wait_ready(
    lab: &Lab,
    from: Node,
    addr: std::net::SocketAddr,
    path: &str,
    status: u16,
    log_name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let last = match http::get(lab, from, addr, path, &[]) {
            Ok(answer) if answer.status == status => return Ok(()),
            Ok(answer) => format!("answered {}", answer.status),
            Err(e) => format!("{e:#}"),
        };
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{log_name} on {addr} not ready after {timeout:?} (GET {path}: {last}); log:\n{}",
                lab.log(log_name)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SHA-256 of `bytes`, lower-case hex (from the crypto provider the crate already uses).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut hash = sha256();
    hash.update(bytes);
    hex(hash.finish().as_ref())
}

/// An incremental SHA-256 (for bodies hashed as they arrive); [`hex`] prints its result.
pub fn sha256() -> Box<dyn rustls::crypto::hash::Context> {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13().expect("a TLS 1.3 suite");
    suite.common.hash_provider.start()
}

/// MD5 of `bytes`, lower-case hex, from `openssl dgst` (for an `htdigest` file).
pub fn md5_hex(bytes: &[u8]) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-md5", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().context("openssl's stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "openssl dgst failed");
    let text = String::from_utf8(out.stdout)?;
    Ok(text.split_whitespace().next().context("openssl printed no digest")?.to_owned())
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
