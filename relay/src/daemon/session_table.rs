//! Live sessions, indexed by client key (one session per device: a reconnect replaces the older
//! one; revocation finds it) with a second index by tunnel address for packets from the tun.

use hometun_shared::keys::PublicKey;
use hometun_shared::session::CloseReason;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::mpsc;

/// Bytes of packets waiting in one session's downlink queue at most. The queue's packet bound
/// alone would let a slow client hold 1,024 super-packets of 64 KiB (64 MiB) from the tun.
pub const MAX_QUEUED_BYTES: usize = 2 << 20;

/// What the rest of the relay holds of one live session.
pub struct LiveSession {
    /// Unique per session (a reconnect gets a new one).
    pub id: u64,
    /// Client name.
    pub name: String,
    /// Client key.
    pub key: PublicKey,
    /// Tunnel address.
    pub address: Ipv4Addr,
    /// Remote socket address.
    pub remote: SocketAddr,
    /// Connected since, Unix seconds.
    pub since: u64,
    /// Packets from the tun device towards this client (the downlink queue).
    pub packets: mpsc::Sender<Vec<u8>>,
    /// Bytes in that queue now (at most [`MAX_QUEUED_BYTES`]).
    pub queued_bytes: AtomicUsize,
    /// Asks the session to close with a reason.
    pub kick: mpsc::Sender<CloseReason>,
    /// IP bytes from the client in this session.
    pub bytes_in: AtomicU64,
    /// IP bytes to the client in this session.
    pub bytes_out: AtomicU64,
}

impl LiveSession {
    /// Queues a copy of `packet` for the client; `false` (nothing queued) when the queue is
    /// full in packets or in bytes, or the session is gone.
    pub fn queue_packet(&self, packet: &[u8]) -> bool {
        self.queue_with(packet.len(), || packet.to_vec())
    }

    /// [`LiveSession::queue_packet`] for a packet the caller owns already.
    pub fn queue_owned(&self, packet: Vec<u8>) -> bool {
        self.queue_with(packet.len(), || packet)
    }

    /// Queues what `packet` makes, of `len` bytes, when it fits (made only then).
    fn queue_with(&self, len: usize, packet: impl FnOnce() -> Vec<u8>) -> bool {
        if self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES
            || self.packets.try_send(packet()).is_err()
        {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The session took `packets` off its queue.
    pub fn dequeued(&self, packets: &[Vec<u8>]) {
        self.queued_bytes.fetch_sub(packets.iter().map(Vec::len).sum(), Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Indexes {
    by_key: HashMap<PublicKey, Arc<LiveSession>>,
    by_address: HashMap<Ipv4Addr, Arc<LiveSession>>,
}

/// The table of live sessions.
#[derive(Default)]
pub struct SessionTable {
    indexes: RwLock<Indexes>,
    next_id: AtomicU64,
}

impl SessionTable {
    /// A fresh session id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a session; an older session of the same key (or address) is told to close.
    pub fn insert(&self, session: Arc<LiveSession>) {
        let mut indexes = self.write();
        let old_by_key = indexes.by_key.insert(session.key, session.clone());
        let old_by_address = indexes.by_address.insert(session.address, session.clone());
        for old in old_by_key.iter().chain(old_by_address.iter()) {
            if old.id != session.id {
                let _ = old.kick.try_send(CloseReason::Replaced);
            }
        }
        // An older session of this key at another address keeps no entry of its own.
        if let Some(old) = old_by_key.filter(|old| old.address != session.address) {
            if indexes.by_address.get(&old.address).is_some_and(|s| s.id == old.id) {
                indexes.by_address.remove(&old.address);
            }
        }
    }

    /// Removes session `id` of `key` (if it is still the one registered).
    pub fn remove(&self, key: &PublicKey, id: u64) {
        let mut indexes = self.write();
        let Some(session) = indexes.by_key.get(key).filter(|s| s.id == id).cloned() else {
            return;
        };
        indexes.by_key.remove(key);
        if indexes.by_address.get(&session.address).is_some_and(|s| s.id == id) {
            indexes.by_address.remove(&session.address);
        }
    }

    /// The session owning tunnel address `address`.
    pub fn by_address(&self, address: Ipv4Addr) -> Option<Arc<LiveSession>> {
        self.read().by_address.get(&address).cloned()
    }

    /// The session of client `key`.
    pub fn by_key(&self, key: &PublicKey) -> Option<Arc<LiveSession>> {
        self.read().by_key.get(key).cloned()
    }

    /// All live sessions.
    pub fn all(&self) -> Vec<Arc<LiveSession>> {
        self.read().by_key.values().cloned().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.read().by_key.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, Indexes> {
        self.indexes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Indexes> {
        self.indexes.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(table: &SessionTable, key: u8, last: u8) -> (Arc<LiveSession>, mpsc::Receiver<CloseReason>) {
        let (packets, _) = mpsc::channel(1);
        let (kick, kicked) = mpsc::channel(1);
        let s = Arc::new(LiveSession {
            id: table.next_id(),
            name: format!("device {key}"),
            key: PublicKey::from_bytes([key; 32]),
            address: Ipv4Addr::new(10, 8, 0, last),
            remote: "127.0.0.1:1".parse().unwrap(),
            since: 0,
            packets,
            kick,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
        });
        (s, kicked)
    }

    #[test]
    fn a_slow_client_holds_at_most_its_byte_budget_of_super_packets() {
        let (packets, mut queue) = mpsc::channel(1024);
        let live = LiveSession {
            packets,
            queued_bytes: AtomicUsize::new(0),
            ..Arc::into_inner(session(&SessionTable::default(), 1, 2).0).unwrap()
        };
        let super_packet = vec![0u8; 64 << 10];
        let queued = (0..40).take_while(|_| live.queue_packet(&super_packet)).count();
        assert_eq!(queued, MAX_QUEUED_BYTES / super_packet.len(), "2 MiB of 64 KiB packets, not 1,024 of them");
        assert!(!live.queue_packet(&[0u8; 100]), "the budget counts bytes, not packets");
        // Taking packets off the queue frees their bytes.
        let mut taken = Vec::new();
        assert_eq!(queue.try_recv().map(|p| taken.push(p)), Ok(()));
        live.dequeued(&taken);
        assert!(live.queue_packet(&super_packet));
    }

    #[test]
    fn a_reconnect_replaces_and_kicks_the_old_session() {
        let table = SessionTable::default();
        let (old, mut old_kicked) = session(&table, 1, 2);
        table.insert(old.clone());
        let (new, _) = session(&table, 1, 2);
        table.insert(new.clone());
        assert_eq!(old_kicked.try_recv().ok(), Some(CloseReason::Replaced));
        table.remove(&old.key, old.id); // the old session ending must not remove the new one
        assert_eq!(table.by_address(new.address).map(|s| s.id), Some(new.id));
        assert_eq!(table.by_key(&new.key).map(|s| s.id), Some(new.id));
        table.remove(&new.key, new.id);
        assert!(table.is_empty());
        assert!(table.by_address(new.address).is_none());
    }

    #[test]
    fn a_reconnect_at_another_address_leaves_no_stale_route() {
        let table = SessionTable::default();
        let (old, mut old_kicked) = session(&table, 1, 2);
        table.insert(old.clone());
        let (new, _) = session(&table, 1, 3);
        table.insert(new.clone());
        assert_eq!(old_kicked.try_recv().ok(), Some(CloseReason::Replaced));
        assert!(table.by_address(old.address).is_none(), "packets for the old address go nowhere");
        assert_eq!(table.by_address(new.address).map(|s| s.id), Some(new.id));
        assert_eq!(table.len(), 1);
    }
}
