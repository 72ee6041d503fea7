//! Live sessions, found by tunnel address (for packets from the tun) or by client key (for
//! revocation).

use hometun_shared::session::CloseReason;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// What the rest of the relay holds of one live session.
pub struct SessionHandle {
    /// Unique per session (a reconnect gets a new one).
    pub id: u64,
    /// Client name.
    pub name: String,
    /// Client key, text form.
    pub key: String,
    /// Tunnel address.
    pub address: Ipv4Addr,
    /// Remote socket address.
    pub remote: SocketAddr,
    /// Connected since, Unix seconds.
    pub since: u64,
    /// Packets from the tun device towards this client.
    pub packets: mpsc::Sender<Vec<u8>>,
    /// Asks the session to close with a reason.
    pub kick: mpsc::Sender<CloseReason>,
    /// IP bytes from the client in this session.
    pub bytes_in: AtomicU64,
    /// IP bytes to the client in this session.
    pub bytes_out: AtomicU64,
}

/// The table of live sessions.
#[derive(Default)]
pub struct Sessions {
    by_address: RwLock<HashMap<Ipv4Addr, Arc<SessionHandle>>>,
    next_id: AtomicU64,
}

impl Sessions {
    /// A fresh session id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a session; an older session of the same address is told to close.
    pub fn insert(&self, handle: Arc<SessionHandle>) {
        let old = self.by_address.write().unwrap_or_else(|p| p.into_inner()).insert(handle.address, handle);
        if let Some(old) = old {
            let _ = old.kick.try_send(CloseReason::Replaced);
        }
    }

    /// Removes session `id` (if it is still the one registered for `address`).
    pub fn remove(&self, address: Ipv4Addr, id: u64) {
        let mut map = self.by_address.write().unwrap_or_else(|p| p.into_inner());
        if map.get(&address).is_some_and(|h| h.id == id) {
            map.remove(&address);
        }
    }

    /// The session owning `address`.
    pub fn by_address(&self, address: Ipv4Addr) -> Option<Arc<SessionHandle>> {
        self.by_address.read().unwrap_or_else(|p| p.into_inner()).get(&address).cloned()
    }

    /// The session of client `key`.
    pub fn by_key(&self, key: &str) -> Option<Arc<SessionHandle>> {
        self.by_address.read().unwrap_or_else(|p| p.into_inner()).values().find(|h| h.key == key).cloned()
    }

    /// All live sessions.
    pub fn all(&self) -> Vec<Arc<SessionHandle>> {
        self.by_address.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_address.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(sessions: &Sessions, key: &str, last: u8) -> (Arc<SessionHandle>, mpsc::Receiver<CloseReason>) {
        let (packets, _) = mpsc::channel(1);
        let (kick, kicked) = mpsc::channel(1);
        let h = Arc::new(SessionHandle {
            id: sessions.next_id(),
            name: key.into(),
            key: key.into(),
            address: Ipv4Addr::new(10, 8, 0, last),
            remote: "127.0.0.1:1".parse().unwrap(),
            since: 0,
            packets,
            kick,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        (h, kicked)
    }

    #[test]
    fn a_reconnect_replaces_and_kicks_the_old_session() {
        let sessions = Sessions::default();
        let (old, mut old_kicked) = handle(&sessions, "k", 2);
        sessions.insert(old.clone());
        let (new, _) = handle(&sessions, "k", 2);
        sessions.insert(new.clone());
        assert_eq!(old_kicked.try_recv().ok(), Some(CloseReason::Replaced));
        sessions.remove(old.address, old.id); // the old session ending must not remove the new one
        assert_eq!(sessions.by_address(new.address).map(|h| h.id), Some(new.id));
        assert_eq!(sessions.by_key("k").map(|h| h.id), Some(new.id));
        sessions.remove(new.address, new.id);
        assert_eq!(sessions.len(), 0);
    }
}
