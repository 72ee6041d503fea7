//! Signing in to home apps that ask by HTTP authentication (see [`crate::apps::basic_auth`] and
//! [`crate::apps::digest_auth`]), on the bridge's side: per app, the last challenge the device
//! sent and the user name and password it accepted, in this page's memory only.
//!
//! The sign-in page's script always sends what the user typed as `Authorization: Basic …`;
//! when the device asked for Digest, that is turned into the Digest answer here. Once the
//! device accepted the user and password, every later request to the app without an
//! `Authorization` of its own gets the answer to the device's current challenge, as a browser
//! does. A `401` to them forgets them, except for a Digest nonce that went stale, which is
//! answered again once with the new nonce.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use hometun_shared::app_name::AppTarget;
use zeroize::Zeroizing;

use crate::apps::basic_auth::basic_realm;
use crate::apps::digest_auth::{self, digest_challenge};
use crate::apps::headers::HeaderList;

/// The headers of hometun's sign-in page.
pub const PAGE_HEADERS: [(&str, &str); 2] =
    [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")];

/// How a device asks for credentials.
#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Digest(digest_auth::Challenge),
}

/// One app's sign-in state.
#[derive(Default)]
struct State {
    /// The device's last answerable challenge.
    scheme: Option<Scheme>,
    /// The user name and password it accepted.
    accepted: Option<(String, Zeroizing<String>)>,
    /// Requests answered to the current Digest nonce.
    count: u32,
}

thread_local! {
    static APPS: RefCell<HashMap<AppTarget, State>> = RefCell::new(HashMap::new());
}

fn with_state<T>(target: AppTarget, f: impl FnOnce(&mut State) -> T) -> T {
    APPS.with(|apps| f(apps.borrow_mut().entry(target).or_default()))
}

/// Who put the request's `Authorization` there.
pub enum Sent {
    /// None was sent.
    None,
    /// The page sent its own, not a user name and password (an app's token, say).
    Page,
    /// The page sent a user name and password (the sign-in page's retry).
    Typed(String, Zeroizing<String>),
    /// The bridge answered with the accepted ones.
    Accepted,
}

/// What to do with the device's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Hand it to the page.
    Pass,
    /// A `401` to a page navigation: show hometun's sign-in page instead.
    SignInPage,
    /// A Digest nonce went stale: send the request once more.
    Again,
}

/// Puts the right `Authorization` on a request for `method` and `uri` to `target` (see the
/// module's documentation); says where it came from.
pub fn authorize(target: AppTarget, method: &str, uri: &str, headers: &mut HeaderList) -> Sent {
    with_state(target, |state| {
        if let Some(i) = headers.iter().position(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
            let Some((user, password)) = typed(&headers[i].1) else { return Sent::Page };
            if let Some(Scheme::Digest(challenge)) = &state.scheme {
                state.count += 1;
                headers[i].1 = answer(challenge, &user, &password, method, uri, state.count);
            }
            return Sent::Typed(user, password);
        }
        let Some((user, password)) = &state.accepted else { return Sent::None };
        let value = match &state.scheme {
            Some(Scheme::Digest(challenge)) => {
                state.count += 1;
                answer(challenge, user, password, method, uri, state.count)
            }
            _ => basic(user, password),
        };
        headers.push(("Authorization".to_owned(), value));
        Sent::Accepted
    })
}

/// Learns from the device's answer to a request that carried `sent`: its challenge, whether it
/// took the credentials. `document` is a page navigation.
pub fn answered(target: AppTarget, sent: Sent, headers: &[(String, String)], status: u16, document: bool) -> Answer {
    with_state(target, |state| {
        let challenge = if status == 401 { scheme_of(headers) } else { None };
        let stale = matches!(&challenge, Some(Scheme::Digest(c)) if c.stale);
        if let Some(scheme) = challenge.clone() {
            // A device that asked for Digest and now asks for Basic would be sent the accepted
            // password in the clear: it is typed again instead.
            if matches!((&state.scheme, &scheme), (Some(Scheme::Digest(_)), Scheme::Basic)) {
                state.accepted = None;
            }
            state.scheme = Some(scheme);
            state.count = 0;
        }
        match sent {
            Sent::Typed(user, password) if status != 401 => state.accepted = Some((user, password)),
            Sent::Accepted if status == 401 && stale => return Answer::Again,
            Sent::Accepted if status == 401 => state.accepted = None,
            _ => {}
        }
        if status == 401 && document && challenge.is_some() {
            Answer::SignInPage
        } else {
            Answer::Pass
        }
    })
}

/// The realm a `401`'s challenge names (empty when none).
pub fn realm(headers: &[(String, String)]) -> String {
    match scheme_of(headers) {
        Some(Scheme::Digest(challenge)) => challenge.realm,
        _ => basic_realm(headers).unwrap_or_default(),
    }
}

/// The answerable challenge of a `401`: Digest when offered (the stronger), else Basic.
fn scheme_of(headers: &[(String, String)]) -> Option<Scheme> {
    digest_challenge(headers).map(Scheme::Digest).or_else(|| basic_realm(headers).map(|_| Scheme::Basic))
}

/// The user name and password in a `Basic` `Authorization` value.
fn typed(authorization: &str) -> Option<(String, Zeroizing<String>)> {
    let encoded = authorization.get(..6).filter(|s| s.eq_ignore_ascii_case("basic ")).map(|_| &authorization[6..])?;
    let decoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(password.to_owned())))
}

fn basic(user: &str, password: &str) -> String {
    let pair = Zeroizing::new(format!("{user}:{password}"));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()))
}

fn answer(
    challenge: &digest_auth::Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    count: u32,
) -> String {
    let mut cnonce = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut cnonce);
    let cnonce: String = cnonce.iter().map(|b| format!("{b:02x}")).collect();
    digest_auth::authorization(challenge, user, password, method, uri, count, &cnonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> HeaderList {
        vec![("WWW-Authenticate".to_owned(), value.to_owned())]
    }

    /// An IP camera asks for Digest, takes the typed password, then (a page's own request, say)
    /// answers with a Basic challenge: the accepted password is not sent in the clear after it.
    #[test]
    fn a_device_that_turns_from_digest_to_basic_is_not_sent_the_password_in_the_clear() {
        let camera = AppTarget::http("192.168.0.30:80".parse().unwrap());
        answered(camera, Sent::None, &challenge(r#"Digest realm="cam", nonce="n1", qop="auth""#), 401, true);
        let mut typed = vec![("Authorization".to_owned(), basic("admin", "secret"))];
        let sent = authorize(camera, "GET", "/", &mut typed);
        assert!(typed[0].1.starts_with("Digest "), "the typed password goes as Digest: {typed:?}");
        answered(camera, sent, &[], 200, true);
        let mut next = Vec::new();
        assert!(matches!(authorize(camera, "GET", "/live", &mut next), Sent::Accepted));
        assert!(next[0].1.starts_with("Digest "), "{next:?}");

        answered(camera, Sent::Page, &challenge(r#"Basic realm="cam""#), 401, false);
        let mut after = Vec::new();
        assert!(matches!(authorize(camera, "GET", "/live", &mut after), Sent::None));
        assert!(after.is_empty(), "the password went in the clear: {after:?}");
    }
}
