//! A self-signed certificate as a home device makes for its own web UI (a NAS, Proxmox, a
//! router): made by the `openssl` command, for the device's LAN address, with the SHA-256
//! fingerprint `openssl` prints (`AB:CD:…`), which is what a user compares.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::lab::run_bounded;

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, unencrypted).
    pub key: PathBuf,
    /// SHA-256 of the certificate's DER, upper-case hex pairs joined by `:`.
    pub fingerprint: String,
}

/// Makes a P-256 certificate for `ip` named `name`, in `dir` (`name.crt`, `name.key`).
pub fn make(dir: &Path, name: &str, ip: Ipv4Addr) -> anyhow::Result<SelfSigned> {
    std::fs::create_dir_all(dir)?;
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let mut req = Command::new("openssl");
    req.args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=IP:{ip}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    let out = run_bounded(req, Duration::from_secs(30))?;
    ensure!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    let mut print = Command::new("openssl");
    print.args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&cert);
    let out = run_bounded(print, Duration::from_secs(30))?;
    ensure!(out.status.success(), "openssl x509: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let fingerprint = text.trim().split_once('=').context("openssl printed no fingerprint")?.1.to_owned();
    ensure!(fingerprint.len() == 95, "unexpected fingerprint {fingerprint:?}");
    Ok(SelfSigned { cert, key, fingerprint })
}
