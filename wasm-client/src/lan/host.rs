//! From a host as typed (`192.168.0.10`, `nas.lan`) to an address the tunnel reaches.

use std::net::Ipv4Addr;
use std::time::Duration;

use hometun_shared::client;
use hometun_shared::control::hosts::is_mdns_name;
use hometun_shared::control::HostList;

use super::with_net;
use crate::driver::{errors, wait, Tunnel};
use crate::error::ClientError;

/// How long a lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(8);

/// The address of an mDNS name (`nas.local`) in the relay's host list, if listed. Any other
/// name gives `None`, even if listed (a reverse name, or whatever a LAN host announced): those
/// are the DNS's to answer, so a host on the LAN cannot take over `nas.home.arpa` or a public
/// name for `fetch`, `ping`, `connectTcp` and app URLs.
pub fn discovered(tunnel: &Tunnel, name: &str) -> Option<Ipv4Addr> {
    let link = tunnel.link().borrow();
    listed(link.hosts.as_ref()?, name)
}

/// The address of the host listed under `name`, whichever kind of name (a reverse name too):
/// for waking a host, which only the list knows while it sleeps. Waking reaches only the hosts
/// the relay lists for this device, and connects nowhere.
pub fn listed_for_waking(tunnel: &Tunnel, name: &str) -> Option<Ipv4Addr> {
    let link = tunnel.link().borrow();
    listed_as(link.hosts.as_ref()?, name)
}

fn listed(list: &HostList, name: &str) -> Option<Ipv4Addr> {
    is_mdns_name(name.trim().trim_end_matches('.')).then(|| listed_as(list, name))?
}

/// The first host listed under `name` (a host on two networks, Wi-Fi and a cable, is listed at
/// each address under one name; the relay moves a name that another address announces).
fn listed_as(list: &HostList, name: &str) -> Option<Ipv4Addr> {
    let name = name.trim().trim_end_matches('.');
    list.hosts.iter().find(|h| h.names.iter().any(|n| n.eq_ignore_ascii_case(name))).map(|h| h.address)
}

/// Looks `name` up: a `.local` name first among the names the relay discovered
/// ([`discovered`]), then every name through the DNS servers the relay pushed.
pub async fn resolve(tunnel: &Tunnel, name: &str) -> Result<Vec<Ipv4Addr>, ClientError> {
    let name = name.trim().trim_end_matches('.').to_owned();
    if let Some(address) = discovered(tunnel, &name) {
        return Ok(vec![address]);
    }
    let query = {
        let mut link = tunnel.link().borrow_mut();
        with_net(&mut link, |net| net.resolve(&name))?.map_err(|e| errors::net_error(e, &name))?
    };
    tunnel.kick();
    let outcome =
        wait::until(tunnel.link(), Some(LOOKUP_TIMEOUT), |link| match with_net(link, |net| net.dns_result(query)) {
            Err(e) => Some(Err(e)),
            Ok(Ok(None)) => None,
            Ok(Ok(Some(addresses))) => Some(Ok(addresses)),
            Ok(Err(e)) => Some(Err(errors::net_error(e, &name))),
        })
        .await;
    match outcome {
        Some(result) => result,
        None => {
            let _ = with_net(&mut tunnel.link().borrow_mut(), |net| net.dns_cancel(query));
            Err(ClientError::Timeout {
                what: format!("looking up {name}"),
                after_ms: LOOKUP_TIMEOUT.as_millis() as u64,
            })
        }
    }
}

/// An address for `host`: an IPv4 literal as is, a name through [`resolve`]. Fails with
/// [`ClientError::HostUnreachable`] when the address is outside every pushed route.
pub async fn address_of(tunnel: &Tunnel, host: &str) -> Result<Ipv4Addr, ClientError> {
    let host = host.trim();
    if host.is_empty() {
        return Err(ClientError::InvalidArgument("empty host".into()));
    }
    let address = match host.parse::<Ipv4Addr>() {
        Ok(address) => address,
        Err(_) => {
            *resolve(tunnel, host).await?.first().ok_or_else(|| ClientError::NameNotFound { name: host.to_owned() })?
        }
    };
    if !is_routed(tunnel, address) {
        return Err(ClientError::HostUnreachable { host: host.to_owned() });
    }
    Ok(address)
}

/// Whether the relay routes `address`: inside a pushed route or the tunnel subnet.
pub fn is_routed(tunnel: &Tunnel, address: Ipv4Addr) -> bool {
    let link = tunnel.link().borrow();
    link.config.as_ref().is_none_or(|config| client::routes_to(config, address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hometun_shared::control::Host;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn only_local_names_are_looked_up_in_the_host_list() {
        let nas =
            Host { names: vec!["nas.local".into(), "nas.home.arpa".into()], ..Host::new([192, 168, 0, 10].into()) };
        let hostile = Host { names: vec!["bank.example.com".into()], ..Host::new([192, 168, 0, 66].into()) };
        let list = HostList { hosts: vec![nas, hostile], may_wake: false };
        assert_eq!(listed(&list, "nas.local"), Some(Ipv4Addr::new(192, 168, 0, 10)));
        assert_eq!(listed(&list, " NAS.Local. "), Some(Ipv4Addr::new(192, 168, 0, 10)));
        for dns in ["nas.home.arpa", "bank.example.com", "bank.example.com."] {
            assert_eq!(listed(&list, dns), None, "{dns} is left to DNS");
        }
        assert_eq!(listed_as(&list, "nas.home.arpa"), Some(Ipv4Addr::new(192, 168, 0, 10)), "waking finds any name");
    }
}
