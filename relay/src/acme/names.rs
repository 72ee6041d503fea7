//! App names: one DNS name under the relay's domain per LAN `host:port`, so every home web app
//! gets its own browser origin. `h-192-168-0-10-p8123.home.example.net` is 192.168.0.10:8123.
//!
//! The encoding and decoding live in [`hometun_shared::app_name`] (the browser client maps origins
//! with the same code); this module keeps the relay's policy.
//!
//! [`AppNames::check`] decides whether the relay may get a certificate for a name: only for
//! addresses inside the LAN subnet, never its network or broadcast address, never the relay's
//! own addresses, never loopback.

use hometun_shared::app_name;
use hometun_shared::app_name::AppTarget;
use hometun_shared::ipv4::Network;
use std::net::Ipv4Addr;

/// The encoding, re-exported for the relay's other modules.
pub use hometun_shared::app_name::{decode, encode};

/// Why a name gets no app certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not an app name under the relay's domain.
    #[error(transparent)]
    Name(#[from] app_name::NameError),
    /// The address is outside the LAN subnet.
    #[error("{0} is outside the LAN")]
    OutsideLan(Ipv4Addr),
    /// The address is the LAN's network or broadcast address.
    #[error("{0} is the LAN's network or broadcast address")]
    NotAHost(Ipv4Addr),
    /// The address belongs to the relay itself.
    #[error("{0} is the relay's own address")]
    RelayAddress(Ipv4Addr),
}

/// The policy for app names: which decoded addresses may get a certificate.
#[derive(Debug, Clone)]
pub struct AppNames {
    /// The relay's domain (lower case).
    pub domain: String,
    /// The home LAN.
    pub lan: Network,
    /// The relay's own addresses (every interface, the tunnel address too).
    pub own: Vec<Ipv4Addr>,
}

impl AppNames {
    /// The LAN target of `name` when the relay may get a certificate for it.
    pub fn check(&self, name: &str) -> Result<AppTarget, NameError> {
        let target = decode(name, &self.domain)?;
        self.check_target(target)?;
        Ok(target)
    }

    /// Whether the relay may get a certificate for `target`'s app name.
    pub fn check_target(&self, target: AppTarget) -> Result<(), NameError> {
        let ip = *target.addr.ip();
        if ip.is_loopback() || !self.lan.contains(ip) {
            return Err(NameError::OutsideLan(ip));
        }
        if self.lan.prefix_len() < 31 && (ip == self.lan.addr() || ip == self.lan.broadcast()) {
            return Err(NameError::NotAHost(ip));
        }
        if self.own.contains(&ip) {
            return Err(NameError::RelayAddress(ip));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "home.example.net";

    #[test]
    fn names_that_do_not_decode_are_refused() {
        let policy = AppNames { domain: DOMAIN.into(), lan: "192.168.0.0/24".parse().unwrap(), own: vec![] };
        assert_eq!(policy.check("h-192-168-0-010-p80.home.example.net"), Err(app_name::NameError::Malformed.into()));
        assert_eq!(policy.check("h-192-168-0-10-p80.example.net"), Err(app_name::NameError::NotUnderDomain.into()));
        assert_eq!(
            policy.check("h-192-168-0-10-p80.home.example.net"),
            Ok(AppTarget::http("192.168.0.10:80".parse().unwrap()))
        );
        assert_eq!(
            policy.check("h-192-168-0-10-s8443.home.example.net"),
            Ok(AppTarget::https("192.168.0.10:8443".parse().unwrap()))
        );
    }

    #[test]
    fn only_lan_hosts_other_than_the_relay_pass() {
        let policy = AppNames {
            domain: DOMAIN.into(),
            lan: "192.168.0.0/24".parse().unwrap(),
            own: vec![Ipv4Addr::new(192, 168, 0, 2), Ipv4Addr::new(10, 8, 0, 1)],
        };
        let name = |ip: &str| format!("h-{}-p443.{DOMAIN}", ip.replace('.', "-"));
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("192.168.0.10", Ok(())),
            ("192.168.0.1", Ok(())),
            ("192.168.0.254", Ok(())),
            ("192.168.0.0", Err(NameError::NotAHost(Ipv4Addr::new(192, 168, 0, 0)))),
            ("192.168.0.255", Err(NameError::NotAHost(Ipv4Addr::new(192, 168, 0, 255)))),
            ("192.168.0.2", Err(NameError::RelayAddress(Ipv4Addr::new(192, 168, 0, 2)))),
            ("10.0.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(10, 0, 0, 1)))),
            ("10.8.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(10, 8, 0, 1)))),
            ("8.8.8.8", Err(NameError::OutsideLan(Ipv4Addr::new(8, 8, 8, 8)))),
            ("127.0.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(127, 0, 0, 1)))),
        ];
        for (ip, want) in cases {
            assert_eq!(policy.check(&name(ip)).map(|_| ()), *want, "{ip}");
        }
    }
}
