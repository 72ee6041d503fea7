//! Many devices at once: 200 clients enrol, and with all 200 sessions up each fetches a file
//! from the LAN at the same moment, byte-exact; every one has its own address; after a relay
//! restart every device reconnects and gets the same address back.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hometun_tests::client::{Device, RelayTarget, Tunnel};
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};

const CLIENTS: usize = 200;
const FILE: u64 = 20_000;
const T: Duration = Duration::from_secs(90);

async fn fetch(tunnel: &Tunnel, round: u64) -> anyhow::Result<()> {
    let size = FILE + round;
    let r = tunnel.http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(size), T).await?;
    anyhow::ensure!(r.status == 200 && content::whole_blob(size, &r.body).is_ok(), "bad body");
    Ok(())
}

/// Handshakes in flight at once. The relay's handshake deadline (10 s) counts from TCP accept;
/// 200 TLS + Noise handshakes started in the same millisecond on a loaded 2-core machine can miss
/// it, which says nothing about serving 200 sessions. The sessions themselves all run at once.
const HANDSHAKES_AT_ONCE: usize = 25;

/// Opens a tunnel for every device with `open` (at most [`HANDSHAKES_AT_ONCE`] handshakes in
/// flight), then — with all tunnels up at the same time — makes every client fetch a file at
/// once. Returns each device's tunnel address.
async fn all_at_once<F, Fut>(devices: &[(String, Device)], round: u64, open: F) -> HashMap<String, Ipv4Addr>
where
    F: Fn(String, Device) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Tunnel>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_AT_ONCE));
    let all_up = Arc::new(tokio::sync::Barrier::new(devices.len()));
    let tasks: Vec<_> = devices
        .iter()
        .map(|(name, d)| {
            let (gate, all_up) = (gate.clone(), all_up.clone());
            let opening = open(name.clone(), d.clone());
            let task = tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("semaphore");
                let tunnel = opening.await;
                drop(permit);
                all_up.wait().await;
                let tunnel = tunnel?;
                fetch(&tunnel, round).await?;
                Ok::<_, anyhow::Error>((tunnel.address(), tunnel))
            });
            (name.clone(), task)
        })
        .collect();
    let mut addresses = HashMap::new();
    let mut tunnels = Vec::new();
    let mut failures = Vec::new();
    for (name, task) in tasks {
        match task.await {
            Ok(Ok((address, tunnel))) => {
                addresses.insert(name, address);
                tunnels.push(tunnel);
            }
            Ok(Err(e)) => failures.push(format!("{name}: {e:#}")),
            Err(e) => failures.push(format!("{name}: task {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} clients failed, first: {:#?}",
        failures.len(),
        devices.len(),
        &failures[..failures.len().min(5)]
    );
    for tunnel in &tunnels {
        assert!(tunnel.end().is_none(), "a tunnel ended while others were still working: {:?}", tunnel.end());
    }
    for tunnel in &tunnels {
        tunnel.disconnect().await;
    }
    addresses
}

#[test]
fn two_hundred_clients_at_once_keep_their_addresses_across_a_relay_restart() {
    let lab = Lab::start().expect("lab");
    let mut relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let started = Instant::now();
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("dev{i:03}")).collect();
    let invites: HashMap<String, _> =
        names.iter().map(|n| (n.clone(), relay.invite(n, "1h", None).expect("invite"))).collect();
    eprintln!("{CLIENTS} invites in {:?}", started.elapsed());
    let target: Arc<RelayTarget> = Arc::new(relay.target().unwrap());
    let devices: Vec<(String, Device)> = names.iter().map(|n| (n.clone(), Device::new(&invites[n]))).collect();
    let invites = Arc::new(invites);

    let started = Instant::now();
    let first = lab.run_in(Node::Wan, || {
        let (target, invites) = (target.clone(), invites.clone());
        let devices = &devices;
        async move {
            all_at_once(devices, 0, move |name, device| {
                let (target, invite) = (target.clone(), invites[&name].clone());
                async move { Ok(device.enrol(&target, &invite).await?) }
            })
            .await
        }
    });
    eprintln!("{CLIENTS} clients enrolled and fetched at once in {:?}", started.elapsed());
    let distinct: HashSet<_> = first.values().collect();
    assert_eq!(distinct.len(), CLIENTS, "every client has its own address");

    relay.restart().expect("relay restart");
    let started = Instant::now();
    let second = lab.run_in(Node::Wan, || {
        let target = target.clone();
        let devices = &devices;
        async move {
            all_at_once(devices, 1, move |_, device| {
                let target = target.clone();
                async move { Ok(device.connect(&target).await?) }
            })
            .await
        }
    });
    eprintln!("{CLIENTS} clients reconnected after the restart and fetched in {:?}", started.elapsed());
    assert_eq!(second, first, "every device got its address back");
}
