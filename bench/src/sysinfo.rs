//! The machine and the versions a run used, for the report.

use std::process::Command;
use std::time::Duration;

use hometun_tests::lab::run_bounded;

use crate::binaries::workspace_dir;
use crate::install::{version_line, which};

/// What the report says about the machine and the software.
#[derive(Clone, Debug, Default)]
pub(crate) struct SysInfo {
    /// When the run started (UTC).
    pub date: String,
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Load average (1, 5, 15 min) at the start.
    pub load_start: String,
    /// Tool name → version line.
    pub versions: Vec<(String, String)>,
}

/// Collects the machine facts and versions.
pub(crate) fn collect() -> SysInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut versions = Vec::new();
    let git = run(Command::new("git").arg("-C").arg(workspace_dir()).args(["describe", "--always", "--dirty"]));
    versions.push(("hometun (git)".to_owned(), git.unwrap_or_else(|| "unknown".into())));
    for (name, program, args) in [
        ("rustc", "rustc", &["--version"][..]),
        ("openvpn", "openvpn", &["--version"][..]),
        ("boringtun-cli", "boringtun-cli", &["--version"][..]),
        ("wg", "wg", &["--version"][..]),
        ("chromium", "chromium", &["--version"][..]),
        ("chromedriver", "chromedriver", &["--version"][..]),
    ] {
        if let Some(path) = which(program) {
            if let Some(v) = version_line(&path.to_string_lossy(), args) {
                versions.push((name.to_owned(), v));
            }
        }
    }
    if which("openvpn").is_some() {
        let out = run(Command::new("openvpn").arg("--version")).unwrap_or_default();
        if let Some(line) = out.lines().find(|l| l.contains("library versions")) {
            versions.push(("openvpn ssl".to_owned(), line.trim().to_owned()));
        }
    }
    SysInfo {
        date: run(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default().trim().to_owned(),
        cpu,
        cores,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        load_start: load_average(),
        versions,
    }
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(cmd: &mut Command) -> Option<String> {
    let cmd = std::mem::replace(cmd, Command::new("true"));
    let out = run_bounded(cmd, Duration::from_secs(20)).ok()?;
    // `openvpn --version` exits 1 after printing.
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}
