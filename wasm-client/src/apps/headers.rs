//! Header mapping between an app origin and its LAN target.
//!
//! Requests (browser → LAN): `Host` is the target (`:80` left out); `Origin` and `Referer` on
//! app origins become their LAN URLs (others are dropped, so the tunnel origin never leaks);
//! `Cookie` comes from the app's [`Jar`] (the browser's own is dropped: app origins have no real
//! cookies); the browser's `Accept-Encoding` (the HTTP client sends its own: `gzip` when the
//! page can undo it and the request is no `HEAD` or range, see [`asks_for_gzip`], else `identity`, since a synthesized `Response` is
//! not decoded by the browser), hop-by-hop headers and the body framing (`Content-Length`,
//! `Transfer-Encoding`: the HTTP client frames the body it sends) are dropped.
//!
//! Responses (LAN → browser): `Set-Cookie` goes into the jar and is removed; `Location` on a LAN
//! URL is mapped to its app origin (relative ones stay); `Clear-Site-Data`,
//! `Strict-Transport-Security` and hop-by-hop headers are removed; the app's word on who may
//! frame it (CSP `frame-ancestors`, else `X-Frame-Options`) is kept on the app origins, with
//! the launcher added (it frames apps), so another app's page cannot frame it where its own
//! server said no ([`mapped_ancestors`]); the tunnel origin is added to the sources frames may
//! come from (the shim's broker frame); for an HTML document the body gets the shim
//! ([`super::inject`]) and `Content-Length` is dropped. A whole compressed body (asked for, or
//! sent anyway: embedded devices serve their pages gzipped from flash) is decoded before the
//! browser gets it ([`Coding`]): `Content-Encoding` and `Content-Length` are dropped.
//!
//! Header lists are `(name, value)` pairs in order, bounded by [`MAX_HEADERS`] and
//! [`MAX_HEADER_BYTES`].

use super::inject::DOWNLOAD_PATH;
use super::jar::Jar;
use super::origin::AppOrigins;
use super::AppError;

/// At most this many headers in a request or response.
pub const MAX_HEADERS: usize = 200;
/// At most this many bytes of names and values in a request's or response's headers.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Header pairs `(name, value)` in order.
pub type HeaderList = Vec<(String, String)>;

/// Hop-by-hop headers (RFC 9110 7.6.1) and proxy leftovers: never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Response headers that would reach beyond the app (`X-Frame-Options` becomes a
/// `frame-ancestors` that lets the launcher frame the app, in [`map_response`]).
const RESPONSE_REMOVED: [&str; 3] = ["x-frame-options", "clear-site-data", "strict-transport-security"];

/// The request headers to send to the LAN app (the jar's target) for a request to `path`, mapped
/// from the browser's `headers`, with the jar's cookies unless `cross_site` (a form another
/// site posted: a browser sends no `SameSite=Lax` cookies with it). Fails when `path` is no
/// request path ([`check_path`]) or when `headers` exceed the bounds or hold a name or value
/// that HTTP/1.1 cannot carry.
pub fn map_request(
    origins: &AppOrigins,
    jar: &Jar,
    path: &str,
    headers: &[(String, String)],
    cross_site: bool,
    now: i64,
) -> Result<HeaderList, AppError> {
    check_path(path)?;
    check_bounds(headers)?;
    let target = jar.target();
    let connection_listed = connection_tokens(headers);
    let mut out: HeaderList = vec![("Host".to_owned(), target.authority())];
    for (name, value) in headers {
        check_header(name, value)?;
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "host" | "cookie" | "accept-encoding" | "content-length" => {}
            "origin" => {
                if let Ok(lan) = origins.lan_origin(value) {
                    out.push((name.clone(), lan));
                } else if value == "null" {
                    out.push((name.clone(), value.clone()));
                }
            }
            "referer" => {
                if let Ok(lan) = origins.lan_url(value) {
                    out.push((name.clone(), lan));
                }
            }
            _ if HOP_BY_HOP.contains(&lower.as_str()) || connection_listed.contains(&lower) => {}
            _ => out.push((name.clone(), value.clone())),
        }
    }
    if let Some(cookie) = jar.cookie_header(path, now) {
        if !cross_site {
            out.push(("Cookie".to_owned(), cookie));
        }
    }
    Ok(out)
}

/// Whether to ask the LAN app for a gzipped body: when the page can undo it (`decodes`: the
/// browser has `DecompressionStream`), so text crosses the tunnel compressed as it would cross a
/// VPN; but not for a `HEAD` (its answer has no body to decode, and its `Content-Length` and
/// `Content-Encoding` would describe the compressed form, unlike a `GET`'s) nor a request with
/// `Range` in its `headers` (a part of a compressed file cannot be decoded alone, and many
/// servers answer a range of a compressible file with the whole file compressed).
pub fn asks_for_gzip(method: &str, headers: &[(String, String)], decodes: bool) -> bool {
    decodes
        && !method.eq_ignore_ascii_case("HEAD")
        && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("range"))
}

/// A response's headers as the browser gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedResponse {
    /// The headers to hand to the service worker.
    pub headers: HeaderList,
    /// Whether the body is an HTML document that gets the shim ([`super::inject::Injector`]);
    /// `Content-Length` is already dropped then. The headers alone cannot tell whether there is
    /// a body: inject only when [`has_body`] holds too (never into a `HEAD`, `204` or `304`).
    pub inject: bool,
    /// Whether a `Set-Cookie` changed the jar (save it, tell the app's pages).
    pub jar_changed: bool,
    /// The compression to undo on the body (its `Content-Encoding` and `Content-Length` are
    /// dropped already), if any.
    pub decode: Option<Coding>,
}

/// A content coding the page undoes (RFC 9110 8.4.1): what the browser's `DecompressionStream`
/// knows by the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (and its old name `x-gzip`).
    Gzip,
    /// `deflate`: the zlib format.
    Deflate,
}

/// The body's `Content-Encoding`: `Ok(None)` for none (or `identity`), `Ok(Some(coding))` for
/// one coding the page can undo, `Err(())` for any other (several, `br`, `zstd`, …).
fn content_coding(headers: &[(String, String)]) -> Result<Option<Coding>, ()> {
    let mut codings = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-encoding"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
    let coding = match codings.next() {
        None => return Ok(None),
        Some(c) if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => Coding::Gzip,
        Some(c) if c.eq_ignore_ascii_case("deflate") => Coding::Deflate,
        Some(_) => return Err(()),
    };
    if codings.next().is_some() {
        return Err(());
    }
    Ok(Some(coding))
}

/// What a response answers, as far as its mapping cares.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    /// The request's path (with its query): `Set-Cookie`'s default path.
    pub path: &'a str,
    /// The request's `Request.destination` (`document`, `script`, …).
    pub destination: &'a str,
    /// The response has a body ([`has_body`]) that is the whole representation (not a `206`
    /// part): only such a body is decoded or gets the shim.
    pub whole_body: bool,
    /// A fresh random nonce the shim's tag carries ([`super::inject::Injector::new`]); a policy
    /// that allows scripts only by nonce or hash gets it added for the tag.
    pub nonce: &'a str,
}

/// Maps the LAN app's response `headers` to `answering`; `Set-Cookie` values go into `jar`.
/// Fails when `headers` exceed the bounds.
pub fn map_response(
    origins: &AppOrigins,
    jar: &mut Jar,
    answering: &Answering<'_>,
    headers: &[(String, String)],
    now: i64,
) -> Result<MappedResponse, AppError> {
    let Answering { path: request_path, destination, whole_body, nonce } = *answering;
    check_bounds(headers)?;
    let html = headers.iter().any(|(name, value)| name.eq_ignore_ascii_case("content-type") && is_html(value));
    // A body in a coding the page cannot undo passes as it came (and cannot take the shim).
    let coding = content_coding(headers);
    let decode = if whole_body { coding.ok().flatten() } else { None };
    // A page the app sends as a download (`Content-Disposition: attachment`) is saved as it is.
    let download = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-disposition")
            && value.split(';').next().is_some_and(|kind| kind.trim().eq_ignore_ascii_case("attachment"))
    });
    let inject =
        html && whole_body && !download && coding.is_ok() && matches!(destination, "document" | "iframe" | "frame");
    let connection_listed = connection_tokens(headers);
    let scheme = jar.target().scheme();
    let map_source = |source: &str| map_location(origins, scheme, source);
    let mut out = HeaderList::new();
    let mut jar_changed = false;
    let mut ancestors_set = false;
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "set-cookie" => jar_changed |= jar.store_set_cookie(value, request_path, now),
            "location" => out.push((name.clone(), map_location(origins, scheme, value))),
            "content-security-policy" | "content-security-policy-report-only" => {
                let shim = Shim { origin: &origins.origin_of(jar.target()), nonce };
                let tunnel = origins.tunnel_origin();
                if let Some(policy) = mapped_policy(value, &tunnel, inject.then_some(shim), &map_source) {
                    ancestors_set |= lower == "content-security-policy" && has_directive(&policy, "frame-ancestors");
                    out.push((name.clone(), policy));
                }
            }
            "content-length" if inject || decode.is_some() => {}
            "content-encoding" if decode.is_some() => {}
            _ if RESPONSE_REMOVED.contains(&lower.as_str())
                || HOP_BY_HOP.contains(&lower.as_str())
                || connection_listed.contains(&lower) => {}
            _ => out.push((name.clone(), value.clone())),
        }
    }
    // `X-Frame-Options` counts only without a `frame-ancestors` (browsers ignore it then).
    if let (false, Some(ancestors)) = (ancestors_set, frame_options(headers)) {
        let policy = mapped_ancestors(ancestors, &origins.tunnel_origin(), &map_source);
        out.push(("Content-Security-Policy".to_owned(), policy));
    }
    Ok(MappedResponse { headers: out, inject, jar_changed, decode })
}

/// Whether a response to `method` with `status` has a body (RFC 9110 6.4.1): not for `HEAD`,
/// `1xx`, `204` and `304`. A browser `Response` with such a status must have a null body.
pub fn has_body(method: &str, status: u16) -> bool {
    !method.eq_ignore_ascii_case("HEAD") && !matches!(status, 100..=199 | 204 | 304)
}

/// Longest request path (with its query) accepted.
pub const MAX_PATH: usize = 16 * 1024;

/// Fails unless `path` is a request path: `/` first, then printable ASCII without spaces (the
/// browser percent-encodes everything else), at most 16 KiB. The connection and `Host` are the
/// bound target's whatever the path says (`//x/y` is a path there), so an app origin reaches only
/// its own target.
pub fn check_path(path: &str) -> Result<(), AppError> {
    if path.starts_with('/') && path.len() <= MAX_PATH && path.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AppError::BadPath)
    }
}

/// Fails when `headers` has more than [`MAX_HEADERS`] entries or more than
/// [`MAX_HEADER_BYTES`] of names and values.
pub fn check_bounds(headers: &[(String, String)]) -> Result<(), AppError> {
    if headers.len() > MAX_HEADERS {
        return Err(AppError::TooManyHeaders(headers.len()));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(AppError::HeadersTooLarge(bytes));
    }
    Ok(())
}

/// A `Location` value as the browser should follow it: a LAN URL (of any app) on its app
/// origin; relative and other URLs unchanged. `scheme` (`http`, `https`) is the answering app's,
/// for a scheme-relative `//A.B.C.D/…`.
pub fn map_location(origins: &AppOrigins, scheme: &str, location: &str) -> String {
    let absolute = if location.starts_with("//") { format!("{scheme}:{location}") } else { location.to_owned() };
    origins.app_url(&absolute).unwrap_or_else(|_| location.to_owned())
}

/// Whether a `Content-Type` is an HTML document.
fn is_html(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/html"))
}

/// The shim's script tag in a document: where it comes from, and the nonce it carries.
#[derive(Debug, Clone, Copy)]
struct Shim<'a> {
    /// The app origin (the tag's `src` is `/__ht/shim.js` there).
    origin: &'a str,
    nonce: &'a str,
}

/// The policy with its `frame-ancestors` mapped ([`mapped_ancestors`]) and with `tunnel`
/// allowed as a frame source (added to `frame-src`, else to `child-src`, else a `frame-src`
/// with `default-src`'s sources and `tunnel`; a policy with none of them allows every frame
/// already), and, for a document that gets the `shim`, that script allowed ([`allow_shim`]) and
/// the frame its download links load in ([`DOWNLOAD_PATH`] on the app origin); `None` when
/// nothing is left. `map_source` maps a LAN URL to its app origin's.
fn mapped_policy(
    policy: &str,
    tunnel: &str,
    shim: Option<Shim<'_>>,
    map_source: &dyn Fn(&str) -> String,
) -> Option<String> {
    let mut kept: Vec<String> = policy
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            if directive_name(d) == "frame-ancestors" {
                mapped_ancestors(d, tunnel, map_source)
            } else {
                d.to_owned()
            }
        })
        .collect();
    let download = shim.map(|shim| format!("{}{DOWNLOAD_PATH}", shim.origin));
    let with_frames = |directive: &str| {
        let directive = with_source(directive, tunnel);
        download.as_deref().map_or(directive.clone(), |download| with_source(&directive, download))
    };
    if let Some(at) = position(&kept, "frame-src").or_else(|| position(&kept, "child-src")) {
        kept[at] = with_frames(&kept[at]);
    } else if let Some(at) = position(&kept, "default-src") {
        let sources = kept[at].split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim());
        kept.push(with_frames(&format!("frame-src {sources}")));
    }
    if let Some(shim) = shim {
        allow_shim(&mut kept, shim);
    }
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Lets the shim's `<script src>` run under the directive that governs script elements
/// (`script-src-elem`, else `script-src`, else `default-src`), touching nothing else: a list
/// that already allows it (`'self'`, `*`, `https:`, the app origin) stays; one that allows
/// scripts only by nonce, hash or `'strict-dynamic'` (where `'unsafe-inline'` counts for nothing
/// already) gets the tag's nonce; any other gets the shim's own URL. The change goes into a
/// `script-src-elem` (made from the governing list when there is none), so inline handlers and
/// `eval` stay as the app set them.
fn allow_shim(kept: &mut Vec<String>, shim: Shim<'_>) {
    let Some(at) = position(kept, "script-src-elem")
        .or_else(|| position(kept, "script-src"))
        .or_else(|| position(kept, "default-src"))
    else {
        return;
    };
    let sources: Vec<String> = kept[at].split_ascii_whitespace().skip(1).map(str::to_ascii_lowercase).collect();
    let keyed = sources.iter().any(|s| {
        s == "'strict-dynamic'" || ["'nonce-", "'sha256-", "'sha384-", "'sha512-"].iter().any(|k| s.starts_with(k))
    });
    let allowed = ["'self'", "*", "https:"].iter().any(|ok| sources.iter().any(|s| s == ok))
        || sources.iter().any(|s| s.trim_end_matches('/') == shim.origin);
    let source = if keyed {
        format!("'nonce-{}'", shim.nonce)
    } else if allowed {
        return;
    } else {
        format!("{}{}", shim.origin, super::inject::SHIM_PATH)
    };
    let elem = if directive_name(&kept[at]) == "script-src-elem" {
        at
    } else {
        let copied = kept[at].split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim());
        kept.push(format!("script-src-elem {copied}"));
        kept.len() - 1
    };
    kept[elem] = with_source(&kept[elem], &source);
}

/// What `X-Frame-Options` says, as browsers read it (HTML's "X-Frame-Options" check: every
/// such header's comma-separated values, trimmed, lower case): one `deny` is `frame-ancestors
/// 'none'`, one `sameorigin` `frame-ancestors 'self'`; several different values, one of them
/// `deny`, `sameorigin` or `allowall`, forbid framing too; anything else (the old `ALLOW-FROM`,
/// `allowall`) says nothing.
fn frame_options(headers: &[(String, String)]) -> Option<&'static str> {
    let mut values: Vec<String> = Vec::new();
    let all = headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("x-frame-options"));
    for value in all.flat_map(|(_, value)| value.split(',')).map(|value| value.trim().to_ascii_lowercase()) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    match values.as_slice() {
        [one] if one == "deny" => Some("frame-ancestors 'none'"),
        [one] if one == "sameorigin" => Some("frame-ancestors 'self'"),
        [_, _, ..] if values.iter().any(|v| matches!(v.as_str(), "deny" | "sameorigin" | "allowall")) => {
            Some("frame-ancestors 'none'")
        }
        _ => None,
    }
}

/// A `frame-ancestors` directive as the app meant it at home, on the browser's side: a LAN URL
/// becomes its app origin (`map_source`), `'self'` and other sources stay, and the launcher
/// (`tunnel`) may frame the app too (`'none'` then leaves only the launcher). Another app's page
/// cannot frame it where the app's own server said no.
fn mapped_ancestors(directive: &str, tunnel: &str, map_source: &dyn Fn(&str) -> String) -> String {
    let mut words = directive.split_ascii_whitespace();
    let name = words.next().unwrap_or("frame-ancestors");
    let sources = words.map(|source| {
        let mapped = map_source(source);
        // An origin stays an origin (the mapping makes a URL of it, with a path).
        match mapped.strip_suffix('/') {
            Some(origin) if mapped != source && !source.ends_with('/') => origin.to_owned(),
            _ => mapped,
        }
    });
    with_source(&std::iter::once(name.to_owned()).chain(sources).collect::<Vec<_>>().join(" "), tunnel)
}

/// Whether `policy` has a directive `name`.
fn has_directive(policy: &str, name: &str) -> bool {
    policy.split(';').any(|d| directive_name(d.trim()) == name)
}

/// Where the directive `name` is in `kept`.
fn position(kept: &[String], name: &str) -> Option<usize> {
    kept.iter().position(|d| directive_name(d) == name)
}

/// A directive's name, lower case.
fn directive_name(directive: &str) -> String {
    directive.split_ascii_whitespace().next().unwrap_or_default().to_ascii_lowercase()
}

/// `directive` with `source` added (and `'none'`, which must stand alone, dropped).
fn with_source(directive: &str, source: &str) -> String {
    let mut words: Vec<&str> =
        directive.split_ascii_whitespace().filter(|w| !w.eq_ignore_ascii_case("'none'")).collect();
    if !words.iter().skip(1).any(|w| w.eq_ignore_ascii_case(source)) {
        words.push(source);
    }
    words.join(" ")
}

/// The header names a `Connection` header lists (also hop-by-hop), lower case.
pub(crate) fn connection_tokens(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// A name must be an HTTP token; a value must hold no CR, LF or NUL.
fn check_header(name: &str, value: &str) -> Result<(), AppError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(AppError::BadHeader(name.chars().take(64).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const APP: &str = "https://h-192-168-0-10-p8888.home.test:8443";

    fn list(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    fn answering<'a>(path: &'a str, destination: &'a str, whole_body: bool) -> Answering<'a> {
        Answering { path, destination, whole_body, nonce: "n0nce" }
    }

    fn setup(port: u16) -> (AppOrigins, Jar) {
        let origins = AppOrigins::new("https://home.test:8443").unwrap();
        (
            origins,
            Jar::new(hometun_shared::app_name::AppTarget::http(std::net::SocketAddrV4::new(
                [192, 168, 0, 10].into(),
                port,
            ))),
        )
    }

    #[test]
    fn a_form_post_reaches_the_lan_app_as_if_sent_at_home() {
        let (origins, mut jar) = setup(8888);
        jar.store_set_cookie("_xsrf=tok; Path=/", "/", NOW);
        let browser = list(&[
            ("Host", "h-192-168-0-10-p8888.home.test:8443"),
            ("Origin", APP),
            ("Referer", &format!("{APP}/login?next=%2F")),
            ("Cookie", "real=browser"),
            ("Accept-Encoding", "gzip, br"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "hop"),
            ("Content-Length", "12"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-XSRFToken", "tok"),
        ]);
        let mapped = map_request(&origins, &jar, "/login", &browser, false, NOW).unwrap();
        assert_eq!(
            mapped,
            list(&[
                ("Host", "192.168.0.10:8888"),
                ("Origin", "http://192.168.0.10:8888"),
                ("Referer", "http://192.168.0.10:8888/login?next=%2F"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-XSRFToken", "tok"),
                ("Cookie", "_xsrf=tok"),
            ])
        );
        // The same post from another site goes without the jar's cookies.
        let elsewhere = map_request(&origins, &jar, "/login", &browser, true, NOW).unwrap();
        assert!(!elsewhere.iter().any(|(name, _)| name == "Cookie"), "{elsewhere:?}");
    }

    #[test]
    fn text_is_asked_for_gzipped_unless_the_page_cannot_undo_it_or_a_head_or_range_is_asked() {
        let browser = list(&[("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate, br, zstd")]);
        assert!(asks_for_gzip("GET", &browser, true), "the page undoes gzip");
        assert!(asks_for_gzip("POST", &browser, true), "an answer to a form");
        assert!(!asks_for_gzip("GET", &browser, false), "a browser without DecompressionStream");
        assert!(!asks_for_gzip("HEAD", &browser, true), "a HEAD: its length says the plain size");
        // Only the bridge's own choice goes out (the HTTP client writes it).
        let (origins, jar) = setup(80);
        let mapped = map_request(&origins, &jar, "/app.js", &browser, false, NOW).unwrap();
        assert_eq!(mapped, list(&[("Host", "192.168.0.10"), ("Accept", "*/*")]));
        assert!(!asks_for_gzip("GET", &list(&[("Range", "bytes=100-199")]), true), "a range");
        assert!(!asks_for_gzip("GET", &list(&[("range", "bytes=0-")]), true), "a range, any case");
    }

    #[test]
    fn port_80_is_left_out_of_host_and_foreign_origins_are_not_forwarded() {
        let (origins, jar) = setup(80);
        let browser = list(&[("Origin", "https://home.test:8443"), ("Referer", "https://home.test:8443/")]);
        let mapped = map_request(&origins, &jar, "/", &browser, false, NOW).unwrap();
        assert_eq!(mapped, list(&[("Host", "192.168.0.10")]));
        let null = map_request(&origins, &jar, "/", &list(&[("Origin", "null")]), false, NOW).unwrap();
        assert_eq!(null[1], ("Origin".to_owned(), "null".to_owned()));
    }

    #[test]
    fn a_login_response_fills_the_jar_and_redirects_within_the_app() {
        let (origins, mut jar) = setup(8888);
        let lan = list(&[
            ("Location", "http://192.168.0.10:8888/tree?"),
            ("Set-Cookie", "session=abc; HttpOnly; Path=/"),
            ("Set-Cookie", "_xsrf=tok; Path=/"),
            ("X-Frame-Options", "DENY"),
            ("Strict-Transport-Security", "max-age=1"),
            ("Clear-Site-Data", "\"*\""),
            ("Transfer-Encoding", "chunked"),
            ("Content-Security-Policy", "frame-ancestors 'self'; default-src 'self'"),
            ("Content-Security-Policy-Report-Only", "Frame-Ancestors 'none'"),
            ("Content-Length", "0"),
        ]);
        let mapped = map_response(&origins, &mut jar, &answering("/login", "document", true), &lan, NOW).unwrap();
        assert_eq!(
            mapped.headers,
            list(&[
                ("Location", "https://h-192-168-0-10-p8888.home.test:8443/tree?"),
                (
                    "Content-Security-Policy",
                    "frame-ancestors 'self' https://home.test:8443; default-src 'self'; frame-src 'self' https://home.test:8443"
                ),
                ("Content-Security-Policy-Report-Only", "Frame-Ancestors https://home.test:8443"),
                ("Content-Length", "0"),
            ])
        );
        assert!(!mapped.inject && mapped.jar_changed);
        assert_eq!(jar.cookie_header("/tree", NOW).as_deref(), Some("session=abc; _xsrf=tok"));
    }

    #[test]
    fn policies_let_the_shim_frame_the_broker_from_the_tunnel_origin() {
        let t = "https://home.test";
        let cases = [
            ("frame-src 'self'", "frame-src 'self' https://home.test"),
            ("default-src 'none'; frame-src 'none'", "default-src 'none'; frame-src https://home.test"),
            ("child-src blob:; script-src 'self'", "child-src blob: https://home.test; script-src 'self'"),
            ("default-src 'self' data:", "default-src 'self' data:; frame-src 'self' data: https://home.test"),
            ("default-src 'none'", "default-src 'none'; frame-src https://home.test"),
            ("script-src 'self'", "script-src 'self'"),
            ("Frame-Src https://home.test", "Frame-Src https://home.test"),
        ];
        let unmapped = |source: &str| source.to_owned();
        for (policy, want) in cases {
            assert_eq!(mapped_policy(policy, t, None, &unmapped).as_deref(), Some(want), "{policy}");
        }
    }

    /// An app that says who may frame it at home says the same on its app origin, with the
    /// launcher added: another app (a hostile LAN host's page, same site under the relay's
    /// domain) cannot frame the router's UI to trick a click, where at home the router said no.
    #[test]
    fn who_may_frame_an_app_is_its_own_word_plus_the_launcher() {
        let (origins, mut jar) = setup(80);
        let t = "https://home.test:8443";
        let mut policies = |headers: &[(&str, &str)]| {
            let m = map_response(&origins, &mut jar, &answering("/", "document", true), &list(headers), NOW).unwrap();
            assert!(m.headers.iter().all(|(n, _)| !n.eq_ignore_ascii_case("x-frame-options")), "{:?}", m.headers);
            m.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-security-policy"))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        /// The app's headers, and the policies the browser gets.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: [Case; 10] = [
            (&[("X-Frame-Options", "DENY")], &[&format!("frame-ancestors {t}")]),
            (&[("X-Frame-Options", " sameorigin ")], &[&format!("frame-ancestors 'self' {t}")]),
            (&[("X-Frame-Options", "ALLOW-FROM https://x.test")], &[]),
            // Apache's `Header append` makes one line of two; two different lines forbid framing.
            (&[("X-Frame-Options", "SAMEORIGIN, sameorigin")], &[&format!("frame-ancestors 'self' {t}")]),
            (&[("X-Frame-Options", "DENY"), ("X-Frame-Options", "SAMEORIGIN")], &[&format!("frame-ancestors {t}")]),
            (&[("X-Frame-Options", "ALLOWALL, bogus")], &[&format!("frame-ancestors {t}")]),
            (&[], &[]),
            (
                &[("Content-Security-Policy", "frame-ancestors 'none'"), ("X-Frame-Options", "SAMEORIGIN")],
                &[&format!("frame-ancestors {t}")],
            ),
            (
                &[("Content-Security-Policy", "frame-ancestors 'self' http://192.168.0.20:8123 https://x.test")],
                &[&format!("frame-ancestors 'self' https://h-192-168-0-20-p8123.home.test:8443 https://x.test {t}")],
            ),
            (
                &[("Content-Security-Policy-Report-Only", "frame-ancestors 'none'"), ("X-Frame-Options", "DENY")],
                &[&format!("frame-ancestors {t}")],
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(policies(headers), want.to_vec(), "{headers:?}");
        }
    }

    #[test]
    fn a_strict_script_policy_lets_the_shim_run_and_nothing_else_changes() {
        let (origins, mut jar) = setup(80);
        let app = "https://h-192-168-0-10-p80.home.test:8443";
        let page = |policy: &str| list(&[("Content-Type", "text/html"), ("Content-Security-Policy", policy)]);
        let mut mapped = |policy: &str, destination: &str| {
            let m = map_response(&origins, &mut jar, &answering("/", destination, true), &page(policy), NOW).unwrap();
            m.headers.iter().find(|(n, _)| n == "Content-Security-Policy").map(|(_, v)| v.clone()).unwrap()
        };
        let frames = format!("; frame-src https://home.test:8443 {app}/__ht/download");
        // Nextcloud: scripts by nonce only, or 'strict-dynamic': the tag's nonce is added.
        let nextcloud = "default-src 'none'; script-src 'nonce-AbC' 'strict-dynamic'";
        assert_eq!(
            mapped(nextcloud, "document"),
            format!("{nextcloud}{frames}; script-src-elem 'nonce-AbC' 'strict-dynamic' 'nonce-n0nce'")
        );
        assert_eq!(
            mapped("script-src-elem 'sha256-x='; frame-src 'none'", "document"),
            format!("script-src-elem 'sha256-x=' 'nonce-n0nce'{frames}")
        );
        // A list of places: the shim's own URL, with 'unsafe-inline' left to mean what it meant.
        assert_eq!(
            mapped("script-src 'unsafe-inline' https://cdn.test; frame-src 'none'", "document"),
            format!(
                "script-src 'unsafe-inline' https://cdn.test{frames}; \
                 script-src-elem 'unsafe-inline' https://cdn.test {app}/__ht/shim.js"
            )
        );
        // Already allowed, or no document to put the tag in: unchanged.
        for policy in ["script-src 'self'", "default-src *", &format!("script-src {app}/")] {
            assert_eq!(mapped(&format!("{policy}; frame-src 'none'"), "document"), format!("{policy}{frames}"));
        }
        assert_eq!(
            mapped("script-src 'nonce-AbC'; frame-src 'none'", "script"),
            "script-src 'nonce-AbC'; frame-src https://home.test:8443"
        );
    }

    #[test]
    fn locations_of_other_apps_map_to_their_origins_and_relative_ones_stay() {
        let (origins, _) = setup(8888);
        let cases = [
            ("/login?next=/", "/login?next=/"),
            ("tree", "tree"),
            ("http://192.168.0.20/admin", "https://h-192-168-0-20-p80.home.test:8443/admin"),
            ("//192.168.0.20:8080/x", "https://h-192-168-0-20-p8080.home.test:8443/x"),
            ("https://example.com/", "https://example.com/"),
            ("https://192.168.0.20:8006/ui", "https://h-192-168-0-20-s8006.home.test:8443/ui"),
        ];
        for (lan, browser) in cases {
            assert_eq!(map_location(&origins, "http", lan), browser, "{lan}");
        }
        assert_eq!(
            map_location(&origins, "https", "//192.168.0.20:8006/x"),
            "https://h-192-168-0-20-s8006.home.test:8443/x",
            "a scheme-relative Location keeps the answering app's scheme"
        );
    }

    #[test]
    fn only_html_documents_get_the_shim_and_lose_their_length() {
        let (origins, mut jar) = setup(8888);
        let html = list(&[("Content-Type", "text/HTML; charset=utf-8"), ("Content-Length", "120")]);
        for (destination, inject) in
            [("document", true), ("iframe", true), ("frame", true), ("script", false), ("", false)]
        {
            let mapped = map_response(&origins, &mut jar, &answering("/", destination, true), &html, NOW).unwrap();
            assert_eq!(mapped.inject, inject, "{destination}");
            assert_eq!(mapped.headers.len(), if inject { 1 } else { 2 }, "{destination}");
        }
        let json = list(&[("Content-Type", "application/json"), ("Content-Length", "2")]);
        assert!(!map_response(&origins, &mut jar, &answering("/", "document", true), &json, NOW).unwrap().inject);
        // "Download as HTML": saved as the app made it, without hometun's tag or cookies.
        let download =
            list(&[("Content-Type", "text/html"), ("Content-Disposition", "Attachment; filename=\"notes.html\"")]);
        assert!(!map_response(&origins, &mut jar, &answering("/", "document", true), &download, NOW).unwrap().inject);
        let shown = list(&[("Content-Type", "text/html"), ("Content-Disposition", "inline")]);
        assert!(map_response(&origins, &mut jar, &answering("/", "document", true), &shown, NOW).unwrap().inject);
    }

    #[test]
    fn a_page_compressed_anyway_is_decoded_and_gets_the_shim_unless_its_coding_is_unknown() {
        let (origins, mut jar) = setup(80);
        let page = |coding: &str| {
            list(&[("Content-Type", "text/html"), ("Content-Encoding", coding), ("Content-Length", "900")])
        };
        for (coding, decode) in [
            ("gzip", Coding::Gzip),
            ("X-GZIP", Coding::Gzip),
            ("deflate", Coding::Deflate),
            ("identity, gzip", Coding::Gzip),
        ] {
            let mapped =
                map_response(&origins, &mut jar, &answering("/", "document", true), &page(coding), NOW).unwrap();
            assert_eq!((mapped.decode, mapped.inject), (Some(decode), true), "{coding}");
            assert_eq!(
                mapped.headers,
                list(&[("Content-Type", "text/html")]),
                "{coding}: the browser gets plain bytes"
            );
        }
        for coding in ["br", "gzip, br", "zstd"] {
            let mapped =
                map_response(&origins, &mut jar, &answering("/", "document", true), &page(coding), NOW).unwrap();
            assert_eq!((mapped.decode, mapped.inject), (None, false), "{coding} passes as it came");
            assert_eq!(mapped.headers.len(), 3, "{coding}");
        }
        // A part of a compressed file (206), or no body at all (HEAD, 304): headers as they came.
        let mapped = map_response(&origins, &mut jar, &answering("/", "", false), &page("gzip"), NOW).unwrap();
        assert_eq!((mapped.decode, mapped.inject, mapped.headers.len()), (None, false, 3));
        let script =
            list(&[("Content-Type", "text/javascript"), ("Content-Encoding", "gzip"), ("Content-Length", "9")]);
        let mapped = map_response(&origins, &mut jar, &answering("/", "script", true), &script, NOW).unwrap();
        assert_eq!((mapped.decode, mapped.inject), (Some(Coding::Gzip), false));
        assert_eq!(mapped.headers, list(&[("Content-Type", "text/javascript")]));
    }

    #[test]
    fn heads_and_bodiless_statuses_get_no_shim() {
        for (method, status, body) in [
            ("GET", 200, true),
            ("POST", 404, true),
            ("HEAD", 200, false),
            ("GET", 204, false),
            ("GET", 304, false),
            ("get", 101, false),
        ] {
            assert_eq!(has_body(method, status), body, "{method} {status}");
        }
    }

    #[test]
    fn only_plain_paths_are_requests() {
        let (origins, jar) = setup(8888);
        for path in ["/", "/api/contents?type=file&x=%20", "/a/b#frag", "//double/slash"] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
        for path in ["", "api", "http://192.168.0.20/", "/a b", "/a\r\nHost: x", "/é"] {
            assert_eq!(map_request(&origins, &jar, path, &[], false, NOW), Err(AppError::BadPath), "{path:?}");
        }
    }

    #[test]
    fn oversized_or_malformed_header_lists_are_refused() {
        let (origins, mut jar) = setup(8888);
        let many: HeaderList = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "1".to_owned())).collect();
        assert_eq!(map_request(&origins, &jar, "/", &many, false, NOW), Err(AppError::TooManyHeaders(MAX_HEADERS + 1)));
        assert_eq!(
            map_response(&origins, &mut jar, &answering("/", "", true), &many, NOW).map(|_| ()),
            Err(AppError::TooManyHeaders(MAX_HEADERS + 1))
        );
        let big = list(&[("x-big", &"a".repeat(MAX_HEADER_BYTES))]);
        assert_eq!(
            map_request(&origins, &jar, "/", &big, false, NOW),
            Err(AppError::HeadersTooLarge(MAX_HEADER_BYTES + 5))
        );
        let split = list(&[("X-Evil", "a\r\nHost: 10.0.0.1")]);
        assert_eq!(map_request(&origins, &jar, "/", &split, false, NOW), Err(AppError::BadHeader("X-Evil".into())));
        let bad_name = list(&[("Bad Name", "x")]);
        assert!(map_request(&origins, &jar, "/", &bad_name, false, NOW).is_err());
    }
}
