//! `serve`: set up, bring the tunnel up, serve until SIGTERM/SIGINT, then take the tunnel down
//! again (sessions closed with a reason, nftables table and tun removed, state kept).

use crate::cli::SetupArgs;
use crate::config::Mode;
use crate::daemon::{limits::IpLimits, Relay};
use crate::forwarding::{device, nat};
use crate::state::lock::DirLock;
use crate::state::store::{relay_key, Store};
use crate::web::listener::TlsListener;
use crate::{admin, web};
use anyhow::{anyhow, Context};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Runs the relay set up by [`super::setup::prepare_to_serve`] (which made `config` and took
/// the state directory's `lock`, held here until the relay stops).
pub async fn run(args: &SetupArgs, config: crate::config::Config, lock: DirLock) -> anyhow::Result<()> {
    // Before the relay changes anything in the system: a SIGTERM during start-up (a service
    // stopped at once) must end in the same clean shutdown, not kill the process with the
    // firewall table, forwarding and tun left behind.
    let stop = StopSignals::listen()?;
    let dir = args.dir.clone();
    let _lock = lock;
    check_host(&config, &dir)?;
    let (secret, _) = relay_key(&dir, false)?;
    let store = Store::load(&dir, config.pool)?;
    let relay_address = store.pool.relay_address();
    let tcp = listen(config.listen)?;
    let control_path = config.control_socket_path(&dir);
    let control_listener = admin::bind(&control_path)?;

    let tls = crate::acme::start(&dir, &config, relay_address)?;
    let tun = device::create(&config.tun_name, relay_address, config.pool, config.mtu, config.tun_offload)?;
    let mut tunnel = TunnelGuard { nat: false, control_path: control_path.clone(), forwarding: None };
    // The table goes in first, so nothing is forwarded before the forward chain filters it.
    let firewall = nat::Firewall {
        pool: config.pool,
        lan: config.lan,
        lan_interface: config.lan_interface.clone(),
        tun: config.tun_name.clone(),
        masquerade: config.mode == Mode::Masquerade,
        lan_was_not_forwarding: !device::forwarding_enabled(config.lan_interface.as_deref()),
        client_to_client: config.client_to_client,
    };
    nat::install_firewall(&firewall)?;
    tunnel.nat = true;
    let watch_host = crate::forwarding::keeper::watches_host(&firewall, device::forwarding_enabled(None));
    tunnel.forwarding =
        Some(device::Forwarding::enable(&[Some(config.tun_name.as_str()), config.lan_interface.as_deref()])?);

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let limits = IpLimits::new(config.limits.clone());
    let relay = Arc::new(Relay::new(config.clone(), secret, store, limits.clone(), Some(tun), shutdown_rx.clone()));
    if let Some(keeper) = tls.keeper() {
        let _ = relay.app_certs.set(keeper.clone());
    }

    tokio::spawn(crate::daemon::datapath::read_tun(relay.clone()));
    let keeper_stopping = Arc::new(std::sync::Mutex::new(false));
    let keeper = tokio::spawn(crate::forwarding::keeper::run(firewall, watch_host, keeper_stopping.clone()));
    tokio::spawn(admin::serve(control_listener, relay.clone()));
    crate::discovery::start(&relay);
    let handshake_timeout = Duration::from_secs(config.limits.handshake_timeout_secs);
    let idle_timeout = Duration::from_secs(config.limits.idle_timeout_secs.max(config.limits.keepalive_secs * 2));
    let upgrade_deadline = Duration::from_secs(config.limits.upgrade_deadline_secs);
    let listener = TlsListener::start(tcp, tls, limits, handshake_timeout, idle_timeout, upgrade_deadline)?;
    let app = web::router(relay.clone(), config.www.clone());
    let server = tokio::spawn(web::server::serve(listener, app, shutdown_rx.clone()));

    tracing::info!(
        listen = %config.listen,
        mode = %config.mode,
        tun = %config.tun_name,
        relay = %relay_address,
        lan = %config.lan,
        "relay running"
    );
    super::banner::print(&relay, &dir);

    stop.wait().await;
    tracing::info!(sessions = relay.sessions.len(), "shutting down");
    let _ = shutdown_tx.send(true);
    // Sessions close themselves with a reason; give them a moment to say so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !relay.sessions.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    relay.write_counters();
    // The keeper would put a table back that the stop removes.
    *keeper_stopping.lock().unwrap_or_else(|p| p.into_inner()) = true;
    keeper.abort();
    let _ = keeper.await;
    drop(tunnel);
    tracing::info!("stopped; state kept in {}", dir.display());
    Ok(())
}

/// Refuses a configuration this host cannot carry before anything is changed: a LAN interface
/// it lacks (a typo, or renamed by an upgrade), or a pool another of its networks uses (another
/// VPN's); each error names relay.toml and the init flag that fixes it.
fn check_host(config: &crate::config::Config, dir: &std::path::Path) -> anyhow::Result<()> {
    let file = dir.join(crate::config::FILE_NAME);
    if let Some(ifname) = config.lan_interface.as_deref().filter(|i| !device::interface_exists(i)) {
        anyhow::bail!(
            "{}: lan_interface = \"{ifname}\", but this host has no network interface of that name (`ip -br link` \
             lists them; an upgrade may have renamed it): set the right one with `sudo hometun-relay init --dir {} \
             --lan-interface NAME` (nothing was changed)",
            file.display(),
            dir.display()
        );
    }
    let addresses = crate::net::detect::addresses().unwrap_or_default();
    if let Some(taken) = addresses.iter().find(|a| a.ifname != config.tun_name && a.net.overlaps(&config.pool)) {
        anyhow::bail!(
            "{}: pool = {} overlaps {} on {} (another VPN's network?), and both would route it: pick a free range \
             with `sudo hometun-relay init --dir {} --pool RANGE` (nothing was changed)",
            file.display(),
            config.pool,
            taken.net,
            taken.ifname,
            dir.display()
        );
    }
    Ok(())
}

/// The TLS port's listener. A port another program holds, or a low port without root, is
/// reported with the way out.
fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    web::listener::bind(addr).map_err(|e| listen_error(addr, &e))
}

/// What failed when the relay could not listen on `addr`, and what to do about it.
pub fn listen_error(addr: SocketAddr, e: &std::io::Error) -> anyhow::Error {
    let port = addr.port();
    let fix = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "; another program listens on port {port} (`sudo ss -ltnp 'sport = :{port}'` shows which): stop it, \
             or give the relay a free port with --listen (e.g. --listen 0.0.0.0:8443) and point the \
             router's forward of external port 443 at that port"
        ),
        std::io::ErrorKind::PermissionDenied => " — run it as root (sudo)".to_owned(),
        _ => String::new(),
    };
    anyhow!("listening on {addr}: {e}{fix}")
}

/// SIGTERM, SIGINT, SIGHUP (the terminal of `sudo hometun-relay serve` closed) and SIGQUIT,
/// caught from the moment [`StopSignals::listen`] returns; one that arrives before
/// [`StopSignals::wait`] is kept for it. Each stops the relay cleanly: without a handler, they
/// would end it with forwarding left on and its table in place.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<Self> {
        let term = signal(SignalKind::terminate()).context("catching SIGTERM")?;
        let int = signal(SignalKind::interrupt()).context("catching SIGINT")?;
        let hup = signal(SignalKind::hangup()).context("catching SIGHUP")?;
        let quit = signal(SignalKind::quit()).context("catching SIGQUIT")?;
        Ok(Self { term, int, hup, quit })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
            _ = self.hup.recv() => {}
            _ = self.quit.recv() => {}
        }
    }
}

/// Removes what the relay added to the system, also on an error path.
struct TunnelGuard {
    nat: bool,
    control_path: std::path::PathBuf,
    /// Puts the previous forwarding settings back when dropped.
    forwarding: Option<device::Forwarding>,
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        // Forwarding goes back to its old setting before the filtering table goes.
        drop(self.forwarding.take());
        if self.nat {
            if let Err(e) = nat::remove() {
                tracing::warn!("removing the nftables table failed: {e:#}");
            }
        }
        let _ = std::fs::remove_file(&self.control_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_port_another_program_holds_is_refused_with_the_listen_flag_named() {
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = other.local_addr().unwrap();

        let refused = listen(addr).expect_err("the port is taken").to_string();

        assert!(refused.starts_with(&format!("listening on {addr}: ")), "{refused}");
        assert!(refused.contains(&format!("another program listens on port {}", addr.port())), "{refused}");
        assert!(refused.contains("--listen"), "{refused}");
        drop(other);
        listen(addr).expect("free again");
    }
}
