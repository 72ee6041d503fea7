//! HTTP Digest authentication (RFC 7616, the MD5 algorithms home devices use): IP cameras and
//! some routers ask for it instead of Basic. The challenge is read from a `401`; the
//! `Authorization` for each request is computed from the user's name and password, the
//! challenge's nonce and a fresh client nonce. MD5 comes from the `md-5` crate.
//!
//! Pure: parsing the challenge and computing the answer.

use md5::{Digest as _, Md5};

/// The longest challenge parameter kept (nonces and realms are short in practice).
const MAX_PARAM: usize = 512;

/// A `Digest` challenge this client can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space's name, shown to the user.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Returned unchanged, when given.
    pub opaque: Option<String>,
    /// `qop=auth` offered (else the RFC 2069 form without `qop`).
    pub qop_auth: bool,
    /// `MD5-sess` rather than `MD5`.
    pub session: bool,
    /// The server says the nonce expired, not the credentials (`stale=true`).
    pub stale: bool,
}

/// The first `Digest` challenge in the `WWW-Authenticate` fields of `headers` that uses MD5 or
/// MD5-sess and offers `qop=auth` or no `qop` (SHA-256 and `auth-int` are not answered).
pub fn digest_challenge(headers: &[(String, String)]) -> Option<Challenge> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
        .flat_map(|(_, value)| challenges(value))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("digest"))
        .find_map(|(_, params)| answerable(&params))
}

fn answerable(params: &[(String, String)]) -> Option<Challenge> {
    let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
    let session = match get("algorithm").as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MD5") => false,
        Some("MD5-SESS") => true,
        Some(_) => return None,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(qop) if qop.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) => true,
        Some(_) => return None,
    };
    Some(Challenge {
        realm: get("realm").unwrap_or_default(),
        nonce: get("nonce")?,
        opaque: get("opaque"),
        qop_auth,
        session,
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// The challenges in one `WWW-Authenticate` value: `(scheme, [(name, value)])`, values
/// unquoted. A challenge is a scheme token and the `name=value` parameters after it, separated
/// by commas; a token without `=` starts the next challenge.
pub fn challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return out;
        }
        let end = rest.find([' ', '\t', ',', '=']).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        let after_ws = after.trim_start_matches([' ', '\t']);
        if let Some(value_part) = after_ws.strip_prefix('=').filter(|_| !out.is_empty()) {
            // A parameter of the current challenge (a token68 such as `abc==` is taken as one).
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (param, next) = param_value(value_part);
            if let Some((_, params)) = out.last_mut() {
                params.push((token.to_ascii_lowercase(), param.chars().take(MAX_PARAM).collect()));
            }
            rest = next;
        } else if token.is_empty() {
            return out; // a stray `=`: nothing more is readable
        } else {
            out.push((token.to_owned(), Vec::new()));
            rest = after;
        }
    }
}

/// A parameter value (a quoted string with `\` escapes, or a token) and what follows it.
fn param_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (value, &quoted[i + 1..]),
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text.find([',', ' ', '\t']).unwrap_or(text.len());
        (text[..end].to_owned(), &text[end..])
    }
}

/// The `Authorization` value answering `challenge` for `method` and `uri` (the request target
/// as sent), with the request count `nc` (from 1) and the client nonce `cnonce`.
pub fn authorization(
    challenge: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let mut ha1 = md5_hex(&format!("{user}:{}:{password}", challenge.realm));
    if challenge.session {
        ha1 = md5_hex(&format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = if challenge.qop_auth {
        md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce))
    };
    let algorithm = if challenge.session { "MD5-sess" } else { "MD5" };
    let mut header = format!(
        r#"Digest username="{}", realm="{}", nonce="{}", uri="{}", algorithm={algorithm}, response="{response}""#,
        quote(user),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri)
    );
    if challenge.qop_auth {
        header.push_str(&format!(r#", qop=auth, nc={nc}, cnonce="{cnonce}""#));
    }
    if let Some(opaque) = &challenge.opaque {
        header.push_str(&format!(r#", opaque="{}""#, quote(opaque)));
    }
    header
}

/// `text` for a quoted string (`"` and `\` escaped).
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn challenge_of(value: &str) -> Option<Challenge> {
        digest_challenge(&[("WWW-Authenticate".into(), value.into())])
    }

    /// RFC 2617 section 3.5's example, the one every implementation checks against.
    #[test]
    fn the_answer_is_the_one_rfc_2617_gives_for_its_example() {
        let challenge = challenge_of(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .expect("an answerable challenge");
        assert!(challenge.qop_auth && !challenge.session && !challenge.stale);
        let header = authorization(&challenge, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(header.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{header}");
        assert!(header.contains("nc=00000001") && header.contains(r#"cnonce="0a4f113b""#), "{header}");
        assert!(header.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{header}");
    }

    #[test]
    fn challenges_are_found_among_others_and_unanswerable_ones_are_left() {
        let both =
            r#"Basic realm="cam", Digest realm="Camera", nonce="abc", qop="auth", algorithm=MD5-sess, stale=TRUE"#;
        let found = challenge_of(both).expect("the Digest one");
        assert_eq!((found.realm.as_str(), found.nonce.as_str()), ("Camera", "abc"));
        assert!(found.session && found.stale && found.qop_auth);
        let plain = challenge_of(r#"Digest realm="r", nonce="n""#).expect("RFC 2069 form");
        assert!(!plain.qop_auth);
        assert_eq!(challenge_of(r#"Digest realm="r", nonce="n", algorithm=SHA-256"#), None);
        assert_eq!(challenge_of(r#"Digest realm="r", nonce="n", qop="auth-int""#), None);
        assert_eq!(challenge_of(r#"Digest realm="r""#), None, "no nonce");
        assert_eq!(challenge_of(r#"Basic realm="r""#), None);
        assert_eq!(challenge_of("=, \"unterminated"), None);
        let parsed = challenges(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].1[2], ("title".to_owned(), r#"Login to "apps""#.to_owned()));
        assert_eq!(parsed[1], ("Basic".to_owned(), vec![("realm".to_owned(), "simple".to_owned())]));
    }

    #[test]
    fn the_plain_form_and_md5_sess_answer_as_the_rfc_computes() {
        let challenge = Challenge {
            realm: "r".into(),
            nonce: "n".into(),
            opaque: None,
            qop_auth: false,
            session: false,
            stale: false,
        };
        let header = authorization(&challenge, "u", "p", "GET", "/", 1, "c");
        let expected = md5_hex(&format!("{}:n:{}", md5_hex("u:r:p"), md5_hex("GET:/")));
        assert!(header.contains(&format!(r#"response="{expected}""#)) && !header.contains("qop"), "{header}");
        let sess = Challenge { session: true, qop_auth: true, ..challenge };
        let header = authorization(&sess, "u", "p", "GET", "/", 2, "c");
        let ha1 = md5_hex(&format!("{}:n:c", md5_hex("u:r:p")));
        let expected = md5_hex(&format!("{ha1}:n:00000002:c:auth:{}", md5_hex("GET:/")));
        assert!(
            header.contains(&format!(r#"response="{expected}""#)) && header.contains("algorithm=MD5-sess"),
            "{header}"
        );
    }
}
