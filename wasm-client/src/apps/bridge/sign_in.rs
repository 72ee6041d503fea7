//! Basic authentication on the bridge's side (see [`crate::apps::basic_auth`]): the accepted
//! credentials added to requests, learned from the sign-in page's retry, and forgotten when the
//! device refuses them.

use hometun_shared::app_name::AppTarget;

use super::credentials;
use crate::apps::basic_auth::{basic_realm, is_basic};
use crate::apps::headers::HeaderList;

/// The headers of hometun's sign-in page.
pub const PAGE_HEADERS: [(&str, &str); 2] =
    [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")];

/// Who put the request's `Authorization` there.
pub enum Authorization {
    /// None was sent.
    None,
    /// The page sent its own (the sign-in page's retry, or the app's script).
    Page(String),
    /// The bridge added the credentials the device accepted before.
    Accepted,
}

/// Adds the credentials `target` accepted before unless the page sent an `Authorization` of
/// its own; says which it is.
pub fn authorize(target: AppTarget, headers: &mut HeaderList) -> Authorization {
    if let Some((_, value)) = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        return Authorization::Page(value.clone());
    }
    match credentials::get(target) {
        Some(value) => {
            headers.push(("Authorization".to_owned(), value));
            Authorization::Accepted
        }
        None => Authorization::None,
    }
}

/// Learns from the device's answer (`status`, `headers`): Basic credentials the page sent and
/// the device took are kept; accepted ones it now refuses are forgotten. Returns whether the
/// answer is a `401` asking for Basic to a page navigation (`document`), which gets hometun's
/// sign-in page instead.
pub fn answered(
    target: AppTarget,
    sent: &Authorization,
    headers: &[(String, String)],
    status: u16,
    document: bool,
) -> bool {
    match sent {
        Authorization::Page(value) if status != 401 && is_basic(value) => credentials::accepted(target, value),
        Authorization::Accepted if status == 401 => credentials::refused(target),
        _ => {}
    }
    status == 401 && document && basic_realm(headers).is_some()
}
