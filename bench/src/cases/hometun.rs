//! The hometun relay in the lab (shared by the hometun cases) and `hometun-native`: the native
//! test client (shared session + netstack over WebSocket/TLS, from `hometun-tests`) on the
//! remote device, through the router's port forward to the relay on the home server.
//!
//! The relay is the real binary driven by `hometun_tests::relay::Relay`, in masquerade mode,
//! with its pool widened to 10.8.0.0/21 and per-source limits raised so the scale case can hold
//! 1,000 tunnels from one address. It runs only while a hometun case runs: the kernel tunnels
//! use the same 10.8.0.0/24 on the home server.

use anyhow::Context;
use hometun_tests::browser::copy_dir;
use hometun_tests::lab::{addr, Node};
use hometun_tests::relay::{Mode, Relay, RelayOptions};
use std::path::{Path, PathBuf};

use super::{measure, BenchLab, Case, CaseId, Plan, RunResult};

/// Limits for the bench's relay (`[limits]` in relay.toml): room for 1,000+ tunnels from one
/// source address.
const BENCH_LIMITS: &[(&str, &str)] = &[
    ("max_connections_per_ip", "4096"),
    ("max_unauthenticated_per_ip", "1024"),
    ("new_connections_per_ip_per_sec", "2000"),
    ("new_connections_per_ip_burst", "4096"),
];
/// The bench relay's pool: 2,046 addresses.
pub(crate) const BENCH_POOL: &str = "10.8.0.0/21";

/// The relay as the bench runs it.
pub(crate) struct RelayHost {
    relay: Relay,
}

impl RelayHost {
    /// Initialises the relay's state (pool, limits) without leaving it running.
    /// `threads`: the relay's worker threads (`threads` in relay.toml), `None` for its default.
    pub(crate) fn create(lab: &BenchLab, tun_offload: bool, threads: Option<usize>) -> anyhow::Result<Self> {
        // `<lab>/www` overrides the relay's built-in page once `up` copies a page there.
        let www = Some(lab.lab.dir().join("www"));
        let options =
            RelayOptions { mode: Mode::Masquerade, handshake_timeout_secs: 10, www, ..RelayOptions::default() };
        let mut relay = Relay::start(&lab.lab, options)?;
        relay.stop()?;
        let mut top = vec![("pool", format!("\"{BENCH_POOL}\"")), ("tun_offload", tun_offload.to_string())];
        if let Some(threads) = threads {
            top.push(("threads", threads.to_string()));
        }
        tune(&relay.dir().join("relay.toml"), &top)?;
        Ok(Self { relay })
    }

    /// Starts the relay (serving the page in `www` when given).
    pub(crate) fn up(&mut self, lab: &BenchLab, www: Option<&Path>) -> anyhow::Result<()> {
        if let Some(www) = www {
            copy_dir(www, &lab.lab.dir().join("www"))?;
        }
        self.relay.restart()
    }

    /// Stops the relay.
    pub(crate) fn down(&mut self) -> anyhow::Result<()> {
        self.relay.stop()
    }

    /// The relay's pid while it runs.
    pub(crate) fn pid(&self, lab: &BenchLab) -> Option<u32> {
        lab.pids_named(Node::Home, "hometun-relay").first().copied()
    }

    /// A fresh single-use invite link for `name`.
    pub(crate) fn invite_link(&self, name: &str) -> anyhow::Result<String> {
        let out = self.relay.admin(&["invite", "--no-qr", "--name", name, "--ttl", "2h"])?;
        let link = out.lines().find(|l| l.contains("#invite=")).context("no invite link printed")?;
        Ok(link.trim().to_owned())
    }

    /// The relay's certificate (PEM).
    pub(crate) fn cert(&self) -> PathBuf {
        self.relay.dir().join("tls-cert.pem")
    }

    /// The relay's private key (PEM), for the transport cases' server.
    pub(crate) fn key(&self) -> PathBuf {
        self.relay.dir().join("tls-key.pem")
    }

    /// The relay's logs so far.
    pub(crate) fn log(&self) -> String {
        self.relay.log()
    }
}

/// Sets the top-level `top` keys (each must be in the file already) and raises the per-source
/// limits in relay.toml.
fn tune(path: &Path, top: &[(&str, String)]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = String::new();
    let mut in_limits = false;
    let mut wrote = false;
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_limits = line.trim() == "[limits]";
        }
        if let Some((key, value)) = top.iter().find(|(k, _)| !in_limits && *k == key) {
            out.push_str(&format!("{key} = {value}\n"));
            continue;
        }
        if in_limits && BENCH_LIMITS.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[limits]" {
            for (k, v) in BENCH_LIMITS {
                out.push_str(&format!("{k} = {v}\n"));
            }
            wrote = true;
        }
    }
    if !wrote {
        out.push_str("\n[limits]\n");
        for (k, v) in BENCH_LIMITS {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// The relay as seen from the remote device (the router's port forward).
pub(crate) fn relay_address() -> String {
    format!("{}:{}", addr::ROUTER_WAN, addr::RELAY_PORT)
}

/// The native-client case.
pub(crate) struct HometunNative {
    runs: u32,
}

impl HometunNative {
    /// The case.
    pub(crate) fn new() -> Self {
        Self { runs: 0 }
    }
}

impl Case for HometunNative {
    fn id(&self) -> CaseId {
        CaseId::HometunNative
    }

    fn describe(&self) -> String {
        "native client (hometun-shared session + smoltcp netstack, tokio-tungstenite + rustls) → router port forward → relay (masquerade); CPU = relay + client process".into()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        let mut host = lab.relay.borrow_mut();
        let host = host.as_mut().context("relay not prepared")?;
        host.up(lab, None)?;
        let device = lab.lab.dir().join("native.device");
        let mut invite = if device.exists() { None } else { Some(host.invite_link("bench-native")?) };
        let cert = host.cert();
        let pid = host.pid(lab).context("relay not running")?;
        let result = measure(plan, &|| vec![pid], &mut |work| {
            let mut args: Vec<String> = vec!["hometun-probe".into(), "--relay".into(), relay_address()];
            args.extend([
                "--cert".into(),
                cert.to_string_lossy().into_owned(),
                "--device".into(),
                device.to_string_lossy().into_owned(),
            ]);
            if let Some(link) = invite.take() {
                args.extend(["--invite".into(), link]);
            }
            args.extend(work.args());
            lab.wan_probe(&args, plan.timeout())
        });
        if result.is_err() {
            eprintln!("relay log:\n{}", crate::binaries::tail(&host.log(), 30));
        }
        host.down()?;
        result
    }
}
