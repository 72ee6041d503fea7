//! nginx (Debian's `nginx-light`) on a LAN host serving one directory: static pages and large
//! files with `Range`, uploads where asked ([`DAV`]), every request written to its access log (so
//! a test can prove that nothing reached it, or which `Content-Type` came). One process
//! (`master_process off`), everything under the lab's scratch directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand_core::RngCore;

use crate::lab::{Lab, Node};

/// The nginx binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx; stopped and its directory removed on drop.
pub struct Nginx {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    log_name: String,
    /// Where it listens (a LAN address).
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx in `node` listening on `addr`, serving `files` (name, contents) from its
    /// root (an `index.html` naming it unless `files` has one); `name` names its directory and log.
    /// Returns once `GET /` answers from the router (192.168.0.1, so the relay's address in the log is the tunnel's).
    pub fn start(lab: &Lab, node: Node, addr: SocketAddr, name: &str, files: &[(&str, &[u8])]) -> anyhow::Result<Self> {
        Self::start_with(lab, node, addr, name, files, "")
    }

    /// [`Nginx::start`] with `locations` (nginx `location` blocks) added to its server, such as
    /// [`LAN_SERVICES`].
    pub fn start_with(
        lab: &Lab,
        node: Node,
        addr: SocketAddr,
        name: &str,
        files: &[(&str, &[u8])],
        locations: &str,
    ) -> anyhow::Result<Self> {
        let dir = lab.dir().join(format!("nginx-{name}"));
        let root = dir.join("www");
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), format!("<!doctype html><title>{name}</title><h1>{name}</h1>\n"))?;
        for (file, contents) in files {
            let path = root.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, contents)?;
        }
        let config = dir.join("nginx.conf");
        std::fs::write(&config, config_text(&dir, addr, locations))?;
        let log_name = format!("nginx-{name}");
        let pid = lab.spawn(
            node,
            &log_name,
            NGINX,
            [
                "-p".as_ref(),
                dir.as_os_str(),
                "-c".as_ref(),
                config.as_os_str(),
                "-e".as_ref(),
                dir.join("error.log").as_os_str(),
            ],
        )?;
        let nginx = Self { lab: lab.clone(), pid: Some(pid), dir, log_name, addr };
        super::wait_ready(lab, Node::Router, addr, "/", 200, &nginx.log_name, Duration::from_secs(15))
            .with_context(|| format!("nginx {name} never answered; error log:\n{}", nginx.error_log()))?;
        Ok(nginx)
    }

    /// The directory it serves.
    pub fn root(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// Writes `size` random bytes to `name` in its root; returns their SHA-256 (hex).
    pub fn add_random_file(&self, name: &str, size: usize) -> anyhow::Result<String> {
        let mut bytes = vec![0u8; size];
        rand_core::OsRng.fill_bytes(&mut bytes);
        std::fs::write(self.root().join(name), &bytes)?;
        Ok(super::sha256_hex(&bytes))
    }

    /// Every request it logged so far (one line each: client address, request line, status, body
    /// bytes sent, then `Range`, `Origin` and `Content-Type` in quotes, `-` when absent).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Its directory (configuration, logs, root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `location` blocks that pass `/blob/…` and the WebSocket `/ws/echo` of the lab host
/// 192.168.0.10's own services (port 80) through, so one app origin has both; `/workers.html`
/// comes with a policy that allows no frames (`frame-src 'none'`), as some apps send.
pub const LAN_SERVICES: &str = r#"
        location = /workers.html { add_header Content-Security-Policy "frame-src 'none'"; }
        location /blob/ { proxy_pass http://192.168.0.10:80; }
        location /ws/ {
            proxy_pass http://192.168.0.10:80;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
"#;

/// A `location` block that stores uploads, as a NAS takes a file: `PUT /dav/NAME` writes the
/// body to NAME under the root (WebDAV, any size).
pub const DAV: &str = r#"
        location /dav/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; }
"#;

fn config_text(dir: &Path, addr: SocketAddr, locations: &str) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    types {{ text/html html; text/plain txt; application/javascript js; application/json json; application/octet-stream bin; }}
    default_type application/octet-stream;
    log_format lab '$remote_addr "$request" $status $body_bytes_sent "$http_range" "$http_origin" "$content_type" "$http_user_agent" "$http_transfer_encoding"';
    access_log {d}/access.log lab;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    sendfile on;
    server {{
        listen {addr};
        root {d}/www;
        index index.html;
        {locations}
    }}
}}
"#
    )
}
