//! `hometun-bench ssh`: SSH in the page through the tunnel. Figures printed, nothing written.
//!
//! Chromium on the remote device, the page connected, `hometun.ssh` logged in (password) to
//! OpenSSH on LAN host 192.168.0.10 (`hometun_tests::apps::sshd`):
//! - throughput: `cat` of a text file of `--size-mib` MiB (base64 of random bytes) to the
//!   session's `onBytes` callback, timed in the page from the command's Enter to an end marker
//!   printed after it;
//! - key-press echo: `--presses` single characters typed at the shell prompt, each timed in the
//!   page from `write` to its echo arriving (median and 90th percentile printed).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::apps::sshd::{self, Sshd};
use hometun_tests::browser::apps_page::wait;
use hometun_tests::browser::{self, webdriver::Chromedriver};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};
use serde_json::json;

/// Options of `ssh`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Size of the file `cat` prints, MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    /// Key presses timed for the echo latency.
    #[arg(long, default_value_t = 100)]
    presses: u32,
}

/// The file the bench prints, in the lab user's home.
const FILE: &str = "/home/hometun-lab/bench.txt";

/// Runs the SSH bench and prints its figures.
pub(crate) fn run(options: &Options) -> anyhow::Result<()> {
    ensure!(options.presses > 0 && options.presses <= 10_000, "--presses must be 1..=10000");
    ensure!(options.size_mib > 0 && options.size_mib <= 1024, "--size-mib must be 1..=1024");
    let size = options.size_mib << 20;
    let dist = browser::page_dist();
    ensure!(dist.join("ssh/hometun_ssh_bg.wasm").exists(), "the page is not built with SSH: run scripts/build-page.sh");
    let lab = Lab::start()?;
    let sshd = Sshd::start(&lab, Node::Host10, addr::HOST10)?;
    make_file(size)?;
    let relay = Relay::start(&lab, RelayOptions { www: Some(dist), ..RelayOptions::default() })?;
    let link = relay.invite("bench-ssh", "1h", None)?.to_link();
    let spki = browser::relay_spki(relay.dir())?;
    let driver = Chromedriver::start(&lab, Node::Wan)?;
    let page = driver.session(&browser::chromium_args(&spki), 1200, 900)?;
    page.goto(&link)?;
    wait(&page, "the page to connect", Duration::from_secs(30), "return document.body.dataset.state === 'connected'")?;

    let opened = page.execute_async(
        "const [options, done] = arguments;
         window.hometun.ssh(options).then((s) => {
           window.__ssh = s; window.__listeners = [];
           s.onBytes((b) => { for (const l of window.__listeners) l(b); });
           done('ok');
         }, (e) => done('error: ' + e.message));",
        &[json!({"host": addr::HOST10.to_string(), "port": sshd::PORT, "user": sshd::USER,
                 "password": sshd::PASSWORD, "trustNewHostKey": true, "cols": 120, "rows": 40})],
    )?;
    ensure!(opened == "ok", "login: {opened}");
    // Let the prompt arrive and settle before timing anything.
    std::thread::sleep(Duration::from_secs(1));

    page.execute(THROUGHPUT, &[json!(FILE)])?;
    let allowed = Duration::from_secs(30 + 2 * options.size_mib);
    let through = wait(&page, "the cat to finish", allowed, "return window.__cat || null").with_context(|| {
        let seen = page.execute("return [window.__catBytes, window.__catTail]", &[]).unwrap_or_default();
        format!("bytes and tail seen so far: {seen}")
    })?;
    let bytes = through["bytes"].as_f64().context("bytes")?;
    let ms = through["ms"].as_f64().context("ms")?;
    ensure!(bytes >= size as f64, "only {bytes} bytes arrived of a {size}-byte file");

    page.execute(ECHO, &[json!(options.presses)])?;
    let echo = wait(&page, "the key presses", Duration::from_secs(300), "return window.__echo || null")?;
    let mut times: Vec<f64> = echo.as_array().context("echo times")?.iter().filter_map(|v| v.as_f64()).collect();
    times.sort_by(f64::total_cmp);
    ensure!(times.len() == options.presses as usize, "{} of {} key presses timed", times.len(), options.presses);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];

    println!("SSH in the page (Chromium on the remote device, OpenSSH on a LAN host, through the tunnel)");
    println!("| | |");
    println!("|---|---|");
    println!(
        "| cat of {} MiB to onBytes | {ms:.0} ms, {:.1} MB/s ({bytes:.0} bytes with the terminal's CR LF) |",
        options.size_mib,
        size as f64 / 1e3 / ms
    );
    println!("| key-press echo, {} presses | median {:.2} ms, p90 {:.2} ms |", options.presses, pick(0.5), pick(0.9));
    drop(sshd);
    Ok(())
}

/// A text file of exactly `size` bytes (base64 lines of random bytes) the lab user can read.
fn make_file(size: u64) -> anyhow::Result<()> {
    let script =
        format!("head -c {} /dev/urandom | base64 | head -c {size} > {FILE} && chmod 644 {FILE}", size * 3 / 4 + 4096);
    let out = hometun_tests::lab::run_bounded(
        {
            let mut cmd = std::process::Command::new("sh");
            cmd.args(["-c", &script]);
            cmd
        },
        Duration::from_secs(120),
    )?;
    ensure!(out.status.success(), "making {FILE}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Starts `cat FILE; echo MARK` and counts what arrives until the marker (kept in a tail of the last KiB
/// so a marker split across chunks is still seen); sets `window.__cat = {bytes, ms}`.
const THROUGHPUT: &str = "
    const file = arguments[0];
    const mark = 'hometun-bench-' + 'done';
    let bytes = 0, tail = '', started = 0;
    const decoder = new TextDecoder();
    window.__listeners = [(b) => {
      bytes += b.length;
      window.__catBytes = bytes;
      tail = (tail + decoder.decode(b.subarray(Math.max(0, b.length - 512)))).slice(-1024);
      window.__catTail = tail;
      if (tail.includes(mark + '\\r\\n') && !window.__cat) {
        window.__cat = { bytes, ms: performance.now() - started };
      }
    }];
    started = performance.now();
    window.__ssh.write(`cat ${file}; echo hometun-bench-''done\\n`);";

/// Types `count` characters one by one, each after the previous one's echo; sets
/// `window.__echo` to the list of times (ms). Clears the line afterwards (Ctrl-U).
const ECHO: &str = "
    const count = arguments[0];
    const times = [];
    let waiting = null;
    window.__listeners = [(b) => { if (waiting) { const w = waiting; waiting = null; w(); } }];
    (async () => {
      for (let i = 0; i < count; i += 1) {
        const echoed = new Promise((resolve) => { waiting = resolve; });
        const t0 = performance.now();
        await window.__ssh.write('x');
        await echoed;
        times.push(performance.now() - t0);
      }
      await window.__ssh.write('\\u0015');
      window.__echo = times;
    })();";
