//! `hometun-bench`: hometun beside plain forwarding, OpenVPN and boringtun, in one namespace lab.
//!
//! `cargo run --release -p hometun-bench -- [--rounds 3] [--size-mib 256] [--cases ...] [--smoke]`
//! builds what it needs, installs missing tools, builds the lab (see `hometun_tests::lab`), runs
//! every case once per round (interleaved), and writes `bench/results/latest.md` and
//! `latest.png`. The hidden subcommands are the pieces it starts inside the lab; `web-apps`
//! measures home web apps through the page (see [`web_apps`]).

mod binaries;
mod cases;
mod chart;
mod hometun_probe;
mod install;
mod lan;
mod netns;
mod pattern;
mod probe;
mod proc;
mod report;
mod run;
mod scale;
mod ssh;
mod stats;
mod sysinfo;
mod web_apps;
mod workload;
mod wss;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hometun-bench",
    about = "hometun beside OpenVPN and boringtun in one namespace lab",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    run: run::Options,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The LAN host's HTTP and echo servers (run inside the lab).
    #[command(hide = true)]
    LanServe {
        /// HTTP listen address.
        #[arg(long)]
        http: SocketAddr,
        /// Echo listen address.
        #[arg(long)]
        echo: SocketAddr,
    },
    /// The workload over the kernel's TCP (run on the lab's remote device).
    #[command(hide = true)]
    Probe {
        #[command(subcommand)]
        work: Work,
    },
    /// The workload through the native hometun client (run on the lab's remote device).
    #[command(hide = true)]
    HometunProbe {
        #[command(flatten)]
        connect: hometun_probe::Connect,
        #[command(subcommand)]
        work: Work,
    },
    /// Many native hometun clients at once (run on the lab's remote device).
    #[command(hide = true)]
    Swarm(scale::SwarmArgs),
    /// The transport cases' WebSocket-over-TLS server (run on the lab's home server).
    #[command(hide = true)]
    WssServe(wss::ServeArgs),
    /// The workload over WebSocket/TLS alone (run on the lab's remote device).
    #[command(hide = true)]
    WssProbe {
        #[command(flatten)]
        server: wss::ProbeArgs,
        #[command(subcommand)]
        work: Work,
    },
    /// Home web apps through the page beside the same apps loaded directly: page load cold and
    /// warm, 64 MiB through the service worker (needs the page built; prints its figures).
    WebApps(web_apps::Options),
    /// SSH in the page: `cat` of a big file to the data callback, key-press echo latency.
    Ssh(ssh::Options),
}

/// One measurement.
#[derive(Subcommand, Clone, Copy, Debug)]
pub enum Work {
    /// GET SIZE bytes from the LAN host.
    Get {
        /// Bytes.
        #[arg(long)]
        size: u64,
    },
    /// POST SIZE bytes to the LAN host.
    Put {
        /// Bytes.
        #[arg(long)]
        size: u64,
    },
    /// COUNT 1-byte echo round trips.
    Echo {
        /// Round trips.
        #[arg(long)]
        count: u32,
    },
    /// 1-byte echo round trips, each [`workload::LOADED_ECHO_EVERY`] after the last began (at
    /// once when it took longer), while a GET of SIZE
    /// bytes runs on another connection of the same path; reports the round trips that began
    /// and ended during the GET (at most COUNT).
    Loaded {
        /// Bytes of the GET.
        #[arg(long)]
        size: u64,
        /// Round trips at most.
        #[arg(long)]
        count: u32,
    },
}

impl Work {
    /// The subcommand words of this work item.
    pub fn args(&self) -> Vec<String> {
        match *self {
            Self::Get { size } => vec!["get".into(), "--size".into(), size.to_string()],
            Self::Put { size } => vec!["put".into(), "--size".into(), size.to_string()],
            Self::Echo { count } => vec!["echo".into(), "--count".into(), count.to_string()],
            Self::Loaded { size, count } => {
                vec!["loaded".into(), "--size".into(), size.to_string(), "--count".into(), count.to_string()]
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    // As the relay does: the native client, the transport's probe and server move 64 KiB
    // buffers, and glibc would return each freed one to the kernel.
    hometun_sys::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        None => run::run(cli.run),
        Some(Command::LanServe { http, echo }) => lan::serve(http, echo),
        Some(Command::Probe { work }) => {
            let addr_http = workload::http_addr();
            let outcome = match work {
                Work::Get { size } => probe::get(addr_http, size)?,
                Work::Put { size } => probe::put(addr_http, size)?,
                Work::Echo { count } => probe::echo(workload::echo_addr(), count)?,
                Work::Loaded { size, count } => probe::loaded(addr_http, size, count)?,
            };
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
        Some(Command::HometunProbe { connect, work }) => {
            // One thread, as the wss probe and the page have: the tunnel's reader wakes the
            // workload, and its answer leaves in the writer's next turn with the
            // acknowledgement, on the same thread.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let work = runtime.spawn(async move {
                let tunnel = hometun_probe::open(&connect).await?;
                let outcome = match work {
                    Work::Get { size } => hometun_probe::get(&tunnel, size).await,
                    Work::Put { size } => hometun_probe::put(&tunnel, size).await,
                    Work::Echo { count } => hometun_probe::echo(&tunnel, count).await,
                    Work::Loaded { size, count } => hometun_probe::loaded(&tunnel, size, count).await,
                };
                tunnel.disconnect().await;
                println!("{}", serde_json::to_string(&outcome?)?);
                anyhow::Ok(())
            });
            runtime.block_on(work)?
        }
        Some(Command::Swarm(args)) => scale::swarm(args),
        Some(Command::WssServe(args)) => wss::serve(&args),
        Some(Command::WssProbe { server, work }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let outcome = runtime.block_on(async {
                match work {
                    Work::Get { size } => wss::get(&server, size).await,
                    Work::Put { size } => wss::put(&server, size).await,
                    Work::Echo { count } => wss::echo(&server, count).await,
                    Work::Loaded { .. } => anyhow::bail!("the transport alone has no echo under load"),
                }
            })?;
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
        Some(Command::WebApps(options)) => web_apps::run(&options),
        Some(Command::Ssh(options)) => ssh::run(&options),
    }
}
