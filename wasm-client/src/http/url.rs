//! `http://` URLs of home hosts: parsing and resolving redirect targets.
//!
//! Only plain `http` is carried (the tunnel already encrypts; TLS to the LAN host would need a
//! TLS stack in the page). Hosts are IPv4 literals or names resolved through the pushed DNS.

use core::fmt;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The scheme is not `http`.
    #[error("only http:// URLs of home hosts can be opened through the tunnel (got {0:?})")]
    UnsupportedScheme(String),
    /// No host after `http://`.
    #[error("URL has no host")]
    MissingHost,
    /// The port is not a number from 1 to 65535.
    #[error("URL port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// Credentials, IPv6 literals and spaces are not supported.
    #[error("URL {0:?} is not supported (no user:password@, IPv6 literals or spaces)")]
    Unsupported(String),
}

/// A parsed `http://host[:port]/path?query` URL (the fragment is dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or IPv4 literal, lower-cased.
    pub host: String,
    /// TCP port (80 when absent).
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub target: String,
}

impl HttpUrl {
    /// Parses an absolute URL. A URL without a scheme (`192.168.0.10/x`) is taken as `http://`.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let text = text.trim();
        let rest = match text.find("://") {
            Some(at) => {
                let scheme = &text[..at];
                if !scheme.eq_ignore_ascii_case("http") {
                    return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
                }
                &text[at + 3..]
            }
            None => text,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        if authority.contains(['@', '[', ' ']) || target.contains(' ') {
            return Err(UrlError::Unsupported(text.to_owned()));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| UrlError::BadPort(port.to_owned()))?;
                if port == 0 {
                    return Err(UrlError::BadPort("0".into()));
                }
                (host, port)
            }
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Ok(Self { host: host.to_ascii_lowercase(), port, target })
    }

    /// Resolves a `Location` header (absolute, scheme-relative, absolute-path or relative).
    pub fn join(&self, location: &str) -> Result<Self, UrlError> {
        let location = location.trim();
        if location.contains("://") {
            return Self::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Self::parse(&format!("http://{rest}"));
        }
        let mut next = self.clone();
        next.target = if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path())
        } else {
            let dir = match self.path().rfind('/') {
                Some(at) => &self.path()[..=at],
                None => "/",
            };
            format!("{dir}{location}")
        };
        next.target = next.target.split('#').next().unwrap_or("/").to_owned();
        Ok(next)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The value for the `Host` header (port only when not 80).
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same origin as `other` (host and port)?
    pub fn same_origin(&self, other: &Self) -> bool {
        self.host == other.host && self.port == other.port
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap()
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_lan_url_splits_into_host_port_and_target() {
        assert_eq!(url("http://192.168.0.10/"), HttpUrl { host: "192.168.0.10".into(), port: 80, target: "/".into() });
        assert_eq!(
            url("HTTP://NAS.lan:8080/a/b?c=d#top"),
            HttpUrl { host: "nas.lan".into(), port: 8080, target: "/a/b?c=d".into() }
        );
        assert_eq!(url("192.168.0.10").target, "/");
        assert_eq!(url("http://pi?x=1").target, "/?x=1");
        assert_eq!(url("http://pi:81/x").to_string(), "http://pi:81/x");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn other_schemes_and_odd_authorities_are_refused() {
        assert_eq!(HttpUrl::parse("https://nas/"), Err(UrlError::UnsupportedScheme("https".into())));
        assert_eq!(HttpUrl::parse("http:///x"), Err(UrlError::MissingHost));
        assert_eq!(HttpUrl::parse("http://nas:99999/"), Err(UrlError::BadPort("99999".into())));
        assert_eq!(HttpUrl::parse("http://nas:0/"), Err(UrlError::BadPort("0".into())));
        assert!(matches!(HttpUrl::parse("http://u:p@nas/"), Err(UrlError::Unsupported(_))));
        assert!(matches!(HttpUrl::parse("http://[::1]/"), Err(UrlError::Unsupported(_))));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn redirect_targets_resolve_like_a_browser() {
        let base = url("http://nas:8080/admin/index.html?x=1");
        assert_eq!(base.join("/login").unwrap().to_string(), "http://nas:8080/login");
        assert_eq!(base.join("login.html").unwrap().to_string(), "http://nas:8080/admin/login.html");
        assert_eq!(base.join("?y=2").unwrap().to_string(), "http://nas:8080/admin/index.html?y=2");
        assert_eq!(base.join("http://pi/").unwrap().to_string(), "http://pi/");
        assert_eq!(base.join("//pi:81/a").unwrap().to_string(), "http://pi:81/a");
        assert!(base.join("https://example.com/").is_err());
    }
}
