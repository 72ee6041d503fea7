//! What one device sees of the inventory: only hosts its ACL lets it reach, and of those only
//! the services on ports it may use, and a label only from such a service (an instance name
//! such as "Backup target" says what the service is). The relay sends nothing else, so a
//! device cannot learn of hosts it may not reach (privacy, not only enforcement: the filter
//! drops packets anyway).

use super::inventory::KnownHost;
use hometun_shared::control::{AllowProtocol, AllowRule, Host, HostList, Service};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The host list for a device with allow list `allow` (`may_wake`: its `wake` flag), in address
/// order. A list holds at most 128 hosts in at most 60,000 bytes; on a LAN with more, the hosts a
/// user looks for stay in it: those with services the device may use, then those with names, then those
/// online (a host that makes up source addresses fills the neighbour table with nameless ones).
pub fn for_device(hosts: &[KnownHost], allow: &[AllowRule], may_wake: bool) -> HostList {
    let hosts: Vec<Host> = hosts
        .iter()
        .filter(|host| may_reach(allow, host.address))
        .map(|host| Host {
            address: host.address,
            names: host.names.clone(),
            label: host.labels.iter().find(|(s, _)| may_use(allow, host.address, s)).map(|(_, l)| l.clone()),
            services: host.services.iter().filter(|s| may_use(allow, host.address, s)).cloned().collect(),
            online: host.online,
            wakeable: may_wake && host.mac.is_some(),
        })
        .collect();
    let hosts = HostList::best_that_fit(hosts, |h| (h.services.is_empty(), h.names.is_empty(), !h.online));
    HostList { hosts, may_wake }
}

/// Whether some rule of `allow` reaches `address` (on some port).
pub fn may_reach(allow: &[AllowRule], address: Ipv4Addr) -> bool {
    allow.iter().any(|rule| rule.network.contains(address))
}

fn may_use(allow: &[AllowRule], address: Ipv4Addr, service: &Service) -> bool {
    let target = SocketAddrV4::new(address, service.port);
    if service.kind.ends_with("._udp") {
        return allow.iter().any(|rule| {
            rule.network.contains(address)
                && rule.protocol != Some(AllowProtocol::Tcp)
                && rule.ports.is_none_or(|(first, last)| (first..=last).contains(&service.port))
        });
    }
    allow.iter().any(|rule| rule.allows_tcp(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::inventory::Mac;
    use crate::forwarding::acl::Acl;
    use hometun_shared::control::{ControlMessage, MAX_HOSTS};

    fn host(last: u8, services: &[(&str, u16)], mac: bool) -> KnownHost {
        KnownHost {
            address: Ipv4Addr::new(192, 168, 0, last),
            mac: mac.then_some(Mac([2, 0, 0, 0, 0, last])),
            names: vec![format!("h{last}.local")],
            labels: Vec::new(),
            services: services.iter().map(|(k, p)| Service { kind: (*k).into(), port: *p }).collect(),
            online: true,
        }
    }

    fn lan() -> Vec<KnownHost> {
        vec![
            host(10, &[("_http._tcp", 5000), ("_ssh._tcp", 22), ("_ipp._udp", 631)], true),
            host(20, &[("_http._tcp", 80)], false),
            host(30, &[], true),
        ]
    }

    /// One host as a device sees it: last octet, service ports, wakeable.
    type Seen = (u8, Vec<u16>, bool);

    /// What a device with ACL `acl` sees.
    fn seen(acl: &str, may_wake: bool) -> Vec<Seen> {
        let allow = Acl::parse_list(acl).unwrap().allow_rules();
        for_device(&lan(), &allow, may_wake)
            .hosts
            .iter()
            .map(|h| (h.address.octets()[3], h.services.iter().map(|s| s.port).collect(), h.wakeable))
            .collect()
    }

    #[test]
    fn a_device_sees_only_what_its_acl_lets_it_reach() {
        #[rustfmt::skip]
        let cases: Vec<(&str, bool, Vec<Seen>)> = vec![
            // 1. the whole LAN: everything, wakeable where the MAC is known
            ("192.168.0.0/24", true, vec![(10, vec![5000, 22, 631], true), (20, vec![80], false), (30, vec![], true)]),
            // 2. one host: only that host
            ("192.168.0.20/32", true, vec![(20, vec![80], false)]),
            // 3. one port of one host: the host, that service only
            ("192.168.0.10:5000/tcp", false, vec![(10, vec![5000], false)]),
            // 4. a TCP range lists no UDP service
            ("192.168.0.10:1-1000/tcp", false, vec![(10, vec![22], false)]),
            // 5. another network: nothing
            ("10.1.0.0/16", true, vec![]),
            // 6. without the wake flag nothing is wakeable
            ("192.168.0.0/30,192.168.0.30/32", false, vec![(30, vec![], false)]),
        ];
        for (i, (acl, may_wake, expected)) in cases.into_iter().enumerate() {
            assert_eq!(seen(acl, may_wake), expected, "case {}: {acl}", i + 1);
        }
    }

    #[test]
    fn on_a_crowded_lan_the_list_keeps_the_hosts_with_services_and_names_in_address_order() {
        // 200 nameless neighbours first in address order, then a NAS with a web page and a
        // printer with a name only, at the end of the LAN.
        let mut lan: Vec<KnownHost> = (1..=200).map(|last| host(last, &[], true)).collect();
        for bare in &mut lan {
            bare.names.clear();
        }
        lan.push(host(250, &[("_http._tcp", 5000)], true));
        let mut printer = host(251, &[], true);
        printer.online = false;
        lan.push(printer);
        let allow = Acl::parse_list("192.168.0.0/24").unwrap().allow_rules();
        let list = for_device(&lan, &allow, false);
        let seen: Vec<u8> = list.hosts.iter().map(|h| h.address.octets()[3]).collect();
        assert_eq!(seen.len(), MAX_HOSTS);
        assert_eq!(&seen[MAX_HOSTS - 2..], [250, 251], "the NAS and the printer stay, at the end");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in address order: {seen:?}");
    }

    #[test]
    fn hosts_with_long_names_leave_room_for_the_one_with_services_at_the_lans_end() {
        // 120 hosts with four long names each: more than one list's 60,000 bytes.
        let long =
            |last: u8, i: usize| format!("{}.{}.{}.n{i}-{last}.local", "a".repeat(63), "b".repeat(63), "c".repeat(50));
        let mut lan: Vec<KnownHost> = (1..=120)
            .map(|last| KnownHost { names: (0..4).map(|i| long(last, i)).collect(), ..host(last, &[], true) })
            .collect();
        lan.push(host(250, &[("_http._tcp", 5000)], true));
        let allow = Acl::parse_list("192.168.0.0/24").unwrap().allow_rules();
        let list = for_device(&lan, &allow, false);
        let seen: Vec<u8> = list.hosts.iter().map(|h| h.address.octets()[3]).collect();
        assert!(seen.len() < 121, "they do not all fit: {}", seen.len());
        assert_eq!(seen.last(), Some(&250), "the NAS stays: {seen:?}");
        let decoded = ControlMessage::decode(&ControlMessage::Hosts(list.clone()).encode()).unwrap();
        assert_eq!(decoded, ControlMessage::Hosts(list), "everything chosen goes out");
    }

    #[test]
    fn a_device_sees_a_label_only_from_a_service_it_may_see() {
        let mut nas = host(10, &[("_ssh._tcp", 22), ("_http._tcp", 5000)], true);
        nas.labels = vec![
            (Service { kind: "_ssh._tcp".into(), port: 22 }, "Backup target (admin only)".into()),
            (Service { kind: "_http._tcp".into(), port: 5000 }, "Family NAS".into()),
        ];
        #[rustfmt::skip]
        let cases = [
            // 1. the web page only: the web page's label
            ("192.168.0.10:5000/tcp", Some("Family NAS")),
            // 2. SSH only: SSH's label
            ("192.168.0.10:22/tcp", Some("Backup target (admin only)")),
            // 3. the host, but none of its services: no label
            ("192.168.0.10:80/tcp", None),
            // 4. everything: the first
            ("192.168.0.10/32", Some("Backup target (admin only)")),
        ];
        for (i, (acl, expected)) in cases.into_iter().enumerate() {
            let allow = Acl::parse_list(acl).unwrap().allow_rules();
            let list = for_device(std::slice::from_ref(&nas), &allow, false);
            assert_eq!(list.hosts[0].label.as_deref(), expected, "case {}: {acl}", i + 1);
        }
    }
}
