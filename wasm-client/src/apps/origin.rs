//! App origins: which browser origin is which LAN `host:port`, and URLs mapped both ways.
//!
//! Under the tunnel origin `https://home.test:8443` the LAN service `192.168.0.10:8123` is the
//! app origin `https://h-192-168-0-10-p8123.home.test:8443`. The check is strict (lower case,
//! one label, the tunnel's own host and port, a canonical name: `hometun_shared::app_name`), so
//! one target has exactly one origin and a page cannot pick another target by spelling.
//! LAN URLs are `http://A.B.C.D[:PORT]` (`ws://` for WebSockets), or `https://` (`wss://`) for an
//! app the LAN host serves over TLS itself (`h-A-B-C-D-sPORT`); path, query and fragment are
//! copied byte for byte.

use super::AppError;
use hometun_shared::app_name::{self, AppTarget};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The app origins under one tunnel origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOrigins {
    /// The tunnel's host name (lower case).
    host: String,
    /// `:PORT` when the tunnel origin has one, else empty.
    port_suffix: String,
}

impl AppOrigins {
    /// The app origins under `tunnel_origin` (`https://home.test` or `https://home.test:8443`,
    /// a trailing `/` allowed). Fails for other schemes, bare IP addresses (app names need a
    /// domain), upper case, paths and user info.
    pub fn new(tunnel_origin: &str) -> Result<Self, AppError> {
        let refuse = || AppError::TunnelOrigin(tunnel_origin.to_owned());
        let authority = tunnel_origin.strip_prefix("https://").ok_or_else(refuse)?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(parse_port(port).ok_or_else(refuse)?)),
            None => (authority, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.len() > 200 || !host.split('.').all(label_ok) || host.parse::<Ipv4Addr>().is_ok() {
            return Err(refuse());
        }
        let port_suffix = match port {
            Some(443) | None => String::new(),
            Some(port) => format!(":{port}"),
        };
        Ok(Self { host: host.to_owned(), port_suffix })
    }

    /// The tunnel origin, normalised (`https://home.test`, `https://home.test:8443`).
    pub fn tunnel_origin(&self) -> String {
        format!("https://{}{}", self.host, self.port_suffix)
    }

    /// The app origin of `target`: `https://h-A-B-C-D-pPORT.HOST[:PORT]` (`-sPORT` for HTTPS).
    pub fn origin_of(&self, target: AppTarget) -> String {
        format!("https://{}.{}{}", app_name::label(target), self.host, self.port_suffix)
    }

    /// The LAN target of an app origin (strict: exactly what [`Self::origin_of`] makes).
    pub fn target_of(&self, origin: &str) -> Result<AppTarget, AppError> {
        let refuse = || AppError::NotAppOrigin(origin.to_owned());
        let rest = origin.strip_prefix("https://").ok_or_else(refuse)?;
        let name = rest.strip_suffix(self.port_suffix.as_str()).ok_or_else(refuse)?;
        if name.contains([':', '/']) {
            return Err(refuse());
        }
        let target = app_name::decode(name, &self.host).map_err(|e| match e {
            app_name::NameError::NotUnderDomain => refuse(),
            other => AppError::Name(other),
        })?;
        Ok(target)
    }

    /// Maps a LAN URL (`http://A.B.C.D[:P]/path?q#f`, `ws://…`, `https://…`, `wss://…`) to the
    /// same URL on its app origin (`https://…`, `wss://…`). The path, query and fragment are kept byte for byte;
    /// `http://A.B.C.D` alone becomes the origin with `/`.
    pub fn app_url(&self, lan_url: &str) -> Result<String, AppError> {
        let (secure_scheme, target, rest) = parse_lan_url(lan_url)?;
        let origin = self.origin_of(target);
        let origin = origin.strip_prefix("https").unwrap_or(&origin);
        Ok(format!("{secure_scheme}{origin}{}", if rest.is_empty() { "/" } else { rest }))
    }

    /// Maps a URL on an app origin (`https://h-…/path`, `wss://…`) back to the LAN URL
    /// (`http://A.B.C.D[:P]/path`, `ws://…`; `https://`, `wss://` for an HTTPS app), for
    /// `Origin`, `Referer` and similar headers.
    pub fn lan_url(&self, app_url: &str) -> Result<String, AppError> {
        let (websocket, origin_rest) = if let Some(rest) = app_url.strip_prefix("https://") {
            (false, rest)
        } else if let Some(rest) = app_url.strip_prefix("wss://") {
            (true, rest)
        } else {
            return Err(AppError::NotAppOrigin(app_url.to_owned()));
        };
        let end = origin_rest.find(['/', '?', '#']).unwrap_or(origin_rest.len());
        let (authority, rest) = origin_rest.split_at(end);
        let target = self.target_of(&format!("https://{authority}"))?;
        let scheme = if websocket { target.ws_scheme() } else { target.scheme() };
        Ok(format!("{scheme}://{}{}", target.authority(), if rest.is_empty() { "/" } else { rest }))
    }

    /// The LAN origin of an app origin (`https://h-192-168-0-10-p80.…` → `http://192.168.0.10`).
    pub fn lan_origin(&self, app_origin: &str) -> Result<String, AppError> {
        Ok(self.target_of(app_origin)?.lan_origin())
    }
}

/// The LAN target of a LAN URL (`http://A.B.C.D[:P]/…`, `https://…`, `ws://…`, `wss://…`).
pub fn lan_target(url: &str) -> Result<AppTarget, AppError> {
    Ok(parse_lan_url(url)?.1)
}

/// Splits a LAN URL into the scheme its app URL gets (`https` or `wss`), the target and the
/// rest (path, query, fragment; possibly empty).
fn parse_lan_url(url: &str) -> Result<(&'static str, AppTarget, &str), AppError> {
    let refuse = || AppError::NotLanUrl(url.to_owned());
    let scheme_end = url.find("://").ok_or_else(refuse)?;
    let (secure_scheme, tls) = match url[..scheme_end].to_ascii_lowercase().as_str() {
        "http" => ("https", false),
        "ws" => ("wss", false),
        "https" => ("https", true),
        "wss" => ("wss", true),
        _ => return Err(refuse()),
    };
    let after = &url[scheme_end + 3..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, parse_port(port).ok_or_else(refuse)?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    let ip: Ipv4Addr = host.parse().map_err(|_| refuse())?;
    Ok((secure_scheme, AppTarget { addr: SocketAddrV4::new(ip, port), tls }, rest))
}

/// A port 1-65535 in plain decimal.
fn parse_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<u16>().ok().filter(|p| digits && *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> AppTarget {
        AppTarget::http(text.parse().unwrap())
    }

    #[test]
    fn an_app_origin_names_its_target_under_the_tunnels_host_and_port() {
        let plain = AppOrigins::new("https://home.test").unwrap();
        let ported = AppOrigins::new("https://home.test:8443/").unwrap();
        assert_eq!(plain.origin_of(target("192.168.0.10:8123")), "https://h-192-168-0-10-p8123.home.test");
        assert_eq!(ported.origin_of(target("192.168.0.10:80")), "https://h-192-168-0-10-p80.home.test:8443");
        assert_eq!(ported.tunnel_origin(), "https://home.test:8443");
        assert_eq!(ported.target_of("https://h-192-168-0-10-p80.home.test:8443"), Ok(target("192.168.0.10:80")));
        assert_eq!(plain.target_of("https://h-192-168-0-1-p443.home.test"), Ok(target("192.168.0.1:443")));
        assert_eq!(AppOrigins::new("https://home.test:443").unwrap(), plain, "the default port is left out");
    }

    #[test]
    fn only_the_exact_spelling_is_an_app_origin() {
        let origins = AppOrigins::new("https://home.test:8443").unwrap();
        let not_app = [
            "https://h-192-168-0-10-p80.home.test",        // port missing
            "https://h-192-168-0-10-p80.home.test:443",    // other port
            "http://h-192-168-0-10-p80.home.test:8443",    // not https
            "https://h-192-168-0-10-p80.evil.test:8443",   // other host
            "https://x.h-192-168-0-10-p80.home.test:8443", // two labels
            "https://home.test:8443",                      // the tunnel origin itself
            "https://h-192-168-0-10-p80.home.test:8443/",  // not a bare origin
            "null",
        ];
        for origin in not_app {
            assert_eq!(origins.target_of(origin), Err(AppError::NotAppOrigin(origin.into())), "{origin}");
        }
        for origin in ["https://H-192-168-0-10-p80.home.test:8443", "https://h-192-168-0-010-p80.home.test:8443"] {
            assert_eq!(origins.target_of(origin), Err(AppError::Name(app_name::NameError::Malformed)), "{origin}");
        }
        for tunnel in [
            "http://home.test",
            "https://Home.test",
            "https://192.168.0.2",
            "https://home.test:0",
            "https://a@home.test",
            "https://home.test/x",
            "https://",
        ] {
            assert!(AppOrigins::new(tunnel).is_err(), "{tunnel}");
        }
    }

    #[test]
    fn lan_urls_map_to_app_urls_and_back_byte_for_byte() {
        let origins = AppOrigins::new("https://home.test:8443").unwrap();
        let cases = [
            (
                "http://192.168.0.10:8123/api/states?x=%20y#top",
                "https://h-192-168-0-10-p8123.home.test:8443/api/states?x=%20y#top",
            ),
            ("http://192.168.0.10/", "https://h-192-168-0-10-p80.home.test:8443/"),
            (
                "ws://192.168.0.10:8888/api/kernels/1/channels",
                "wss://h-192-168-0-10-p8888.home.test:8443/api/kernels/1/channels",
            ),
            ("http://192.168.0.10:80?q", "https://h-192-168-0-10-p80.home.test:8443?q"),
            ("https://192.168.0.5:8006/#v1", "https://h-192-168-0-5-s8006.home.test:8443/#v1"),
            ("https://192.168.0.5:443/x", "https://h-192-168-0-5-s443.home.test:8443/x"),
            ("wss://192.168.0.5:8006/ws", "wss://h-192-168-0-5-s8006.home.test:8443/ws"),
        ];
        for (lan, app) in cases {
            assert_eq!(origins.app_url(lan).as_deref(), Ok(app), "{lan}");
            let canonical = lan.replace(":80?", "?").replace(":443/", "/");
            assert_eq!(origins.lan_url(app).as_deref(), Ok(canonical.as_str()), "{app}");
        }
        assert_eq!(
            origins.app_url("HTTP://192.168.0.10:8080").as_deref(),
            Ok("https://h-192-168-0-10-p8080.home.test:8443/")
        );
        assert_eq!(
            origins.lan_origin("https://h-192-168-0-10-p8080.home.test:8443").as_deref(),
            Ok("http://192.168.0.10:8080")
        );
        assert_eq!(
            origins.lan_origin("https://h-192-168-0-5-s8006.home.test:8443").as_deref(),
            Ok("https://192.168.0.5:8006")
        );
        assert_eq!(origins.app_url("https://192.168.0.5").as_deref(), Ok("https://h-192-168-0-5-s443.home.test:8443/"));
        for not_lan in [
            "ftp://192.168.0.10/",
            "http://nas.local/",
            "http://192.168.0.010/",
            "http://192.168.0.10:0/",
            "http://192.168.0.10:99999/",
            "/relative",
            "http://user@192.168.0.10/",
        ] {
            assert_eq!(origins.app_url(not_lan), Err(AppError::NotLanUrl(not_lan.into())), "{not_lan}");
        }
        assert!(origins.lan_url("https://home.test:8443/").is_err(), "the launcher is no app");
    }
}
