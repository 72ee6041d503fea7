//! The Debian package for home servers: cargo-deb packs the relay the tests already built (no
//! second release build: `--no-build` from a scratch target directory), dpkg installs it into a
//! scratch root (no maintainer scripts run), and the installed binary alone — no page directory
//! anywhere — serves the page over TLS through the lab's port forward. The systemd unit and the
//! docs are in place, and the package depends on nftables and iproute2.
//!
//! Needs root, `cargo deb` (scripts/install.sh installs it) and the page built before the relay
//! (`bash scripts/build-page.sh`, the first phase of scripts/test.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::browser::page_dist;
use hometun_tests::client::https_get;
use hometun_tests::lab::{run_bounded, Lab, Node};
use hometun_tests::relay::{relay_binary, Relay};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_installed_package_serves_the_page_with_its_unit_in_place() {
    let dist = page_dist();
    assert!(dist.join("index.html").exists(), "the page is not built: run `bash scripts/build-page.sh` first");
    let lab = Lab::start().expect("lab");
    let scratch = lab.dir().join("deb");
    let deb = build_package(&relay_binary().expect("relay binary"), &scratch).expect("cargo deb");

    let depends = run(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg("Depends")).expect("dpkg-deb -f");
    assert!(depends.contains("nftables") && depends.contains("iproute2"), "Depends: {depends}");

    let root = scratch.join("root");
    install(&deb, &root).expect("dpkg -i into the scratch root");
    let status = run(Command::new("dpkg").arg(format!("--root={}", root.display())).args(["-s", "hometun-relay"]))
        .expect("dpkg -s");
    assert!(status.contains("Status: install ok installed"), "{status}");
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/hometun-relay.service")).expect("the systemd unit");
    assert!(unit.contains("ExecStart=hometun-relay serve --dir /etc/hometun"), "{unit}");
    for doc in ["README.md", "copyright"] {
        assert!(root.join("usr/share/doc/hometun-relay").join(doc).exists(), "doc {doc} missing");
    }

    let installed = root.join("usr/bin/hometun-relay");
    let relay = Relay::first_serve(&lab, Some(&installed)).expect("the installed relay");
    let target = relay.target().expect("target");
    let (page, wasm) = lab.run_in(Node::Wan, || async {
        let page = https_get(&target, "/", T).await.expect("GET /");
        let wasm = https_get(&target, "/hometun-wasm_bg.wasm", T).await.expect("GET the wasm");
        (page, wasm)
    });
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.header("content-type"), Some("text/html"));
    assert!(page.header("content-security-policy").is_some_and(|p| p.contains("'wasm-unsafe-eval'")));
    assert_eq!(page.body, std::fs::read(dist.join("index.html")).unwrap(), "GET / is not the built page");
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.body, std::fs::read(dist.join("hometun-wasm_bg.wasm")).unwrap(), "the wasm differs from the build");
    assert!(relay.last_log().contains("built into the relay"), "{}", relay.last_log());
}

/// `cargo deb --no-build` over `bin`, placed where cargo-deb looks for a release build in a
/// scratch target directory; returns the package.
fn build_package(bin: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let release = scratch.join("target/release");
    std::fs::create_dir_all(&release)?;
    std::fs::copy(bin, release.join("hometun-relay"))?;
    let deb = scratch.join("hometun-relay.deb");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["deb", "-p", "hometun-relay", "--no-build", "--strip", "--fast", "--output"])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", scratch.join("target"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let out = run_bounded(cmd, Duration::from_secs(300))?;
    ensure!(
        out.status.success(),
        "cargo deb failed (is cargo-deb installed? `bash scripts/install.sh`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(deb.exists(), "cargo deb made no {}", deb.display());
    Ok(deb)
}

/// `dpkg -i` into an empty root with its own package database. The package's dependencies
/// live on the host, not in the scratch root: `--force-depends` records them unmet.
fn install(deb: &Path, root: &Path) -> anyhow::Result<()> {
    let admin = root.join("var/lib/dpkg");
    for sub in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(sub))?;
    }
    std::fs::write(admin.join("status"), "")?;
    std::fs::write(admin.join("available"), "")?;
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-depends", "--force-script-chrootless", "--log=/dev/null", "-i"])
        .arg(deb))
    .map(|_| ())
}

/// Runs a short command; its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
