//! `hometun-testclient`: the native test client on the command line, for benchmarks and manual
//! checks inside the lab (run it with `ip netns exec <wan namespace>`).
//!
//! It enrols with `--invite` (and saves the device to `--device`) or connects with a saved
//! device, then runs one action and prints one result line per measurement.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hometun_shared::invite::Invite;
use hometun_tests::client::{Device, RelayTarget};
use hometun_tests::content;

#[derive(Parser)]
#[command(name = "hometun-testclient", about = "Native hometun client for tests and benchmarks")]
struct Args {
    /// Relay address (host:port).
    #[arg(long)]
    relay: SocketAddr,
    /// The relay's certificate (PEM), pinned.
    #[arg(long)]
    cert: PathBuf,
    /// Enrol with this invite link first.
    #[arg(long)]
    invite: Option<String>,
    /// Device file: written after enrolling, read to connect.
    #[arg(long)]
    device: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Only connect, print the pushed config, disconnect.
    Connect,
    /// HTTP GET /blob/SIZE from HOST:PORT and verify every byte.
    Get {
        /// LAN host and port.
        host: SocketAddrV4,
        /// Bytes to fetch.
        #[arg(long, default_value_t = 8 << 20)]
        size: u64,
        /// Times to repeat.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// ICMP echo through the tunnel.
    Ping {
        /// Host to ping.
        host: Ipv4Addr,
        /// Number of echoes.
        #[arg(long, default_value_t = 10)]
        count: u16,
    },
    /// Round trips of one byte over one TCP connection to an echo server.
    Echo {
        /// Echo server host and port.
        host: SocketAddrV4,
        /// Number of round trips.
        #[arg(long, default_value_t = 100)]
        count: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = RelayTarget::from_cert_file(args.relay, &args.cert)?;
    let timeout = Duration::from_secs(120);
    let (device, tunnel) = match &args.invite {
        Some(link) => {
            let invite = Invite::parse(link).map_err(|e| anyhow::anyhow!("invite: {e}"))?;
            let device = Device::new(&invite);
            let tunnel = device.enrol(&target, &invite).await?;
            device.save(&args.device)?;
            (device, tunnel)
        }
        None => {
            let device = Device::load(&args.device)?;
            let tunnel = device.connect(&target).await?;
            (device, tunnel)
        }
    };
    let _ = device;
    match args.action {
        Action::Connect => println!("connected address={} config={:?}", tunnel.address(), tunnel.config()),
        Action::Get { host, size, count } => {
            for _ in 0..count {
                let start = Instant::now();
                let response = tunnel.http_get(host, &content::blob_path(size), timeout).await?;
                let secs = start.elapsed().as_secs_f64();
                anyhow::ensure!(response.status == 200, "status {}", response.status);
                content::whole_blob(size, &response.body).map_err(anyhow::Error::msg)?;
                println!("get bytes={size} secs={secs:.3} mbit_per_s={:.1}", size as f64 * 8.0 / secs / 1e6);
            }
        }
        Action::Ping { host, count } => {
            for seq in 0..count {
                let reply = tunnel.ping(host, seq, Duration::from_secs(2)).await?;
                println!("ping seq={seq} rtt_ms={:.3}", reply.rtt.as_secs_f64() * 1e3);
            }
        }
        Action::Echo { host, count } => {
            let mut conn = tunnel.tcp_connect(host, Duration::from_secs(10)).await?;
            for i in 0..count {
                let start = Instant::now();
                conn.write_all(&[i as u8], timeout).await?;
                conn.read_exact(1, timeout).await?;
                println!("echo seq={i} rtt_ms={:.3}", start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    tunnel.disconnect().await;
    Ok(())
}
