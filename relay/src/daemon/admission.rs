//! Who may connect: the decision on a hello (before anything is allocated), and the
//! registration once the client has proven its keys.

use super::session_table::LiveSession;
use super::Relay;
use crate::forwarding::filter::ClientFilter;
use crate::state::invites::InviteRefusal;
use crate::state::registry::Client;
use crate::state::store::Store;
use crate::state::unix_now;
use hometun_shared::control::{ClientConfig, Features};
use hometun_shared::handshake::{Hello, Intent};
use hometun_shared::invite::{InviteId, InviteSecret};
use hometun_shared::keys::PublicKey;
use hometun_shared::session::{CloseReason, Refusal};
use std::net::Ipv4Addr;
use std::sync::Arc;

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
}

/// Why a client was turned away after its keys were proven.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The invite was used (or expired) meanwhile.
    #[error("{0}")]
    Invite(InviteRefusal),
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

fn refusal_of(r: InviteRefusal) -> Refusal {
    match r {
        InviteRefusal::Unknown => Refusal::InviteUnknown,
        InviteRefusal::Expired => Refusal::InviteExpired,
        InviteRefusal::Used => Refusal::InviteUsed,
    }
}

impl Relay {
    /// Decides on a hello. Refusals are sent unauthenticated, before any allocation.
    pub fn decide(&self, hello: &Hello) -> Result<(Admission, Option<InviteSecret>), Refusal> {
        let store = self.store();
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

    /// Admits the client (registers it for an enrolment and leases its address, once its keys
    /// are confirmed) and registers its live session, built by `live` from the admission, in
    /// the session table.
    ///
    /// Both happen under the store lock, which [`Relay::revoke`] also holds while it looks for
    /// the session to end: a revoke comes either before (and the admission is refused) or
    /// after (and finds the session), never in between.
    pub fn admit_and_join(
        &self,
        admission: &Admission,
        key: &PublicKey,
        live: impl FnOnce(&Admitted) -> LiveSession,
    ) -> Result<(Admitted, Arc<LiveSession>), AdmitError> {
        let mut store = self.store();
        let admitted = self.admit(&mut store, admission, key)?;
        let live = Arc::new(live(&admitted));
        self.sessions.insert(live.clone());
        drop(store);
        Ok((admitted, live))
    }

    /// Revokes client `name` and asks its live session, if any, to close. Returns whether a
    /// session was told to close. The store lock is held throughout (see
    /// [`Relay::admit_and_join`]).
    pub fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        let mut store = self.store();
        let key = crate::state::actions::revoke(&mut store, name)?;
        let session = self.sessions.by_key(&key);
        if let Some(live) = &session {
            let _ = live.kick.try_send(CloseReason::Revoked);
        }
        drop(store);
        Ok(session.is_some())
    }

    /// Registers (for an enrolment) and leases the address, once keys are confirmed.
    fn admit(&self, store: &mut Store, admission: &Admission, key: &PublicKey) -> Result<Admitted, AdmitError> {
        let now = unix_now();
        let enrolled = matches!(admission, Admission::Enrol { .. });
        if let Admission::Enrol { id } = admission {
            let wanted = store.invites.usable(id, now).map_err(AdmitError::Invite)?.name.clone();
            let name = match store.registry.by_key(key) {
                Some(existing) => existing.name.clone(),
                None => store.registry.free_name(&wanted),
            };
            // The address first: a full pool must not burn the invite.
            let had_lease = store.pool.leased(key).is_some();
            let address = store.pool.lease(key)?;
            let invite = match store.invites.redeem(id, &name, now) {
                Ok(invite) => invite,
                Err(refusal) => {
                    if !had_lease {
                        store.pool.release(key);
                    }
                    return Err(AdmitError::Invite(refusal));
                }
            };
            store.save_invites().map_err(AdmitError::Save)?;
            store.save_leases().map_err(AdmitError::Save)?;
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
            store.save_clients().map_err(AdmitError::Save)?;
        }
        let client = store.registry.by_key(key).filter(|c| !c.revoked).ok_or(AdmitError::Revoked)?.clone();
        let address = store.pool.lease(key)?;
        if address != client.address {
            store.save_leases().map_err(AdmitError::Save)?;
            if let Some(c) = store.registry.by_key_mut(key) {
                c.address = address;
            }
            store.save_clients().map_err(AdmitError::Save)?;
        }
        let filter = ClientFilter {
            address,
            acl: client.allow.clone(),
            pool: self.config.pool,
            relay_address: store.pool.relay_address(),
            client_to_client: self.config.client_to_client,
        };
        Ok(Admitted { name: client.name, key: *key, address, filter, enrolled, wake: client.wake })
    }

    /// Records a finished session's counters.
    pub fn record_session_end(&self, key: &PublicKey, bytes_in: u64, bytes_out: u64) {
        let mut store = self.store();
        if let Some(c) = store.registry.by_key_mut(key) {
            c.bytes_in = c.bytes_in.saturating_add(bytes_in);
            c.bytes_out = c.bytes_out.saturating_add(bytes_out);
            c.last_seen = Some(unix_now());
            if let Err(e) = store.save_clients() {
                tracing::warn!("could not save client counters: {e:#}");
            }
        }
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
            keepalive: std::time::Duration::from_secs(self.config.limits.keepalive_secs),
            allow: admitted.filter.acl.allow_rules(),
            features: Features { hosts: self.discovery.enabled(), wake: self.discovery.enabled() && admitted.wake },
        }
    }
}
