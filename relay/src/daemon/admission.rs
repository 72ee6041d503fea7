//! Who may connect: the decision on a hello (before anything is allocated), and the
//! registration once the client has proven its keys.
//!
//! Registrations (and the counters of finished sessions) are written in groups
//! ([`crate::state::group_commit`]): what arrives while the state is being written waits and
//! shares the next write, so a burst of enrolments costs a few fsyncs instead of one set per
//! device. Each client hears that it is admitted only once the write that holds its
//! registration is durable; a failed write refuses every admission in its batch and puts the
//! state back as it was.

use super::session_table::LiveSession;
use super::Relay;
use crate::forwarding::filter::ClientFilter;
use crate::state::actions;
use crate::state::invites::InviteRefusal;
use crate::state::registry::Client;
use crate::state::store::{Dirty, Store};
use crate::state::unix_now;
use hometun_shared::control::{ClientConfig, Features, MAX_LIST_LEN};
use hometun_shared::handshake::{Hello, Intent};
use hometun_shared::invite::{InviteId, InviteSecret};
use hometun_shared::keys::PublicKey;
use hometun_shared::session::{CloseReason, Refusal};
use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Session counters alone are written at most this often ([`Relay::write_batch`]).
pub const COUNTERS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What a hello asks for, once found acceptable.
#[derive(Clone, Debug)]
pub enum Admission {
    /// A registered client connects.
    Connect,
    /// A new device enrols with invite `id`.
    Enrol {
        /// The invite.
        id: InviteId,
    },
}

/// A client admitted to the tunnel.
pub struct Admitted {
    /// Name.
    pub name: String,
    /// Key.
    pub key: PublicKey,
    /// Tunnel address.
    pub address: Ipv4Addr,
    /// What it may send.
    pub filter: ClientFilter,
    /// Whether it enrolled just now.
    pub enrolled: bool,
    /// Whether it may wake LAN hosts.
    pub wake: bool,
    /// Whether its address belonged to a revoked device until now, whose flows the home server's
    /// kernel may still track ([`Relay::forget_flows`] before the session starts).
    pub reclaimed: bool,
}

/// Why a client was turned away after its keys were proven.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The invite was used (or expired) meanwhile.
    #[error("{0}")]
    Invite(InviteRefusal),
    /// The invite's rules reach as many networks as a device can be sent routes, and
    /// `client_to_client`, turned on since the invite was made, adds the pool's. The invite
    /// stays usable should the setting be turned off again.
    #[error(
        "the invite's allow rules reach {0} networks, but with client_to_client a device can be sent routes \
         to at most {max} (the pool takes one); give the device a new invite with fewer networks",
        max = MAX_LIST_LEN - 1
    )]
    TooManyRoutes(usize),
    /// The client was revoked meanwhile.
    #[error("revoked")]
    Revoked,
    /// No address is free.
    #[error("{0}")]
    Pool(#[from] crate::state::pool::PoolError),
    /// State could not be saved.
    #[error("saving state: {0:#}")]
    Save(anyhow::Error),
}

/// What an admission's owner hears back: the admitted client and its registered live session.
pub type Joined = Result<(Admitted, Arc<LiveSession>), AdmitError>;

/// Builds a client's live session from its admission.
pub type MakeLive = Box<dyn FnOnce(&Admitted) -> LiveSession + Send>;

/// A change to the state waiting for the group write that holds it (see the module header).
pub enum StateJob {
    /// A client's admission; answered once its registration is durable.
    Admit {
        /// What the hello asked for.
        admission: Admission,
        /// The client's confirmed key.
        key: PublicKey,
        /// Builds its live session.
        live: MakeLive,
        /// The answer.
        reply: oneshot::Sender<Joined>,
    },
    /// A finished session's counters; `done` fires once they are written.
    SessionEnd {
        /// The client's key.
        key: PublicKey,
        /// IP bytes from the client in that session.
        bytes_in: u64,
        /// IP bytes to the client in that session.
        bytes_out: u64,
        /// Fires when written (or when the write failed: the counters stay in memory).
        done: oneshot::Sender<()>,
    },
}

impl StateJob {
    /// A job for `key`'s `admission`; the answer arrives on the returned receiver.
    pub fn admit(admission: Admission, key: PublicKey, live: MakeLive) -> (Self, oneshot::Receiver<Joined>) {
        let (reply, answer) = oneshot::channel();
        (Self::Admit { admission, key, live, reply }, answer)
    }
}

/// Adds a finished session's counters to client `key`; whether it is a known client.
fn count_session(store: &mut Store, key: &PublicKey, bytes_in: u64, bytes_out: u64) -> bool {
    let Some(c) = store.registry.by_key_mut(key) else { return false };
    c.bytes_in = c.bytes_in.saturating_add(bytes_in);
    c.bytes_out = c.bytes_out.saturating_add(bytes_out);
    c.last_seen = Some(unix_now());
    true
}

fn refusal_of(r: InviteRefusal) -> Refusal {
    match r {
        InviteRefusal::Unknown => Refusal::InviteUnknown,
        InviteRefusal::Expired => Refusal::InviteExpired,
        InviteRefusal::Used => Refusal::InviteUsed,
    }
}

/// What a hello gets: what it asks for (and, for an enrolment, the invite's secret, which the
/// handshake needs), or the refusal.
pub type Decision = Result<(Admission, Option<InviteSecret>), Refusal>;

/// A hello waiting for the store, with where its decision goes.
pub struct WaitingHello {
    hello: Hello,
    reply: oneshot::Sender<Decision>,
}

/// The decision on `hello` from what `store` holds.
fn decide_with(store: &Store, hello: &Hello) -> Decision {
    match hello.intent {
        Intent::Connect => match store.registry.by_key(&hello.client_key) {
            Some(client) if !client.revoked => Ok((Admission::Connect, None)),
            _ => Err(Refusal::UnknownDevice),
        },
        Intent::Enrol(id) => {
            let invite = store.invites.usable(&id, unix_now()).map_err(refusal_of)?;
            Ok((Admission::Enrol { id }, Some(invite.secret.clone())))
        }
    }
}

impl Relay {
    /// Decides on a hello. Refusals are sent unauthenticated, before any allocation.
    ///
    /// It reads the store. Most hellos find it free and are answered at once. A state write
    /// holds it through its fsyncs, though, and a hello that arrives then must not hold up the
    /// async worker that every other tunnel runs on: it waits on a blocking thread. All the
    /// hellos waiting at a time share one thread and are decided together once the store is
    /// free, as state changes share a write. (A thread each made a burst start dozens of
    /// threads, which kept their stacks and heaps; one at a time made each wait out a write.)
    pub async fn decide(self: &Arc<Self>, hello: Hello) -> Decision {
        if let Some(store) = self.store_if_free() {
            return decide_with(&store, &hello);
        }
        let (reply, answer) = oneshot::channel();
        if self.waiting_hellos.push(WaitingHello { hello, reply }) {
            let relay = self.clone();
            tokio::task::spawn_blocking(move || {
                relay.waiting_hellos.commit(|batch| {
                    let store = relay.store();
                    for WaitingHello { hello, reply } in batch {
                        let _ = reply.send(decide_with(&store, &hello));
                    }
                });
            });
        }
        answer.await.unwrap_or(Err(Refusal::Busy))
    }

    /// Admits the client (registers it for an enrolment and leases its address, once its keys
    /// are confirmed) and registers its live session, built by `live` from the admission, in
    /// the session table. Returns once the state that admits it is durable (or the admission
    /// failed).
    ///
    /// The admission joins the next group write; see [`Relay::write_state`].
    pub async fn admit_and_join(self: &Arc<Self>, admission: Admission, key: PublicKey, live: MakeLive) -> Joined {
        let (job, answer) = StateJob::admit(admission, key, live);
        self.write_state(job);
        answer.await.unwrap_or_else(|_| Err(AdmitError::Save(anyhow::anyhow!("the admission was dropped"))))
    }

    /// Records a finished session's counters (and when the client was last seen); returns once
    /// they are written, or held for the minute's write (see [`Relay::write_batch`]).
    pub async fn record_session_end(self: &Arc<Self>, key: PublicKey, bytes_in: u64, bytes_out: u64) {
        let (done, written) = oneshot::channel();
        self.write_state(StateJob::SessionEnd { key, bytes_in, bytes_out, done });
        let _ = written.await;
    }

    /// Queues `job` for the next group write; when none is under way, starts one (off the
    /// async workers: writes fsync) that runs [`Relay::write_batch`] until the queue is empty.
    fn write_state(self: &Arc<Self>, job: StateJob) {
        if self.state_writes.push(job) {
            let relay = self.clone();
            tokio::task::spawn_blocking(move || relay.state_writes.commit(|batch| relay.write_batch(batch)));
        }
    }

    /// Applies a batch of jobs with one write of the state files they change, then answers
    /// each admission: its own refusal, the write's failure (then no admission of the batch
    /// changed anything), or its admission with its live session registered. Session
    /// counters stay in memory even when the write fails (the next write takes them).
    ///
    /// All of it happens under the store lock, which [`Relay::revoke`] also holds while it
    /// looks for the session to end: a revoke comes either before (and the admission is
    /// refused) or after (and finds the session), never in between.
    pub fn write_batch(self: &Arc<Self>, jobs: Vec<StateJob>) {
        let mut store = self.store();
        let before = store.snapshot();
        let mut dirty = Dirty::default();
        let outcomes: Vec<_> = jobs
            .iter()
            .map(|job| match job {
                StateJob::Admit { admission, key, .. } => Some(self.admit(&mut store, admission, key, &mut dirty)),
                StateJob::SessionEnd { key, bytes_in, bytes_out, .. } => {
                    dirty.clients |= count_session(&mut store, key, *bytes_in, *bytes_out);
                    None
                }
            })
            .collect();
        let writing = std::time::Instant::now();
        // Session ends alone (bytes, last seen) are written at most every COUNTERS_EVERY: a
        // device reconnecting in a loop made a write and an fsync per session, held the lock
        // every other device's hello waits for, and wore a Raspberry Pi's SD card. What waits
        // goes with the next write of the devices' file, or when the minute is up
        // (`Relay::write_counters`); as the relay stops, nothing waits.
        let only_counters = jobs.iter().all(|job| matches!(job, StateJob::SessionEnd { .. }));
        let wait = store.counters_written.map(|at| COUNTERS_EVERY.saturating_sub(writing.duration_since(at)));
        if let (true, Some(wait), false) = (only_counters, wait.filter(|w| !w.is_zero()), *self.shutdown.borrow()) {
            store.unsaved_counters |= dirty.clients;
            if !std::mem::replace(&mut store.counters_flush_due, true) {
                let relay = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tokio::task::spawn_blocking(move || relay.write_counters()).await;
                });
            }
            return;
        }
        if only_counters {
            store.counters_written = Some(writing);
        }
        let saved = store.save(dirty);
        tracing::debug!(changes = jobs.len(), ms = writing.elapsed().as_millis() as u64, "state written");
        if let Err(e) = &saved {
            tracing::warn!(changes = jobs.len(), "could not save the state, admissions refused: {e:#}");
            store.restore(before);
            // Files written before the failure go back to the state as it was.
            if let Err(e) = store.save(dirty) {
                tracing::warn!("could not put the state files back: {e:#}");
            }
            for job in &jobs {
                if let StateJob::SessionEnd { key, bytes_in, bytes_out, .. } = job {
                    store.unsaved_counters |= count_session(&mut store, key, *bytes_in, *bytes_out);
                }
            }
        }
        let mut answers = Vec::with_capacity(jobs.len());
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let (StateJob::Admit { live, reply, .. }, Some(outcome)) = (job, outcome) else { continue };
            let joined = match (&saved, outcome) {
                (_, Err(refused)) => Err(refused),
                (Err(e), Ok(_)) => Err(AdmitError::Save(anyhow::anyhow!("{e:#}"))),
                (Ok(()), Ok(admitted)) => {
                    let live = Arc::new(live(&admitted));
                    self.sessions.insert(live.clone());
                    Ok((admitted, live))
                }
            };
            answers.push((reply, joined));
        }
        drop(store);
        // Session ends' `done` senders were dropped above: their owners are released.
        for (reply, joined) in answers {
            if let Err(Ok((_, live))) = reply.send(joined) {
                // The connection went away while it waited: its session must not linger.
                self.sessions.remove(&live.key, live.id);
            }
        }
    }

    /// Writes the session counters still waiting (see [`Relay::write_batch`]): when their minute
    /// is up, and as the relay stops.
    pub fn write_counters(&self) {
        let mut store = self.store();
        store.counters_flush_due = false;
        if store.unsaved_counters {
            store.counters_written = Some(std::time::Instant::now());
            if let Err(e) = store.save(Dirty { clients: true, ..Dirty::default() }) {
                tracing::warn!("could not save the devices' byte counts: {e:#}");
            }
        }
    }

    /// Revokes client `name` and asks its live session, if any, to close. Returns whether a
    /// session was told to close. When the revocation cannot be saved nothing changes: the
    /// client stays admitted and its session open. The store lock is held throughout (see
    /// [`Relay::admit_and_join`]).
    pub fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        let mut store = self.store();
        let key = actions::revoke(&mut store, name)?;
        let session = self.sessions.by_key(&key);
        let address = store.pool.leased(&key);
        if let Some(live) = &session {
            let _ = live.kick.try_send(CloseReason::Revoked);
        }
        drop(store);
        // A live session's flows are forgotten once it has ended (`datapath`), not before.
        if let (None, Some(address)) = (&session, address) {
            self.forget_flows(address, &key);
        }
        Ok(session.is_some())
    }

    /// Deletes the home server's connection tracking entries of tunnel `address` (its device was
    /// revoked, or the address goes to another device): replies on its old flows must not
    /// reach a new holder. Only while `holder` still holds the address: a revoked device's late
    /// forget must not delete the flows of the device that took its address meanwhile (that
    /// device forgot the address's flows before its session started, one forget at a time).
    /// Logs what it did; a relay without a tun device (tests without privileges) has none to
    /// forget. Blocking.
    pub fn forget_flows(&self, address: Ipv4Addr, holder: &PublicKey) {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        if self.tun.is_none() {
            return;
        }
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        if self.store().pool.owner(address) != Some(holder) {
            return;
        }
        match crate::forwarding::conntrack::forget(address) {
            Ok(f) => tracing::info!(
                %address,
                deleted = f.deleted,
                expired = f.gone,
                unreadable = f.unreadable,
                "forgot the home server's tracked connections of a tunnel address that changes hands"
            ),
            Err(e) => tracing::warn!(%address, "could not forget the tracked connections of a tunnel address: {e}"),
        }
    }

    /// Registers (for an enrolment) and leases the address, once keys are confirmed, in memory;
    /// `dirty` collects the files to write.
    fn admit(
        &self,
        store: &mut Store,
        admission: &Admission,
        key: &PublicKey,
        dirty: &mut Dirty,
    ) -> Result<Admitted, AdmitError> {
        let now = unix_now();
        let enrolled = matches!(admission, Admission::Enrol { .. });
        let had_lease = store.pool.leased(key).is_some();
        let reclaimed = !had_lease && store.pool.next_lease_reclaims();
        if let Admission::Enrol { id } = admission {
            let invite = store.invites.usable(id, now).map_err(AdmitError::Invite)?;
            // Enrolled devices are checked when the setting is read (`actions::check_devices_fit`);
            // an invite cannot be withdrawn, so one made before is refused here instead of
            // keeping the relay from starting until it expires.
            if actions::routes(&invite.allow, self.config.client_to_client) > MAX_LIST_LEN {
                return Err(AdmitError::TooManyRoutes(invite.allow.networks().len()));
            }
            let wanted = invite.name.clone();
            let name = match store.registry.by_key(key) {
                Some(existing) => existing.name.clone(),
                None => store.registry.free_name(&wanted),
            };
            // The address first: a full pool must not burn the invite. It is leased once the
            // invite is redeemed, so that a refused invite gives back no address it took from a
            // revoked device (whose flows are forgotten only when a device takes it).
            if !store.pool.can_lease(key) {
                return Err(crate::state::pool::PoolError::Exhausted(store.pool.net()).into());
            }
            let invite = store.invites.redeem(id, &name, now).map_err(AdmitError::Invite)?;
            let address = store.pool.lease(key)?;
            dirty.invites = true;
            dirty.leases = true;
            match store.registry.by_key_mut(key) {
                Some(existing) => {
                    // A known device with a new invite: the invite's ACL replaces the old one.
                    existing.revoked = false;
                    existing.allow = invite.allow.clone();
                    existing.wake = invite.wake;
                    existing.address = address;
                }
                None => {
                    let client = Client {
                        name,
                        key: *key,
                        fingerprint: key.fingerprint(),
                        address,
                        allow: invite.allow.clone(),
                        wake: invite.wake,
                        revoked: false,
                        enrolled: now,
                        last_seen: Some(now),
                        bytes_in: 0,
                        bytes_out: 0,
                    };
                    store.registry.enrol(client).map_err(|e| AdmitError::Save(e.into()))?;
                }
            }
            dirty.clients = true;
        }
        let client = store.registry.by_key(key).filter(|c| !c.revoked).ok_or(AdmitError::Revoked)?.clone();
        let address = store.pool.lease(key)?;
        if address != client.address {
            dirty.leases = true;
            if let Some(c) = store.registry.by_key_mut(key) {
                c.address = address;
            }
            dirty.clients = true;
        }
        let filter = ClientFilter {
            address,
            acl: client.allow.clone(),
            pool: self.config.pool,
            lan: self.config.lan,
            relay_address: store.pool.relay_address(),
            client_to_client: self.config.client_to_client,
        };
        Ok(Admitted { name: client.name, key: *key, address, filter, enrolled, wake: client.wake, reclaimed })
    }

    /// The configuration pushed to an admitted client.
    pub fn client_config(&self, admitted: &Admitted) -> ClientConfig {
        let mut routes = admitted.filter.acl.networks();
        if self.config.client_to_client {
            routes.push(self.config.pool);
        }
        ClientConfig {
            address: self.config.pool.interface_address(admitted.address),
            relay_address: admitted.filter.relay_address,
            routes,
            dns: self.config.dns.clone(),
            mtu: self.config.mtu,
            max_packet: self.segments.client_packet(),
            keepalive: std::time::Duration::from_secs(self.config.limits.keepalive_secs),
            allow: admitted.filter.acl.allow_rules(),
            features: Features {
                hosts: self.discovery.enabled(),
                wake: self.discovery.enabled() && admitted.wake,
                // Every TCP packet a device sends goes to the tun with a request to compute
                // its checksum (`forwarding::offload::to_kernel`).
                tcp_checksum: true,
                // Every TCP packet toward a device was checked, or vouched for by the kernel
                // (`forwarding::offload::from_kernel`).
                tcp_checksum_checked: true,
                app_certs: self.app_certs.get().is_some_and(|keeper| keeper.offers_app_names()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use hometun_shared::invite::InviteId;
    use hometun_shared::keys::SecretKey;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, AtomicUsize};
    use std::sync::Mutex;

    /// A relay (no tun) keeping its state in `dir`, with `count` fresh invites.
    fn relay_with_invites(dir: &Path, count: usize) -> (Arc<Relay>, Vec<InviteId>) {
        let config = Config::parse(crate::config::EXAMPLE, Path::new("relay.toml")).unwrap();
        let store = Store::load(dir, config.pool).unwrap();
        let secret = SecretKey::generate(&mut rand_core::OsRng);
        let limits = crate::daemon::limits::IpLimits::new(config.limits.clone());
        let relay = Arc::new(Relay::new(config, secret, store, limits, None, tokio::sync::watch::channel(false).1));
        for i in 0..count {
            let mut store = relay.store();
            actions::create_invite(&mut store, &relay.config, relay.public, &format!("phone{i}"), 3600, None, false)
                .unwrap();
        }
        let ids = relay.store().invites.invites.iter().map(|i| i.id).collect();
        (relay, ids)
    }

    fn new_device() -> PublicKey {
        SecretKey::generate(&mut rand_core::OsRng).public_key()
    }

    /// Whether the state files in `dir` hold the client `key`.
    fn on_disk(dir: &Path, key: &PublicKey) -> bool {
        let pool = "10.8.0.0/24".parse().unwrap();
        Store::load(dir, pool).is_ok_and(|s| s.registry.by_key(key).is_some() && s.pool.leased(key).is_some())
    }

    /// A live session for an admitted device; it notes whether the device was already on disk
    /// when the relay built it (which it does just before it answers).
    fn live(relay: &Arc<Relay>, dir: PathBuf, noted: Arc<Mutex<Vec<bool>>>) -> MakeLive {
        let relay = relay.clone();
        Box::new(move |admitted: &Admitted| {
            noted.lock().unwrap().push(on_disk(&dir, &admitted.key));
            LiveSession {
                id: relay.sessions.next_id(),
                name: admitted.name.clone(),
                key: admitted.key,
                address: admitted.address,
                remote: "203.0.113.2:40000".parse().unwrap(),
                since: 0,
                packets: tokio::sync::mpsc::channel(1).0,
                kick: tokio::sync::mpsc::channel(1).0,
                bytes_in: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                queued_bytes: AtomicUsize::new(0),
            }
        })
    }

    /// A state write holds the store through its fsyncs, which take long on a slow disk (an SD
    /// card). A hello that arrives meanwhile waits for it off the async worker: the relay's
    /// one worker, which carries every other tunnel, goes on.
    #[tokio::test(flavor = "current_thread")]
    async fn a_hello_during_a_slow_state_write_does_not_stall_the_other_tunnels() {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = relay_with_invites(dir.path(), 1);
        let writer = hold_store(&relay, Duration::from_millis(300));
        // The other tunnels' work on the same worker, seen as a task waking every 5 ms.
        let other_tunnels = tokio::spawn(async {
            let mut longest = Duration::ZERO;
            for _ in 0..80 {
                let before = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                longest = longest.max(before.elapsed());
            }
            longest
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let hello = Hello { client_key: new_device(), intent: Intent::Enrol(ids[0]) };
        let decided = relay.decide(hello).await;
        assert!(matches!(decided, Ok((Admission::Enrol { id }, Some(_))) if id == ids[0]), "{:?}", decided.err());
        let longest = other_tunnels.await.unwrap();
        assert!(longest < Duration::from_millis(100), "the worker stood still for {longest:?} behind the write");
        writer.join().unwrap();
    }

    /// Fifty hellos arrive during one slow write. They wait for it on one blocking thread
    /// between them, not on a thread each (a burst of enrolments started dozens of threads,
    /// which kept their stacks and heaps: 12 KiB more relay memory per idle tunnel), and each
    /// is answered once the write ends.
    #[test]
    fn hellos_during_a_slow_state_write_wait_on_one_thread_between_them() {
        use std::time::Duration;
        // The kernel keeps 15 bytes of a thread's name; the runtime's blocking threads get it.
        const THREADS: &str = "ht-decide-burst";
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().thread_name(THREADS).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = runtime.block_on(async { relay_with_invites(dir.path(), 50) });
        let writer = hold_store(&relay, Duration::from_millis(300));
        runtime.block_on(async {
            let hellos: Vec<_> = ids
                .iter()
                .map(|&id| {
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        (id, relay.decide(Hello { client_key: new_device(), intent: Intent::Enrol(id) }).await)
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(150)).await;
            let waiting = threads_named(THREADS);
            for hello in hellos {
                let (id, decided) = hello.await.unwrap();
                assert!(
                    matches!(decided, Ok((Admission::Enrol { id: got }, Some(_))) if got == id),
                    "{:?}",
                    decided.err()
                );
            }
            assert_eq!(waiting, 1, "threads waiting for the store during the write");
        });
        writer.join().unwrap();
    }

    /// A slow state write: a thread holds the store for `how_long`; returns once it holds it.
    fn hold_store(relay: &Arc<Relay>, how_long: std::time::Duration) -> std::thread::JoinHandle<()> {
        let (locked, is_locked) = std::sync::mpsc::channel();
        let relay = relay.clone();
        let writer = std::thread::spawn(move || {
            let _store = relay.store();
            locked.send(()).unwrap();
            std::thread::sleep(how_long);
        });
        is_locked.recv().unwrap();
        writer
    }

    /// How many of this process's threads are called `name`.
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forty_devices_enrolling_and_leaving_at_once_share_a_few_writes_and_each_hears_only_once_on_disk() {
        const DEVICES: usize = 40;
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = relay_with_invites(dir.path(), DEVICES);
        let noted = Arc::new(Mutex::new(Vec::new()));
        let enrolments = ids.into_iter().map(|id| {
            let (relay, key) = (relay.clone(), new_device());
            let live = live(&relay, dir.path().to_owned(), noted.clone());
            async move { (key, relay.admit_and_join(Admission::Enrol { id }, key, live).await) }
        });
        let results = futures_util::future::join_all(enrolments).await;

        let mut addresses = std::collections::HashSet::new();
        for (key, joined) in &results {
            let (admitted, _live) = joined.as_ref().expect("enrolled");
            assert!(admitted.enrolled);
            assert!(addresses.insert(admitted.address), "every device has its own address");
            assert!(on_disk(dir.path(), key), "an enrolled device is in the state files");
        }
        let noted = noted.lock().unwrap().clone();
        assert_eq!(noted.len(), DEVICES);
        assert!(noted.iter().all(|&d| d), "a device was told it is enrolled before its state was written");
        let saves = relay.store().saves();
        assert!(saves <= (DEVICES / 4) as u64, "{DEVICES} enrolments took {saves} writes");
        assert_eq!(relay.sessions.len(), DEVICES);

        // All of them disconnect at once: their counters share writes too, and are on disk once
        // the relay stops.
        let saved_before = relay.store().saves();
        let ends = results.iter().map(|(key, _)| relay.record_session_end(*key, 100, 200));
        futures_util::future::join_all(ends).await;
        let saves = relay.store().saves() - saved_before;
        assert!(saves <= (DEVICES / 4) as u64, "{DEVICES} disconnects took {saves} writes");
        relay.write_counters();
        let store = Store::load(dir.path(), "10.8.0.0/24".parse().unwrap()).unwrap();
        assert!(store
            .registry
            .clients
            .iter()
            .all(|c| c.bytes_in == 100 && c.bytes_out == 200 && c.last_seen.is_some()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_device_reconnecting_in_a_loop_makes_one_write_a_minute_and_its_counts_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = relay_with_invites(dir.path(), 1);
        let key = new_device();
        let session = || live(&relay, dir.path().to_owned(), Arc::new(Mutex::new(Vec::new())));
        relay.admit_and_join(Admission::Enrol { id: ids[0] }, key, session()).await.expect("enrolled");
        let saved_before = relay.store().saves();
        for _ in 0..100 {
            relay.admit_and_join(Admission::Connect, key, session()).await.expect("connected");
            relay.record_session_end(key, 10, 20).await;
        }
        let saves = relay.store().saves() - saved_before;
        assert!(saves <= 2, "100 sessions took {saves} writes");
        // The minute's write comes by itself.
        let on_disk =
            || Store::load(dir.path(), "10.8.0.0/24".parse().unwrap()).unwrap().registry.by_key(&key).cloned();
        let deadline = tokio::time::Instant::now() + COUNTERS_EVERY + std::time::Duration::from_secs(5);
        while on_disk().is_none_or(|c| c.bytes_in != 1000) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let client = on_disk().expect("on disk");
        assert_eq!((client.bytes_in, client.bytes_out), (1000, 2000), "every session's bytes are written");
    }

    #[test]
    fn a_failed_write_refuses_its_whole_batch_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = relay_with_invites(dir.path(), 3);
        let files_before: Vec<_> = ["clients.json", "invites.json", "leases.json"]
            .iter()
            .map(|f| std::fs::read(dir.path().join(f)).ok())
            .collect();
        let noted = Arc::new(Mutex::new(Vec::new()));
        let batch = |ids: &[InviteId]| {
            let (jobs, answers): (Vec<_>, Vec<_>) = ids
                .iter()
                .map(|id| {
                    let live = live(&relay, dir.path().to_owned(), noted.clone());
                    StateJob::admit(Admission::Enrol { id: *id }, new_device(), live)
                })
                .unzip();
            relay.write_batch(jobs);
            answers.into_iter().map(|mut a| a.try_recv().expect("answered")).collect::<Vec<_>>()
        };

        // A state directory others may write to makes every write fail.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        for answer in batch(&ids) {
            assert!(matches!(answer, Err(AdmitError::Save(_))), "{:?}", answer.err());
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let files_after: Vec<_> = ["clients.json", "invites.json", "leases.json"]
            .iter()
            .map(|f| std::fs::read(dir.path().join(f)).ok())
            .collect();
        assert_eq!(files_after, files_before, "the state files are untouched");
        {
            let store = relay.store();
            assert!(store.registry.clients.is_empty(), "nobody registered in memory");
            assert!(ids.iter().all(|id| store.invites.usable(id, unix_now()).is_ok()), "no invite burnt");
        }
        assert_eq!(relay.sessions.len(), 0, "no session joined");
        assert!(noted.lock().unwrap().is_empty(), "no live session was built");

        // Once the directory is fixed the same invites work.
        for answer in batch(&ids) {
            assert!(answer.is_ok(), "{:?}", answer.err());
        }
        assert_eq!(relay.store().registry.clients.len(), 3);
    }

    #[tokio::test]
    async fn an_invite_made_before_client_to_client_was_turned_on_is_refused_if_the_pool_would_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::parse(crate::config::EXAMPLE, Path::new("relay.toml")).unwrap();
        let mut store = Store::load(dir.path(), config.pool).unwrap();
        let secret = SecretKey::generate(&mut rand_core::OsRng);
        let networks = (0..64).map(|n| format!("172.16.{n}.0/24")).collect::<Vec<_>>().join(",");
        for (name, allow) in [("laptop", networks.as_str()), ("phone", "172.16.0.0/24")] {
            actions::create_invite(&mut store, &config, secret.public_key(), name, 3600, Some(allow), false).unwrap();
        }
        let (wide, narrow) = (store.invites.invites[0].id, store.invites.invites[1].id);
        config.client_to_client = true;
        let limits = crate::daemon::limits::IpLimits::new(config.limits.clone());
        let relay = Arc::new(Relay::new(config, secret, store, limits, None, tokio::sync::watch::channel(false).1));
        let enrol = |id| {
            let live = live(&relay, dir.path().to_owned(), Arc::new(Mutex::new(Vec::new())));
            relay.admit_and_join(Admission::Enrol { id }, new_device(), live)
        };

        let refused = enrol(wide).await.err().expect("65 routes do not fit").to_string();
        let (admitted, _live) = enrol(narrow).await.expect("one network and the pool fit");

        assert!(refused.contains("64 networks"), "{refused}");
        assert!(refused.contains("at most 63"), "{refused}");
        assert!(relay.store().invites.usable(&wide, unix_now()).is_ok(), "the invite is not used up");
        assert_eq!(relay.store().registry.clients.len(), 1, "only phone enrolled");
        assert_eq!(relay.client_config(&admitted).routes.len(), 2);
    }

    #[tokio::test]
    async fn a_revoke_whose_write_fails_changes_nothing_and_the_device_keeps_its_tunnel() {
        let dir = tempfile::tempdir().unwrap();
        let (relay, ids) = relay_with_invites(dir.path(), 1);
        let key = new_device();
        let (kick, mut kicked) = tokio::sync::mpsc::channel(1);
        let make_live = live(&relay, dir.path().to_owned(), Arc::new(Mutex::new(Vec::new())));
        let with_kick: MakeLive = Box::new(move |admitted: &Admitted| LiveSession { kick, ..make_live(admitted) });
        let (admitted, _live) = relay.admit_and_join(Admission::Enrol { id: ids[0] }, key, with_kick).await.unwrap();

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = relay.revoke(&admitted.name).expect_err("the write fails");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

        assert!(!relay.store().registry.by_key(&key).unwrap().revoked, "not revoked in memory");
        let hello = Hello { client_key: key, intent: Intent::Connect };
        assert!(relay.decide(hello).await.is_ok(), "the device may still connect");
        assert!(format!("{refused:#}").contains("nothing was changed"), "{refused:#}");
        assert!(kicked.try_recv().is_err(), "its session was not told to close");
        assert!(relay.revoke(&admitted.name).unwrap(), "once the directory is fixed, its session is told");
        assert_eq!(kicked.try_recv().ok(), Some(CloseReason::Revoked));
    }
}
