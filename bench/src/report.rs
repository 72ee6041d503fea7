//! The Markdown report of a run: environment, the summary table (median and min–max over the
//! rounds), hometun's extra figures, the targets, and every single run.

use std::fmt::Write;

use crate::cases::{CaseId, RunResult};
use crate::scale::ScaleResult;
use crate::stats::{summarize, Summary};
use crate::sysinfo::SysInfo;

/// Everything a run found.
pub(crate) struct Report {
    /// Machine and versions.
    pub sys: SysInfo,
    /// The command that produced it.
    pub command: String,
    /// Rounds run.
    pub rounds: u32,
    /// Bytes per transfer.
    pub size: u64,
    /// Echo round trips per run.
    pub echo_count: u32,
    /// The remote device's link, Mbit/s each way, when limited.
    pub link_mbit: Option<u32>,
    /// Per case (table order): description and each run's result or error.
    pub cases: Vec<CaseRuns>,
    /// Cases that could not run at all, with the reason.
    pub skipped: Vec<(CaseId, String)>,
    /// wasm + JS of the page: raw and gzip bytes.
    pub page_size: Option<(u64, u64)>,
    /// The scale case.
    pub scale: Option<Result<ScaleResult, String>>,
    /// Load average when the run ended.
    pub load_end: String,
    /// Minutes the run took (measuring, not building).
    pub minutes: f64,
}

/// Round trips during a download, for the cases that measured them.
fn loaded_table(md: &mut String, r: &Report) {
    let figure = |c: &CaseRuns, key: &str| c.summary(|x| x.extra.get(key).copied());
    let measured: Vec<&CaseRuns> = r.cases.iter().filter(|c| figure(c, "loaded_echoes").is_some()).collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Round trips during a download\n\nOne-byte echoes, each {} ms after the last began (at once when it took longer), on a second connection while a GET of {} runs \
         on the same path (through the same tunnel); only echoes that began and ended during the GET count.\n",
        crate::workload::LOADED_ECHO_EVERY.as_millis(),
        mib(r.size)
    );
    let _ = writeln!(md, "| case | median ms | p99 ms | echoes per run |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for c in measured {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.id.name(),
            cell(figure(c, "loaded_rtt_median_ms"), 1),
            cell(figure(c, "loaded_rtt_p99_ms"), 1),
            cell(figure(c, "loaded_echoes"), 0)
        );
    }
}

/// The runs of one case.
pub(crate) struct CaseRuns {
    /// Which case.
    pub id: CaseId,
    /// What it runs.
    pub describe: String,
    /// Round number and outcome.
    pub runs: Vec<(u32, Result<RunResult, String>)>,
}

impl CaseRuns {
    /// The successful runs.
    pub(crate) fn ok(&self) -> Vec<&RunResult> {
        self.runs.iter().filter_map(|(_, r)| r.as_ref().ok()).collect()
    }

    /// Summary of one figure over the successful runs.
    pub(crate) fn summary(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<Summary> {
        summarize(&self.ok().into_iter().filter_map(f).collect::<Vec<_>>())
    }
}

fn cell(s: Option<Summary>, decimals: usize) -> String {
    match s {
        None => "n/a".into(),
        Some(s) if s.n == 1 => format!("{:.*}", decimals, s.median),
        Some(s) => format!("{:.*} ({:.*}–{:.*})", decimals, s.median, decimals, s.min, decimals, s.max),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Renders the report as Markdown.
pub(crate) fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# hometun benchmark: latest run\n");
    let _ = writeln!(md, "- date: {}", r.sys.date);
    let _ = writeln!(
        md,
        "- CPU: {} ({} logical cores, shared by both tunnel ends, the LAN host and the probe)",
        r.sys.cpu, r.sys.cores
    );
    let _ = writeln!(md, "- kernel: {}", r.sys.kernel);
    let _ = writeln!(md, "- load average at start / end: {} / {}", r.sys.load_start, r.load_end);
    let _ = writeln!(md, "- command: `{}`", r.command);
    let _ = writeln!(
        md,
        "- workload per run: HTTP GET of {} from 192.168.0.10 (download), HTTP POST of {} to it (upload), {} one-byte TCP echo round trips (TCP_NODELAY); every byte checked except the browser's download (counted)",
        mib(r.size),
        mib(r.size),
        r.echo_count
    );
    let _ = writeln!(
        md,
        "- {} round(s), cases interleaved (A B C … A B C …); cells are median (min–max) over successful runs",
        r.rounds
    );
    if let Some(mbit) = r.link_mbit {
        let _ = writeln!(
            md,
            "- the remote device's link limited to {mbit} Mbit/s each way (a token bucket on both ends: 128 KB burst, 100 ms of queue)"
        );
    }
    let _ = writeln!(md, "- measuring took {:.1} min\n", r.minutes);

    let direct_rtt = r.cases.iter().find(|c| c.id == CaseId::Direct).and_then(|c| c.summary(|x| Some(x.rtt_mean_ms)));
    let _ = writeln!(md, "| case | download Mbit/s | upload Mbit/s | echo RTT mean ms | echo RTT p99 ms | RTT added vs direct ms | tunnel CPU s/GB (down / up) | ok runs |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in &r.cases {
        let rtt = c.summary(|x| Some(x.rtt_mean_ms));
        let added = match (rtt, direct_rtt) {
            (Some(a), Some(d)) if c.id != CaseId::Direct => format!("{:+.3}", a.median - d.median),
            _ => "–".into(),
        };
        let cpu = match (c.summary(|x| x.cpu_down_s_per_gb), c.summary(|x| x.cpu_up_s_per_gb)) {
            (Some(d), Some(u)) => format!("{:.1} / {:.1}", d.median, u.median),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            c.id.name(),
            cell(c.summary(|x| Some(x.down_mbit)), 0),
            cell(c.summary(|x| Some(x.up_mbit)), 0),
            cell(rtt, 3),
            cell(c.summary(|x| Some(x.rtt_p99_ms)), 3),
            added,
            cpu,
            c.ok().len(),
            c.runs.len()
        );
    }
    for (id, why) in &r.skipped {
        let _ = writeln!(md, "| {} | – | – | – | – | – | – | skipped: {} |", id.name(), one_line(why));
    }

    loaded_table(&mut md, r);

    let _ = writeln!(md, "\n## What each case runs\n");
    for c in &r.cases {
        let _ = writeln!(md, "- **{}**: {}", c.id.name(), c.describe);
    }
    let _ = writeln!(
        md,
        "\nEvery tunnel case: remote device (namespace `wan`, 203.0.113.2) → home router (port forward) → home server \
         (tunnel server, masquerade to 192.168.0.2) → LAN host 192.168.0.10. CPU is user + system time of the tunnel \
         processes (both ends) from /proc/<pid>/stat, during the transfer, per GB moved; kernel softirq work is not counted, \
         so plain forwarding shows n/a."
    );

    let _ = writeln!(md, "\n## hometun extras\n");
    let _ = writeln!(md, "| figure | value |");
    let _ = writeln!(md, "|---|---:|");
    if let Some(browser) = r.cases.iter().find(|c| c.id == CaseId::HometunBrowser) {
        let _ = writeln!(
            md,
            "| page load → tunnel up (reload of an enrolled page), ms | {} |",
            cell(browser.summary(|x| x.extra.get("tunnel_up_ms").copied()), 0)
        );
    }
    if let Some((raw, gz)) = r.page_size {
        let _ = writeln!(
            md,
            "| page wasm + JS, gzip -9 (raw) | {:.1} KiB ({:.1} KiB) |",
            gz as f64 / 1024.0,
            raw as f64 / 1024.0
        );
    }
    match &r.scale {
        Some(Ok(s)) => {
            let _ = writeln!(md, "| relay RSS, no tunnel | {} |", mib(s.rss_empty));
            let _ = writeln!(
                md,
                "| relay RSS with {} idle tunnels (opened in {:.1} s) | {} |",
                s.idle_tunnels,
                s.idle_open_secs,
                mib(s.rss_idle)
            );
            if let Some(per) = s.kib_per_idle_tunnel() {
                let _ = writeln!(md, "| relay RSS per idle tunnel | {per:.1} KiB |");
            }
            if s.burst_enrolments > 0 {
                let figure = match (&s.burst_secs, &s.burst_failed) {
                    (Some(secs), _) => format!("{secs:.2} s"),
                    (None, why) => format!("failed: {}", one_line(why.as_deref().unwrap_or("?"))),
                };
                let _ = writeln!(
                    md,
                    "| {} fresh devices enrolling at once: all tunnels up | {figure} |",
                    s.burst_enrolments
                );
            }
            match &s.busy_failed {
                Some(why) => {
                    let _ = writeln!(md, "| clients GET at once | failed: {} |", one_line(why));
                }
                None => {
                    let _ = writeln!(
                        md,
                        "| {} clients each GET {} at once: aggregate download | {:.0} Mbit/s |",
                        s.busy_clients,
                        mib(s.busy_bytes_each),
                        s.busy_mbit
                    );
                    let _ = writeln!(md, "| … relay peak RSS | {} |", mib(s.rss_busy_peak));
                    let _ = writeln!(
                        md,
                        "| … relay CPU | {:.0} % of a core, {:.1} s/GB |",
                        s.busy_cpu_percent, s.busy_cpu_s_per_gb
                    );
                }
            }
        }
        Some(Err(e)) => {
            let _ = writeln!(md, "| scale case | failed: {} |", one_line(e));
        }
        None => {}
    }

    let _ = writeln!(md, "\n## Targets\n");
    let find = |id| r.cases.iter().find(|c| c.id == id);
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    // What the transport alone (the `wss-*` case of the same client) did in this run, if it ran.
    let alone = |id, figure: &dyn Fn(&CaseRuns) -> Option<String>| {
        find(id).and_then(figure).map(|f| format!(" (the transport alone, {}: {f})", id.name())).unwrap_or_default()
    };
    // (case, its transport alone, download and upload goals in Mbit/s, added round trip goal in ms)
    for (id, transport, down_goal, up_goal, rtt_goal) in [
        (CaseId::HometunNative, CaseId::WssNative, 2500.0, 2500.0, 0.10),
        (CaseId::HometunBrowser, CaseId::WssBrowser, 1500.0, 1000.0, 0.15),
    ] {
        let Some(c) = find(id) else { continue };
        if let (Some(d), Some(u)) = (c.summary(|x| Some(x.down_mbit)), c.summary(|x| Some(x.up_mbit))) {
            let ceiling = alone(transport, &|t| {
                Some(format!(
                    "{:.0} / {:.0}",
                    t.summary(|x| Some(x.down_mbit))?.median,
                    t.summary(|x| Some(x.up_mbit))?.median
                ))
            });
            let _ = writeln!(
                md,
                "- {} download ≥ {down_goal:.0} / upload ≥ {up_goal:.0} Mbit/s: {:.0} / {:.0}: {} / {}{ceiling}",
                id.name(),
                d.median,
                u.median,
                verdict(d.median >= down_goal),
                verdict(u.median >= up_goal)
            );
        }
        if let (Some(rtt), Some(direct)) = (c.summary(|x| Some(x.rtt_mean_ms)), direct_rtt) {
            let added = rtt.median - direct.median;
            let ceiling = alone(transport, &|t| {
                Some(format!("{:+.3} ms", t.summary(|x| Some(x.rtt_mean_ms))?.median - direct.median))
            });
            let _ = writeln!(
                md,
                "- {} round trip added over direct ≤ {rtt_goal:.2} ms: {added:+.3} ms: {}{ceiling}",
                id.name(),
                verdict(added <= rtt_goal)
            );
        }
    }
    if let Some(c) = find(CaseId::HometunNative) {
        let down = c.summary(|x| x.cpu_down_s_per_gb);
        let up = c.summary(|x| x.cpu_up_s_per_gb);
        if let (Some(d), Some(u)) = (down, up) {
            let ceiling = alone(CaseId::WssNative, &|t| {
                Some(format!(
                    "{:.1} / {:.1}",
                    t.summary(|x| x.cpu_down_s_per_gb)?.median,
                    t.summary(|x| x.cpu_up_s_per_gb)?.median
                ))
            });
            let _ = writeln!(
                md,
                "- hometun-native tunnel CPU ≤ 4 s/GB each way: {:.1} / {:.1}: {} / {}{ceiling}",
                d.median,
                u.median,
                verdict(d.median <= 4.0),
                verdict(u.median <= 4.0)
            );
        }
    }
    if let Some(Ok(s)) = &r.scale {
        if let Some(per) = s.kib_per_idle_tunnel() {
            let _ = writeln!(md, "- relay memory per idle tunnel ≤ 64 KiB: {per:.1} KiB: {}", verdict(per <= 64.0));
        }
        if let Some(secs) = s.burst_secs {
            let _ = writeln!(
                md,
                "- {} devices enrolling at once, all up ≤ 1 s: {secs:.2} s: {}",
                s.burst_enrolments,
                verdict(secs <= 1.0)
            );
        }
    }

    let _ = writeln!(md, "\n## All runs\n");
    let _ = writeln!(
        md,
        "| case | round | down Mbit/s | up Mbit/s | RTT mean ms | RTT p99 ms | CPU s/GB down / up | other |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    for c in &r.cases {
        for (round, run) in &c.runs {
            match run {
                Ok(x) => {
                    let cpu = match (x.cpu_down_s_per_gb, x.cpu_up_s_per_gb) {
                        (Some(d), Some(u)) => format!("{d:.1} / {u:.1}"),
                        _ => "n/a".into(),
                    };
                    let other: Vec<String> = x
                        .extra
                        .iter()
                        .map(|(k, v)| if k.ends_with("_ms") { format!("{k}={v:.1}") } else { format!("{k}={v:.0}") })
                        .collect();
                    let _ = writeln!(
                        md,
                        "| {} | {round} | {:.0} | {:.0} | {:.3} | {:.3} | {cpu} | {} |",
                        c.id.name(),
                        x.down_mbit,
                        x.up_mbit,
                        x.rtt_mean_ms,
                        x.rtt_p99_ms,
                        other.join(", ")
                    );
                }
                Err(e) => {
                    let _ = writeln!(md, "| {} | {round} | failed | | | | | {} |", c.id.name(), one_line(e));
                }
            }
        }
    }

    let _ = writeln!(md, "\n## Versions\n");
    for (name, v) in &r.sys.versions {
        let _ = writeln!(md, "- {name}: {v}");
    }
    md
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "/");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}
