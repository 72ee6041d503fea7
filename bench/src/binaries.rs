//! The release binaries the lab runs, built with the cargo that runs the bench into the bench's
//! own target directory: the LAN services of `hometun-tests`, the relay, and the page.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::lab::run_bounded;

/// Builds may be slow on a loaded 2-core machine; they are still bounded.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// Paths of what the bench starts.
#[derive(Clone, Debug)]
pub(crate) struct Binaries {
    /// This executable (its hidden subcommands run inside the lab).
    pub bench: PathBuf,
    /// The target directory it lives in (`<target>/release/hometun-bench`).
    pub target_dir: PathBuf,
}

impl Binaries {
    /// Locates this executable and its target directory.
    pub(crate) fn locate() -> anyhow::Result<Self> {
        let bench = std::env::current_exe()?;
        let profile_dir = bench.parent().context("exe dir")?;
        let target_dir = profile_dir.parent().context("target dir")?.to_path_buf();
        Ok(Self { bench, target_dir })
    }

    fn profile_dir(&self) -> PathBuf {
        self.bench.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn is_release(&self) -> bool {
        self.profile_dir().file_name().is_some_and(|n| n == "release")
    }

    /// Builds `hometun-labhost` (the lab's LAN services) and points the lab at it, unless
    /// `HOMETUN_LABHOST_BIN` already names one (the test command's smoke run reuses its own).
    pub(crate) fn build_labhost(&self) -> anyhow::Result<PathBuf> {
        self.build_unless_given(
            "HOMETUN_LABHOST_BIN",
            &["-p", "hometun-tests", "--bin", "hometun-labhost"],
            "hometun-labhost",
        )
    }

    /// Builds `hometun-relay` and points the lab at it, unless `HOMETUN_RELAY_BIN` already names
    /// one.
    pub(crate) fn build_relay(&self) -> anyhow::Result<PathBuf> {
        self.build_unless_given(
            "HOMETUN_RELAY_BIN",
            &["-p", "hometun-relay", "--bin", "hometun-relay"],
            "hometun-relay",
        )
    }

    fn build_unless_given(&self, variable: &str, args: &[&str], name: &str) -> anyhow::Result<PathBuf> {
        if let Some(given) = std::env::var_os(variable).map(PathBuf::from).filter(|p| p.is_file()) {
            eprintln!("bench: {name} from {variable}: {}", given.display());
            return Ok(given);
        }
        let bin = self.cargo_build(args, name)?;
        std::env::set_var(variable, &bin);
        Ok(bin)
    }

    fn cargo_build(&self, args: &[&str], name: &str) -> anyhow::Result<PathBuf> {
        eprintln!("bench: building {name}");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build").args(args).arg("--manifest-path").arg(workspace_dir().join("Cargo.toml"));
        cmd.env("CARGO_TARGET_DIR", &self.target_dir);
        if self.is_release() {
            cmd.arg("--release");
        }
        let out = run_bounded(cmd, BUILD_TIMEOUT)?;
        ensure!(out.status.success(), "building {name} failed:\n{}", tail(&String::from_utf8_lossy(&out.stderr), 40));
        let bin = self.profile_dir().join(name);
        ensure!(bin.exists(), "{} missing after the build", bin.display());
        Ok(bin)
    }

    /// Builds the page (wasm client + `www/`) with trunk into `<target>/bench-www`; returns
    /// that directory.
    /// `HOMETUN_BENCH_PAGE` names a page built before (to compare two builds of it).
    pub(crate) fn build_page(&self) -> anyhow::Result<PathBuf> {
        if let Some(given) = std::env::var_os("HOMETUN_BENCH_PAGE").map(PathBuf::from) {
            ensure!(given.join("index.html").exists(), "HOMETUN_BENCH_PAGE: no index.html in {}", given.display());
            eprintln!("bench: the page from HOMETUN_BENCH_PAGE: {}", given.display());
            return Ok(given);
        }
        eprintln!("bench: building the page (trunk)");
        let dist = self.target_dir.join("bench-www");
        let mut fetch = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        fetch.args(["fetch", "--manifest-path"]).arg(workspace_dir().join("Cargo.toml"));
        let out = run_bounded(fetch, BUILD_TIMEOUT)?;
        ensure!(out.status.success(), "cargo fetch failed:\n{}", tail(&String::from_utf8_lossy(&out.stderr), 20));
        let mut cmd = Command::new("trunk");
        cmd.current_dir(workspace_dir().join("www")).args(["build", "--dist"]).arg(&dist);
        cmd.env("CARGO_TARGET_DIR", &self.target_dir);
        let out = run_bounded(cmd, BUILD_TIMEOUT)?;
        ensure!(
            out.status.success(),
            "trunk build failed:\n{}",
            tail(&format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)), 40)
        );
        ensure!(dist.join("index.html").exists(), "no index.html in {}", dist.display());
        Ok(dist)
    }
}

/// The workspace root (this crate's parent directory).
pub(crate) fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Why a process failed, from its log: the panic message or error with the two lines after it
/// (a backtrace's tail says nothing), else the last `lines` lines.
pub(crate) fn failure(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    match all.iter().position(|l| l.contains("panicked at") || l.starts_with("Error:")) {
        Some(at) => all[at..(at + 3).min(all.len())].join("\n"),
        None => tail(text, lines),
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
