//! Tunnel addresses: the relay takes the pool's first host address, each client gets a sticky
//! address of its own, and no address is held by two clients at once. A revoked client keeps its
//! address until a new device finds every other address taken; then the address of the client
//! revoked longest ago goes to the new device. Reusing late and in that order leaves the most
//! time for what the LAN still has of the old holder (replies in flight) to expire; its live
//! session, if any, was closed at the revocation, and one left closing is replaced by the new
//! holder's (`daemon::session_table`). The home server's connection tracking entries of the
//! address are deleted at the revocation and again when it changes hands
//! (`forwarding::conntrack`).

use hometun_shared::ipv4::Network;
use hometun_shared::keys::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The client address pool with its leases (client key → address).
#[derive(Clone, Debug)]
pub struct AddressPool {
    net: Network,
    leases: BTreeMap<PublicKey, Ipv4Addr>,
    /// Revoked clients whose lease may go to a new device, revoked longest ago first.
    retired: Vec<PublicKey>,
}

/// Why no address could be leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every address in the pool is held by a client that is not revoked.
    #[error(
        "the client pool {0} is full: every address belongs to a device that is not revoked; \
         revoke one no longer used (its address goes to the next device) or configure a larger pool"
    )]
    Exhausted(Network),
}

/// The persisted form (`leases.json`).
#[derive(Serialize, Deserialize, Default)]
pub struct LeaseFile {
    /// Pool the leases were made from.
    pub pool: Option<Network>,
    /// Client key (text) → address.
    pub leases: BTreeMap<String, Ipv4Addr>,
    /// Keys (text) of revoked clients whose address may be reused, revoked longest ago first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

impl AddressPool {
    /// An empty pool over `net` (prefix at most /30, checked by the config).
    pub fn new(net: Network) -> Self {
        Self { net, leases: BTreeMap::new(), retired: Vec::new() }
    }

    /// Rebuilds the pool from saved leases, dropping any lease with a damaged key, outside `net`
    /// or duplicating an address already taken. Returns the pool and how many were dropped.
    pub fn restore(net: Network, file: LeaseFile) -> (Self, usize) {
        let mut pool = Self::new(net);
        let mut dropped = 0;
        for (key, addr) in file.leases {
            match PublicKey::from_text(&key) {
                Ok(key) if pool.is_client_address(addr) && pool.owner(addr).is_none() => {
                    pool.leases.insert(key, addr);
                }
                _ => dropped += 1,
            }
        }
        for key in file.retired.iter().filter_map(|k| PublicKey::from_text(k).ok()) {
            pool.retire(&key);
        }
        (pool, dropped)
    }

    /// The persisted form.
    pub fn to_file(&self) -> LeaseFile {
        LeaseFile {
            pool: Some(self.net),
            leases: self.leases.iter().map(|(k, a)| (k.to_text(), *a)).collect(),
            retired: self.retired.iter().map(PublicKey::to_text).collect(),
        }
    }

    /// Lets `key`'s address go to a new device once every other address is taken, after those
    /// of the clients retired before it. Call when `key`'s client is revoked.
    pub fn retire(&mut self, key: &PublicKey) {
        if self.leases.contains_key(key) && !self.retired.contains(key) {
            self.retired.push(*key);
        }
    }

    /// Brings the retired leases in line with the clients' list at load: only the leases of
    /// `revoked` clients may go, and those not in the list yet (revoked before it was kept, or
    /// whose leases were not written) go first, as the oldest, in the order given.
    pub fn retire_only(&mut self, revoked: &[PublicKey]) {
        let mut retired: Vec<PublicKey> =
            revoked.iter().filter(|k| self.leases.contains_key(k) && !self.retired.contains(k)).copied().collect();
        retired.extend(self.retired.iter().filter(|k| revoked.contains(k)));
        self.retired = retired;
    }

    /// The relay's own tunnel address (the pool's first host).
    pub fn relay_address(&self) -> Ipv4Addr {
        self.net.nth(1).unwrap_or(self.net.addr())
    }

    /// The pool network.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn net(&self) -> Network {
        self.net
    }

    /// The address leased to `key`, leasing the lowest free one on first use, or when none is
    /// free the address of the client retired longest ago. A retired key leased again (its
    /// device enrols anew) keeps its address, which is no longer up for reuse.
    pub fn lease(&mut self, key: &PublicKey) -> Result<Ipv4Addr, PoolError> {
        if let Some(addr) = self.leases.get(key).copied() {
            self.retired.retain(|k| k != key);
            return Ok(addr);
        }
        let address = match self.free() {
            Some(address) => address,
            None => self.reclaim().ok_or(PoolError::Exhausted(self.net))?,
        };
        self.leases.insert(*key, address);
        Ok(address)
    }

    /// Whether a new lease would take a revoked client's address (no address is free).
    pub fn next_lease_reclaims(&self) -> bool {
        self.free().is_none()
    }

    /// Whether [`AddressPool::lease`] would give `key` an address.
    pub fn can_lease(&self, key: &PublicKey) -> bool {
        self.leases.contains_key(key)
            || self.free().is_some()
            || self.retired.iter().any(|k| self.leases.contains_key(k))
    }

    /// The lowest client address no client holds.
    fn free(&self) -> Option<Ipv4Addr> {
        let taken: std::collections::HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        (2..self.net.size().saturating_sub(1))
            .filter_map(|n| self.net.nth(u32::try_from(n).ok()?))
            .find(|a| !taken.contains(a))
    }

    /// Takes the lease of the client retired longest ago, and returns its address.
    fn reclaim(&mut self) -> Option<Ipv4Addr> {
        while !self.retired.is_empty() {
            let key = self.retired.remove(0);
            if let Some(address) = self.leases.remove(&key) {
                return Some(address);
            }
        }
        None
    }

    /// The existing lease of `key`, if any.
    pub fn leased(&self, key: &PublicKey) -> Option<Ipv4Addr> {
        self.leases.get(key).copied()
    }

    /// Gives up `key`'s address.
    pub fn release(&mut self, key: &PublicKey) -> Option<Ipv4Addr> {
        self.retired.retain(|k| k != key);
        self.leases.remove(key)
    }

    /// Which client holds `addr`.
    pub fn owner(&self, addr: Ipv4Addr) -> Option<&PublicKey> {
        self.leases.iter().find(|(_, a)| **a == addr).map(|(k, _)| k)
    }

    fn is_client_address(&self, addr: Ipv4Addr) -> bool {
        self.net.contains(addr)
            && addr != self.net.addr()
            && addr != self.net.broadcast()
            && addr != self.relay_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn pool(cidr: &str) -> AddressPool {
        AddressPool::new(cidr.parse().unwrap())
    }

    #[test]
    fn relay_takes_first_host_and_clients_follow() {
        let mut p = pool("10.8.0.0/24");
        assert_eq!(p.relay_address(), Ipv4Addr::new(10, 8, 0, 1));
        assert_eq!(p.lease(&key(1)).unwrap(), Ipv4Addr::new(10, 8, 0, 2));
        assert_eq!(p.lease(&key(2)).unwrap(), Ipv4Addr::new(10, 8, 0, 3));
        assert_eq!(p.lease(&key(1)).unwrap(), Ipv4Addr::new(10, 8, 0, 2), "sticky");
        assert_eq!(p.owner(Ipv4Addr::new(10, 8, 0, 3)), Some(&key(2)));
    }

    #[test]
    fn never_hands_out_network_relay_or_broadcast_and_reports_full() {
        let mut p = pool("10.8.0.0/29"); // .0 net, .1 relay, .2-.6 clients, .7 broadcast
        let got: Vec<Ipv4Addr> = (0..5).map(|i| p.lease(&key(10 + i)).unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 8, 0, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 8, 0, 6)));
        assert_eq!(p.lease(&key(99)), Err(PoolError::Exhausted(p.net())));
        p.release(&key(11));
        assert_eq!(p.lease(&key(98)).unwrap(), Ipv4Addr::new(10, 8, 0, 3), "freed address reused");
    }

    /// A /29 with its five client addresses leased to keys 1 to 5 (.2 to .6).
    fn full_pool() -> AddressPool {
        let mut p = pool("10.8.0.0/29");
        for n in 1..=5 {
            p.lease(&key(n)).unwrap();
        }
        p
    }

    fn addr(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 8, 0, last)
    }

    #[test]
    fn a_retired_address_goes_only_when_none_is_free_and_the_longest_retired_first() {
        let mut p = full_pool();
        p.release(&key(5));
        p.retire(&key(4));
        p.retire(&key(2));
        p.retire(&key(4)); // revoked again: keeps its place
        assert!(!p.next_lease_reclaims(), "one address is free");
        assert_eq!(p.lease(&key(6)), Ok(addr(6)), "the free address before any retired one");
        assert!(p.next_lease_reclaims(), "none is free: the next lease takes a retired one's");
        assert_eq!(p.lease(&key(7)), Ok(addr(5)), "retired first");
        assert!(p.can_lease(&key(8)), "a retired one's address is left");
        assert_eq!(p.lease(&key(8)), Ok(addr(3)));
        assert!(!p.can_lease(&key(9)) && p.can_lease(&key(8)), "none left but for those who hold one");
        assert_eq!(p.lease(&key(9)), Err(PoolError::Exhausted(p.net())));
        assert_eq!((p.leased(&key(4)), p.leased(&key(2))), (None, None));
    }

    #[test]
    fn a_retired_device_that_enrols_again_keeps_its_address_and_it_is_no_longer_reused() {
        let mut p = full_pool();
        p.retire(&key(3));
        assert_eq!(p.lease(&key(3)), Ok(addr(4)), "sticky");
        assert_eq!(p.lease(&key(6)), Err(PoolError::Exhausted(p.net())), "key 3 holds it again");
        p.retire(&key(1));
        p.release(&key(1));
        p.lease(&key(7)).unwrap();
        assert_eq!(p.lease(&key(8)), Err(PoolError::Exhausted(p.net())), "a released key is not retired");
    }

    #[test]
    fn retired_leases_survive_a_reload_and_the_load_follows_the_client_list() {
        let mut p = full_pool();
        p.retire(&key(4));
        p.retire(&key(2));
        p.retire(&key(5));
        let json = serde_json::to_string(&p.to_file()).unwrap();
        let (mut again, _) = AddressPool::restore(p.net(), serde_json::from_str(&json).unwrap());
        // Key 5 enrolled again (the client list says so); key 1 was revoked before the list was
        // kept, so its address goes first.
        again.retire_only(&[key(1), key(2), key(4)]);
        let reused: Vec<_> = (6..=9).map(|n| again.lease(&key(n)).ok()).collect();
        assert_eq!(reused, [Some(addr(2)), Some(addr(5)), Some(addr(3)), None]);
        assert_eq!(again.leased(&key(5)), Some(addr(6)));
    }

    #[test]
    fn restore_keeps_leases_and_drops_conflicts() {
        let mut file = LeaseFile::default();
        // Text order decides which of two claims to one address wins: key(1) sorts first.
        file.leases.insert(key(1).to_text(), Ipv4Addr::new(10, 8, 0, 9));
        file.leases.insert(key(2).to_text(), Ipv4Addr::new(10, 8, 0, 9)); // duplicate
        file.leases.insert(key(3).to_text(), Ipv4Addr::new(10, 9, 0, 5)); // other pool
        file.leases.insert(key(4).to_text(), Ipv4Addr::new(10, 8, 0, 1)); // relay's
        file.leases.insert("not a key".into(), Ipv4Addr::new(10, 8, 0, 20)); // damaged
        let (mut p, dropped) = AddressPool::restore("10.8.0.0/24".parse().unwrap(), file);
        assert_eq!(dropped, 4);
        assert_eq!(p.lease(&key(1)).unwrap(), Ipv4Addr::new(10, 8, 0, 9));
        assert_eq!(p.lease(&key(2)).unwrap(), Ipv4Addr::new(10, 8, 0, 2));
        let json = serde_json::to_string(&p.to_file()).unwrap();
        let (again, dropped) = AddressPool::restore(p.net(), serde_json::from_str(&json).unwrap());
        assert_eq!(dropped, 0);
        assert_eq!(again.leased(&key(1)), Some(Ipv4Addr::new(10, 8, 0, 9)));
    }
}
