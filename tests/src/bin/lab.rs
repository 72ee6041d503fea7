//! `hometun-lab`: brings up the namespace lab with a running relay, runs one command on the
//! lab's internet side (the `wan` namespace) and tears everything down when it ends.
//!
//! The command gets the relay through the environment:
//! - `HOMETUN_RELAY_URL`   the relay's public URL (`https://203.0.113.1`, the router's port forward)
//! - `HOMETUN_RELAY_CERT`  the relay's certificate (PEM) to pin
//! - `HOMETUN_RELAY_SPKI`  base64 SHA-256 of its public key (Chromium's
//!   `--ignore-certificate-errors-spki-list`)
//! - `HOMETUN_INVITE`, `HOMETUN_INVITE_2`, ...  fresh invite links (`--invites N`)
//! - `HOMETUN_LAB_WAN`     the wan namespace name; `HOMETUN_LAB_DIR` the lab's scratch directory
//! - `HOMETUN_RELAY_BIN`, `HOMETUN_RELAY_DIR`  to run more relay commands
//!   (`ip netns exec $HOMETUN_LAB_HOME $HOMETUN_RELAY_BIN clients revoke NAME --dir $HOMETUN_RELAY_DIR`)
//!
//! Example: `hometun-lab --www www/dist -- wasm-pack test --headless --chrome`.
//! Without a command it prints the environment and waits for Ctrl-C.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use clap::Parser;
use hometun_tests::lab::{Lab, Node};
use hometun_tests::relay::{self, Mode, Relay, RelayOptions};

#[derive(Parser)]
#[command(name = "hometun-lab", about = "Run a command on the internet side of a hometun namespace lab")]
struct Args {
    /// Relay mode.
    #[arg(long, value_parser = ["masquerade", "routed"], default_value = "masquerade")]
    mode: String,
    /// The page's files for the relay to serve.
    #[arg(long)]
    www: Option<PathBuf>,
    /// Invites to create (names device1, device2, ...).
    #[arg(long, default_value_t = 1)]
    invites: usize,
    /// Allow list for the invites (default: the whole LAN).
    #[arg(long)]
    allow: Option<String>,
    /// The command to run in the wan namespace.
    #[arg(last = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mode = if args.mode == "routed" { Mode::Routed } else { Mode::Masquerade };
    let lab = Lab::start()?;
    if mode == Mode::Routed {
        lab.add_return_route()?;
    }
    let www = args.www.map(|p| p.canonicalize()).transpose().context("--www")?;
    let relay = Relay::start(&lab, RelayOptions { mode, www, ..RelayOptions::default() })?;
    let mut env: Vec<(String, String)> = vec![
        ("HOMETUN_RELAY_URL".into(), relay.public_url()),
        ("HOMETUN_RELAY_CERT".into(), relay.dir().join("tls-cert.pem").display().to_string()),
        ("HOMETUN_RELAY_SPKI".into(), relay.spki_sha256().unwrap_or_default().to_owned()),
        ("HOMETUN_RELAY_BIN".into(), relay::relay_binary()?.display().to_string()),
        ("HOMETUN_RELAY_DIR".into(), relay.dir().display().to_string()),
        ("HOMETUN_LAB_WAN".into(), lab.netns(Node::Wan)),
        ("HOMETUN_LAB_HOME".into(), lab.netns(Node::Home)),
        ("HOMETUN_LAB_DIR".into(), lab.dir().display().to_string()),
    ];
    for i in 1..=args.invites {
        let invite = relay.invite(&format!("device{i}"), "24h", args.allow.as_deref())?;
        let key = if i == 1 { "HOMETUN_INVITE".to_owned() } else { format!("HOMETUN_INVITE_{i}") };
        env.push((key, invite.to_link()));
    }

    let Some((program, rest)) = args.command.split_first() else {
        for (k, v) in &env {
            println!("{k}={v}");
        }
        println!("# lab up; Ctrl-C tears it down");
        let (tx, rx) = std::sync::mpsc::channel();
        ctrlc_channel(tx)?;
        let _ = rx.recv();
        return Ok(());
    };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.netns(Node::Wan), program]).args(rest).envs(env);
    let status = cmd.status().with_context(|| format!("running {program}"))?;
    drop(relay);
    drop(lab);
    std::process::exit(status.code().unwrap_or(1));
}

/// Sends on `tx` at SIGINT/SIGTERM (through a tiny tokio runtime, already a dependency).
fn ctrlc_channel(tx: std::sync::mpsc::Sender<()>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        let _ = tx.send(());
    });
    Ok(())
}
