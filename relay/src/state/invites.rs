//! Invites the relay has issued: single use, with an expiry, each carrying the name and ACL the
//! enrolling client will get. The secret is stored (the relay needs it as the handshake PSK)
//! and never printed.

use crate::forwarding::acl::Acl;
use hometun_shared::invite::{InviteId, InviteSecret};
use serde::{Deserialize, Serialize};

/// One issued invite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    /// Invite id (not secret; hex in the file).
    #[serde(with = "super::text::invite_id")]
    pub id: InviteId,
    /// The handshake PSK (redacted in `Debug`, zeroized on drop; base64url in the file).
    #[serde(with = "super::text::invite_secret")]
    pub secret: InviteSecret,
    /// Name the enrolled client gets.
    pub name: String,
    /// What the enrolled client may reach.
    pub allow: Acl,
    /// Whether the enrolled client may wake LAN hosts (Wake-on-LAN).
    #[serde(default)]
    pub wake: bool,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry, Unix seconds.
    pub expires: u64,
    /// Name of the client that used it, once used.
    #[serde(default)]
    pub used_by: Option<String>,
}

/// All invites (`invites.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InviteBook {
    /// Invites, oldest first.
    pub invites: Vec<InviteRecord>,
}

/// Why an invite cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    /// No invite has that id.
    #[error("unknown invite")]
    Unknown,
    /// The invite's time is over.
    #[error("invite expired")]
    Expired,
    /// The invite was already used.
    #[error("invite already used")]
    Used,
}

impl InviteBook {
    /// The invites that can still be used at `now` (Unix seconds).
    pub fn open(&self, now: u64) -> impl Iterator<Item = &InviteRecord> {
        self.invites.iter().filter(move |i| i.used_by.is_none() && now < i.expires)
    }

    /// The invite `id` if it can still be used at `now` (Unix seconds).
    pub fn usable(&self, id: &InviteId, now: u64) -> Result<&InviteRecord, InviteRefusal> {
        let invite = self.invites.iter().find(|i| i.id == *id).ok_or(InviteRefusal::Unknown)?;
        if invite.used_by.is_some() {
            Err(InviteRefusal::Used)
        } else if now >= invite.expires {
            Err(InviteRefusal::Expired)
        } else {
            Ok(invite)
        }
    }

    /// Marks `id` used by `client`, if still usable; the check and the mark are one step so two
    /// devices racing with one invite cannot both enrol.
    pub fn redeem(&mut self, id: &InviteId, client: &str, now: u64) -> Result<InviteRecord, InviteRefusal> {
        self.usable(id, now)?;
        let invite = self.invites.iter_mut().find(|i| i.id == *id).ok_or(InviteRefusal::Unknown)?;
        invite.used_by = Some(client.to_owned());
        Ok(invite.clone())
    }

    /// Adds an invite.
    pub fn add(&mut self, invite: InviteRecord) {
        self.invites.push(invite);
    }

    /// Forgets invites that expired or were used more than `keep_secs` ago. Returns how many.
    pub fn prune(&mut self, now: u64, keep_secs: u64) -> usize {
        let before = self.invites.len();
        self.invites.retain(|i| now < i.expires.saturating_add(keep_secs));
        before - self.invites.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> InviteId {
        InviteId([n; 16])
    }

    fn invite(n: u8, expires: u64) -> InviteRecord {
        InviteRecord {
            id: id(n),
            secret: InviteSecret([7; 32]),
            name: "phone".into(),
            allow: Acl::parse_list("192.168.0.0/24").unwrap(),
            wake: false,
            created: 0,
            expires,
            used_by: None,
        }
    }

    #[test]
    fn single_use_and_expiry() {
        let mut book = InviteBook::default();
        book.add(invite(1, 100));
        book.add(invite(2, 100));
        let cases: &[(u8, u64, Result<(), InviteRefusal>)] = &[
            (1, 50, Ok(())),
            (1, 60, Err(InviteRefusal::Used)),
            (2, 100, Err(InviteRefusal::Expired)),
            (9, 10, Err(InviteRefusal::Unknown)),
        ];
        for (i, (n, now, want)) in cases.iter().enumerate() {
            let got = book.redeem(&id(*n), "phone", *now).map(|_| ());
            assert_eq!(got, *want, "case {i}");
        }
    }

    #[test]
    fn secret_never_in_debug() {
        let record = invite(1, 1);
        let shown = format!("{record:?}");
        assert!(!shown.contains(&record.secret.to_text()), "{shown}");
    }

    #[test]
    fn the_file_keeps_ids_and_secrets_as_text() {
        let record = invite(1, 1);
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(&format!("\"id\":\"{}\"", record.id.to_hex())), "{json}");
        assert!(json.contains(&format!("\"secret\":\"{}\"", record.secret.to_text())), "{json}");
        let back: InviteRecord = serde_json::from_str(&json).unwrap();
        assert_eq!((back.id, back.secret), (record.id, record.secret.clone()));
        assert!(serde_json::from_str::<InviteRecord>(&json.replace(&record.id.to_hex(), "nothex")).is_err());
    }

    #[test]
    fn prune_forgets_old_invites_only() {
        let mut book = InviteBook::default();
        book.add(invite(1, 10));
        book.add(invite(2, 1000));
        assert_eq!(book.prune(500, 100), 1);
        assert_eq!(book.invites[0].id, id(2));
    }
}
