//! The kernel's IPv4 neighbour table (ARP cache) of the LAN interface, from `/proc/net/arp`:
//! the addresses and MAC addresses of LAN hosts the relay has exchanged packets with.

use super::inventory::Mac;
use std::net::Ipv4Addr;

/// `ATF_COM`: the entry is complete (the MAC is known).
const COMPLETE: u32 = 0x2;

/// The complete entries of `interface` (every interface when `None`) in a `/proc/net/arp` text.
/// Lines that do not parse are skipped.
pub fn parse_proc_arp(text: &str, interface: Option<&str>) -> Vec<(Ipv4Addr, Mac)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [ip, _hw_type, flags, mac, _mask, device] = fields[..] else { return None };
            if interface.is_some_and(|want| want != device) {
                return None;
            }
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            if flags & COMPLETE == 0 {
                return None;
            }
            Some((ip.parse().ok()?, mac.parse().ok()?))
        })
        .collect()
}

/// Reads the neighbour table now.
pub fn read(interface: Option<&str>) -> std::io::Result<Vec<(Ipv4Addr, Mac)>> {
    Ok(parse_proc_arp(&std::fs::read_to_string("/proc/net/arp")?, interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_entries_of_the_lan_interface_are_read_and_the_rest_skipped() {
        let text = "\
IP address       HW type     Flags       HW address            Mask     Device
192.168.0.10     0x1         0x2         02:00:00:00:00:10     *        eth0
192.168.0.20     0x1         0x0         00:00:00:00:00:00     *        eth0
192.168.0.30     0x1         0x6         02:00:00:00:00:30     *        eth0
10.0.0.1         0x1         0x2         02:00:00:00:00:01     *        wan0
garbage line
192.168.0.40     0x1         0x2         not-a-mac             *        eth0
";
        let found = parse_proc_arp(text, Some("eth0"));
        assert_eq!(
            found,
            [
                (Ipv4Addr::new(192, 168, 0, 10), Mac([2, 0, 0, 0, 0, 0x10])),
                (Ipv4Addr::new(192, 168, 0, 30), Mac([2, 0, 0, 0, 0, 0x30])),
            ]
        );
        assert_eq!(parse_proc_arp(text, None).len(), 3);
    }
}
