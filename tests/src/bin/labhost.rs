//! `hometun-labhost`: the services of one LAN host in the test lab (see `hometun_tests::labhost`).
//! Each service runs only when its address is given. Prints `ready` once every socket is bound.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use hometun_tests::labhost;
use tokio::net::{TcpListener, UdpSocket};

#[derive(Parser)]
#[command(name = "hometun-labhost", about = "LAN host services for the hometun test lab")]
struct Args {
    /// Host name shown on the HTTP index page.
    #[arg(long, default_value = "lan-host")]
    name: String,
    /// HTTP listen address.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// TCP echo listen address.
    #[arg(long)]
    echo: Option<SocketAddr>,
    /// Banner (stand-in for ssh) listen address.
    #[arg(long)]
    banner: Option<SocketAddr>,
    /// DNS (UDP) listen address.
    #[arg(long)]
    dns: Option<SocketAddr>,
    /// DNS A record, `name=address`; repeatable.
    #[arg(long = "record", value_parser = parse_record)]
    records: Vec<(String, Ipv4Addr)>,
}

fn parse_record(s: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected name=address")?;
    Ok((name.to_owned(), addr.parse().map_err(|e| format!("{e}"))?))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = args.http {
        let l = TcpListener::bind(addr).await.with_context(|| format!("bind http {addr}"))?;
        tasks.spawn(labhost::serve_http(l, args.name.clone()));
    }
    if let Some(addr) = args.echo {
        let l = TcpListener::bind(addr).await.with_context(|| format!("bind echo {addr}"))?;
        tasks.spawn(labhost::serve_echo(l));
    }
    if let Some(addr) = args.banner {
        let l = TcpListener::bind(addr).await.with_context(|| format!("bind banner {addr}"))?;
        tasks.spawn(labhost::serve_banner(l));
    }
    if let Some(addr) = args.dns {
        let s = UdpSocket::bind(addr).await.with_context(|| format!("bind dns {addr}"))?;
        tasks.spawn(labhost::serve_dns(s, args.records.clone()));
    }
    anyhow::ensure!(!tasks.is_empty(), "no service given");
    println!("ready");
    while tasks.join_next().await.is_some() {}
    Ok(())
}
