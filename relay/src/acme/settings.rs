//! The `[acme]` table of relay.toml and the flags that fill it: which name the relay gets a
//! trusted certificate for, from which ACME server, and the caps on app-name certificates.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Let's Encrypt's production directory, the default ACME server.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Certificate settings (`[acme]` in relay.toml). Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The relay's DNS name; default: the host of `public_url` when it is a DNS name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// ACME directory URL; default Let's Encrypt production.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Extra trust root (PEM) for the ACME server's own HTTPS (a private ACME server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<PathBuf>,
    /// Contact address given to the ACME server (expiry mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Renew this many seconds after a certificate's start instead of at two thirds of its
    /// lifetime (whichever comes first); for tests and forced renewals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_after_secs: Option<u64>,
    /// Most app-name certificates the relay keeps (default [`MAX_APP_CERTS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_app_certs: Option<usize>,
    /// Most new app names ordered per hour (default [`APP_CERTS_PER_HOUR`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_certs_per_hour: Option<usize>,
}

/// Default cap on app-name certificates: well below Let's Encrypt's 50 per domain per week.
pub const MAX_APP_CERTS: usize = 32;
/// Default cap on new app names per hour.
pub const APP_CERTS_PER_HOUR: usize = 6;
/// The latest forced renewal, seconds after a certificate's start (a year: no certificate
/// an ACME server issues lasts longer).
pub const MAX_RENEW_AFTER_SECS: u64 = 365 * 86_400;

impl Settings {
    /// Whether nothing was set (the table is then left out of relay.toml).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The name to get a certificate for: `domain`, else the host of `public_url` when it is
    /// a public-looking DNS name. `None` means the self-signed fallback.
    pub fn effective_domain(&self, public_url: &str) -> Option<String> {
        if let Some(domain) = &self.domain {
            return (!domain.is_empty()).then(|| domain.to_ascii_lowercase());
        }
        let host = crate::web::tls::url_host(public_url)?.to_ascii_lowercase();
        let local = ["localhost", ".localhost", ".local", ".home.arpa", ".internal", ".lan"];
        let public_name = host.parse::<std::net::IpAddr>().is_err()
            && host.contains('.')
            && !local.iter().any(|suffix| host == suffix.trim_start_matches('.') || host.ends_with(suffix));
        (public_name && valid_domain(&host)).then_some(host)
    }

    /// The ACME directory URL in use.
    pub fn directory_url(&self) -> &str {
        self.directory.as_deref().unwrap_or(LETS_ENCRYPT)
    }

    /// Checks the values; returns the field at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            if !valid_domain(domain) {
                return Err(("domain", format!("`{domain}` is not a DNS name like home.example.net")));
            }
        }
        if let Some(url) = &self.directory {
            if !url.starts_with("https://") {
                return Err(("directory", format!("`{url}` must be an https:// URL")));
            }
        }
        if let Some(email) = &self.email {
            if !email.contains('@') || email.contains([' ', ',', '\n']) {
                return Err(("email", format!("`{email}` is not a mail address")));
            }
        }
        if let Some(secs) = self.renew_after_secs.filter(|s| !(1..=MAX_RENEW_AFTER_SECS).contains(s)) {
            return Err(("renew_after_secs", format!("{secs} is outside 1..={MAX_RENEW_AFTER_SECS} seconds")));
        }
        Ok(())
    }
}

/// A DNS name of at least two labels: letters, digits and inner hyphens, 1-63 per label.
pub fn valid_domain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Flags of `serve` and `init` that set [`Settings`] (saved to relay.toml).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AcmeArgs {
    /// The relay's DNS name for a trusted certificate by ACME (TLS-ALPN-01 on the TLS port)
    /// [default: the host of --public-url when it is a DNS name; none: self-signed]. Its DNS
    /// needs a record for the name and a wildcard `*.NAME` (home web apps).
    #[arg(long)]
    pub domain: Option<String>,
    /// ACME directory URL [default: Let's Encrypt production].
    #[arg(long)]
    pub acme_directory: Option<String>,
    /// Trust root (PEM) of a private ACME server's HTTPS.
    #[arg(long)]
    pub acme_ca_root: Option<PathBuf>,
    /// Contact address for the ACME account.
    #[arg(long)]
    pub acme_email: Option<String>,
}

impl AcmeArgs {
    /// Applies the flags that were given.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(domain) = &self.domain {
            settings.domain = Some(domain.trim_end_matches('.').to_ascii_lowercase());
        }
        if let Some(url) = &self.acme_directory {
            settings.directory = Some(url.clone());
        }
        if let Some(root) = &self.acme_ca_root {
            settings.ca_root = Some(std::path::absolute(root).unwrap_or_else(|_| root.clone()));
        }
        if let Some(email) = &self.acme_email {
            settings.email = Some(email.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_defaults_to_a_public_url_name() {
        let none = Settings::default();
        let cases = [
            ("https://home.example.net", Some("home.example.net")),
            ("https://Home.Example.net:8443/", Some("home.example.net")),
            ("https://203.0.113.1", None),
            ("https://[::1]:443", None),
            ("https://localhost:8443", None),
            ("https://nas.local", None),
            ("https://relay.home.arpa", None),
            ("https://relay", None),
        ];
        for (url, want) in cases {
            assert_eq!(none.effective_domain(url).as_deref(), want, "{url}");
        }
        let set = Settings { domain: Some("vpn.example.org".into()), ..Settings::default() };
        assert_eq!(set.effective_domain("https://203.0.113.1").as_deref(), Some("vpn.example.org"));
        let off = Settings { domain: Some(String::new()), ..Settings::default() };
        assert_eq!(off.effective_domain("https://home.example.net"), None, "an empty domain turns ACME off");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (Settings { domain: Some("-x.example".into()), ..Settings::default() }, "domain"),
            (Settings { domain: Some("nodots".into()), ..Settings::default() }, "domain"),
            (Settings { directory: Some("http://acme".into()), ..Settings::default() }, "directory"),
            (Settings { email: Some("nobody".into()), ..Settings::default() }, "email"),
            (Settings { renew_after_secs: Some(0), ..Settings::default() }, "renew_after_secs"),
            (Settings { renew_after_secs: Some(MAX_RENEW_AFTER_SECS + 1), ..Settings::default() }, "renew_after_secs"),
            (Settings { renew_after_secs: Some(u64::MAX), ..Settings::default() }, "renew_after_secs"),
        ];
        for (settings, field) in cases {
            assert_eq!(settings.check().map_err(|(f, _)| f), Err(field));
        }
    }
}
