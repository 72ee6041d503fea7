//! One bench run: build, install, lab, rounds of interleaved cases, the scale case, report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::binaries::{workspace_dir, Binaries};
use crate::cases::boringtun::Boringtun;
use crate::cases::browser::{page_size, HometunBrowser};
use crate::cases::direct::Direct;
use crate::cases::hometun::{HometunNative, RelayHost};
use crate::cases::openvpn::{OpenVpn, Transport};
use crate::cases::wss::{WssBrowser, WssNative};
use crate::cases::{BenchLab, Case, CaseId, Plan};
use crate::report::{CaseRuns, Report};
use crate::{chart, install, report, scale, sysinfo};

/// Command-line options of a run.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Options {
    /// Rounds; each runs every case once, interleaved.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// MiB per transfer (each way).
    #[arg(long)]
    pub size_mib: Option<u64>,
    /// Cases to run, comma-separated [default: all; with --smoke: direct,wss-native,openvpn-udp,hometun-native,hometun-scale].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub cases: Vec<CaseId>,
    /// Echo round trips per run.
    #[arg(long)]
    pub echo_count: Option<u32>,
    /// Idle tunnels for the relay memory figure.
    #[arg(long)]
    pub idle_tunnels: Option<usize>,
    /// Clients transferring at once for the relay load figure.
    #[arg(long)]
    pub busy_clients: Option<usize>,
    /// A quick check that every selected case works: 1 round, 1 MiB, few echoes and tunnels;
    /// the report goes to the target directory unless --out is given.
    #[arg(long)]
    pub smoke: bool,
    /// Directory for latest.md and latest.png [default: bench/results for a run of every case
    /// with the relay's defaults, else bench-partial (bench-smoke with --smoke) in the target
    /// directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs the relay with `tun_offload = false` (the kernel cuts every packet to the MTU
    /// before the relay reads it), to compare with the default.
    #[arg(long)]
    pub no_tun_offload: bool,
    /// Runs the relay with this many worker threads (`threads` in relay.toml; its default is
    /// one), to compare.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub relay_threads: Option<u16>,
    /// After the browser case's first measured run, profiles the page with Chromium's sampling
    /// profiler during one more download, upload and run of echoes and prints where the CPU
    /// went (the page is built with its wasm function names kept for this).
    #[arg(long)]
    pub browser_cpu_profile: bool,
    /// Limits the remote device's link to this many Mbit/s each way (a token bucket, as a
    /// phone's mobile data or a home's uplink would), for every case.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub link_mbit: Option<u32>,
    /// Measures at most this many echoes (the next 50 ms after the last began, or at once
    /// when it took longer) while a download of the run's size runs on the same path: the
    /// round trip under load (0: not measured).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub loaded_echoes: u32,
}

struct Settings {
    rounds: u32,
    size: u64,
    echo_count: u32,
    idle: usize,
    busy: usize,
    cases: Vec<CaseId>,
    out: PathBuf,
}

impl Options {
    fn settings(&self, bins: &Binaries) -> Settings {
        let smoke = self.smoke;
        let cases = if !self.cases.is_empty() {
            let mut c = self.cases.clone();
            c.sort();
            c.dedup();
            c
        } else if smoke {
            vec![CaseId::Direct, CaseId::WssNative, CaseId::OpenvpnUdp, CaseId::HometunNative, CaseId::HometunScale]
        } else {
            CaseId::ALL.to_vec()
        };
        // Only a run of every case with the relay as shipped replaces the committed reference;
        // a run of some cases, or of a relay set up to compare, writes beside the build.
        let reference = CaseId::ALL.iter().all(|c| cases.contains(c))
            && !self.no_tun_offload
            && self.relay_threads.is_none()
            && self.link_mbit.is_none()
            && self.loaded_echoes == 0;
        let out = self.out.clone().unwrap_or_else(|| {
            if smoke {
                bins.target_dir.join("bench-smoke")
            } else if reference {
                workspace_dir().join("bench/results")
            } else {
                bins.target_dir.join("bench-partial")
            }
        });
        Settings {
            rounds: self.rounds.unwrap_or(if smoke { 1 } else { 3 }).clamp(1, 50),
            size: self.size_mib.unwrap_or(if smoke { 1 } else { 256 }).clamp(1, 16 << 10) << 20,
            echo_count: self.echo_count.unwrap_or(if smoke { 20 } else { 1000 }).clamp(1, 100_000),
            idle: self.idle_tunnels.unwrap_or(if smoke { 10 } else { 1000 }).clamp(1, 2000),
            busy: self.busy_clients.unwrap_or(if smoke { 4 } else { 200 }).clamp(1, 1000),
            cases,
            out,
        }
    }
}

/// Runs the bench; writes the report and prints it.
pub(crate) fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(rustix::process::geteuid().is_root(), "the bench needs root (network namespaces)");
    cleanup::install_signal_handler();
    let begun = Instant::now();
    let bins = Binaries::locate()?;
    let s = options.settings(&bins);
    let command = std::env::args().collect::<Vec<_>>().join(" ");

    if options.browser_cpu_profile {
        // Function names in the page's wasm, for the profile (the code is the same).
        std::env::set_var("CARGO_PROFILE_PAGE_WASM_STRIP", "none");
    }
    install::base()?;
    bins.build_labhost()?;
    let mut skipped: Vec<(CaseId, String)> = Vec::new();
    let mut wanted = s.cases.clone();
    if wanted.iter().any(|c| c.needs_relay()) {
        if let Err(e) = bins.build_relay() {
            for id in wanted.iter().filter(|c| c.needs_relay()) {
                skipped.push((*id, format!("relay build failed: {e:#}")));
            }
            wanted.retain(|c| !c.needs_relay());
        }
    }
    let mut cases: Vec<Box<dyn Case>> = Vec::new();
    let mut browser_page = None;
    for id in wanted.iter().copied().filter(|c| *c != CaseId::HometunScale) {
        let mut case: Box<dyn Case> = match id {
            CaseId::Direct => Box::new(Direct),
            CaseId::WssNative => Box::new(WssNative::new()),
            CaseId::WssBrowser => Box::new(WssBrowser::new()),
            CaseId::OpenvpnUdp => Box::new(OpenVpn::new(Transport::Udp)),
            CaseId::OpenvpnTcp => Box::new(OpenVpn::new(Transport::Tcp)),
            CaseId::Boringtun => Box::new(Boringtun::new()),
            CaseId::HometunNative => Box::new(HometunNative::new()),
            CaseId::HometunBrowser => Box::new(HometunBrowser::new()),
            CaseId::HometunScale => unreachable!("filtered above"),
        };
        match case.install(&bins) {
            Ok(()) => {
                if id == CaseId::HometunBrowser {
                    browser_page = HometunBrowser::page_dir(&bins);
                }
                cases.push(case);
            }
            Err(e) => {
                eprintln!("bench: {} skipped: {e:#}", id.name());
                skipped.push((id, format!("{e:#}")));
            }
        }
    }
    let run_scale = wanted.contains(&CaseId::HometunScale);

    let sys = sysinfo::collect();
    eprintln!(
        "bench: builds and installs took {:.0} s; load average {} (numbers are only representative on an idle machine)",
        begun.elapsed().as_secs_f64(),
        sys.load_start
    );
    let started = Instant::now();
    let lab = BenchLab::start(bins.clone()).context("starting the lab")?;
    if let Some(mbit) = options.link_mbit {
        lab.lab.limit_remote_link(mbit).context("limiting the remote device's link")?;
    }
    if wanted.iter().any(|c| c.needs_relay()) {
        *lab.relay.borrow_mut() = Some(
            RelayHost::create(&lab, !options.no_tun_offload, options.relay_threads.map(usize::from))
                .context("preparing the relay")?,
        );
    }

    let mut results: Vec<CaseRuns> =
        cases.iter().map(|c| CaseRuns { id: c.id(), describe: c.describe(), runs: Vec::new() }).collect();
    for round in 1..=s.rounds {
        let plan = Plan {
            size: s.size,
            echo_count: s.echo_count,
            browser_cpu_profile: options.browser_cpu_profile,
            loaded_echoes: options.loaded_echoes,
            link_mbit: options.link_mbit,
        };
        for (case, runs) in cases.iter_mut().zip(results.iter_mut()) {
            let t = Instant::now();
            let result = case.run(&lab, &plan).map_err(|e| format!("{e:#}"));
            match &result {
                Ok(r) => eprintln!(
                    "bench: round {round} {:<16} down {:>8.1} up {:>8.1} Mbit/s  rtt {:.3}/{:.3} ms  cpu {:?}/{:?} s/GB  ({:.0} s)",
                    case.id().name(),
                    r.down_mbit,
                    r.up_mbit,
                    r.rtt_mean_ms,
                    r.rtt_p99_ms,
                    r.cpu_down_s_per_gb.map(|v| (v * 10.0).round() / 10.0),
                    r.cpu_up_s_per_gb.map(|v| (v * 10.0).round() / 10.0),
                    t.elapsed().as_secs_f64()
                ),
                Err(e) => eprintln!("bench: round {round} {} FAILED: {e}", case.id().name()),
            }
            if let Some((median, p99)) = result
                .as_ref()
                .ok()
                .and_then(|r| Some((*r.extra.get("loaded_rtt_median_ms")?, *r.extra.get("loaded_rtt_p99_ms")?)))
            {
                eprintln!(
                    "bench: round {round} {:<16} echo during the download {median:.1} / p99 {p99:.1} ms",
                    case.id().name()
                );
            }
            runs.runs.push((round, result));
        }
    }
    let scale = run_scale.then(|| {
        let each = (s.size / 32).max(64 << 10);
        let r = scale::run(&lab, s.idle, s.busy, each).map_err(|e| format!("{e:#}"));
        match &r {
            Ok(x) => eprintln!("bench: scale {x:?}"),
            Err(e) => eprintln!("bench: scale FAILED: {e}"),
        }
        r
    });
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    drop(lab);

    let report = Report {
        sys,
        command,
        rounds: s.rounds,
        size: s.size,
        echo_count: s.echo_count,
        link_mbit: options.link_mbit,
        cases: results,
        skipped,
        page_size: browser_page.as_deref().and_then(|p| page_size(p).ok()),
        scale,
        load_end: sysinfo::load_average(),
        minutes,
    };
    std::fs::create_dir_all(&s.out)?;
    let md = report::markdown(&report);
    std::fs::write(s.out.join("latest.md"), &md)?;
    if let Err(e) = chart::draw(&report, &s.out.join("latest.png")) {
        eprintln!("bench: no chart: {e:#}");
    }
    println!("{md}");
    eprintln!("bench: wrote {} and latest.png", s.out.join("latest.md").display());
    let failed = report.cases.iter().flat_map(|c| c.runs.iter()).filter(|(_, r)| r.is_err()).count()
        + report.skipped.len()
        + usize::from(matches!(report.scale, Some(Err(_))));
    anyhow::ensure!(failed == 0, "{failed} run(s) failed or were skipped (see the report)");
    Ok(())
}

/// Removing the lab on Ctrl-C / SIGTERM (panics unwind and drop the lab themselves).
mod cleanup {
    use hometun_tests::lab::own_namespaces;

    /// On SIGINT or SIGTERM: kill everything in this process's namespaces, delete them, exit.
    pub(super) fn install_signal_handler() {
        std::thread::spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            eprintln!("bench: interrupted, removing the lab");
            for ns in own_namespaces() {
                remove(&ns);
            }
            remove_wireguard_sockets();
            std::process::exit(130);
        });
    }

    fn remove(ns: &str) {
        use std::process::Command;
        use std::time::Duration;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "pids", ns]);
        if let Ok(out) = hometun_tests::lab::run_bounded(cmd, Duration::from_secs(10)) {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "del", ns]);
        let _ = hometun_tests::lab::run_bounded(cmd, Duration::from_secs(10));
    }

    fn remove_wireguard_sockets() {
        let id = std::process::id();
        for side in ["s", "c"] {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/hb{id}{side}.sock"));
        }
    }
}
