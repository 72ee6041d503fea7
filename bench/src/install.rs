//! Tools the cases need, installed when missing (each step is skipped when its result is there):
//! apt packages without recommends (a plain install of the VPN tools once pulled in a kernel),
//! `boringtun-cli` from crates.io, and for the browser case the project's own installer.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::lab::run_bounded;

use crate::binaries::{tail, workspace_dir};

const INSTALL_TIMEOUT: Duration = Duration::from_secs(1800);
/// The boringtun release the comparison uses.
pub(crate) const BORINGTUN_VERSION: &str = "0.7.1";
/// Font the chart's text is drawn with.
pub(crate) const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Whether `program` is on the PATH.
pub(crate) fn have(program: &str) -> bool {
    which(program).is_some()
}

/// Full path of `program` on the PATH (also looks in ~/.cargo/bin).
pub(crate) fn which(program: &str) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(program)).find(|p| p.is_file())
}

/// Installs the apt packages whose marker (a program or a file) is missing.
pub(crate) fn apt(wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(marker, _)| if marker.starts_with('/') { !Path::new(marker).exists() } else { !have(marker) })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("bench: apt-get install {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    let out = run_bounded(update, INSTALL_TIMEOUT)?;
    ensure!(out.status.success(), "apt-get update failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    let out = run_bounded(install, INSTALL_TIMEOUT)?;
    ensure!(
        out.status.success(),
        "apt-get install {} failed: {}",
        missing.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// What every run needs: `ip`, `nft`, `openssl` and the chart's font.
pub(crate) fn base() -> anyhow::Result<()> {
    apt(&[("ip", "iproute2"), ("nft", "nftables"), ("openssl", "openssl"), (FONT, "fonts-dejavu-core")])
}

/// OpenVPN 2.6 from Debian.
pub(crate) fn openvpn() -> anyhow::Result<()> {
    apt(&[("openvpn", "openvpn")])
}

/// boringtun-cli (pinned) and `wg` from wireguard-tools.
pub(crate) fn boringtun() -> anyhow::Result<()> {
    apt(&[("wg", "wireguard-tools")])?;
    let current = which("boringtun-cli").and_then(|bin| version_line(&bin.to_string_lossy(), &["--version"]));
    if current.as_deref().is_some_and(|v| v.contains(BORINGTUN_VERSION)) {
        return Ok(());
    }
    eprintln!("bench: cargo install boringtun-cli {BORINGTUN_VERSION}");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["install", "boringtun-cli", "--version", BORINGTUN_VERSION, "--locked"]);
    let out = run_bounded(cmd, INSTALL_TIMEOUT)?;
    ensure!(
        out.status.success(),
        "cargo install boringtun-cli failed:\n{}",
        tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    Ok(())
}

/// Chromium, chromedriver, the wasm target, wasm-bindgen-cli and trunk: the project's installer.
pub(crate) fn browser() -> anyhow::Result<()> {
    if have("chromium") && have("chromedriver") && have("trunk") && have("wasm-bindgen") {
        return Ok(());
    }
    eprintln!("bench: running scripts/install.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_dir().join("scripts/install.sh"));
    let out = run_bounded(cmd, INSTALL_TIMEOUT).context("scripts/install.sh")?;
    ensure!(out.status.success(), "scripts/install.sh failed:\n{}", tail(&String::from_utf8_lossy(&out.stderr), 30));
    Ok(())
}

/// First line of `program args` (stdout, else stderr), for the versions in the report.
pub(crate) fn version_line(program: &str, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run_bounded(cmd, Duration::from_secs(20)).ok()?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    String::from_utf8_lossy(&text).lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
}
