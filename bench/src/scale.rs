//! `hometun-scale`: the relay with many tunnels at once.
//!
//! - idle: N devices enrol and keep their tunnels open; the relay's RSS is sampled before and
//!   with all N up.
//! - busy: M of those devices connect and each GETs the same amount from the LAN host at the
//!   same time; the relay's peak RSS and CPU time are sampled while they transfer.
//!
//! - burst: fresh devices (as many as busy ones) enrol all at once, with no limit on handshakes
//!   in flight; the time until every one has its tunnel up is the enrolment-burst figure.
//!
//! The clients are one `hometun-bench swarm` process on the remote device (the native client
//! of `hometun-tests`, one tokio task pair per tunnel), through the router's port forward.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_shared::invite::Invite;
use hometun_shared::keys::{PublicKey, SecretKey};
use hometun_tests::client::{Device, RelayTarget, Tunnel};
use hometun_tests::lab::Node;
use serde::Serialize;

use crate::cases::hometun::relay_address;
use crate::cases::BenchLab;
use crate::proc;

/// Open tunnels at most this many handshakes at a time (unless `--at-once` says otherwise).
const OPENING_AT_ONCE: usize = 32;
/// The swarm never runs longer than this.
const MAX_SWARM: Duration = Duration::from_secs(900);

/// `hometun-bench swarm`.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct SwarmArgs {
    /// Relay address.
    #[arg(long)]
    relay: std::net::SocketAddr,
    /// The relay's certificate (PEM), pinned.
    #[arg(long)]
    cert: PathBuf,
    /// Device file: one device per line (written when enrolling, read otherwise).
    #[arg(long)]
    devices: PathBuf,
    /// Enrol with the invite links in this file (one per line) instead of reading `--devices`.
    #[arg(long)]
    invites: Option<PathBuf>,
    /// Tunnels to open.
    #[arg(long)]
    count: usize,
    /// Then GET this many bytes on every tunnel at once (0: only hold the tunnels).
    #[arg(long, default_value_t = 0)]
    get: u64,
    /// Hold the tunnels until this file exists (at most 15 minutes).
    #[arg(long)]
    until: Option<PathBuf>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = OPENING_AT_ONCE)]
    at_once: usize,
}

/// Runs the swarm; prints `up <n> <secs>` when every tunnel is up and, after the GETs,
/// `done <bytes> <secs>`.
pub(crate) fn swarm(args: SwarmArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime
        .block_on(async { tokio::time::timeout(MAX_SWARM, swarm_async(args)).await })
        .context("swarm ran too long")?
}

async fn swarm_async(args: SwarmArgs) -> anyhow::Result<()> {
    let target = RelayTarget::from_cert_file(args.relay, &args.cert)?;
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.at_once.max(1)));
    let mut opening = tokio::task::JoinSet::new();
    match &args.invites {
        Some(file) => {
            let links = std::fs::read_to_string(file)?;
            for (i, link) in links.lines().filter(|l| !l.trim().is_empty()).take(args.count).enumerate() {
                let invite = Invite::parse(link).map_err(|e| anyhow::anyhow!("invite {i}: {e}"))?;
                let (target, gate) = (target.clone(), gate.clone());
                opening.spawn(async move {
                    let _permit = gate.acquire_owned().await?;
                    let device = Device::new(&invite);
                    let tunnel =
                        device.enrol(&target, &invite).await.with_context(|| format!("enrolling device {i}"))?;
                    anyhow::Ok((i, device, tunnel, start.elapsed()))
                });
            }
        }
        None => {
            let text = std::fs::read_to_string(&args.devices)?;
            for (i, line) in text.lines().take(args.count).enumerate() {
                let device = parse_device(line)?;
                let (target, gate) = (target.clone(), gate.clone());
                opening.spawn(async move {
                    let _permit = gate.acquire_owned().await?;
                    let tunnel = device.connect(&target).await.with_context(|| format!("connecting device {i}"))?;
                    anyhow::Ok((i, device, tunnel, start.elapsed()))
                });
            }
        }
    }
    let mut tunnels: Vec<(usize, Device, Tunnel)> = Vec::new();
    let mut times = Vec::new();
    while let Some(joined) = opening.join_next().await {
        let (i, device, tunnel, up) = joined??;
        tunnels.push((i, device, tunnel));
        times.push(up.as_secs_f64());
    }
    ensure!(tunnels.len() == args.count, "only {} of {} tunnels", tunnels.len(), args.count);
    tunnels.sort_by_key(|(i, _, _)| *i);
    if args.invites.is_some() {
        let text: String =
            tunnels.iter().map(|(_, d, _)| format!("{} {}\n", d.key.to_text(), d.relay_key.to_text())).collect();
        std::fs::write(&args.devices, text)?;
    }
    say(&format!("up {} {:.3}", tunnels.len(), start.elapsed().as_secs_f64()));
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times.get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1))).copied();
    say(&format!(
        "each device up after (s): p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        at(0.5).unwrap_or(0.0),
        at(0.9).unwrap_or(0.0),
        at(0.99).unwrap_or(0.0),
        at(1.0).unwrap_or(0.0)
    ));

    if args.get > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        let size = args.get;
        let tunnels: Vec<Arc<Tunnel>> = tunnels.into_iter().map(|(_, _, t)| Arc::new(t)).collect();
        let mut gets = tokio::task::JoinSet::new();
        for tunnel in &tunnels {
            let tunnel = tunnel.clone();
            gets.spawn(async move { crate::hometun_probe::get(&tunnel, size).await });
        }
        while let Some(joined) = gets.join_next().await {
            joined??;
        }
        say(&format!("done {} {:.3}", size * tunnels.len() as u64, start.elapsed().as_secs_f64()));
        for tunnel in &tunnels {
            tunnel.disconnect().await;
        }
        return Ok(());
    }
    if let Some(until) = &args.until {
        while !until.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn parse_device(line: &str) -> anyhow::Result<Device> {
    let (key, relay) = line.split_once(' ').context("device line")?;
    let key = SecretKey::from_text(key).map_err(|e| anyhow::anyhow!("device key: {e}"))?;
    let relay_key = PublicKey::from_text(relay).map_err(|e| anyhow::anyhow!("relay key: {e}"))?;
    Ok(Device { key: Arc::new(key), relay_key })
}

/// What the scale case measured.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ScaleResult {
    /// Relay RSS with no tunnel, bytes.
    pub rss_empty: u64,
    /// Idle tunnels held.
    pub idle_tunnels: usize,
    /// Seconds to open all idle tunnels (enrolment included).
    pub idle_open_secs: f64,
    /// Relay RSS with all idle tunnels up, bytes.
    pub rss_idle: u64,
    /// Clients transferring at once.
    pub busy_clients: usize,
    /// Bytes each busy client GETs.
    pub busy_bytes_each: u64,
    /// Aggregate download while busy, Mbit/s.
    pub busy_mbit: f64,
    /// Peak relay RSS while busy, bytes.
    pub rss_busy_peak: u64,
    /// Relay CPU while busy, % of one core.
    pub busy_cpu_percent: f64,
    /// Relay CPU seconds per GB while busy.
    pub busy_cpu_s_per_gb: f64,
    /// Fresh devices enrolling at once.
    pub burst_enrolments: usize,
    /// Seconds until all of them had their tunnel up.
    pub burst_secs: Option<f64>,
    /// Why the busy phase failed.
    pub busy_failed: Option<String>,
    /// Why the burst did not finish.
    pub burst_failed: Option<String>,
}

impl ScaleResult {
    /// Relay RSS per idle tunnel, KiB.
    pub(crate) fn kib_per_idle_tunnel(&self) -> Option<f64> {
        (self.idle_tunnels > 0)
            .then(|| self.rss_idle.saturating_sub(self.rss_empty) as f64 / self.idle_tunnels as f64 / 1024.0)
    }
}

/// Runs the idle and the busy phase against the bench relay.
pub(crate) fn run(lab: &BenchLab, idle: usize, busy: usize, busy_bytes: u64) -> anyhow::Result<ScaleResult> {
    let mut host = lab.relay.borrow_mut();
    let host = host.as_mut().context("relay not prepared")?;
    host.up(lab, None)?;
    let result = (|| {
        let pid = host.pid(lab).context("relay not running")?;
        std::thread::sleep(Duration::from_millis(500));
        let mut result = ScaleResult { rss_empty: proc::rss_bytes(pid).unwrap_or(0), ..ScaleResult::default() };
        let dir = lab.lab.dir().join("swarm");
        std::fs::create_dir_all(&dir)?;
        let devices = dir.join("devices");
        let invites = dir.join("invites");
        eprintln!("bench: scale: creating {idle} invites");
        let mut links = String::new();
        for i in 0..idle.max(busy) {
            links.push_str(&host.invite_link(&format!("swarm-{i}"))?);
            links.push('\n');
        }
        std::fs::write(&invites, links)?;
        let burst_invites = dir.join("burst-invites");
        let mut links = String::new();
        for i in 0..busy {
            links.push_str(&host.invite_link(&format!("burst-{i}"))?);
            links.push('\n');
        }
        std::fs::write(&burst_invites, links)?;
        let cert = host.cert();
        let common = |count: usize, devices: &std::path::Path| -> Vec<String> {
            vec![
                "swarm".into(),
                "--relay".into(),
                relay_address(),
                "--cert".into(),
                cert.to_string_lossy().into_owned(),
                "--devices".into(),
                devices.to_string_lossy().into_owned(),
                "--count".into(),
                count.to_string(),
            ]
        };

        // Idle: enrol and hold.
        let stop = dir.join("stop");
        let mut args = common(idle.max(busy), &devices);
        args.extend([
            "--invites".into(),
            invites.to_string_lossy().into_owned(),
            "--until".into(),
            stop.to_string_lossy().into_owned(),
        ]);
        let swarm = lab.lab.spawn(Node::Wan, "swarm-idle", &lab.bins.bench, &args)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let log = loop {
            let log = lab.lab.log("swarm-idle");
            if log.contains("up ") {
                break log;
            }
            if !lab.lab.is_running(swarm) || Instant::now() > deadline {
                let _ = lab.lab.stop(swarm, Duration::from_secs(5));
                anyhow::bail!("idle swarm failed:\n{}", crate::binaries::tail(&log, 20));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        result.idle_tunnels = idle.max(busy);
        result.idle_open_secs =
            log.lines().find_map(|l| l.strip_prefix("up ")?.split(' ').nth(1)?.parse().ok()).unwrap_or(0.0);
        std::thread::sleep(Duration::from_secs(2));
        result.rss_idle = (0..10)
            .filter_map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                proc::rss_bytes(pid)
            })
            .max()
            .unwrap_or(0);
        eprintln!(
            "bench: scale: {} idle tunnels opened in {:.1} s; relay RSS {} KiB empty, {} KiB with them: {:.1} KiB per idle tunnel",
            result.idle_tunnels,
            result.idle_open_secs,
            result.rss_empty / 1024,
            result.rss_idle / 1024,
            result.kib_per_idle_tunnel().unwrap_or(0.0)
        );
        std::fs::write(&stop, "")?;
        let _ = lab.lab.stop(swarm, Duration::from_secs(20));
        std::thread::sleep(Duration::from_secs(2));

        // Burst: fresh devices enrol all at once.
        eprintln!("bench: scale: {busy} devices enrolling at once");
        let mut args = common(busy, &dir.join("burst-devices"));
        args.extend([
            "--invites".into(),
            burst_invites.to_string_lossy().into_owned(),
            "--at-once".into(),
            busy.to_string(),
        ]);
        let swarm = lab.lab.spawn(Node::Wan, "swarm-burst", &lab.bins.bench, &args)?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let log = loop {
            let log = lab.lab.log("swarm-burst");
            if log.contains("up ") || !lab.lab.is_running(swarm) || Instant::now() > deadline {
                break log;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = lab.lab.stop(swarm, Duration::from_secs(20));
        result.burst_enrolments = busy;
        match log.lines().find_map(|l| l.strip_prefix("up ")?.split(' ').nth(1)?.parse::<f64>().ok()) {
            Some(secs) => {
                result.burst_secs = Some(secs);
                let each = log.lines().find(|l| l.starts_with("each device")).unwrap_or_default();
                eprintln!("bench: scale: {busy} devices enrolled at once in {secs:.3} s; {each}");
            }
            None => {
                // The error and its causes, without the backtrace.
                let why: Vec<&str> = log
                    .lines()
                    .skip_while(|l| !l.starts_with("Error"))
                    .take_while(|l| !l.starts_with("Stack backtrace"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let why = if why.is_empty() { "no tunnel up in time".to_owned() } else { why.join(" ") };
                eprintln!("bench: scale: the enrolment burst failed: {why}");
                result.burst_failed = Some(why);
            }
        }
        std::thread::sleep(Duration::from_secs(2));

        // Busy: connect `busy` of them and GET at once (a failure here keeps the figures above).
        let mut busy_phase = || -> anyhow::Result<()> {
            eprintln!("bench: scale: {busy} clients downloading {busy_bytes} bytes each");
            let mut args = common(busy, &devices);
            args.extend(["--get".into(), busy_bytes.to_string()]);
            let swarm = lab.lab.spawn(Node::Wan, "swarm-busy", &lab.bins.bench, &args)?;
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut cpu_at_up = None;
            let mut peak = 0u64;
            let (bytes, secs, cpu_at_done) = loop {
                let log = lab.lab.log("swarm-busy");
                if cpu_at_up.is_none() && log.contains("up ") {
                    cpu_at_up = proc::cpu_secs(pid);
                }
                if cpu_at_up.is_some() {
                    peak = peak.max(proc::rss_bytes(pid).unwrap_or(0));
                }
                if let Some(done) = log.lines().find_map(|l| l.strip_prefix("done ")) {
                    let mut parts = done.split(' ');
                    let bytes: u64 = parts.next().and_then(|v| v.parse().ok()).context("done line")?;
                    let secs: f64 = parts.next().and_then(|v| v.parse().ok()).context("done line")?;
                    break (bytes, secs, proc::cpu_secs(pid));
                }
                if !lab.lab.is_running(swarm) || Instant::now() > deadline {
                    let _ = lab.lab.stop(swarm, Duration::from_secs(5));
                    anyhow::bail!("busy swarm failed:\n{}", crate::binaries::failure(&log, 20));
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let _ = lab.lab.stop(swarm, Duration::from_secs(20));
            let cpu = cpu_at_done.unwrap_or(0.0) - cpu_at_up.unwrap_or(0.0);
            result.busy_clients = busy;
            result.busy_bytes_each = busy_bytes;
            result.busy_mbit = bytes as f64 * 8.0 / secs / 1e6;
            result.rss_busy_peak = peak;
            result.busy_cpu_percent = cpu / secs * 100.0;
            result.busy_cpu_s_per_gb = cpu / (bytes as f64 / 1e9);
            Ok(())
        };
        if let Err(e) = busy_phase() {
            eprintln!("bench: scale: the busy phase failed: {e:#}");
            result.busy_failed = Some(format!("{e:#}"));
        }
        Ok(result)
    })();
    if result.is_err() {
        eprintln!("relay log:\n{}", crate::binaries::tail(&host.log(), 30));
    }
    host.down()?;
    result
}
