//! The browser client's end-to-end scenario (`wasm-client/tests/e2e.rs`): built for wasm32 with
//! the lab's facts in compile-time environment variables, then run by `wasm-bindgen-test-runner`
//! in headless Chromium inside a lab namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::lab::{run_bounded, Lab, Node};

/// What the scenario needs to know about the lab (see the header of `wasm-client/tests/e2e.rs`).
#[derive(Clone, Debug)]
pub struct LabFacts {
    /// An unused invite link whose URL the browser reaches.
    pub invite: String,
    /// The LAN host with HTTP `/blob/<size>` on :80 and echo on :7.
    pub lan_host: String,
    /// A name the pushed DNS resolves to `lan_host`.
    pub lan_name: Option<String>,
    /// `POST` here makes the relay drop every WebSocket.
    pub drop_url: Option<String>,
    /// `POST` here with `{"fingerprint": ...}` revokes that device.
    pub revoke_url: Option<String>,
}

impl LabFacts {
    /// The variables to set, and (as `None`) the ones to remove: `option_env!` would see an empty
    /// value as given.
    fn env(&self) -> [(&'static str, Option<String>); 5] {
        [
            ("HOMETUN_TEST_INVITE", Some(self.invite.clone())),
            ("HOMETUN_TEST_LAN_HOST", Some(self.lan_host.clone())),
            ("HOMETUN_TEST_LAN_NAME", self.lan_name.clone()),
            ("HOMETUN_TEST_DROP_URL", self.drop_url.clone()),
            ("HOMETUN_TEST_REVOKE_URL", self.revoke_url.clone()),
        ]
    }
}

/// Builds the e2e test for wasm32 with `facts` and returns the path of its `.wasm`. Uses the
/// cargo that runs the tests, into the same target directory (bounded to 20 minutes: a cold
/// wasm build of the client and its dependencies on 2 cores).
pub fn build_e2e(facts: &LabFacts) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "-p", "hometun-wasm", "--target", "wasm32-unknown-unknown", "--test", "e2e", "--no-run"])
        .args(["--message-format=json", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir()?);
    for (key, value) in facts.env() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = run_bounded(cmd, Duration::from_secs(20 * 60))?;
    ensure!(out.status.success(), "building the wasm e2e test failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "e2e")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo named no e2e test artifact")
}

/// Where the runner serves the test page (a fixed port, so the relay can list its origin).
const RUNNER_ADDRESS: &str = "127.0.0.1:8000";
/// The origin of the runner's test page: the relay must accept it for `/tunnel`
/// (`RelayOptions::extra_origins`).
pub const RUNNER_ORIGIN: &str = "http://127.0.0.1:8000";

/// Runs the wasm test `wasm` with `wasm-bindgen-test-runner` inside `node`, its Chromium
/// started with `chromium_args`; bounded by `timeout` (the runner's own
/// `WASM_BINDGEN_TEST_TIMEOUT` is set a little below it). Returns the runner's output.
pub fn run(lab: &Lab, node: Node, wasm: &Path, chromium_args: &[String], timeout: Duration) -> anyhow::Result<Output> {
    // The runner reads webdriver.json from its working directory.
    let dir = lab.dir().join("wasm-runner");
    std::fs::create_dir_all(&dir)?;
    let capabilities = serde_json::json!({"goog:chromeOptions": {"args": chromium_args}});
    std::fs::write(dir.join("webdriver.json"), capabilities.to_string())?;
    let runner = std::env::var_os("WASM_BINDGEN_TEST_RUNNER").unwrap_or_else(|| "wasm-bindgen-test-runner".into());
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec"])
        .arg(lab.netns(node))
        .arg(runner)
        .arg(wasm)
        .arg("--nocapture")
        .current_dir(&dir)
        .env("CHROMEDRIVER", super::chromedriver_path())
        .env("WASM_BINDGEN_TEST_ADDRESS", RUNNER_ADDRESS)
        .env(
            "WASM_BINDGEN_TEST_TIMEOUT",
            timeout.saturating_sub(Duration::from_secs(10)).as_secs().max(120).to_string(),
        );
    run_bounded(cmd, timeout)
}

/// The target directory of the running test (`<target>/<profile>/deps/<test>`).
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("exe dir")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("profile dir")?;
    }
    Ok(dir.parent().context("target dir")?.to_path_buf())
}
