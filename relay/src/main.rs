//! The `hometun-relay` command: parses the command line and runs the chosen command from the
//! library (see `lib.rs`).
#![forbid(unsafe_code)]

use clap::Parser;
use hometun_relay::cli::{self, ClientsAction, Command};
use hometun_relay::cmd;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOMETUN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // `serve` sets up first (its configuration says how many worker threads to start); the
    // admin commands are short and run on one thread.
    let (serve, threads) = match &cli.command {
        Command::Serve { setup } => match cmd::setup::prepare(setup) {
            Ok(config) => {
                let threads = config.threads;
                (Some(config), threads)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        },
        _ => (None, 1),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { setup } => match serve {
                Some(config) => cmd::serve::run(&setup, config).await,
                None => Err(anyhow::anyhow!("the relay was not set up")),
            },
            Command::Init { setup } => cmd::setup::prepare(&setup).map(|_| {
                eprintln!("Ready. Start the relay with: hometun-relay serve --dir {}", setup.dir.display());
            }),
            Command::Invite { dir, name, ttl, allow, wake, no_qr } => {
                cmd::admin::invite(&dir, &name, ttl, allow.as_deref(), wake, !no_qr).await
            }
            Command::Hosts { dir, json } => cmd::admin::hosts(&dir, json).await,
            Command::Clients { dir, json, action: None } => cmd::admin::clients(&dir, json).await,
            Command::Clients { dir, action: Some(ClientsAction::Revoke { name }), .. } => {
                cmd::admin::revoke(&dir, &name).await
            }
            Command::Status { dir, json } => cmd::admin::status(&dir, json).await,
        }
    });
    // Tasks still holding the tun device end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
