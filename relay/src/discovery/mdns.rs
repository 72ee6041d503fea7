//! mDNS/DNS-SD browsing on the LAN interface only (mdns-sd): every resolved instance of the
//! common service types becomes an [`Announcement`]; goodbyes and expiries remove it. A type
//! whose subscription the browser ended is browsed again ([`subscriptions`]).

pub mod subscriptions;

use super::inventory::Announcement;
use super::Discovery;
use hometun_shared::time::Duration;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};
use std::sync::Arc;
use subscriptions::Subscriptions;

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

/// How often the events are read. mdns-sd holds at most 1000 per type and ends the
/// subscription when they do not fit; reading them takes microseconds.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Starts browsing on `interface` only (IPv4). Events are read on a thread of their own
/// until discovery stops (see [`Discovery::stop`]); a type whose subscription the browser
/// ended meanwhile is browsed again.
pub fn start(interface: &str, discovery: Arc<Discovery>) -> Result<ServiceDaemon, mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    daemon.disable_interface(IfKind::All)?;
    daemon.enable_interface(IfKind::Name(interface.to_owned()))?;
    daemon.disable_interface(IfKind::IPv6)?;
    let browser = daemon.clone();
    let mut browse = move |domain: &str| browser.browse(domain);
    let mut subscriptions = Subscriptions::start(discovery.clock.now(), SERVICE_TYPES, &mut browse)?;
    std::thread::Builder::new()
        .name("mdns-events".into())
        .spawn(move || loop {
            subscriptions.drain(&mut |event| handle(&discovery, event));
            // Checked between reading and restarting: stopping shuts the browser down, which
            // ends every subscription.
            if discovery.stopped() {
                return;
            }
            subscriptions.restart(discovery.clock.now(), &mut browse);
            std::thread::sleep(DRAIN_EVERY);
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
