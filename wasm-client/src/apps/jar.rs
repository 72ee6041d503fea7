//! One cookie jar per app (per LAN target), so a LAN `Set-Cookie` never becomes a real browser
//! cookie (RFC 6265, as far as one host-only origin needs it).
//!
//! Parsing is the `cookie` crate's (but `Max-Age` and `Expires`, read as browsers read them);
//! the store is small: cookies are host-only to the target (a `Domain` other than the target's
//! address is refused), matched by path (RFC 6265 5.1.4), expire by `Max-Age` (preferred) or
//! `Expires`, `HttpOnly` ones are hidden from scripts and cannot be set or replaced by them,
//! `Secure` is accepted (app origins are https). The jar holds
//! at most [`MAX_COOKIES`] cookies of at most [`MAX_COOKIE_BYTES`] each, and at most
//! [`MAX_JAR_BYTES`] in all; when full, the oldest go. A `Path` longer than [`MAX_PATH_BYTES`]
//! is ignored (RFC 6265bis 5.6), as browsers do. Every app's jar is saved in the one
//! `localStorage` of the tunnel origin, so these bounds keep one app from filling it for the
//! others. Time comes in as `now` (Unix seconds); the jar reads no clock. It saves to and loads
//! from JSON (the page keeps it in `localStorage`).

use super::cookie_date;
use super::AppError;
use cookie::Cookie;
use hometun_shared::app_name::AppTarget;
use serde::{Deserialize, Serialize};

/// At most this many cookies per app (browsers keep at least 50 per domain; 180 is Chromium's).
pub const MAX_COOKIES: usize = 180;
/// At most this many bytes of name and value per cookie (RFC 6265 asks for at least 4096).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// A `Path` attribute longer than this is ignored (the default path applies), as browsers do.
pub const MAX_PATH_BYTES: usize = 1024;
/// At most this many bytes of names, values and paths per app in all (a request carries only
/// the cookies of its path, and LAN servers refuse heads much larger than this anyway).
pub const MAX_JAR_BYTES: usize = 128 * 1024;

/// A cookie a script may see: `(name, value, path)`.
pub type ScriptCookie = (String, String, String);

/// The cookies of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jar {
    target: AppTarget,
    cookies: Vec<Stored>,
    next_seq: u64,
}

/// One cookie as kept (and saved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    name: String,
    value: String,
    path: String,
    /// Unix seconds; `None` for a session cookie.
    expires: Option<i64>,
    http_only: bool,
    secure: bool,
    /// Creation order (RFC 6265 keeps the creation time when a cookie is replaced).
    seq: u64,
}

/// The saved form.
#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    cookies: Vec<Stored>,
}

/// Who sets a cookie: the LAN server (HTTP) may set HttpOnly ones, a script may not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Http,
    Script,
}

impl Jar {
    /// An empty jar for the app at `target`.
    pub fn new(target: AppTarget) -> Self {
        Self { target, cookies: Vec::new(), next_seq: 0 }
    }

    /// The app this jar belongs to.
    pub fn target(&self) -> AppTarget {
        self.target
    }

    /// Stores one `Set-Cookie` header value received for a request to `request_path`. Returns
    /// whether the jar changed; a value that does not parse, names another domain or is too large
    /// is ignored (as a browser does).
    pub fn store_set_cookie(&mut self, set_cookie: &str, request_path: &str, now: i64) -> bool {
        self.store(set_cookie, request_path, now, Source::Http).unwrap_or(false)
    }

    /// Stores a `document.cookie = "…"` string set by a script on a page at `document_path`.
    /// Never HttpOnly, and cannot replace an HttpOnly cookie. Returns whether the jar changed.
    pub fn set_from_script(&mut self, text: &str, document_path: &str, now: i64) -> Result<bool, AppError> {
        self.store(text, document_path, now, Source::Script)
    }

    /// The `Cookie` request header for a request to `path` (longer paths first, then older
    /// cookies first), or `None` when no cookie matches.
    pub fn cookie_header(&self, path: &str, now: i64) -> Option<String> {
        let pairs: Vec<String> = self
            .matching(path, now)
            .map(|c| if c.name.is_empty() { c.value.clone() } else { format!("{}={}", c.name, c.value) })
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The cookies a script on a page at `path` sees (no HttpOnly ones), in `Cookie` header order.
    pub fn script_cookies(&self, path: &str, now: i64) -> Vec<ScriptCookie> {
        self.matching(path, now)
            .filter(|c| !c.http_only)
            .map(|c| (c.name.clone(), c.value.clone(), c.path.clone()))
            .collect()
    }

    /// Every cookie scripts may see, on any path (no HttpOnly ones), in `Cookie` header order:
    /// what the jar broadcasts to the app's pages, each of which picks those of its own path.
    pub fn script_cookies_on_every_path(&self, now: i64) -> Vec<ScriptCookie> {
        self.in_header_order(now, |_| true)
            .filter(|c| !c.http_only)
            .map(|c| (c.name.clone(), c.value.clone(), c.path.clone()))
            .collect()
    }

    /// How many cookies the jar holds (expired ones included until the next change).
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The jar as JSON, to keep in `localStorage` (expired cookies are left out).
    pub fn to_json(&self, now: i64) -> String {
        let cookies = self.cookies.iter().filter(|c| !c.expired(now)).cloned().collect();
        serde_json::to_string(&Saved { version: 1, cookies }).unwrap_or_default()
    }

    /// A jar for `target` from [`Self::to_json`]'s output. Fails on anything else; cookies over
    /// the limits are dropped.
    pub fn from_json(target: AppTarget, json: &str) -> Result<Self, AppError> {
        let saved: Saved = serde_json::from_str(json).map_err(|e| AppError::SavedJar(e.to_string()))?;
        if saved.version != 1 {
            return Err(AppError::SavedJar(format!("version {} is not 1", saved.version)));
        }
        let mut cookies: Vec<Stored> = saved
            .cookies
            .into_iter()
            .filter(|c| {
                c.name.len() + c.value.len() <= MAX_COOKIE_BYTES
                    && c.path.starts_with('/')
                    && c.path.len() <= MAX_PATH_BYTES
            })
            .collect();
        cookies.sort_by_key(|c| c.seq);
        let next_seq = cookies.last().map_or(0, |c| c.seq + 1);
        let mut jar = Self { target, cookies, next_seq };
        jar.evict_oldest();
        Ok(jar)
    }

    fn matching(&self, path: &str, now: i64) -> impl Iterator<Item = &Stored> {
        let path = path.split(['?', '#']).next().unwrap_or("/");
        self.in_header_order(now, |c| path_matches(path, &c.path))
    }

    /// The live cookies `keep` takes, longer paths first, then older ones first (RFC 6265's
    /// `Cookie` header order).
    fn in_header_order(&self, now: i64, keep: impl Fn(&Stored) -> bool) -> std::vec::IntoIter<&Stored> {
        let mut found: Vec<&Stored> = self.cookies.iter().filter(|c| !c.expired(now) && keep(c)).collect();
        found.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.seq.cmp(&b.seq)));
        found.into_iter()
    }

    fn store(&mut self, text: &str, request_path: &str, now: i64, source: Source) -> Result<bool, AppError> {
        let cookie = Cookie::parse(text).map_err(|_| AppError::CookieRefused("not name=value"))?;
        if cookie.name().len() + cookie.value().len() > MAX_COOKIE_BYTES {
            return Err(AppError::CookieRefused("larger than 4 KiB"));
        }
        if let Some(domain) = cookie.domain() {
            if !domain.eq_ignore_ascii_case(&self.target.addr.ip().to_string()) {
                return Err(AppError::CookieRefused("Domain is not this app's host"));
            }
        }
        let path = match cookie.path() {
            Some(path) if path.starts_with('/') && path.len() <= MAX_PATH_BYTES => path.to_owned(),
            _ => default_path(request_path),
        };
        if source == Source::Script && cookie.http_only() == Some(true) {
            // As browsers do (RFC 6265bis 5.7): a script cannot make an HttpOnly cookie.
            return Err(AppError::CookieRefused("HttpOnly, written by a script"));
        }
        let expires = match (max_age_attribute(text), expires_attribute(text)) {
            (Some(seconds), _) => Some(now.saturating_add(seconds)),
            (None, Some(at)) => Some(at),
            (None, None) => None,
        };
        let http_only = source == Source::Http && cookie.http_only().unwrap_or(false);
        let existing = self.cookies.iter().position(|c| c.name == cookie.name() && c.path == path);
        if source == Source::Script && existing.is_some_and(|i| self.cookies[i].http_only) {
            return Err(AppError::CookieRefused("an HttpOnly cookie of that name exists"));
        }
        let seq = match existing {
            Some(i) => self.cookies.remove(i).seq,
            None => {
                self.next_seq += 1;
                self.next_seq - 1
            }
        };
        if expires.is_some_and(|at| at <= now) {
            return Ok(existing.is_some());
        }
        let stored = Stored {
            name: cookie.name().to_owned(),
            value: cookie.value().to_owned(),
            path,
            expires,
            http_only,
            secure: cookie.secure().unwrap_or(false),
            seq,
        };
        let at = self.cookies.partition_point(|c| c.seq < seq);
        self.cookies.insert(at, stored);
        self.cookies.retain(|c| !c.expired(now));
        self.evict_oldest();
        Ok(true)
    }

    /// Drops the oldest cookies while the jar is over [`MAX_COOKIES`] or [`MAX_JAR_BYTES`].
    fn evict_oldest(&mut self) {
        let mut bytes: usize = self.cookies.iter().map(Stored::bytes).sum();
        let over = self
            .cookies
            .iter()
            .take_while(|c| {
                let over = bytes > MAX_JAR_BYTES;
                if over {
                    bytes -= c.bytes();
                }
                over
            })
            .count()
            .max(self.cookies.len().saturating_sub(MAX_COOKIES));
        self.cookies.drain(..over);
    }
}

impl Stored {
    /// What the cookie counts against [`MAX_JAR_BYTES`].
    fn bytes(&self) -> usize {
        self.name.len() + self.value.len() + self.path.len()
    }

    fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// The last `Max-Age` attribute of a `Set-Cookie` or `document.cookie` string that is one
/// (RFC 6265 5.2.2: digits, or `-` and digits, which is 0), in seconds; an empty or malformed
/// one is ignored, as browsers ignore it (the `cookie` crate reads an empty one as forever).
fn max_age_attribute(text: &str) -> Option<i64> {
    text.split(';')
        .skip(1)
        .filter_map(|attribute| {
            let (name, value) = attribute.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("max-age") {
                return None;
            }
            let value = value.trim();
            let (negative, digits) = value.strip_prefix('-').map_or((false, value), |d| (true, d));
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(if negative { 0 } else { digits.parse().unwrap_or(i64::MAX) })
        })
        .last()
}

/// The last `Expires` attribute of a `Set-Cookie` or `document.cookie` string that is a date
/// as browsers read it ([`cookie_date`]); one that is not is ignored, as they ignore it.
fn expires_attribute(text: &str) -> Option<i64> {
    text.split(';')
        .skip(1)
        .filter_map(|attribute| {
            let (name, value) = attribute.split_once('=')?;
            name.trim().eq_ignore_ascii_case("expires").then(|| cookie_date::parse(value.trim()))?
        })
        .last()
}

/// RFC 6265 5.1.4: the directory of the request path (`/a/b` → `/a`, `/a` → `/`).
fn default_path(request_path: &str) -> String {
    let path = request_path.split(['?', '#']).next().unwrap_or("");
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// RFC 6265 5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn jar() -> Jar {
        Jar::new(AppTarget::http("192.168.0.10:8888".parse().unwrap()))
    }

    #[test]
    fn a_login_cookie_comes_back_on_later_requests_but_not_to_scripts() {
        let mut jar = jar();
        assert!(jar.store_set_cookie("session=abc123; Path=/; HttpOnly; Secure; SameSite=Lax", "/login", NOW));
        assert!(jar.store_set_cookie("_xsrf=tok; Path=/", "/login", NOW));
        assert_eq!(jar.cookie_header("/tree?x=1", NOW).as_deref(), Some("session=abc123; _xsrf=tok"));
        assert_eq!(jar.script_cookies("/tree", NOW), vec![("_xsrf".into(), "tok".into(), "/".into())]);
    }

    #[test]
    fn paths_default_to_the_request_directory_and_match_by_segment() {
        let mut jar = jar();
        jar.store_set_cookie("a=1", "/app/login?next=/", NOW);
        jar.store_set_cookie("b=2; Path=/app/api", "/", NOW);
        jar.store_set_cookie("c=3; Path=/", "/", NOW);
        assert_eq!(jar.cookie_header("/app/api/x", NOW).as_deref(), Some("b=2; a=1; c=3"), "longer paths first");
        assert_eq!(jar.cookie_header("/app", NOW).as_deref(), Some("a=1; c=3"));
        assert_eq!(jar.cookie_header("/application", NOW).as_deref(), Some("c=3"), "no match inside a segment");
        assert_eq!(jar.cookie_header("/", NOW).as_deref(), Some("c=3"));
    }

    #[test]
    fn cookies_expire_by_max_age_or_expires_and_are_deleted_by_past_dates() {
        let mut jar = jar();
        jar.store_set_cookie("short=1; Max-Age=60; Expires=Wed, 01 Jan 2100 00:00:00 GMT", "/", NOW);
        jar.store_set_cookie("dated=2; Expires=Wed, 01 Jan 2031 00:00:00 GMT", "/", NOW);
        assert_eq!(jar.cookie_header("/", NOW + 59).as_deref(), Some("short=1; dated=2"));
        assert_eq!(jar.cookie_header("/", NOW + 60).as_deref(), Some("dated=2"), "Max-Age wins over Expires");
        assert_eq!(jar.cookie_header("/", 1_924_992_000), None, "2031 has come");
        assert!(jar.store_set_cookie("dated=; Max-Age=0", "/", NOW), "a logout deletes");
        assert_eq!(jar.cookie_header("/", NOW).as_deref(), Some("short=1"));
        // An empty or malformed Max-Age is no Max-Age: Expires decides, or the session's end.
        jar.store_set_cookie("empty=1; Max-Age=; Expires=Wed, 01 Jan 2031 00:00:00 GMT", "/", NOW);
        jar.store_set_cookie("word=1; Max-Age=soon", "/", NOW);
        jar.store_set_cookie("gone=1; Max-Age=-5; Expires=Wed, 01 Jan 2100 00:00:00 GMT", "/", NOW);
        assert_eq!(jar.cookie_header("/", NOW + 60).as_deref(), Some("empty=1; word=1"), "a negative one deletes");
        assert_eq!(jar.cookie_header("/", 1_924_992_000).as_deref(), Some("word=1"), "2031 has come");
    }

    #[test]
    fn cookies_of_other_paths_reach_the_pages_of_those_paths() {
        // A router's login script at /cgi-bin/login.cgi sets a cookie without a Path: its path
        // is the document's directory, as a browser makes it; the broadcast carries it (and an
        // /admin one) for the pages there to pick.
        let mut jar = jar();
        jar.store_set_cookie("sid=s1; Path=/", "/", NOW);
        assert_eq!(jar.set_from_script("step=2", "/cgi-bin/login.cgi", NOW), Ok(true));
        assert_eq!(jar.set_from_script("tab=wifi; path=/admin", "/", NOW), Ok(true));
        assert_eq!(
            jar.script_cookies_on_every_path(NOW),
            vec![
                ("step".into(), "2".into(), "/cgi-bin".into()),
                ("tab".into(), "wifi".into(), "/admin".into()),
                ("sid".into(), "s1".into(), "/".into()),
            ]
        );
        assert_eq!(jar.cookie_header("/cgi-bin/status.cgi", NOW).as_deref(), Some("step=2; sid=s1"));
        // Deleting it from a script on that page finds it.
        assert_eq!(jar.set_from_script("step=; max-age=0", "/cgi-bin/login.cgi", NOW), Ok(true));
        assert_eq!(jar.cookie_header("/cgi-bin/status.cgi", NOW).as_deref(), Some("sid=s1"));
    }

    #[test]
    fn expires_dates_written_as_browsers_take_them_delete_and_expire() {
        let mut jar = jar();
        jar.store_set_cookie("x=1; Path=/", "/", NOW);
        // The deletion line copied from everywhere, with UTC where the HTTP date says GMT.
        assert_eq!(jar.set_from_script("x=; expires=Thu, 01 Jan 1970 00:00:00 UTC; path=/", "/", NOW), Ok(true));
        assert_eq!(jar.cookie_header("/", NOW), None, "deleted, not kept empty");
        // A one-digit day and a two-digit year: expires then (2027-03-05), not at the session's end.
        jar.store_set_cookie("y=2; Path=/; Expires=Fri, 5-Mar-27 00:00:00 GMT", "/", NOW);
        assert_eq!(jar.cookie_header("/", NOW).as_deref(), Some("y=2"));
        assert_eq!(jar.cookie_header("/", 1_804_204_800).as_deref(), None, "gone on 2027-03-05");
        // Not a date: ignored, a session cookie.
        jar.store_set_cookie("z=3; Path=/; Expires=never", "/", NOW);
        assert_eq!(jar.cookie_header("/", 4_000_000_000).as_deref(), Some("z=3"));
    }

    #[test]
    fn scripts_cannot_set_or_replace_http_only_cookies() {
        let mut jar = jar();
        jar.store_set_cookie("session=abc; HttpOnly", "/", NOW);
        assert_eq!(
            jar.set_from_script("session=evil", "/", NOW),
            Err(AppError::CookieRefused("an HttpOnly cookie of that name exists"))
        );
        assert_eq!(
            jar.set_from_script("theme=dark; path=/; httponly", "/", NOW),
            Err(AppError::CookieRefused("HttpOnly, written by a script")),
            "ignored, as browsers ignore it"
        );
        assert_eq!(jar.set_from_script("theme=dark; path=/", "/", NOW), Ok(true));
        assert_eq!(jar.script_cookies("/", NOW), vec![("theme".into(), "dark".into(), "/".into())]);
        assert_eq!(jar.cookie_header("/", NOW).as_deref(), Some("session=abc; theme=dark"));
        assert!(jar.set_from_script("no pair", "/", NOW).is_err());
    }

    #[test]
    fn other_domains_and_oversized_cookies_are_ignored_and_the_count_is_capped() {
        let mut jar = jar();
        assert!(!jar.store_set_cookie("a=1; Domain=example.com", "/", NOW));
        assert!(jar.store_set_cookie("b=1; Domain=192.168.0.10", "/", NOW));
        assert!(!jar.store_set_cookie(&format!("big={}", "x".repeat(MAX_COOKIE_BYTES)), "/", NOW));
        for i in 0..MAX_COOKIES + 5 {
            jar.store_set_cookie(&format!("c{i}=v"), "/", NOW);
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        let header = jar.cookie_header("/", NOW).unwrap();
        assert!(header.starts_with("c5=v;") && header.ends_with(&format!("c{}=v", MAX_COOKIES + 4)), "the oldest went");
    }

    #[test]
    fn long_paths_are_ignored_and_the_jar_stays_within_its_bytes() {
        let mut jar = jar();
        let long = format!("/{}", "p".repeat(MAX_PATH_BYTES));
        assert!(jar.store_set_cookie(&format!("a=1; Path={long}"), "/app/page", NOW));
        assert_eq!(jar.cookie_header("/app/x", NOW).as_deref(), Some("a=1"), "the default path /app applies");
        assert_eq!(jar.cookie_header(&long, NOW), None);
        let value = "v".repeat(MAX_COOKIE_BYTES - 8);
        for i in 0..MAX_COOKIES {
            jar.store_set_cookie(&format!("c{i:03}={value}; Path=/p{i}"), "/", NOW);
        }
        let kept = MAX_JAR_BYTES / (MAX_COOKIE_BYTES - 8 + 4 + 5);
        assert!((kept - 1..=kept).contains(&jar.len()), "{} cookies of ~4 KiB kept", jar.len());
        assert!(jar.to_json(NOW).len() < MAX_JAR_BYTES + 16 * 1024, "what is saved stays bounded too");
        let newest = format!("c{:03}", MAX_COOKIES - 1);
        assert!(jar.cookie_header(&format!("/p{}", MAX_COOKIES - 1), NOW).is_some_and(|h| h.starts_with(&newest)));
        assert_eq!(jar.cookie_header("/p0", NOW), None, "the oldest went");
        let saved = format!(
            r#"{{"version":1,"cookies":[{{"name":"x","value":"1","path":"{long}","expires":null,"http_only":false,"secure":false,"seq":0}}]}}"#
        );
        assert!(Jar::from_json(jar.target(), &saved).unwrap().is_empty(), "a saved cookie with a long path is dropped");
    }

    #[test]
    fn a_saved_jar_loads_back_without_expired_cookies() {
        let mut jar = jar();
        jar.store_set_cookie("session=abc; HttpOnly", "/", NOW);
        jar.store_set_cookie("old=1; Max-Age=10", "/", NOW);
        jar.store_set_cookie("theme=dark; Path=/ui", "/", NOW);
        let loaded = Jar::from_json(jar.target(), &jar.to_json(NOW + 20)).unwrap();
        assert_eq!(loaded.cookie_header("/ui", NOW + 20).as_deref(), Some("theme=dark; session=abc"));
        assert_eq!(loaded.script_cookies("/", NOW + 20), vec![]);
        assert!(matches!(Jar::from_json(jar.target(), "{\"cookies\": 3}"), Err(AppError::SavedJar(_))));
        assert!(matches!(Jar::from_json(jar.target(), "{\"version\":2,\"cookies\":[]}"), Err(AppError::SavedJar(_))));
    }
}
