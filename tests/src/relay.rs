//! The real `hometun-relay` running on the lab's home server, driven through its command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_shared::invite::Invite;

use crate::client::RelayTarget;
use crate::lab::{addr, Lab, Node, HOME_LAN_IF};

/// How the relay lets clients into the LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Source NAT out of the LAN interface.
    Masquerade,
    /// Real client addresses on the LAN (needs [`Lab::add_return_route`]).
    Routed,
}

/// Extra settings for one relay.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// masquerade or routed.
    pub mode: Mode,
    /// Handshake deadline in seconds (the relay's default, 10; stalled-handshake tests shorten it).
    pub handshake_timeout_secs: u64,
    /// Largest WebSocket message the relay accepts.
    pub max_message_bytes: usize,
    /// DNS servers pushed to clients.
    pub dns: Vec<std::net::Ipv4Addr>,
    /// A directory that overrides the page built into the relay (`--www`; default: none, the
    /// relay serves its built-in page).
    pub www: Option<PathBuf>,
    /// A trusted certificate from the lab's ACME CA (default: the self-signed fallback).
    pub acme: Option<AcmeOptions>,
    /// Web origins besides the relay's own whose pages may open `/tunnel` (`extra_origins`).
    pub extra_origins: Vec<String>,
    /// The client address pool (`--pool`; default: the relay's, 10.8.0.0/24, room for 253
    /// devices; more devices need a wider one).
    pub pool: Option<String>,
    /// Devices may reach each other (`client_to_client`; default: no).
    pub client_to_client: bool,
}

/// How a relay gets its certificate from the lab's ACME CA.
#[derive(Clone, Debug)]
pub struct AcmeOptions {
    /// The ACME directory URL.
    pub directory: String,
    /// The CA's API certificate (`--acme-ca-root`).
    pub ca_root: PathBuf,
    /// Forced renewal this many seconds after each certificate (`renew_after_secs`).
    pub renew_after_secs: Option<u64>,
}

impl AcmeOptions {
    /// Certificates from `acme` for [`addr::DOMAIN`].
    pub fn from(acme: &crate::lab::Acme) -> Self {
        Self { directory: acme.directory(), ca_root: acme.api_root().to_owned(), renew_after_secs: None }
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Masquerade,
            handshake_timeout_secs: 10,
            max_message_bytes: 256 * 1024,
            dns: vec![addr::ROUTER_LAN],
            www: None,
            acme: None,
            extra_origins: Vec::new(),
            pool: None,
            client_to_client: false,
        }
    }
}

/// A relay process in the lab's `home` namespace, with its state directory.
pub struct Relay {
    lab: Lab,
    bin: PathBuf,
    dir: PathBuf,
    pid: Option<u32>,
    runs: u32,
    spki: Option<String>,
    public_url: String,
}

impl Relay {
    /// Initialises a state directory with `options` and starts serving on 443; returns once
    /// the relay says it runs.
    pub fn start(lab: &Lab, options: RelayOptions) -> anyhow::Result<Self> {
        let bin = relay_binary()?;
        let dir = lab.dir().join("relay");
        let mode = match options.mode {
            Mode::Masquerade => "masquerade",
            Mode::Routed => "routed",
        };
        let public_url = match &options.acme {
            Some(_) => format!("https://{}", addr::DOMAIN),
            None => format!("https://{}", addr::ROUTER_WAN),
        };
        let listen = format!("0.0.0.0:{}", addr::RELAY_PORT);
        let mut args = vec![
            "init",
            "--dir",
            path_str(&dir)?,
            "--listen",
            &listen,
            "--lan",
            addr::LAN,
            "--lan-interface",
            HOME_LAN_IF,
            "--mode",
            mode,
            "--public-url",
            &public_url,
        ];
        if let Some(pool) = &options.pool {
            args.extend(["--pool", pool.as_str()]);
        }
        if let Some(www) = &options.www {
            args.extend(["--www", path_str(www)?]);
        }
        if let Some(acme) = &options.acme {
            args.extend([
                "--domain",
                addr::DOMAIN,
                "--acme-directory",
                &acme.directory,
                "--acme-ca-root",
                path_str(&acme.ca_root)?,
            ]);
        }
        let out = lab.exec(Node::Home, &bin, args)?;
        ensure!(out.status.success(), "relay init failed: {}", String::from_utf8_lossy(&out.stderr));
        tune_config(&dir.join("relay.toml"), &options)?;
        let spki = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.trim().strip_prefix("its SPKI SHA-256:")?.split_whitespace().next().map(str::to_owned));
        let mut relay = Self { lab: lab.clone(), bin, dir, pid: None, runs: 0, spki, public_url };
        relay.serve()?;
        Ok(relay)
    }

    /// Starts `bin` (default: the relay built for the tests) with `serve` on an empty state
    /// directory and only the lab's network flags, as a home user's first command would; returns
    /// once it says it runs. Its first-run output is in [`Relay::log`].
    pub fn first_serve(lab: &Lab, bin: Option<&Path>) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin.to_owned(),
            None => relay_binary()?,
        };
        let dir = lab.dir().join("relay");
        ensure!(!dir.exists(), "{} is not empty", dir.display());
        let public_url = format!("https://{}", addr::ROUTER_WAN);
        let listen = format!("0.0.0.0:{}", addr::RELAY_PORT);
        let flags =
            ["--listen", &listen, "--lan", addr::LAN, "--lan-interface", HOME_LAN_IF, "--public-url", &public_url];
        let mut relay =
            Self { lab: lab.clone(), bin, dir, pid: None, runs: 0, spki: None, public_url: public_url.clone() };
        relay.serve_with(&flags)?;
        Ok(relay)
    }

    fn serve(&mut self) -> anyhow::Result<()> {
        self.serve_with(&[])
    }

    fn serve_with(&mut self, flags: &[&str]) -> anyhow::Result<()> {
        let (pid, log) = self.spawn_serve(flags)?;
        self.pid = Some(pid);
        self.lab.wait_for_log(&log, "hometun relay running", Duration::from_secs(15))?;
        Ok(())
    }

    /// Starts the next run of `serve` with `flags`; its pid and log name.
    fn spawn_serve(&mut self, flags: &[&str]) -> anyhow::Result<(u32, String)> {
        self.runs += 1;
        let log = format!("relay-{}", self.runs);
        let dir = path_str(&self.dir)?.to_owned();
        let mut args = vec!["serve", "--dir", &dir];
        args.extend_from_slice(flags);
        let pid = self.lab.spawn(Node::Home, &log, &self.bin, args)?;
        Ok((pid, log))
    }

    /// Starts `serve` again and sends it SIGTERM `after` that, whatever it is doing by then (it
    /// may still be setting up); returns once it has exited (killed after 5 s).
    pub fn serve_and_stop_after(&mut self, after: Duration) -> anyhow::Result<()> {
        let (pid, _) = self.spawn_serve(&[])?;
        std::thread::sleep(after);
        self.lab.stop(pid, Duration::from_secs(5))?;
        Ok(())
    }

    /// Stops the relay (SIGTERM) and starts it again on the same state directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.serve()
    }

    /// Stops the relay with SIGTERM (killed after 5 s).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid.take() {
            self.lab.stop(pid, Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// The running relay's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the relay process still runs.
    pub fn is_running(&self) -> bool {
        self.pid.is_some_and(|pid| self.lab.is_running(pid))
    }

    /// Everything the relay logged so far (all runs).
    pub fn log(&self) -> String {
        (1..=self.runs).map(|i| self.lab.log(&format!("relay-{i}"))).collect::<Vec<_>>().join("\n")
    }

    /// What the latest run printed so far.
    pub fn last_log(&self) -> String {
        self.lab.log(&format!("relay-{}", self.runs))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The base64 SHA-256 of the certificate's public key, as `relay init` printed it (for
    /// Chromium's `--ignore-certificate-errors-spki-list`).
    pub fn spki_sha256(&self) -> Option<&str> {
        self.spki.as_deref()
    }

    /// The relay's public URL (the router's forwarded port, or [`addr::DOMAIN`] with ACME).
    pub fn public_url(&self) -> String {
        self.public_url.clone()
    }

    /// How a client on the internet side reaches this relay (through the router's port forward).
    pub fn target(&self) -> anyhow::Result<RelayTarget> {
        let addr = SocketAddr::from((addr::ROUTER_WAN, addr::RELAY_PORT));
        RelayTarget::from_cert_file(addr, &self.dir.join("tls-cert.pem"))
    }

    /// Runs one `hometun-relay` admin command against this relay's directory.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--dir", path_str(&self.dir)?]);
        let out = self.lab.exec(Node::Home, &self.bin, &full)?;
        ensure!(out.status.success(), "hometun-relay {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates an invite for `name`, valid `ttl` (e.g. `24h`, `2s`), limited to `allow` when given.
    pub fn invite(&self, name: &str, ttl: &str, allow: Option<&str>) -> anyhow::Result<Invite> {
        let mut args = vec!["invite", "--no-qr", "--name", name, "--ttl", ttl];
        if let Some(allow) = allow {
            args.extend(["--allow", allow]);
        }
        let out = self.admin(&args)?;
        let link = out.lines().find(|l| l.contains("#invite=")).context("no invite link printed")?;
        Invite::parse(link).map_err(|e| anyhow::anyhow!("invite link {link:?}: {e}"))
    }

    /// The invite the latest run printed on its first run (the link line of its banner).
    pub fn printed_invite(&self) -> anyhow::Result<Invite> {
        let log = self.last_log();
        let link =
            log.lines().map(str::trim).find(|l| l.contains("#invite=")).context("the relay printed no invite link")?;
        Invite::parse(link).map_err(|e| anyhow::anyhow!("printed invite link {link:?}: {e}"))
    }

    /// The relay's client list (`clients --json`).
    pub fn clients(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let out = self.admin(&["clients", "--json"])?;
        serde_json::from_str(&out).with_context(|| format!("clients --json printed {out:?}"))
    }

    /// One client's entry by name.
    pub fn client(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        self.clients()?.into_iter().find(|c| c["name"] == name).with_context(|| format!("no client {name}"))
    }

    /// The running relay's status (`status --json`).
    pub fn status(&self) -> anyhow::Result<serde_json::Value> {
        let out = self.admin(&["status", "--json"])?;
        serde_json::from_str(&out).with_context(|| format!("status --json printed {out:?}"))
    }

    /// Revokes a client by name.
    pub fn revoke(&self, name: &str) -> anyhow::Result<()> {
        self.admin(&["clients", "revoke", name]).map(|_| ())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            // The test failed: show what the relay said (its state goes with the lab).
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- relay log (last {} lines) ----", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// Adds the pushed DNS servers and the test limits to the relay's config file.
fn tune_config(path: &Path, options: &RelayOptions) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let dns: Vec<String> = options.dns.iter().map(|a| format!("\"{a}\"")).collect();
    let mut out = String::new();
    // Top-level keys must come before the first table header.
    let (top, tables) = match text.find("\n[") {
        Some(at) => text.split_at(at + 1),
        None => (text.as_str(), ""),
    };
    let set_here = ["dns", "extra_origins", "client_to_client"];
    for line in top.lines().filter(|l| !set_here.iter().any(|key| l.starts_with(key))) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("dns = [{}]\n", dns.join(", ")));
    out.push_str(&format!("client_to_client = {}\n", options.client_to_client));
    if !options.extra_origins.is_empty() {
        let origins: Vec<String> = options.extra_origins.iter().map(|o| format!("\"{o}\"")).collect();
        out.push_str(&format!("extra_origins = [{}]\n", origins.join(", ")));
    }
    let renew_after = options.acme.as_ref().and_then(|a| a.renew_after_secs);
    let mut in_limits = false;
    let mut wrote_limits = false;
    for line in tables.lines() {
        if line.starts_with('[') {
            in_limits = line.trim() == "[limits]";
            out.push_str(line);
            out.push('\n');
            if let (Some(secs), "[acme]") = (renew_after, line.trim()) {
                out.push_str(&format!("renew_after_secs = {secs}\n"));
            }
            if in_limits {
                out.push_str(&limits_lines(options));
                wrote_limits = true;
            }
            continue;
        }
        if in_limits && (line.starts_with("handshake_timeout_secs") || line.starts_with("max_message_bytes")) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !wrote_limits {
        out.push_str("\n[limits]\n");
        out.push_str(&limits_lines(options));
    }
    std::fs::write(path, out)?;
    Ok(())
}

fn limits_lines(options: &RelayOptions) -> String {
    format!(
        "handshake_timeout_secs = {}\nmax_message_bytes = {}\n",
        options.handshake_timeout_secs, options.max_message_bytes
    )
}

/// Resident memory and open descriptors of a process (the relay's, by [`Relay::pid`]).
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
}

/// Reads the [`Footprint`] of process `pid` from /proc; panics when the process is gone.
pub fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("process fds").count();
    Footprint { rss_kib, fds }
}

/// The relay binary: `HOMETUN_RELAY_BIN`, else built once per test run with the cargo that
/// runs the tests, into the same target directory.
pub fn relay_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("HOMETUN_RELAY_BIN") {
                return Ok(PathBuf::from(p));
            }
            build_relay().map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn build_relay() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut profile_dir = exe.parent().context("exe dir")?;
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().context("profile dir")?;
    }
    let target_dir = profile_dir.parent().context("target dir")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "hometun-relay", "--bin", "hometun-relay", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    // The same optimisation as the tests themselves (the workspace's test profile), reusing the
    // dependencies `cargo test` just built.
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    } else {
        cmd.args(["--profile", "test"]);
    }
    let out = crate::lab::run_bounded(cmd, Duration::from_secs(900))?;
    ensure!(out.status.success(), "building hometun-relay failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bin = profile_dir.join("hometun-relay");
    ensure!(bin.exists(), "{} missing after build", bin.display());
    Ok(bin)
}
