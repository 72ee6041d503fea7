//! Jupyter Notebook (Debian's `jupyter-notebook` 6.4 with `python3-ipykernel`) on
//! `192.168.0.10:8888`, protected by a password: `GET /` redirects to `/login`, a form with the
//! `_xsrf` token (also set as a cookie) posts the password and redirects to `/tree`, whose script
//! lists the notebook directory through `/api/contents` (XHR, absolute paths, `X-XSRFToken` from
//! `document.cookie`); kernels talk over `/api/kernels/<id>/channels` (a WebSocket); `/files/`
//! serves the directory with `Range`. Its configuration, runtime files and notebook directory
//! live under the lab's scratch directory; nothing phones home.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};

use super::selfsigned::SelfSigned;
use crate::lab::{addr, run_bounded, Lab, Node};

/// Where it listens.
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST10), 8888);
/// Where it listens when it serves HTTPS itself ([`Jupyter::start_https`]).
pub const TLS_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST10), 8443);
/// The password a user types.
pub const PASSWORD: &str = "lab-notebook-password";
/// Files in the notebook directory, which the tree page lists.
pub const FILES: [&str; 2] = ["hello-from-the-lab.txt", "analysis.ipynb"];
/// The contents of `FILES[0]`.
pub const HELLO: &str = "hello from the home lab\n";

/// A running notebook server; stopped and its directory removed on drop.
pub struct Jupyter {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    log: String,
}

/// Its log name in the lab.
pub const LOG: &str = "jupyter";
/// The log name of the HTTPS instance.
pub const TLS_LOG: &str = "jupyter-https";

impl Jupyter {
    /// Starts it on host 10 and waits (at most 60 s) until `/login` answers.
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        let jupyter = Self::launch(lab, LOG, ADDR, &[])?;
        super::wait_ready(lab, Node::Router, ADDR, "/login", 200, LOG, Duration::from_secs(60))?;
        Ok(jupyter)
    }

    /// Starts it on host 10 serving HTTPS itself on [`TLS_ADDR`] with `cert`, and waits (at
    /// most 60 s) until `/login` answers over TLS.
    pub fn start_https(lab: &Lab, cert: &SelfSigned) -> anyhow::Result<Self> {
        let tls = [format!("--certfile={}", cert.cert.display()), format!("--keyfile={}", cert.key.display())];
        let jupyter = Self::launch(lab, TLS_LOG, TLS_ADDR, &tls)?;
        let url = format!("https://{TLS_ADDR}/login");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            // Python's own client, not verifying (the device's certificate is self-signed).
            let probe = "import ssl, sys, urllib.request as r; \
                         print(r.urlopen(sys.argv[1], context=ssl._create_unverified_context(), timeout=5).status)";
            let out = lab.exec(Node::Router, "python3", ["-c", probe, url.as_str()])?;
            if String::from_utf8_lossy(&out.stdout).trim() == "200" {
                return Ok(jupyter);
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "Jupyter over HTTPS not ready after 60 s: {}\nlog:\n{}",
                String::from_utf8_lossy(&out.stderr),
                lab.log(TLS_LOG)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Spawns the server listening on `at` (with `extra` arguments), its state under the lab's
    /// directory `log`; does not wait.
    fn launch(lab: &Lab, log: &str, at: SocketAddr, extra: &[String]) -> anyhow::Result<Self> {
        let dir = lab.dir().join(log);
        let notebooks = dir.join("notebooks");
        for sub in ["config", "data", "runtime", "ipython"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::create_dir_all(&notebooks)?;
        std::fs::write(notebooks.join(FILES[0]), HELLO)?;
        std::fs::write(notebooks.join(FILES[1]), NOTEBOOK)?;
        let hashed = hashed_password(PASSWORD)?;
        let env = |k: &str, sub: &str| format!("{k}={}", dir.join(sub).display());
        let args = [
            format!("HOME={}", dir.display()),
            env("JUPYTER_CONFIG_DIR", "config"),
            env("JUPYTER_DATA_DIR", "data"),
            env("JUPYTER_RUNTIME_DIR", "runtime"),
            env("IPYTHONDIR", "ipython"),
            "JUPYTER_NO_CONFIG=1".to_owned(),
            "/usr/bin/jupyter-notebook".to_owned(),
            "--no-browser".to_owned(),
            "--allow-root".to_owned(),
            format!("--ip={}", at.ip()),
            format!("--port={}", at.port()),
            "--port-retries=0".to_owned(),
            format!("--notebook-dir={}", notebooks.display()),
            format!("--NotebookApp.password={hashed}"),
            "--NotebookApp.token=".to_owned(),
            "--NotebookApp.allow_remote_access=True".to_owned(),
            "--NotebookApp.open_browser=False".to_owned(),
            "--MappingKernelManager.cull_idle_timeout=0".to_owned(),
        ];
        let pid = lab.spawn(Node::Host10, log, "env", args.iter().chain(extra))?;
        Ok(Self { lab: lab.clone(), pid: Some(pid), dir, log: log.to_owned() })
    }

    /// The notebook directory.
    pub fn notebooks(&self) -> PathBuf {
        self.dir.join("notebooks")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.lab.log(&self.log)
    }
}

impl Drop for Jupyter {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // `env` execs jupyter, so this pid is the server; its kernels die with their parent's
            // namespace when the lab goes, and with the server here.
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `sha1:salt:hash` form `NotebookApp.password` takes, from notebook's own `passwd`.
fn hashed_password(password: &str) -> anyhow::Result<String> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", "import sys; from notebook.auth import passwd; print(passwd(sys.argv[1], 'sha1'))", password]);
    let out = run_bounded(cmd, Duration::from_secs(30))?;
    ensure!(out.status.success(), "hashing the notebook password: {}", String::from_utf8_lossy(&out.stderr));
    let hashed = String::from_utf8(out.stdout).context("hashed password")?.trim().to_owned();
    ensure!(hashed.starts_with("sha1:"), "unexpected hashed password {hashed:?}");
    Ok(hashed)
}

/// An empty Python 3 notebook.
const NOTEBOOK: &str = r#"{"cells": [], "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
"#;

/// The notebook's own address as a LAN URL (what a user would type at home).
pub fn lan_url() -> String {
    format!("http://{ADDR}/")
}

/// The HTTPS instance's address as a LAN URL.
pub fn tls_lan_url() -> String {
    format!("https://{TLS_ADDR}/")
}
