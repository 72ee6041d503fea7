//! Tunnel addresses: the relay takes the pool's first host address, each client gets a sticky
//! address of its own, and no address is ever handed to two clients.

use crate::net::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The client address pool with its leases (client key text → address).
#[derive(Clone, Debug)]
pub struct AddressPool {
    net: Ipv4Net,
    leases: BTreeMap<String, Ipv4Addr>,
}

/// Why no address could be leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every address in the pool is leased.
    #[error("the client pool {0} is full; revoke unused clients or configure a larger pool")]
    Exhausted(Ipv4Net),
}

/// The persisted form (`leases.json`).
#[derive(Serialize, Deserialize, Default)]
pub struct LeaseFile {
    /// Pool the leases were made from.
    pub pool: Option<Ipv4Net>,
    /// Client key → address.
    pub leases: BTreeMap<String, Ipv4Addr>,
}

impl AddressPool {
    /// An empty pool over `net` (prefix at most /30, checked by the config).
    pub fn new(net: Ipv4Net) -> Self {
        AddressPool { net, leases: BTreeMap::new() }
    }

    /// Rebuilds the pool from saved leases, dropping any lease outside `net` or duplicating an
    /// address already taken. Returns the pool and how many leases were dropped.
    pub fn restore(net: Ipv4Net, file: LeaseFile) -> (Self, usize) {
        let mut pool = AddressPool::new(net);
        let mut dropped = 0;
        for (key, addr) in file.leases {
            if pool.is_client_address(addr) && pool.owner(addr).is_none() {
                pool.leases.insert(key, addr);
            } else {
                dropped += 1;
            }
        }
        (pool, dropped)
    }

    /// The persisted form.
    pub fn to_file(&self) -> LeaseFile {
        LeaseFile { pool: Some(self.net), leases: self.leases.clone() }
    }

    /// The relay's own tunnel address (the pool's first host).
    pub fn relay_address(&self) -> Ipv4Addr {
        self.net.nth(1).unwrap_or(self.net.network())
    }

    /// The pool network.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    /// The address leased to `key`, leasing the lowest free one on first use.
    pub fn lease(&mut self, key: &str) -> Result<Ipv4Addr, PoolError> {
        if let Some(addr) = self.leases.get(key) {
            return Ok(*addr);
        }
        let taken: std::collections::HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        let free = (2..self.net.size().saturating_sub(1))
            .filter_map(|n| self.net.nth(u32::try_from(n).ok()?))
            .find(|a| !taken.contains(a))
            .ok_or(PoolError::Exhausted(self.net))?;
        self.leases.insert(key.to_owned(), free);
        Ok(free)
    }

    /// The existing lease of `key`, if any.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn leased(&self, key: &str) -> Option<Ipv4Addr> {
        self.leases.get(key).copied()
    }

    /// Gives up `key`'s address.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn release(&mut self, key: &str) -> Option<Ipv4Addr> {
        self.leases.remove(key)
    }

    /// Which client holds `addr`.
    pub fn owner(&self, addr: Ipv4Addr) -> Option<&str> {
        self.leases.iter().find(|(_, a)| **a == addr).map(|(k, _)| k.as_str())
    }

    fn is_client_address(&self, addr: Ipv4Addr) -> bool {
        self.net.contains(addr)
            && addr != self.net.network()
            && addr != self.net.broadcast()
            && addr != self.relay_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> AddressPool {
        AddressPool::new(cidr.parse().unwrap())
    }

    #[test]
    fn relay_takes_first_host_and_clients_follow() {
        let mut p = pool("10.8.0.0/24");
        assert_eq!(p.relay_address(), Ipv4Addr::new(10, 8, 0, 1));
        assert_eq!(p.lease("alice").unwrap(), Ipv4Addr::new(10, 8, 0, 2));
        assert_eq!(p.lease("bob").unwrap(), Ipv4Addr::new(10, 8, 0, 3));
        assert_eq!(p.lease("alice").unwrap(), Ipv4Addr::new(10, 8, 0, 2), "sticky");
        assert_eq!(p.owner(Ipv4Addr::new(10, 8, 0, 3)), Some("bob"));
    }

    #[test]
    fn never_hands_out_network_relay_or_broadcast_and_reports_full() {
        let mut p = pool("10.8.0.0/29"); // .0 net, .1 relay, .2-.6 clients, .7 broadcast
        let got: Vec<Ipv4Addr> = (0..5).map(|i| p.lease(&format!("c{i}")).unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 8, 0, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 8, 0, 6)));
        assert_eq!(p.lease("one-too-many"), Err(PoolError::Exhausted(p.net())));
        p.release("c1");
        assert_eq!(p.lease("late").unwrap(), Ipv4Addr::new(10, 8, 0, 3), "freed address reused");
    }

    #[test]
    fn restore_keeps_leases_and_drops_conflicts() {
        let mut file = LeaseFile::default();
        file.leases.insert("a".into(), Ipv4Addr::new(10, 8, 0, 9));
        file.leases.insert("b".into(), Ipv4Addr::new(10, 8, 0, 9)); // duplicate
        file.leases.insert("c".into(), Ipv4Addr::new(10, 9, 0, 5)); // other pool
        file.leases.insert("d".into(), Ipv4Addr::new(10, 8, 0, 1)); // relay's
        let (mut p, dropped) = AddressPool::restore("10.8.0.0/24".parse().unwrap(), file);
        assert_eq!(dropped, 3);
        assert_eq!(p.lease("a").unwrap(), Ipv4Addr::new(10, 8, 0, 9));
        assert_eq!(p.lease("b").unwrap(), Ipv4Addr::new(10, 8, 0, 2));
        let json = serde_json::to_string(&p.to_file()).unwrap();
        let (again, dropped) = AddressPool::restore(p.net(), serde_json::from_str(&json).unwrap());
        assert_eq!(dropped, 0);
        assert_eq!(again.leased("a"), Some(Ipv4Addr::new(10, 8, 0, 9)));
    }
}
