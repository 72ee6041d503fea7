//! Actions on the state that both the running relay (through the admin socket) and the
//! commands (when no relay runs) perform, so there is one implementation of each.

use super::invites::InviteRecord;
use super::store::{Snapshot, Store};
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
    // The name the device will be listed under: a name an enrolled device or another open
    // invite has (a lost phone, revoked) gets a suffix, so what the invite says is what
    // `clients` will show.
    let now = unix_now();
    let name =
        &store.registry.free_name_besides(name, |candidate| store.invites.open(now).any(|i| i.name == candidate));
    let invite =
        Invite::generate(relay_key, &config.public_url, &mut rand_core::OsRng).context("public_url is too long")?;
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
    let before = store.snapshot();
    store.invites.prune(now, 7 * 86400);
    store.invites.add(record);
    save_or_undo(store, before, &[Store::save_invites])?;
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
    if routes(acl, client_to_client) > MAX_LIST_LEN {
        let networks = acl.networks().len();
        anyhow::bail!(
            "--allow: rules to {networks} networks, but with client_to_client a device can be sent \
             routes to at most {} (the pool takes one); merge them into larger networks",
            MAX_LIST_LEN - 1
        );
    }
    Ok(())
}

/// How many routes a device allowed `acl` is sent: one per network its rules reach, and one
/// for the pool with `client_to_client`.
pub fn routes(acl: &Acl, client_to_client: bool) -> usize {
    acl.networks().len() + usize::from(client_to_client)
}

/// Refuses `client_to_client` while an enrolled device's rules reach as many networks as a
/// device can be sent routes: with the pool's route added, its configuration would be cut
/// short. Revoked devices are sent nothing and do not count.
///
/// Checked where the setting is read, when `init` saves it and when the relay starts
/// (`cmd::setup`), rather than when such a device connects: the admin who turned the setting
/// on is there to read which devices are in the way, whereas a device refused later would only
/// see its tunnel fail, with the reason in the relay's log.
pub fn check_devices_fit(store: &Store, client_to_client: bool) -> anyhow::Result<()> {
    let over: Vec<(&str, usize)> = store
        .registry
        .clients
        .iter()
        .filter(|c| !c.revoked && routes(&c.allow, client_to_client) > MAX_LIST_LEN)
        .map(|c| (c.name.as_str(), c.allow.networks().len()))
        .collect();
    if over.is_empty() {
        return Ok(());
    }
    let devices = over.iter().map(|(name, n)| format!("`{name}` ({n} networks)")).collect::<Vec<_>>().join(", ");
    let revokes =
        over.iter().map(|(name, _)| format!("`hometun-relay clients revoke {name}`")).collect::<Vec<_>>().join(", ");
    anyhow::bail!(
        "client_to_client is on, but a device is sent at most {MAX_LIST_LEN} routes (one per network its allow \
         rules reach, and one for the pool), and {devices} would be sent more; turn client_to_client off \
         (`client_to_client = false` in relay.toml, or --client-to-client false), or revoke each ({revokes}) and \
         give it a new invite with --allow rules to at most {} networks (the device keeps its name when it \
         enrols with it)",
        MAX_LIST_LEN - 1
    )
}

/// Answers "is this key online, and from where?" (`None`: offline).
pub type OnlineLookup<'a> = &'a dyn Fn(&PublicKey) -> Option<String>;

/// Clients for a listing; `online` tells which keys have a live session (with its remote). A
/// revoked client whose address went to a new device is listed without it.
pub fn client_infos(store: &Store, online: Option<OnlineLookup<'_>>) -> Vec<ClientInfo> {
    store
        .registry
        .clients
        .iter()
        .map(|c| {
            let remote = online.and_then(|f| f(&c.key));
            // A revoked client's address goes to a new device once the pool is otherwise full
            // (see `super::pool`); from then on it is the new device's, not the revoked one's.
            let reused = c.revoked && store.pool.leased(&c.key) != Some(c.address);
            let reused_by =
                reused.then(|| store.pool.owner(c.address)).flatten().and_then(|k| store.registry.by_key(k));
            ClientInfo {
                name: c.name.clone(),
                fingerprint: c.fingerprint.clone(),
                address: (!reused).then_some(c.address),
                address_reused_by: reused_by.map(|holder| holder.name.clone()),
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

/// Revokes the client `name`, lets its address go to a new device once the pool is otherwise
/// full (see [`super::pool`]), and saves; returns its key. When the save fails the client is
/// left as it was, in memory too (a running relay goes on admitting it), and the error says so.
pub fn revoke(store: &mut Store, name: &str) -> anyhow::Result<PublicKey> {
    if store.registry.by_name(name).is_some_and(|c| c.revoked) {
        anyhow::bail!("`{name}` is already revoked (nothing was changed)");
    }
    let before = store.snapshot();
    let key = store.registry.revoke(name)?;
    store.pool.retire(&key);
    // The leases first: should the client list not follow, the load finds the client not
    // revoked and keeps its address from reuse.
    save_or_undo(store, before, &[Store::save_leases, Store::save_clients])?;
    Ok(key)
}

/// A function that saves one state file.
type Save = fn(&Store) -> anyhow::Result<()>;

/// Saves the files `saves` write, in order. When one fails, puts the state back to `before`,
/// in memory and in the files written (or replaced before the failure), so that the action
/// changed nothing: a change that held in memory only would vanish at the next start, after
/// the relay had acted on it.
fn save_or_undo(store: &mut Store, before: Snapshot, saves: &[Save]) -> anyhow::Result<()> {
    let Err(e) = saves.iter().try_for_each(|save| save(store)) else { return Ok(()) };
    store.restore(before);
    for save in saves {
        if let Err(again) = save(store) {
            tracing::warn!("could not put the state file back: {again:#}");
        }
    }
    Err(anyhow::anyhow!("{e:#} (nothing was changed)"))
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

    /// Makes every state write in `dir` fail (a directory others may write to is refused).
    fn break_writes(dir: &Path, broken: bool) {
        use std::os::unix::fs::PermissionsExt;
        let mode = if broken { 0o777 } else { 0o700 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_invite_whose_write_fails_is_not_kept_and_the_error_says_nothing_changed() {
        let (dir, mut store, config) = setup();
        invite(&mut store, &config, "192.168.0.0/24").unwrap();
        let before = std::fs::read(dir.path().join("invites.json")).unwrap();

        break_writes(dir.path(), true);
        let refused = format!("{:#}", invite(&mut store, &config, "192.168.0.0/24").expect_err("write fails"));
        break_writes(dir.path(), false);

        assert_eq!(store.invites.invites.len(), 1, "the failed invite is not usable in memory either");
        assert!(refused.contains("nothing was changed"), "{refused}");
        assert_eq!(std::fs::read(dir.path().join("invites.json")).unwrap(), before);
        invite(&mut store, &config, "192.168.0.0/24").expect("works once the directory is fixed");
    }

    #[test]
    fn a_revoke_whose_write_fails_leaves_the_client_as_it_was_and_says_so() {
        let (dir, mut store, _config) = setup();
        let key = PublicKey::from_bytes([3; 32]);
        enrol(&mut store, "phone", key);
        let before = std::fs::read(dir.path().join("clients.json")).unwrap();

        break_writes(dir.path(), true);
        let refused = format!("{:#}", revoke(&mut store, "phone").expect_err("write fails"));
        break_writes(dir.path(), false);

        assert!(!store.registry.by_key(&key).unwrap().revoked, "not revoked in memory either");
        assert!(refused.contains("nothing was changed"), "{refused}");
        assert_eq!(std::fs::read(dir.path().join("clients.json")).unwrap(), before);
        assert_eq!(revoke(&mut store, "phone").unwrap(), key, "works once the directory is fixed");
        assert!(store.registry.by_key(&key).unwrap().revoked);
    }

    #[test]
    fn once_the_pool_is_full_a_new_device_gets_the_address_of_the_longest_revoked_one() {
        let dir = tempfile::tempdir().unwrap();
        let net = "10.8.0.0/29".parse().unwrap(); // .1 the relay, .2 to .6 for devices
        let mut store = Store::load(dir.path(), net).unwrap();
        let key = |n: u8| PublicKey::from_bytes([n; 32]);
        for n in 1..=5 {
            enrol(&mut store, &format!("device{n}"), key(n));
        }
        let address_of = |store: &Store, name: &str| store.registry.by_name(name).unwrap().address;
        let (third, first) = (address_of(&store, "device3"), address_of(&store, "device1"));
        revoke(&mut store, "device3").unwrap();
        revoke(&mut store, "device1").unwrap();

        // A restart in between: the state files carry which addresses may go, in which order.
        let mut store = Store::load(dir.path(), net).unwrap();
        assert_eq!(store.pool.lease(&key(6)), Ok(third), "the longest-revoked address first");
        assert_eq!(store.pool.lease(&key(7)), Ok(first));
        let full = store.pool.lease(&key(8)).expect_err("every address is held");
        assert!(!full.to_string().contains("revoke unused"), "revoked devices hold none: {full}");
        assert_eq!(store.pool.owner(third), Some(&key(6)), "one holder per address");
        assert_eq!(store.pool.leased(&key(3)), None, "the revoked device's lease is gone");
    }

    #[test]
    fn a_revoked_device_whose_address_went_to_a_new_one_is_listed_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let net = "10.8.0.0/29".parse().unwrap(); // .2 to .6 for devices
        let mut store = Store::load(dir.path(), net).unwrap();
        let key = |n: u8| PublicKey::from_bytes([n; 32]);
        for n in 1..=5 {
            enrol(&mut store, &format!("device{n}"), key(n));
        }
        let address_of = |store: &Store, name: &str| store.registry.by_name(name).unwrap().address;
        let (first, third) = (address_of(&store, "device1"), address_of(&store, "device3"));
        revoke(&mut store, "device3").unwrap();
        revoke(&mut store, "device1").unwrap();
        enrol(&mut store, "tablet", key(6));

        let listed: std::collections::HashMap<String, serde_json::Value> = client_infos(&store, None)
            .into_iter()
            .map(|c| (c.name.clone(), serde_json::to_value(c).unwrap()))
            .collect();

        assert_eq!(listed["tablet"]["address"], third.to_string());
        assert_eq!(listed["device3"]["address"], serde_json::Value::Null, "{}", listed["device3"]);
        assert_eq!(listed["device3"]["address_reused_by"], "tablet");
        assert_eq!(listed["device1"]["address"], first.to_string(), "revoked, its address not taken yet");
        assert_eq!(listed["device1"].get("address_reused_by"), None);
    }

    /// Enrols `key` as `name` and saves the client list and the leases.
    fn enrol(store: &mut Store, name: &str, key: PublicKey) {
        let address = store.pool.lease(&key).unwrap();
        store.registry.enrol(super::super::registry::Client::for_test(name, key, address)).unwrap();
        store.save_leases().unwrap();
        store.save_clients().unwrap();
    }
}
