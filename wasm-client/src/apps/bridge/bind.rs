//! Which LAN target an app origin stands for, and the app origin URL of a LAN URL, relative to
//! the tunnel origin `T` (the page's own `location.origin`).
//!
//! An app origin is `SCHEME://h-A-B-C-D-pPORT.HOST[:port]` where `SCHEME://HOST[:port]` is `T`
//! exactly: same scheme, same port, one canonical app label (`hometun_shared::app_name`) in
//! front of `T`'s host. Nothing else binds a port.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::http::HttpUrl;

/// Why an origin or URL has no app origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The text is not a bare `scheme://host[:port]` origin.
    #[error("{0:?} is not an origin (scheme://host[:port], nothing after it)")]
    NotAnOrigin(String),
    /// The page's origin is an IP address or has no dot: app origins need the relay's domain.
    #[error("home web apps need the hometun page on a domain name (this page is on {0})")]
    NoDomain(String),
    /// The origin is not one app label in front of the page's own origin.
    #[error("{origin} is not an app origin of {tunnel} (expected https://h-A-B-C-D-pPORT.<this page's host>)")]
    NotAnAppOrigin {
        /// The origin given.
        origin: String,
        /// The tunnel origin.
        tunnel: String,
    },
    /// The LAN URL cannot be an app (not `http://`, or its host is not an IPv4 address).
    #[error("{0:?} cannot be opened as an app: use http://A.B.C.D[:PORT]/...")]
    NotALanUrl(String),
}

/// A parsed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
}

fn parse_origin(text: &str) -> Result<Origin<'_>, BindError> {
    let bad = || BindError::NotAnOrigin(text.chars().take(200).collect());
    let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "https" | "http") || rest.is_empty() {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            let valid = port.parse::<u16>().is_ok_and(|p| p > 0) && !port.starts_with('0');
            if !valid {
                return Err(bad());
            }
            (host, Some(port))
        }
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !host_ok {
        return Err(bad());
    }
    Ok(Origin { scheme, host, port })
}

fn domain_of<'a>(tunnel: &Origin<'a>, tunnel_text: &str) -> Result<&'a str, BindError> {
    if tunnel.host.parse::<Ipv4Addr>().is_ok() || !tunnel.host.contains('.') {
        return Err(BindError::NoDomain(tunnel_text.to_owned()));
    }
    Ok(tunnel.host)
}

/// The LAN target `app_origin` stands for under `tunnel_origin`.
pub fn target_of(app_origin: &str, tunnel_origin: &str) -> Result<SocketAddrV4, BindError> {
    let tunnel = parse_origin(tunnel_origin)?;
    let domain = domain_of(&tunnel, tunnel_origin)?;
    let app = parse_origin(app_origin)?;
    let refused = || BindError::NotAnAppOrigin {
        origin: app_origin.chars().take(200).collect(),
        tunnel: tunnel_origin.to_owned(),
    };
    if app.scheme != tunnel.scheme || app.port != tunnel.port {
        return Err(refused());
    }
    app_name::decode(app.host, domain).map_err(|_| refused())
}

/// The app origin of `target` under `tunnel_origin`.
pub fn app_origin(target: SocketAddrV4, tunnel_origin: &str) -> Result<String, BindError> {
    let tunnel = parse_origin(tunnel_origin)?;
    let domain = domain_of(&tunnel, tunnel_origin)?;
    let port = tunnel.port.map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{}{port}", tunnel.scheme, app_name::encode(target, domain)))
}

/// The app-origin URL for a LAN URL (`http://192.168.0.10:8080/a?b` →
/// `https://h-192-168-0-10-p8080.DOMAIN/a?b`).
pub fn app_url(lan_url: &str, tunnel_origin: &str) -> Result<String, BindError> {
    let not_lan = || BindError::NotALanUrl(lan_url.chars().take(200).collect());
    let url = HttpUrl::parse(lan_url).map_err(|_| not_lan())?;
    let address: Ipv4Addr = url.host.parse().map_err(|_| not_lan())?;
    let origin = app_origin(SocketAddrV4::new(address, url.port), tunnel_origin)?;
    Ok(format!("{origin}{}", url.target))
}

/// App names (`docs/names.md`); the same grammar as `hometun_shared::app_name`, which replaces
/// this once it is in the tree.
mod app_name {
    use std::net::{Ipv4Addr, SocketAddrV4};

    pub(super) fn encode(target: SocketAddrV4, domain: &str) -> String {
        let [a, b, c, d] = target.ip().octets();
        format!("h-{a}-{b}-{c}-{d}-p{}.{domain}", target.port())
    }

    pub(super) fn decode(name: &str, domain: &str) -> Result<SocketAddrV4, ()> {
        let label = name.strip_suffix(domain).and_then(|r| r.strip_suffix('.')).filter(|l| !l.contains('.'));
        let rest = label.and_then(|l| l.strip_prefix("h-")).ok_or(())?;
        let (address, port) = rest.rsplit_once("-p").ok_or(())?;
        let canonical = |text: &str, max: u32| -> Result<u32, ()> {
            let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
            if !digits || (text.len() > 1 && text.starts_with('0')) {
                return Err(());
            }
            text.parse::<u32>().ok().filter(|v| *v <= max).ok_or(())
        };
        let octets: Vec<&str> = address.split('-').collect();
        let [a, b, c, d] = octets[..] else { return Err(()) };
        let ip = Ipv4Addr::new(
            canonical(a, 255)? as u8,
            canonical(b, 255)? as u8,
            canonical(c, 255)? as u8,
            canonical(d, 255)? as u8,
        );
        let port = canonical(port, 65535)? as u16;
        (port != 0).then(|| SocketAddrV4::new(ip, port)).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "https://home.example.net";

    fn target(text: &str) -> SocketAddrV4 {
        text.parse().unwrap()
    }

    #[test]
    fn an_app_origin_under_the_page_binds_its_target() {
        assert_eq!(target_of("https://h-192-168-0-10-p80.home.example.net", T), Ok(target("192.168.0.10:80")));
        assert_eq!(
            target_of("https://h-192-168-0-20-p8123.home.test:8443", "https://home.test:8443"),
            Ok(target("192.168.0.20:8123"))
        );
    }

    #[test]
    fn every_other_origin_is_refused() {
        let refused = [
            "https://home.example.net",
            "https://h-192-168-0-10-p80.evil.net",
            "https://h-192-168-0-10-p80.home.example.net.evil.net",
            "https://x.h-192-168-0-10-p80.home.example.net",
            "http://h-192-168-0-10-p80.home.example.net",
            "https://h-192-168-0-10-p80.home.example.net:444",
            "https://h-192-168-0-010-p80.home.example.net",
            "https://H-192-168-0-10-P80.home.example.net",
            "https://h-192-168-0-10-p80.home.example.net/",
            "https://h-192-168-0-10-p80.home.example.net/x",
            "null",
            "",
        ];
        for origin in refused {
            assert!(target_of(origin, T).is_err(), "{origin:?} was accepted");
        }
    }

    #[test]
    fn without_a_domain_there_are_no_app_origins() {
        assert_eq!(
            target_of("https://h-192-168-0-10-p80.203.0.113.7", "https://203.0.113.7"),
            Err(BindError::NoDomain("https://203.0.113.7".into()))
        );
        assert!(matches!(app_url("http://192.168.0.10/", "http://127.0.0.1:8000"), Err(BindError::NoDomain(_))));
    }

    #[test]
    fn a_lan_url_maps_to_its_app_url() {
        assert_eq!(
            app_url("http://192.168.0.10:8080/a/b?c=d#top", T).unwrap(),
            "https://h-192-168-0-10-p8080.home.example.net/a/b?c=d"
        );
        assert_eq!(
            app_url("http://192.168.0.1", "https://home.test:8443").unwrap(),
            "https://h-192-168-0-1-p80.home.test:8443/"
        );
        assert!(matches!(app_url("https://192.168.0.10/", T), Err(BindError::NotALanUrl(_))));
        assert!(matches!(app_url("http://nas.lan/", T), Err(BindError::NotALanUrl(_))));
    }
}
