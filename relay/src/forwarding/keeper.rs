//! Keeps the relay's nftables table as the relay needs it while it runs:
//! - a firewall reload that flushes the whole ruleset (`systemctl restart nftables`, whose
//!   Debian file begins with `flush ruleset`) removes the table, and with it the NAT that
//!   carries every device into the LAN: it is put back;
//! - forwarding switched on for the whole host after the relay started (Docker, for its
//!   published ports, when it starts after the relay at boot): the relay's "not a router" drop
//!   of other LAN traffic would cut what that program forwards, so it is taken out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{device, nat};

/// How often the table is looked at.
pub const EVERY: Duration = Duration::from_secs(10);

/// What one look found to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Repair {
    /// All is as it should be.
    None,
    /// The table is gone: put it back.
    Missing,
    /// The host forwards now: install the table without the "not a router" drop.
    HostForwards,
}

/// Whether a later switch of the whole host's forwarding is another program's: only when the
/// relay switches forwarding per interface (it has a LAN interface; without one it switches the
/// host's itself) and the host's was off when it started.
pub fn watches_host(fw: &nat::Firewall, host_forwarded_at_start: bool) -> bool {
    fw.lan_interface.is_some() && !host_forwarded_at_start
}

/// Decides what to do from the table's presence and whether the host forwards now (counted
/// only when [`watches_host`]).
pub fn repair(fw: &nat::Firewall, table_present: bool, host_forwards: bool) -> Repair {
    if fw.lan_was_not_forwarding && host_forwards {
        Repair::HostForwards
    } else if !table_present {
        Repair::Missing
    } else {
        Repair::None
    }
}

/// Looks every [`EVERY`] until `stopping` is set; `watch_host` as [`watches_host`] says.
/// A look under way when the relay stops finishes before the stop removes the table (they
/// share `stopping`'s lock), so it cannot put the table back after that.
pub async fn run(mut fw: nat::Firewall, watch_host: bool, stopping: Arc<Mutex<bool>>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let current = fw.clone();
        let stopping = stopping.clone();
        let Ok(outcome) = tokio::task::spawn_blocking(move || {
            let stopped = stopping.lock().unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return (Repair::None, Ok(()));
            }
            let host_forwards = watch_host && device::forwarding_enabled(None);
            let found = repair(&current, nat::table_present(), host_forwards);
            let done = match found {
                Repair::None => Ok(()),
                Repair::Missing => nat::install_firewall(&current),
                Repair::HostForwards => {
                    nat::install_firewall(&nat::Firewall { lan_was_not_forwarding: false, ..current })
                }
            };
            (found, done)
        })
        .await
        else {
            continue;
        };
        match outcome {
            (Repair::None, _) => {}
            (Repair::Missing, Ok(())) => {
                tracing::warn!("the relay's nftables table was removed (a firewall reload?); put back");
            }
            (Repair::HostForwards, Ok(())) => {
                tracing::info!(
                    "IPv4 forwarding is on for the whole host now (Docker?): the relay no longer drops other traffic \
                     forwarded from the LAN"
                );
                fw.lan_was_not_forwarding = false;
            }
            (what, Err(e)) => tracing::warn!("repairing the relay's nftables table ({what:?}) failed: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firewall(lan_was_not_forwarding: bool) -> nat::Firewall {
        nat::Firewall {
            pool: "10.8.0.0/24".parse().unwrap(),
            lan: "192.168.0.0/24".parse().unwrap(),
            lan_interface: Some("eth0".into()),
            tun: "hometun0".into(),
            masquerade: true,
            lan_was_not_forwarding,
            client_to_client: false,
        }
    }

    #[test]
    fn a_removed_table_is_put_back_and_a_forwarding_host_loses_the_drop() {
        assert_eq!(repair(&firewall(false), true, false), Repair::None);
        assert_eq!(repair(&firewall(false), true, true), Repair::None, "forwarding was the owner's choice");
        assert_eq!(repair(&firewall(false), false, true), Repair::Missing);
        assert_eq!(repair(&firewall(true), true, false), Repair::None);
        assert_eq!(repair(&firewall(true), true, true), Repair::HostForwards);
        assert_eq!(repair(&firewall(true), false, true), Repair::HostForwards, "one install does both");
    }

    #[test]
    fn the_host_switch_counts_only_when_the_relay_did_not_make_it() {
        assert!(watches_host(&firewall(true), false));
        assert!(!watches_host(&firewall(true), true), "the host forwarded before the relay");
        let without_interface = nat::Firewall { lan_interface: None, ..firewall(true) };
        assert!(!watches_host(&without_interface, false), "the relay switches the host's itself");
    }
}
