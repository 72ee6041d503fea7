//! mDNS/DNS-SD browsing on the LAN interface only (mdns-sd): every resolved instance of the
//! common service types becomes an [`Announcement`]; goodbyes and expiries remove it.

use super::inventory::Announcement;
use super::Discovery;
use hometun_shared::time::Duration;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};
use std::sync::Arc;

/// The service types browsed.
pub const SERVICE_TYPES: &[&str] = &[
    "_http._tcp",
    "_https._tcp",
    "_ssh._tcp",
    "_sftp-ssh._tcp",
    "_rfb._tcp",
    "_smb._tcp",
    "_afpovertcp._tcp",
    "_ipp._tcp",
    "_printer._tcp",
    "_device-info._tcp",
    "_workstation._tcp",
    "_home-assistant._tcp",
];

/// How long an announcement counts without news (the browser also reports expiry itself).
const TTL: Duration = Duration::from_secs(2 * 3600);

/// Starts browsing on `interface` only (IPv4). Events are read on a thread of their own
/// until the daemon is shut down (see [`Discovery::stop`]).
pub fn start(interface: &str, discovery: Arc<Discovery>) -> Result<ServiceDaemon, mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    daemon.disable_interface(IfKind::All)?;
    daemon.enable_interface(IfKind::Name(interface.to_owned()))?;
    daemon.disable_interface(IfKind::IPv6)?;
    let mut receivers = Vec::new();
    for kind in SERVICE_TYPES {
        receivers.push(daemon.browse(&format!("{kind}.local."))?);
    }
    std::thread::Builder::new()
        .name("mdns-events".into())
        .spawn(move || loop {
            let mut open = 0;
            for receiver in &receivers {
                if receiver.is_disconnected() {
                    continue;
                }
                open += 1;
                while let Ok(event) = receiver.try_recv() {
                    handle(&discovery, event);
                }
            }
            if open == 0 || discovery.stopped() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        })
        .map_err(|e| mdns_sd::Error::Msg(format!("mDNS thread: {e}")))?;
    Ok(daemon)
}

fn handle(discovery: &Discovery, event: ServiceEvent) {
    match event {
        ServiceEvent::ServiceResolved(service) => {
            let kind = service.ty_domain.trim_end_matches('.').trim_end_matches(".local").to_owned();
            let announcement = Announcement {
                instance: service.fullname.clone(),
                kind,
                host_name: service.host.clone(),
                addresses: service.get_addresses_v4().into_iter().collect(),
                port: service.port,
                ttl: TTL,
            };
            discovery.update(|inventory, now| inventory.observe_announcement(now, &announcement));
        }
        ServiceEvent::ServiceRemoved(_, instance) => {
            discovery.update(|inventory, _| inventory.remove_announcement(&instance));
        }
        _ => {}
    }
}
