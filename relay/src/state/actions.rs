//! Actions on the state that both the running relay (through the admin socket) and the
//! commands (when no relay runs) perform, so there is one implementation of each.

use super::invites::InviteRecord;
use super::store::Store;
use super::unix_now;
use crate::admin::proto::{ClientInfo, InviteInfo};
use crate::config::Config;
use crate::forwarding::acl::Acl;
use anyhow::Context;
use hometun_shared::control::MAX_LIST_LEN;
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
    check_fits(&acl, config.client_to_client)?;
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

/// Refuses an allow list a device could not be told in full: its configuration carries at most
/// [`MAX_LIST_LEN`] rules, and as many routes, one per network the rules reach and one for the
/// pool with `client_to_client`. Cut short, the device would route and list less than it may
/// reach, and nobody would be told.
fn check_fits(acl: &Acl, client_to_client: bool) -> anyhow::Result<()> {
    let rules = acl.allow_rules().len();
    if rules > MAX_LIST_LEN {
        anyhow::bail!(
            "--allow: {rules} rules, but a device can be sent at most {MAX_LIST_LEN}; \
             merge them (a network without ports allows all of it)"
        );
    }
    let networks = acl.networks().len();
    if client_to_client && networks >= MAX_LIST_LEN {
        anyhow::bail!(
            "--allow: rules to {networks} networks, but with client_to_client a device can be sent \
             routes to at most {} (the pool takes one); merge them into larger networks",
            MAX_LIST_LEN - 1
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn setup() -> (tempfile::TempDir, Store, Config) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(crate::config::EXAMPLE, Path::new("relay.toml")).unwrap();
        let store = Store::load(dir.path(), config.pool).unwrap();
        (dir, store, config)
    }

    /// `count` rules, each to a network of its own.
    fn rules(count: u8) -> String {
        (0..count).map(|n| format!("192.168.{n}.0/24")).collect::<Vec<_>>().join(",")
    }

    fn invite(store: &mut Store, config: &Config, allow: &str) -> anyhow::Result<InviteInfo> {
        create_invite(store, config, PublicKey::from_bytes([9; 32]), "phone", 3600, Some(allow), false)
    }

    #[test]
    fn an_invite_with_more_allow_rules_than_a_device_can_be_told_is_refused_and_not_stored() {
        let (_dir, mut store, config) = setup();

        let refused = format!("{:#}", invite(&mut store, &config, &rules(65)).expect_err("65 rules"));

        assert!(refused.contains("65 rules"), "{refused}");
        assert!(refused.contains("at most 64"), "{refused}");
        assert!(store.invites.invites.is_empty(), "no invite stored");
        let one_port_each = (1..=65).map(|p| format!("192.168.0.10:{p}")).collect::<Vec<_>>().join(",");
        assert!(invite(&mut store, &config, &one_port_each).is_err(), "rules count, not networks");
        invite(&mut store, &config, &rules(64)).expect("64 rules fit");
    }

    #[test]
    fn with_client_to_client_the_pool_takes_one_of_the_routes() {
        let (_dir, mut store, mut config) = setup();
        config.client_to_client = true;

        let refused = format!("{:#}", invite(&mut store, &config, &rules(64)).expect_err("64 networks and the pool"));

        assert!(refused.contains("at most 63"), "{refused}");
        assert!(refused.contains("client_to_client"), "{refused}");
        assert!(store.invites.invites.is_empty(), "no invite stored");
        invite(&mut store, &config, &rules(63)).expect("63 networks and the pool fit");
        let ports = (1..=64).map(|p| format!("192.168.0.10:{p}")).collect::<Vec<_>>().join(",");
        invite(&mut store, &config, &ports).expect("64 rules to one network: two routes");
    }
}
