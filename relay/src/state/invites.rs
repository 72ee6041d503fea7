//! Invites the relay has issued: single use, with an expiry, each carrying the name and ACL the
//! enrolling client will get. The secret is stored (the relay needs it as the handshake PSK)
//! and never printed.

use crate::tunnel::acl::Acl;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroize;

/// An invite secret in text form. Redacted in `Debug`, zeroized on drop.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// One issued invite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    /// Invite id, hex (not secret).
    pub id: String,
    /// The handshake PSK, text form.
    pub secret: SecretText,
    /// Name the enrolled client gets.
    pub name: String,
    /// What the enrolled client may reach.
    pub allow: Acl,
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
    /// The invite `id` if it can still be used at `now` (Unix seconds).
    pub fn usable(&self, id: &str, now: u64) -> Result<&InviteRecord, InviteRefusal> {
        let invite = self.invites.iter().find(|i| i.id == id).ok_or(InviteRefusal::Unknown)?;
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
    pub fn redeem(&mut self, id: &str, client: &str, now: u64) -> Result<InviteRecord, InviteRefusal> {
        self.usable(id, now)?;
        let invite = self.invites.iter_mut().find(|i| i.id == id).ok_or(InviteRefusal::Unknown)?;
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

    fn invite(id: &str, expires: u64) -> InviteRecord {
        InviteRecord {
            id: id.into(),
            secret: SecretText("c2VjcmV0".into()),
            name: "phone".into(),
            allow: Acl::parse_list("192.168.0.0/24").unwrap(),
            created: 0,
            expires,
            used_by: None,
        }
    }

    #[test]
    fn single_use_and_expiry() {
        let mut book = InviteBook::default();
        book.add(invite("a", 100));
        book.add(invite("b", 100));
        let cases: &[(&str, u64, Result<(), InviteRefusal>)] = &[
            ("a", 50, Ok(())),
            ("a", 60, Err(InviteRefusal::Used)),
            ("b", 100, Err(InviteRefusal::Expired)),
            ("zz", 10, Err(InviteRefusal::Unknown)),
        ];
        for (i, (id, now, want)) in cases.iter().enumerate() {
            let got = book.redeem(id, "phone", *now).map(|_| ());
            assert_eq!(got, *want, "case {i}");
        }
    }

    #[test]
    fn secret_never_in_debug() {
        let shown = format!("{:?}", invite("a", 1));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn prune_forgets_old_invites_only() {
        let mut book = InviteBook::default();
        book.add(invite("old", 10));
        book.add(invite("new", 1000));
        assert_eq!(book.prune(500, 100), 1);
        assert_eq!(book.invites[0].id, "new");
    }
}
