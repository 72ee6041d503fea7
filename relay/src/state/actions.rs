//! Actions on the state that both the running relay (through the admin socket) and the
//! commands (when no relay runs) perform, so there is one implementation of each.

use super::invites::InviteRecord;
use super::store::Store;
use super::unix_now;
use crate::admin::proto::{ClientInfo, InviteInfo};
use crate::config::Config;
use crate::forwarding::acl::Acl;
use anyhow::Context;
use hometun_shared::invite::Invite;
use hometun_shared::keys::PublicKey;

/// Creates an invite, stores it and returns its link.
pub fn create_invite(
    store: &mut Store,
    config: &Config,
    relay_key: PublicKey,
    name: &str,
    ttl_secs: u64,
    allow: Option<&str>,
    wake: bool,
) -> anyhow::Result<InviteInfo> {
    let acl = match allow {
        Some(text) => Acl::parse_list(text).context("--allow")?,
        None => Acl::whole(config.lan),
    };
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        anyhow::bail!("the name must be 1-64 printable characters");
    }
    let invite =
        Invite::generate(relay_key, &config.public_url, &mut rand_core::OsRng).context("public_url is too long")?;
    let now = unix_now();
    let record = InviteRecord {
        id: invite.id,
        secret: invite.secret.clone(),
        name: name.to_owned(),
        allow: acl.clone(),
        wake,
        created: now,
        expires: now.saturating_add(ttl_secs),
        used_by: None,
    };
    store.invites.prune(now, 7 * 86400);
    store.invites.add(record);
    store.save_invites()?;
    Ok(InviteInfo {
        link: invite.to_link(),
        name: name.to_owned(),
        expires: now.saturating_add(ttl_secs),
        allow: acl.to_string(),
        wake,
    })
}

/// Answers "is this key online, and from where?" (`None`: offline).
pub type OnlineLookup<'a> = &'a dyn Fn(&PublicKey) -> Option<String>;

/// Clients for a listing; `online` tells which keys have a live session (with its remote).
pub fn client_infos(store: &Store, online: Option<OnlineLookup<'_>>) -> Vec<ClientInfo> {
    store
        .registry
        .clients
        .iter()
        .map(|c| {
            let remote = online.and_then(|f| f(&c.key));
            ClientInfo {
                name: c.name.clone(),
                fingerprint: c.fingerprint.clone(),
                address: c.address,
                allow: c.allow.to_string(),
                wake: c.wake,
                revoked: c.revoked,
                online: online.map(|_| remote.is_some()),
                remote,
                last_seen: c.last_seen,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
            }
        })
        .collect()
}

/// Revokes the client `name` and saves; returns its key.
pub fn revoke(store: &mut Store, name: &str) -> anyhow::Result<PublicKey> {
    let key = store.registry.revoke(name)?;
    store.save_clients()?;
    Ok(key)
}
