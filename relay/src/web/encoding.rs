//! How the page's files travel: compressed for a browser that takes it (brotli, else gzip), and
//! revalidated by a weak entity tag, so a visit that finds the page unchanged moves no body at all
//! (`304 Not Modified`).
//!
//! The page's files are `Cache-Control: no-cache` (a new relay's page must never be stale), and
//! the main wasm alone is ~830 KB raw against ~338 KB gzip and ~278 KB brotli. The compressed
//! forms are made when the page is built (`scripts/build-page.sh` writes `NAME.br` and `NAME.gz`
//! beside each file it pays for), so serving one costs the relay no CPU and no memory beyond the
//! file itself.
//!
//! The tags are weak (`W/"…"`): the relay does not answer range requests, and a browser
//! resumes a cut-off download (a tab closed while the wasm loads) only against a strong
//! validator; with a weak one it fetches the file again.

use axum::http::{header, HeaderMap, HeaderValue};

/// A compressed form of a page file, made beside it by the page build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `br`: about a fifth smaller than gzip on the page's wasm. Browsers ask for it over HTTPS.
    Brotli,
    /// `gzip`.
    Gzip,
}

impl Coding {
    /// The name in `Content-Encoding` and `Accept-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    /// The extension of the page's file in this coding; its entity tag ends with it too.
    fn extension(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gz",
        }
    }

    /// The name of the form of the page's file `file` in this coding.
    pub fn file_name(self, file: &str) -> String {
        format!("{file}.{}", self.extension())
    }
}

/// The codings a request takes, the smaller form first.
pub fn accepted(request: &HeaderMap) -> impl Iterator<Item = Coding> + '_ {
    let listed = listed(request);
    [Coding::Brotli, Coding::Gzip].into_iter().filter(move |coding| takes(&listed, *coding))
}

/// Each name a request's `Accept-Encoding` lists, and whether it is taken (not `q=0`).
fn listed(request: &HeaderMap) -> Vec<(&str, bool)> {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.parse::<f32>().ok() == Some(0.0))
            });
            (name, !refused)
        })
        .collect()
}

/// Whether the `listed` names take `coding`: listed by name without `q=0`, or, for gzip only
/// (which every client that says `*` has), not listed but `*` is.
fn takes(listed: &[(&str, bool)], coding: Coding) -> bool {
    match listed.iter().find(|(name, _)| name.eq_ignore_ascii_case(coding.name())) {
        Some(&(_, taken)) => taken,
        None => coding == Coding::Gzip && listed.iter().any(|&(name, taken)| name == "*" && taken),
    }
}

/// The weak entity tag of a file whose content has SHA-256 `hash`, as sent plain or in `coding`
/// (each representation its own tag).
pub fn etag(hash: &[u8; 32], coding: Option<Coding>) -> HeaderValue {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = coding.map(|c| format!("-{}", c.extension())).unwrap_or_default();
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
    fn a_coding_is_taken_when_listed_and_not_refused_brotli_first() {
        let takes = |value: &str| accepted(&request(header::ACCEPT_ENCODING, value)).collect::<Vec<_>>();
        use Coding::{Brotli, Gzip};
        for (value, codings) in [
            ("gzip, deflate, br, zstd", vec![Brotli, Gzip]),
            ("br;q=1.0, GZIP;q=0.5", vec![Brotli, Gzip]),
            ("gzip;q=1.0, br;q=0.5", vec![Brotli, Gzip]),
            ("gzip, deflate", vec![Gzip]),
            ("BR", vec![Brotli]),
            ("*", vec![Gzip]),
            ("gzip;q=0", vec![]),
            ("br, gzip; q=0", vec![Brotli]),
            ("br;q=0, gzip", vec![Gzip]),
            ("gzip;q=0, *", vec![]),
            ("br, *;q=0", vec![Brotli]),
            ("identity", vec![]),
            ("gzipped, brotli", vec![]),
            ("", vec![]),
        ] {
            assert_eq!(takes(value), codings, "{value:?}");
        }
        assert_eq!(accepted(&HeaderMap::new()).count(), 0);
        assert_eq!((Brotli.file_name("a.wasm"), Gzip.file_name("a.wasm")), ("a.wasm.br".into(), "a.wasm.gz".into()));
    }

    #[test]
    fn a_matching_tag_in_any_form_means_not_modified() {
        let tag = etag(&[7; 32], None);
        assert_eq!(tag, "W/\"070707070707070707070707\"");
        assert_eq!(etag(&[7; 32], Some(Coding::Gzip)), "W/\"070707070707070707070707-gz\"");
        assert_eq!(etag(&[7; 32], Some(Coding::Brotli)), "W/\"070707070707070707070707-br\"");
        for (value, matches) in [
            ("W/\"070707070707070707070707\"", true),
            ("\"070707070707070707070707\"", true),
            ("\"other\", W/\"070707070707070707070707\"", true),
            ("*", true),
            ("W/\"070707070707070707070707-gz\"", false),
            ("W/\"070707070707070707070707-br\"", false),
            ("070707070707070707070707", false),
            ("", false),
        ] {
            assert_eq!(not_modified(&request(header::IF_NONE_MATCH, value), &tag), matches, "{value:?}");
        }
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }
}
