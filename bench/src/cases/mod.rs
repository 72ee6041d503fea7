//! The cases: each brings one way of reaching the LAN host up in the lab, runs the same
//! workload through it (see [`measure`]) and takes it down again, once per round.

pub(crate) mod boringtun;
pub(crate) mod browser;
pub(crate) mod browser_profile;
pub(crate) mod direct;
pub(crate) mod hometun;
pub(crate) mod lab;
pub(crate) mod openvpn;
pub(crate) mod wss;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::proc;
use crate::workload::{self, Outcome};
use crate::Work;
pub(crate) use lab::BenchLab;

/// Every case, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CaseId {
    /// Plain forwarding through the router, no tunnel: the ceiling.
    Direct,
    /// The tunnel's transport alone (TLS + WebSocket, no tunnel inside) with the native
    /// client's stack: the ceiling for hometun-native.
    WssNative,
    /// The tunnel's transport alone with Chromium's WebSocket: the ceiling for hometun-browser.
    WssBrowser,
    /// OpenVPN 2.6, L3 tun, over UDP.
    OpenvpnUdp,
    /// OpenVPN 2.6, L3 tun, over TCP with tcp-nodelay.
    OpenvpnTcp,
    /// boringtun (userspace WireGuard) configured with `wg`.
    Boringtun,
    /// hometun: the native test client through the relay.
    HometunNative,
    /// hometun: the page's `fetch` in headless Chromium through the relay.
    HometunBrowser,
    /// hometun relay memory with many idle tunnels and CPU/memory with many busy clients
    /// (run once after the rounds).
    HometunScale,
}

impl CaseId {
    /// The name on the command line and in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::WssNative => "wss-native",
            Self::WssBrowser => "wss-browser",
            Self::OpenvpnUdp => "openvpn-udp",
            Self::OpenvpnTcp => "openvpn-tcp",
            Self::Boringtun => "boringtun",
            Self::HometunNative => "hometun-native",
            Self::HometunBrowser => "hometun-browser",
            Self::HometunScale => "hometun-scale",
        }
    }

    /// Every case.
    pub(crate) const ALL: [Self; 9] = [
        Self::Direct,
        Self::WssNative,
        Self::WssBrowser,
        Self::OpenvpnUdp,
        Self::OpenvpnTcp,
        Self::Boringtun,
        Self::HometunNative,
        Self::HometunBrowser,
        Self::HometunScale,
    ];

    /// Whether the case needs the relay (the transport cases borrow its certificate).
    pub(crate) fn needs_relay(self) -> bool {
        matches!(
            self,
            Self::HometunNative | Self::HometunBrowser | Self::HometunScale | Self::WssNative | Self::WssBrowser
        )
    }
}

/// What one run of a case moves.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Bytes per transfer (each way).
    pub size: u64,
    /// Echo round trips.
    pub echo_count: u32,
    /// Profile the page's CPU during one extra download and upload (browser case, first run).
    pub browser_cpu_profile: bool,
    /// Echoes during a download of `size` (at most this many; 0: none measured).
    pub loaded_echoes: u32,
    /// The remote device's link, Mbit/s, when limited.
    pub link_mbit: Option<u32>,
}

impl Plan {
    /// The same plan without the echoes under load (the transport alone has no second
    /// connection to load it with).
    pub(crate) fn without_load(&self) -> Self {
        Self { loaded_echoes: 0, ..self.clone() }
    }

    /// How long one probe may take: the transfer at 8 Mbit/s (or the limited link's rate when
    /// slower), plus a minute.
    pub(crate) fn timeout(&self) -> Duration {
        let mbit = self.link_mbit.unwrap_or(8).clamp(1, 8);
        Duration::from_secs(60 + self.size * 8 / (u64::from(mbit) * 1_000_000))
    }
}

/// The figures of one run of one case.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RunResult {
    /// Download (LAN host → remote device), Mbit/s.
    pub down_mbit: f64,
    /// Upload (remote device → LAN host), Mbit/s.
    pub up_mbit: f64,
    /// Mean 1-byte echo round trip, ms.
    pub rtt_mean_ms: f64,
    /// 99th percentile echo round trip, ms.
    pub rtt_p99_ms: f64,
    /// CPU seconds of the tunnel processes per GB downloaded.
    pub cpu_down_s_per_gb: Option<f64>,
    /// CPU seconds of the tunnel processes per GB uploaded.
    pub cpu_up_s_per_gb: Option<f64>,
    /// Case-specific figures (e.g. `tunnel_up_ms`).
    pub extra: BTreeMap<String, f64>,
}

/// One case: installs what it needs once, then runs once per round.
pub(crate) trait Case {
    /// Which case this is.
    fn id(&self) -> CaseId;
    /// One line for the report: what runs where, and settings that matter.
    fn describe(&self) -> String;
    /// Installs and builds what the case needs (skipped when present). Runs before the lab.
    fn install(&mut self, bins: &crate::binaries::Binaries) -> anyhow::Result<()> {
        let _ = bins;
        Ok(())
    }
    /// Brings the case up in `lab`, measures, takes it down again.
    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult>;
}

/// Runs the workload through `work` (download, upload, echo after a short warm-up) and
/// charges the CPU time of `tunnel_pids` (sampled around each transfer) plus the CPU time a
/// probe reports for itself to the tunnel.
pub(crate) fn measure(
    plan: &Plan,
    tunnel_pids: &dyn Fn() -> Vec<u32>,
    work: &mut dyn FnMut(Work) -> anyhow::Result<Outcome>,
) -> anyhow::Result<RunResult> {
    work(Work::Echo { count: 3 })?;
    let mut transfer = |w: Work| -> anyhow::Result<(f64, Option<f64>)> {
        let pids = tunnel_pids();
        let cpu0 = proc::total_cpu_secs(&pids);
        let outcome = work(w)?;
        let cpu1 = proc::total_cpu_secs(&pids);
        let Outcome::Transfer { bytes, secs, cpu_secs } = outcome else {
            anyhow::bail!("probe answered {outcome:?} to {w:?}")
        };
        anyhow::ensure!(secs > 0.0, "transfer took no time");
        let cpu = match (pids.is_empty(), cpu_secs) {
            (true, None) => None,
            (_, own) => Some(cpu1 - cpu0 + own.unwrap_or(0.0)),
        };
        Ok((bytes as f64 * 8.0 / secs / 1e6, cpu.map(|c| c / (bytes as f64 / 1e9))))
    };
    let (down_mbit, cpu_down_s_per_gb) = transfer(Work::Get { size: plan.size })?;
    let (up_mbit, cpu_up_s_per_gb) = transfer(Work::Put { size: plan.size })?;
    let Outcome::Echo { rtts_ms } = work(Work::Echo { count: plan.echo_count })? else {
        anyhow::bail!("echo answered a transfer")
    };
    let mut extra = BTreeMap::new();
    if plan.loaded_echoes > 0 {
        let Outcome::Echo { rtts_ms: loaded } = work(Work::Loaded { size: plan.size, count: plan.loaded_echoes })?
        else {
            anyhow::bail!("echo under load answered a transfer")
        };
        // A download shorter than the echoes' start (a small --size-mib on a fast link) has none.
        if !loaded.is_empty() {
            extra.insert("loaded_rtt_median_ms".into(), workload::percentile(&loaded, 50.0));
            extra.insert("loaded_rtt_p99_ms".into(), workload::percentile(&loaded, 99.0));
        }
        extra.insert("loaded_echoes".into(), loaded.len() as f64);
    }
    Ok(RunResult {
        down_mbit,
        up_mbit,
        rtt_mean_ms: workload::mean(&rtts_ms),
        rtt_p99_ms: workload::percentile(&rtts_ms, 99.0),
        cpu_down_s_per_gb,
        cpu_up_s_per_gb,
        extra,
    })
}
