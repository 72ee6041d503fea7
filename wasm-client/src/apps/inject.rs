//! The shim goes first into every HTML document of an app: a streaming injector that puts
//! `<script src="/__ht/shim.js" nonce="…" data-hometun-cookies="…"></script>` right after the doctype
//! (also one after comments or an XML prolog), or at the start (after a byte order mark, and
//! any leading comments) when there is none.
//!
//! Chunks pass through as they come; only the document's first bytes are held back while they
//! may still be the doctype, at most [`MAX_BUFFERED`] of them. The attribute carries the
//! script-visible cookies as JSON `[[name, value, path], …]`, HTML-attribute-escaped, so
//! `document.cookie` is right before any app script runs.

use super::jar::ScriptCookie;

/// The shim's path on every app origin.
pub const SHIM_PATH: &str = "/__ht/shim.js";
/// Where the shim loads an app's download link in a hidden frame, for the app's worker to answer
/// (www/app/sw.js, `downloaded`).
pub const DOWNLOAD_PATH: &str = "/__ht/download";
/// At most this many bytes are held back looking for the doctype's end: room for the copyright
/// and licence comments that router and printer firmware pages put before it (a tag before the
/// doctype would put the page in quirks mode).
pub const MAX_BUFFERED: usize = 8 * 1024;

const DOCTYPE: &[u8] = b"<!doctype";
const COMMENT: &[u8] = b"<!--";
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Inserts the shim's script tag into one HTML body, chunk by chunk.
#[derive(Debug, Clone)]
pub struct Injector {
    tag: Vec<u8>,
    /// Bytes held back while the doctype may be unfinished; `None` once the tag is out.
    pending: Option<Vec<u8>>,
}

impl Injector {
    /// An injector whose tag carries `cookies` (the jar's script-visible cookies for the page)
    /// and `nonce` (base64: the one the page's mapped policy allows, when it asks for nonces).
    pub fn new(cookies: &[ScriptCookie], nonce: &str) -> Self {
        Self { tag: shim_tag(cookies, nonce).into_bytes(), pending: Some(Vec::new()) }
    }

    /// Takes the next body chunk and returns the bytes to pass on now (possibly none).
    #[must_use]
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(pending) = &mut self.pending else { return chunk.to_vec() };
        pending.extend_from_slice(chunk);
        match insertion_point(pending) {
            Some(at) => self.insert_at(at),
            None => Vec::new(),
        }
    }

    /// The body has ended: returns what is still held back (with the tag when not yet out).
    #[must_use]
    pub fn finish(&mut self) -> Vec<u8> {
        match &self.pending {
            Some(pending) => {
                let at = insertion_point(pending).unwrap_or_else(|| bom_len(pending));
                self.insert_at(at)
            }
            None => Vec::new(),
        }
    }

    fn insert_at(&mut self, at: usize) -> Vec<u8> {
        let pending = self.pending.take().unwrap_or_default();
        let mut out = Vec::with_capacity(pending.len() + self.tag.len());
        out.extend_from_slice(&pending[..at]);
        out.extend_from_slice(&self.tag);
        out.extend_from_slice(&pending[at..]);
        out
    }
}

/// The script tag, cookies included.
pub fn shim_tag(cookies: &[ScriptCookie], nonce: &str) -> String {
    let json = serde_json::to_string(cookies).unwrap_or_else(|_| "[]".to_owned());
    let (json, nonce) = (escape_attribute(&json), escape_attribute(nonce));
    format!("<script src=\"{SHIM_PATH}\" nonce=\"{nonce}\" data-hometun-cookies=\"{json}\"></script>")
}

/// Escapes text for a double-quoted HTML attribute value.
pub fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Where the tag goes in the first bytes of a document, or `None` while more bytes could still
/// change the answer. Comments and an XML prolog (`<?xml …?>`, a comment to an HTML parser) may
/// come before the doctype without hiding it: the tag goes after the doctype then too, never
/// before those, which would put the page in quirks mode.
fn insertion_point(bytes: &[u8]) -> Option<usize> {
    if BOM.starts_with(bytes) && bytes.len() < BOM.len() {
        return None;
    }
    let start = bom_len(bytes);
    let undecided = || (bytes.len() >= MAX_BUFFERED).then_some(start);
    // After the leading comments, prologs and white space.
    let mut after_items = start;
    let mut at = start;
    loop {
        at += bytes[at..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let rest = &bytes[at..];
        let end = if rest.starts_with(COMMENT) {
            // `<!-->` and `<!--->` end there too, and so does a `--!>` after the opening (not
            // `<!--!>`, which the tokenizer reads as an open comment).
            let close = rest[2..].windows(3).position(|w| w == b"-->").map(|i| i + 2 + 3);
            let bang = rest.get(4..).and_then(|r| r.windows(4).position(|w| w == b"--!>")).map(|i| i + 4 + 4);
            close.into_iter().chain(bang).min()
        } else if rest.starts_with(b"<?") {
            rest.iter().position(|&b| b == b'>').map(|i| i + 1)
        } else if !rest.is_empty() && COMMENT.starts_with(rest) {
            // `<`, `<!` or `<!-`: more bytes decide.
            return undecided();
        } else {
            break;
        };
        match end {
            Some(end) => {
                at += end;
                after_items = at;
            }
            None => return undecided(),
        }
    }
    let rest = &bytes[at..];
    let prefix = rest.len().min(DOCTYPE.len());
    if !rest[..prefix].eq_ignore_ascii_case(&DOCTYPE[..prefix]) {
        return Some(after_items);
    }
    if let Some(end) = rest.iter().position(|&b| b == b'>').filter(|_| rest.len() >= DOCTYPE.len()) {
        return Some(at + end + 1);
    }
    undecided()
}

fn bom_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(BOM) {
        BOM.len()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], cookies: &[ScriptCookie]) -> String {
        let mut injector = Injector::new(cookies, "n0nce");
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(injector.push(chunk));
        }
        out.extend(injector.finish());
        String::from_utf8(out).unwrap()
    }

    const TAG: &str = "<script src=\"/__ht/shim.js\" nonce=\"n0nce\" data-hometun-cookies=\"[]\"></script>";

    #[test]
    fn the_shim_goes_right_after_the_doctype_even_when_it_is_split() {
        let page = "<!DOCTYPE html>\n<html><head><script>app()</script>";
        let want = format!("<!DOCTYPE html>{TAG}\n<html><head><script>app()</script>");
        for split in 0..page.len() {
            let (a, b) = page.as_bytes().split_at(split);
            assert_eq!(run(&[a, b], &[]), want, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = page.as_bytes().chunks(1).collect();
        assert_eq!(run(&bytewise, &[]), want);
        assert_eq!(run(&[b"  <!doctype html><p>"], &[]), format!("  <!doctype html>{TAG}<p>"));
    }

    #[test]
    fn without_a_doctype_the_shim_goes_first() {
        assert_eq!(run(&[b"<html><script>app()</script>"], &[]), format!("{TAG}<html><script>app()</script>"));
        assert_eq!(run(&[b"<", b"ht", b"ml>"], &[]), format!("{TAG}<html>"));
        assert_eq!(run(&[b"\xEF\xBB", b"\xBF<p>"], &[]), format!("\u{FEFF}{TAG}<p>"), "after the byte order mark");
        assert_eq!(run(&[], &[]), TAG, "an empty body still gets the shim");
        assert_eq!(run(&[b"<!doc"], &[]), format!("{TAG}<!doc"));
    }

    #[test]
    fn comments_and_an_xml_prolog_before_the_doctype_keep_it_a_doctype() {
        // The tag before them would come before the doctype, and the page would render in
        // quirks mode (XHTML-era router and printer pages, licence comments).
        let page = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- (c) 2009 Router Inc. -->\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">\n<html>";
        let doctype_end = page.find("EN\">").unwrap() + 4;
        let want = format!("{}{TAG}{}", &page[..doctype_end], &page[doctype_end..]);
        for split in 0..page.len() {
            let (a, b) = page.as_bytes().split_at(split);
            assert_eq!(run(&[a, b], &[]), want, "split at {split}");
        }
        assert_eq!(run(&[b"<!---->", b"<!doctype html><p>"], &[]), format!("<!----><!doctype html>{TAG}<p>"));
        assert_eq!(run(&[b"<!-->", b"<!doctype html>"], &[]), format!("<!--><!doctype html>{TAG}"));
        assert_eq!(run(&[b"<!-- x --!><!doctype html>"], &[]), format!("<!-- x --!><!doctype html>{TAG}"));
        assert_eq!(run(&[b"<!----!><!doctype html>"], &[]), format!("<!----!><!doctype html>{TAG}"));
        // Still open: the tag cannot go inside it, where it would never run.
        assert_eq!(run(&[b"<!--!><!doctype html>"], &[]), format!("{TAG}<!--!><!doctype html>"));
        // No doctype after them: the tag goes after the comments.
        assert_eq!(run(&[b"<!-- hi --><html>"], &[]), format!("<!-- hi -->{TAG}<html>"));
        assert_eq!(run(&[b"<!-- never closed"], &[]), format!("{TAG}<!-- never closed"));
    }

    #[test]
    fn a_firmware_pages_long_licence_comment_before_the_doctype_keeps_the_tag_after_it() {
        let licence =
            format!("<!--\n{}-->\n", "Copyright (c) 2009-2014 Router Vendor Inc. All rights reserved.\n".repeat(60));
        assert!(licence.len() > 3000 && licence.len() < MAX_BUFFERED);
        let page = format!("{licence}<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"><html>");
        let chunks: Vec<&[u8]> = page.as_bytes().chunks(512).collect();
        let doctype_end = page.find("><html>").unwrap() + 1;
        assert_eq!(run(&chunks, &[]), format!("{}{TAG}{}", &page[..doctype_end], &page[doctype_end..]));
    }

    #[test]
    fn at_most_the_first_eight_kilobytes_are_held_back() {
        let mut injector = Injector::new(&[], "n0nce");
        assert!(injector.push(b"<!DOCTYPE html SYSTEM \"").is_empty());
        let out = injector.push(&[b'x'; MAX_BUFFERED]);
        assert!(out.starts_with(TAG.as_bytes()), "no doctype end in the first 8 KiB: the tag goes first");
        assert_eq!(injector.push(b"more"), b"more", "then chunks pass through");
    }

    #[test]
    fn a_cookie_value_cannot_break_out_of_the_attribute() {
        let cookies = vec![("n".to_owned(), "\"><script>alert(1)</script>'&".to_owned(), "/".to_owned())];
        let page = run(&[b"<!doctype html>"], &cookies);
        let tag = page.strip_prefix("<!doctype html>").unwrap();
        assert_eq!(tag.matches('<').count(), 2, "only the shim's own tags: {tag}");
        assert_eq!(tag.matches('"').count(), 6, "only the three attributes' quotes: {tag}");
        let value = tag.split("data-hometun-cookies=\"").nth(1).unwrap().split('"').next().unwrap();
        let unescaped = value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let parsed: Vec<ScriptCookie> = serde_json::from_str(&unescaped).unwrap();
        assert_eq!(parsed, cookies, "the shim reads the cookies back unchanged");
    }
}
