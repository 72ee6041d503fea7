//! What `serve` prints once it is up: the page's URL, where the page comes from, the certificate
//! in use and what it means for a visitor — and, on the first run only, a ready invite (link and
//! terminal QR code), so one command and one scan take a home user from nothing to a connected
//! phone.
//!
//! The first run is a relay that has never issued an invite nor enrolled a device (the state
//! files in DIR are empty); every later start finds the invite it made then. The invite is a
//! secret: it goes to the terminal, never into the log. Under systemd (whose output is the
//! journal) no invite is made; the banner says how to make one instead.

use crate::daemon::Relay;
use std::path::Path;

/// Name of the device the first-run invite is for.
pub const FIRST_DEVICE: &str = "first-device";
/// How long the first-run invite stays valid, seconds (as `invite`'s default).
const FIRST_INVITE_TTL: u64 = 24 * 3600;

/// Prints the start-up banner (stderr) and, on the first run, makes and prints the first invite.
/// Nothing here stops the relay: a failure to make the invite is reported with the command that
/// makes one by hand.
pub fn print(relay: &Relay, dir: &Path) {
    let config = &relay.config;
    eprintln!("hometun relay running: open {}/ on a device.", config.public_url);
    eprintln!("  page         {}", crate::web::page::describe(&config.www));
    let certificate = crate::acme::info().map(|info| crate::acme::describe(&info)).unwrap_or_default();
    for (i, line) in certificate.iter().enumerate() {
        eprintln!("  {:<12} {line}", if i == 0 { "certificate" } else { "" });
    }
    let invite_command = format!("hometun-relay invite --dir {} --name phone", dir.display());
    if !is_first_run(relay) {
        eprintln!("Create an invite with: {invite_command}");
        return;
    }
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        eprintln!("No device yet. Create the first invite with: {invite_command}");
        return;
    }
    let made = {
        let mut store = relay.store();
        crate::state::actions::create_invite(
            &mut store,
            config,
            relay.public,
            FIRST_DEVICE,
            FIRST_INVITE_TTL,
            None,
            false,
        )
    };
    let info = match made {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!("could not make the first invite: {e:#}");
            eprintln!("Create an invite with: {invite_command}");
            return;
        }
    };
    eprintln!();
    eprintln!("First run: here is an invite for your first device. Scan the code with the phone's");
    eprintln!("camera (or open the link on the device); the page enrols it and connects.");
    eprintln!();
    eprintln!("{}", info.link);
    match crate::qr::render(&info.link) {
        Ok(code) => eprintln!("{code}"),
        Err(e) => tracing::warn!("could not draw the QR code: {e}"),
    }
    eprintln!(
        "Single use, for `{}`, valid until {}, may reach {}.",
        info.name,
        crate::qr::utc(info.expires),
        info.allow
    );
    eprintln!("Keep it private: it grants access. More devices: {invite_command}");
}

/// A relay that has never issued an invite nor enrolled a device.
fn is_first_run(relay: &Relay) -> bool {
    let store = relay.store();
    store.registry.clients.is_empty() && store.invites.invites.is_empty()
}
