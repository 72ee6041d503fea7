//! The `hometun-relay` command: parses the command line and runs the chosen command from the
//! library (see `lib.rs`).
#![forbid(unsafe_code)]

use clap::Parser;
use hometun_relay::cli::{self, ClientsAction, Command};
use hometun_relay::cmd;
use std::future::Future;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOMETUN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        // `serve` sets up first: its configuration says how many worker threads to start.
        Command::Serve { setup } => {
            // Before the runtime's threads: packet buffers are freed and taken back thousands
            // of times a second, and glibc would hand each one back to the kernel.
            hometun_sys::keep_freed_memory();
            cmd::setup::prepare_to_serve(&setup)
                .and_then(|(lock, config)| run_on(config.threads, cmd::serve::run(&setup, config, lock)))
        }
        Command::Init { setup } => cmd::setup::prepare(&setup).map(|_| {
            eprintln!("Ready. Start the relay with: hometun-relay serve --dir {}", setup.dir.display());
        }),
        // The admin commands are short: one thread.
        Command::Invite { dir, name, ttl, allow, wake, no_qr } => {
            run_on(1, cmd::admin::invite(&dir, &name, ttl, allow.as_deref(), wake, !no_qr))
        }
        Command::Hosts { dir, json } => run_on(1, cmd::admin::hosts(&dir, json)),
        Command::Clients { dir, json, action: None } => run_on(1, cmd::admin::clients(&dir, json)),
        Command::Clients { dir, json, action: Some(ClientsAction::Revoke { name }) } => {
            run_on(1, cmd::admin::revoke(&dir, &name, json))
        }
        Command::Status { dir, json } => run_on(1, cmd::admin::status(&dir, json)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `command` to its end on a runtime with `threads` workers.
fn run_on(threads: usize, command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(command);
    // Tasks still holding the tun device end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
