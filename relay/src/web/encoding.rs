//! How the page's files travel: gzipped to a browser that takes gzip, and revalidated by a weak
//! entity tag, so a visit that finds the page unchanged moves no body at all
//! (`304 Not Modified`).
//!
//! The page's files are `Cache-Control: no-cache` (a new relay's page must never be stale), and
//! the main wasm alone is ~800 KB raw against ~325 KB gzip. The gzip forms are made when the
//! page is built (`scripts/build-page.sh` writes `NAME.gz` beside each file it pays for), so
//! serving one costs the relay no CPU and no memory beyond the file itself.
//!
//! The tags are weak (`W/"…"`): the relay does not answer range requests, and a browser
//! resumes a cut-off download (a tab closed while the wasm loads) only against a strong
//! validator; with a weak one it fetches the file again.

use axum::http::{header, HeaderMap, HeaderValue};

/// Whether a request's `Accept-Encoding` takes gzip: `gzip` or `*` listed without `q=0`.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.parse::<f32>().ok() == Some(0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// The name of the gzip form of the page's file `name`.
pub fn gzip_name(name: &str) -> String {
    format!("{name}.gz")
}

/// The weak entity tag of a file whose content has SHA-256 `hash`, as sent plain or gzipped
/// (two representations, two tags).
pub fn etag(hash: &[u8; 32], gzipped: bool) -> HeaderValue {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = if gzipped { "-gz" } else { "" };
    HeaderValue::from_str(&format!("W/\"{hex}{suffix}\"")).unwrap_or_else(|_| HeaderValue::from_static("W/\"\""))
}

/// Whether a request's `If-None-Match` names `etag` (weak comparison, as that header asks) or `*`.
pub fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else { return false };
    let ours = ours.strip_prefix("W/").unwrap_or(ours);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn gzip_is_taken_when_listed_and_not_refused() {
        for (value, takes) in [
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("*", true),
            ("gzip;q=0", false),
            ("br, gzip; q=0", false),
            ("identity", false),
            ("gzipped", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip(&request(header::ACCEPT_ENCODING, value)), takes, "{value:?}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_matching_tag_in_any_form_means_not_modified() {
        let tag = etag(&[7; 32], false);
        assert_eq!(tag, "W/\"070707070707070707070707\"");
        assert_eq!(etag(&[7; 32], true), "W/\"070707070707070707070707-gz\"");
        for (value, matches) in [
            ("W/\"070707070707070707070707\"", true),
            ("\"070707070707070707070707\"", true),
            ("\"other\", W/\"070707070707070707070707\"", true),
            ("*", true),
            ("W/\"070707070707070707070707-gz\"", false),
            ("070707070707070707070707", false),
            ("", false),
        ] {
            assert_eq!(not_modified(&request(header::IF_NONE_MATCH, value), &tag), matches, "{value:?}");
        }
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }
}
