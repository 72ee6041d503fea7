//! The bench's lab: `hometun_tests::lab::Lab` (remote device → home router → home server and
//! LAN hosts, all in namespaces it removes) plus what the comparison needs on top:
//!
//! - on the router, port forwards for OpenVPN (UDP and TCP 1194) and WireGuard (UDP 51820) to
//!   the home server, and a forward rule that lets the remote device reach the bench's ports
//!   on 192.168.0.10 directly (the `direct` case);
//! - on the LAN host 192.168.0.10, the bench's HTTP and echo servers (`lan-serve`);
//! - helpers to run the probes on the remote device and to find processes in a namespace.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::lab::{run_bounded, wait_until, Lab, Node};

use crate::binaries::Binaries;
use crate::workload::{Outcome, ECHO_PORT, HTTP_PORT};
use crate::Work;

/// The lab and the bench's own pieces in it.
pub(crate) struct BenchLab {
    /// The namespaces (removed when dropped).
    pub lab: Lab,
    /// The binaries the lab runs.
    pub bins: Binaries,
    /// The relay, once a hometun case prepared it.
    pub relay: std::cell::RefCell<Option<super::hometun::RelayHost>>,
}

const ROUTER_RULES: &str = r#"
add rule ip hometun_lab prerouting iifname "wan0" udp dport { 1194, 51820 } dnat to 192.168.0.2
add rule ip hometun_lab prerouting iifname "wan0" tcp dport 1194 dnat to 192.168.0.2
insert rule ip hometun_lab forward iifname "wan0" ip daddr 192.168.0.10 tcp dport { 8080, 7777 } accept
"#;

/// Source NAT for a kernel tunnel's clients (10.8.0.0/24) out of the home server's LAN port,
/// so LAN hosts answer the home server as they do for the relay in masquerade mode.
const HOME_NAT_ON: &str = r#"
table ip hometun_bench {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" ip saddr 10.8.0.0/24 masquerade
    }
}
"#;

impl BenchLab {
    /// Builds the lab and starts the bench's LAN services.
    pub(crate) fn start(bins: Binaries) -> anyhow::Result<Self> {
        let lab = Lab::start()?;
        let bench = Self { lab, bins, relay: std::cell::RefCell::new(None) };
        bench.nft(Node::Router, "router-bench", ROUTER_RULES)?;
        let http = format!("0.0.0.0:{HTTP_PORT}");
        let echo = format!("0.0.0.0:{ECHO_PORT}");
        bench.lab.spawn(
            Node::Host10,
            "lan-serve",
            &bench.bins.bench,
            ["lan-serve", "--http", &http, "--echo", &echo],
        )?;
        bench.lab.wait_for_log("lan-serve", "ready", Duration::from_secs(10))?;
        Ok(bench)
    }

    /// Loads an nft script inside `node`.
    pub(crate) fn nft(&self, node: Node, name: &str, script: &str) -> anyhow::Result<()> {
        let path = self.lab.dir().join(format!("{name}.nft"));
        std::fs::write(&path, script)?;
        self.exec_ok(node, "nft", [OsStr::new("-f"), path.as_os_str()]).map(|_| ())
    }

    /// Makes the home server a router for a kernel tunnel (IPv4 forwarding and masquerade, as
    /// the reference OpenVPN setup does), or undoes it. The lab's home server does not forward
    /// by itself: the relay switches forwarding on for its own interfaces when it runs.
    pub(crate) fn home_nat(&self, on: bool) -> anyhow::Result<()> {
        if on {
            self.lab.sysctl(Node::Home, "net.ipv4.ip_forward=1")?;
            self.nft(Node::Home, "home-nat", HOME_NAT_ON)
        } else {
            // Absent already is fine.
            let _ = self.lab.exec(Node::Home, "nft", ["delete", "table", "ip", "hometun_bench"])?;
            self.lab.sysctl(Node::Home, "net.ipv4.ip_forward=0")
        }
    }

    /// Runs `program` in `node` (bounded to 60 s), failing with its stderr; returns stdout.
    pub(crate) fn exec_ok<I, S>(&self, node: Node, program: impl AsRef<OsStr>, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = program.as_ref().to_owned();
        let out = self.lab.exec(node, &program, args)?;
        ensure!(out.status.success(), "{:?} in {node:?}: {}", program, String::from_utf8_lossy(&out.stderr).trim());
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a bench subcommand on the remote device and parses the [`Outcome`] it prints.
    pub(crate) fn wan_probe(&self, args: &[String], timeout: Duration) -> anyhow::Result<Outcome> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"]).arg(self.lab.netns(Node::Wan)).arg(&self.bins.bench).args(args);
        let out = run_bounded(cmd, timeout)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "probe {} failed: {}{}",
            args.join(" "),
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let line = stdout.lines().last().context("probe printed nothing")?;
        serde_json::from_str(line).with_context(|| format!("probe printed {line:?}"))
    }

    /// The workload over the kernel's TCP from the remote device.
    pub(crate) fn kernel_probe(&self, work: Work, timeout: Duration) -> anyhow::Result<Outcome> {
        let mut args = vec!["probe".to_owned()];
        args.extend(work.args());
        self.wan_probe(&args, timeout)
    }

    /// Waits until the remote device opens a TCP connection to the LAN host's echo port (through
    /// a kernel tunnel that just came up), each try bounded to 2 s, for up to 30 s. A tunnel's first
    /// packets can be lost while its two ends finish setting up (seen with OpenVPN and
    /// boringtun in the first round, after the `direct` case): the measurement starts only
    /// once the path works.
    pub(crate) fn wait_for_lan(&self) -> anyhow::Result<()> {
        let echo = crate::workload::echo_addr();
        let probe = format!("exec 3<>/dev/tcp/{}/{}", echo.ip(), echo.port());
        wait_until(Duration::from_secs(30), || {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec"]).arg(self.lab.netns(Node::Wan)).args(["timeout", "2", "bash", "-c", &probe]);
            run_bounded(cmd, Duration::from_secs(5)).ok().filter(|out| out.status.success()).map(|_| ())
        })
        .with_context(|| format!("{echo} unreachable through the tunnel for 30 s"))
    }

    /// Processes in `node` whose command name is `comm`.
    pub(crate) fn pids_named(&self, node: Node, comm: &str) -> Vec<u32> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "pids"]).arg(self.lab.netns(node));
        let Ok(out) = run_bounded(cmd, Duration::from_secs(10)) else { return Vec::new() };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| crate::proc::comm(p).is_some_and(|c| c == comm))
            .collect()
    }
}
