//! Tunnel addresses: the relay takes the pool's first host address, each client gets a sticky
//! address of its own, and no address is ever handed to two clients.

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
}

/// Why no address could be leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every address in the pool is leased.
    #[error("the client pool {0} is full; revoke unused clients or configure a larger pool")]
    Exhausted(Network),
}

/// The persisted form (`leases.json`).
#[derive(Serialize, Deserialize, Default)]
pub struct LeaseFile {
    /// Pool the leases were made from.
    pub pool: Option<Network>,
    /// Client key (text) → address.
    pub leases: BTreeMap<String, Ipv4Addr>,
}

impl AddressPool {
    /// An empty pool over `net` (prefix at most /30, checked by the config).
    pub fn new(net: Network) -> Self {
        Self { net, leases: BTreeMap::new() }
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
        (pool, dropped)
    }

    /// The persisted form.
    pub fn to_file(&self) -> LeaseFile {
        LeaseFile { pool: Some(self.net), leases: self.leases.iter().map(|(k, a)| (k.to_text(), *a)).collect() }
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

    /// The address leased to `key`, leasing the lowest free one on first use.
    pub fn lease(&mut self, key: &PublicKey) -> Result<Ipv4Addr, PoolError> {
        if let Some(addr) = self.leases.get(key) {
            return Ok(*addr);
        }
        let taken: std::collections::HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        let free = (2..self.net.size().saturating_sub(1))
            .filter_map(|n| self.net.nth(u32::try_from(n).ok()?))
            .find(|a| !taken.contains(a))
            .ok_or(PoolError::Exhausted(self.net))?;
        self.leases.insert(*key, free);
        Ok(free)
    }

    /// The existing lease of `key`, if any.
    pub fn leased(&self, key: &PublicKey) -> Option<Ipv4Addr> {
        self.leases.get(key).copied()
    }

    /// Gives up `key`'s address.
    pub fn release(&mut self, key: &PublicKey) -> Option<Ipv4Addr> {
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
