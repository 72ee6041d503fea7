//! lighttpd (Debian's `lighttpd`) on a LAN host serving one directory with `/admin/` behind HTTP
//! Digest authentication (`mod_auth` with an `htdigest` file), as an IP camera's or a router's
//! pages are; every request written to its access log. Everything under the lab's scratch
//! directory, in the foreground, stopped on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::lab::{Lab, Node};

/// The lighttpd binary.
pub const LIGHTTPD: &str = "/usr/sbin/lighttpd";

/// A running lighttpd; stopped and its directory removed on drop.
pub struct Lighttpd {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Lighttpd {
    /// Starts it in `node` on `addr` serving `files` (name, contents; an `index.html` at the
    /// root is added), with `/admin/` open only to `user` with `password` in `realm` by Digest.
    /// Returns once `GET /` answers from the router.
    pub fn start_digest(
        lab: &Lab,
        node: Node,
        addr: SocketAddr,
        files: &[(&str, &[u8])],
        (realm, user, password): (&str, &str, &str),
    ) -> anyhow::Result<Self> {
        let dir = lab.dir().join("lighttpd");
        let root = dir.join("www");
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), "<!doctype html><title>camera</title><h1>camera</h1>\n")?;
        for (file, contents) in files {
            let path = root.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, contents)?;
        }
        let ha1 = super::md5_hex(format!("{user}:{realm}:{password}").as_bytes())?;
        std::fs::write(dir.join("htdigest"), format!("{user}:{realm}:{ha1}\n"))?;
        let d = dir.display();
        let config = format!(
            r#"server.document-root = "{d}/www"
server.bind = "{ip}"
server.port = {port}
server.errorlog = "{d}/error.log"
server.modules = ("mod_auth", "mod_authn_file", "mod_accesslog")
accesslog.filename = "{d}/access.log"
accesslog.format = "%h \"%r\" %>s"
index-file.names = ("index.html")
mimetype.assign = (".html" => "text/html", ".json" => "application/json")
auth.backend = "htdigest"
auth.backend.htdigest.userfile = "{d}/htdigest"
auth.require = ("/admin/" => ("method" => "digest", "realm" => "{realm}", "require" => "valid-user"))
"#,
            ip = addr.ip(),
            port = addr.port()
        );
        std::fs::write(dir.join("lighttpd.conf"), config)?;
        let conf = dir.join("lighttpd.conf");
        let pid = lab.spawn(node, "lighttpd", LIGHTTPD, ["-D".as_ref(), "-f".as_ref(), conf.as_os_str()])?;
        let server = Self { lab: lab.clone(), pid: Some(pid), dir, addr };
        super::wait_ready(lab, Node::Router, addr, "/", 200, "lighttpd", Duration::from_secs(15))
            .with_context(|| format!("lighttpd never answered; error log:\n{}", server.error_log()))?;
        Ok(server)
    }

    /// Stops it (lighttpd writes its access log when it stops) and returns every request it
    /// logged (client address, request line, status).
    pub fn stop(mut self) -> Vec<String> {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
