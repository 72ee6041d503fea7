//! `boringtun`: userspace WireGuard (`boringtun-cli`, 4 threads by default) at both ends,
//! configured with `wg set` over its UAPI socket. The server listens on the home server behind
//! the router's port forward (UDP 51820); MTU 1420; ChaCha20-Poly1305 (WireGuard has no choice).
//!
//! The UAPI sockets live in /var/run/wireguard, which every namespace shares, so interface
//! names carry this process's id.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::lab::{wait_until, Node};

use super::{measure, BenchLab, Case, CaseId, Plan, RunResult};
use crate::install;

/// The boringtun case.
pub(crate) struct Boringtun {
    runs: u32,
}

impl Boringtun {
    /// The case.
    pub(crate) fn new() -> Self {
        Self { runs: 0 }
    }
}

impl Case for Boringtun {
    fn id(&self) -> CaseId {
        CaseId::Boringtun
    }

    fn describe(&self) -> String {
        format!("boringtun-cli {} (userspace WireGuard, ChaCha20-Poly1305) over UDP, MTU 1420, masquerade on the home server", install::BORINGTUN_VERSION)
    }

    fn install(&mut self, _bins: &crate::binaries::Binaries) -> anyhow::Result<()> {
        install::boringtun()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        let bin = install::which("boringtun-cli").context("boringtun-cli not installed")?;
        let id = std::process::id();
        let (server_if, client_if) = (format!("hb{id}s"), format!("hb{id}c"));
        let dir = lab.lab.dir().join("boringtun");
        std::fs::create_dir_all(&dir)?;
        let (server_key, server_pub) = keypair()?;
        let (client_key, client_pub) = keypair()?;
        std::fs::write(dir.join("server.key"), &server_key)?;
        std::fs::write(dir.join("client.key"), &client_key)?;

        lab.home_nat(true)?;
        let mut pids = Vec::new();
        let result = (|| {
            for (node, ifname, log) in [(Node::Home, &server_if, "server"), (Node::Wan, &client_if, "client")] {
                let log = format!("boringtun-{log}-{}", self.runs);
                let pid =
                    lab.lab.spawn(node, &log, &bin, [ifname.as_str(), "--foreground", "--disable-drop-privileges"])?;
                pids.push(pid);
                let sock = Path::new("/var/run/wireguard").join(format!("{ifname}.sock"));
                wait_until(Duration::from_secs(10), || sock.exists().then_some(())).with_context(|| {
                    format!("boringtun made no UAPI socket {}; log:\n{}", sock.display(), lab.lab.log(&log))
                })?;
            }
            let key_file = |name: &str| dir.join(name).to_string_lossy().into_owned();
            lab.exec_ok(
                Node::Home,
                "wg",
                [
                    "set",
                    &server_if,
                    "private-key",
                    &key_file("server.key"),
                    "listen-port",
                    "51820",
                    "peer",
                    &client_pub,
                    "allowed-ips",
                    "10.8.0.2/32",
                ],
            )?;
            lab.exec_ok(
                Node::Wan,
                "wg",
                [
                    "set",
                    &client_if,
                    "private-key",
                    &key_file("client.key"),
                    "peer",
                    &server_pub,
                    "endpoint",
                    "203.0.113.1:51820",
                    "allowed-ips",
                    "10.8.0.0/24,192.168.0.0/24",
                ],
            )?;
            for (node, ifname, address) in
                [(Node::Home, &server_if, "10.8.0.1/24"), (Node::Wan, &client_if, "10.8.0.2/24")]
            {
                lab.exec_ok(node, "ip", ["addr", "add", address, "dev", ifname])?;
                lab.exec_ok(node, "ip", ["link", "set", ifname, "mtu", "1420", "up"])?;
            }
            lab.exec_ok(Node::Wan, "ip", ["route", "add", "192.168.0.0/24", "dev", &client_if])?;
            lab.wait_for_lan()?;
            measure(plan, &|| pids.clone(), &mut |work| lab.kernel_probe(work, plan.timeout()))
        })();
        for pid in pids.iter().rev() {
            let _ = lab.lab.stop(*pid, Duration::from_secs(5));
        }
        for ifname in [&server_if, &client_if] {
            let _ = std::fs::remove_file(Path::new("/var/run/wireguard").join(format!("{ifname}.sock")));
        }
        lab.home_nat(false)?;
        result
    }
}

/// A WireGuard key pair from `wg genkey` / `wg pubkey` (private, public; base64).
fn keypair() -> anyhow::Result<(String, String)> {
    let private = run_wg(&["genkey"], None)?;
    let public = run_wg(&["pubkey"], Some(&private))?;
    Ok((private, public))
}

fn run_wg(args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let mut child =
        Command::new("wg").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    if let Some(input) = input {
        child.stdin.take().context("stdin")?.write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "wg {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
