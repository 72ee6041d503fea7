//! Basic-authentication credentials the LAN apps accepted (see [`crate::apps::basic_auth`]):
//! one `Authorization` value per target, in this page's memory only.

use std::cell::RefCell;
use std::collections::HashMap;

use hometun_shared::app_name::AppTarget;

thread_local! {
    static ACCEPTED: RefCell<HashMap<AppTarget, String>> = RefCell::new(HashMap::new());
}

/// The `Authorization` value `target` accepted last, if any.
pub fn get(target: AppTarget) -> Option<String> {
    ACCEPTED.with(|a| a.borrow().get(&target).cloned())
}

/// `target` accepted `authorization`.
pub fn accepted(target: AppTarget, authorization: &str) {
    ACCEPTED.with(|a| a.borrow_mut().insert(target, authorization.to_owned()));
}

/// `target` refused what it had accepted (a changed password): ask again.
pub fn refused(target: AppTarget) {
    ACCEPTED.with(|a| a.borrow_mut().remove(&target));
}
