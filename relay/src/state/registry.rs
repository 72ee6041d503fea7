//! Enrolled clients: who they are, where they may go, whether they are revoked, and counters.

use crate::forwarding::acl::Acl;
use hometun_shared::keys::PublicKey;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One enrolled client device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    /// Unique, human-chosen name (from the invite).
    pub name: String,
    /// The client's static public key (text in the file).
    #[serde(with = "super::text::public_key")]
    pub key: PublicKey,
    /// Short fingerprint of the key, for listings.
    pub fingerprint: String,
    /// Sticky tunnel address.
    pub address: Ipv4Addr,
    /// What the client may reach.
    pub allow: Acl,
    /// Whether the client may wake LAN hosts (Wake-on-LAN); off unless its invite said so.
    #[serde(default)]
    pub wake: bool,
    /// Revoked clients are refused at the handshake.
    #[serde(default)]
    pub revoked: bool,
    /// Enrolment time, Unix seconds.
    pub enrolled: u64,
    /// Last time a session ended or started, Unix seconds.
    #[serde(default)]
    pub last_seen: Option<u64>,
    /// Bytes received from the client (IP packets), over all sessions.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes sent to the client (IP packets), over all sessions.
    #[serde(default)]
    pub bytes_out: u64,
}

/// All clients (`clients.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    /// Clients in enrolment order.
    pub clients: Vec<Client>,
}

/// Why a registry change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No client has that name.
    #[error("no client named `{0}`; `hometun-relay clients` lists them")]
    UnknownName(String),
    /// The key is already enrolled.
    #[error("this device is already enrolled as `{0}`")]
    AlreadyEnrolled(String),
}

impl Registry {
    /// The client with `key`.
    pub fn by_key(&self, key: &PublicKey) -> Option<&Client> {
        self.clients.iter().find(|c| c.key == *key)
    }

    /// The client with `key`, mutable.
    pub fn by_key_mut(&mut self, key: &PublicKey) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.key == *key)
    }

    /// The client named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// A name not yet taken: `wanted` itself, or `wanted-2`, `wanted-3`, ...
    pub fn free_name(&self, wanted: &str) -> String {
        self.free_name_besides(wanted, |_| false)
    }

    /// [`Registry::free_name`], also skipping the names `held` says something else holds.
    pub fn free_name_besides(&self, wanted: &str, held: impl Fn(&str) -> bool) -> String {
        std::iter::once(wanted.to_owned())
            .chain((2u32..).map(|n| format!("{wanted}-{n}")))
            .find(|n| self.by_name(n).is_none() && !held(n))
            .unwrap_or_else(|| wanted.to_owned())
    }

    /// Enrols a new client. The name is made unique with a suffix when taken.
    pub fn enrol(&mut self, mut client: Client) -> Result<&Client, RegistryError> {
        if let Some(existing) = self.by_key(&client.key) {
            return Err(RegistryError::AlreadyEnrolled(existing.name.clone()));
        }
        client.name = self.free_name(&client.name);
        self.clients.push(client);
        Ok(self.clients.last().expect("just pushed"))
    }

    /// Marks the client named `name` revoked and returns its key.
    pub fn revoke(&mut self, name: &str) -> Result<PublicKey, RegistryError> {
        let client = self
            .clients
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| RegistryError::UnknownName(name.to_owned()))?;
        client.revoked = true;
        Ok(client.key)
    }
}

#[cfg(test)]
impl Client {
    /// A client `name` with `key` at `address`, allowed the lab's LAN, never seen.
    pub(crate) fn for_test(name: &str, key: PublicKey, address: Ipv4Addr) -> Self {
        Self {
            name: name.into(),
            key,
            fingerprint: key.fingerprint(),
            address,
            allow: Acl::parse_list("192.168.0.0/24").unwrap(),
            wake: false,
            revoked: false,
            enrolled: 0,
            last_seen: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn client(name: &str, key: PublicKey) -> Client {
        Client::for_test(name, key, Ipv4Addr::new(10, 8, 0, 2))
    }

    #[test]
    fn names_stay_unique_and_keys_enrol_once() {
        let mut r = Registry::default();
        assert_eq!(r.enrol(client("phone", key(1))).unwrap().name, "phone");
        assert_eq!(r.enrol(client("phone", key(2))).unwrap().name, "phone-2");
        assert_eq!(r.enrol(client("phone", key(3))).unwrap().name, "phone-3");
        assert_eq!(r.enrol(client("laptop", key(1))), Err(RegistryError::AlreadyEnrolled("phone".into())));
    }

    #[test]
    fn revoke_by_name() {
        let mut r = Registry::default();
        r.enrol(client("phone", key(1))).unwrap();
        assert_eq!(r.revoke("phone").unwrap(), key(1));
        assert!(r.by_key(&key(1)).unwrap().revoked);
        assert_eq!(r.revoke("nobody"), Err(RegistryError::UnknownName("nobody".into())));
    }

    #[test]
    fn json_round_trip_tolerates_missing_counters() {
        let json = r#"{"clients":[{"name":"a","key":"KEY","fingerprint":"f","address":"10.8.0.2",
            "allow":["192.168.0.0/24"],"enrolled":5}]}"#
            .replace("KEY", &key(4).to_text());
        let r: Registry = serde_json::from_str(&json).unwrap();
        assert_eq!(r.clients[0].key, key(4));
        assert_eq!(r.clients[0].bytes_in, 0);
        assert!(!r.clients[0].revoked);
        assert!(serde_json::from_str::<Registry>(&json.replace(&key(4).to_text(), "not-a-key")).is_err());
    }
}
