//! The state directory (`/etc/hometun`, mode 0700) belongs to root, and so does the admin
//! socket: a permission error on either means the command was run without root. Messages about
//! them end with [`hint`] so the user knows what to do.

/// `" — run it as root (sudo)"` for a permission error, nothing for any other.
pub fn hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => " — run it as root (sudo)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_permission_error_asks_for_root() {
        assert_eq!(hint(&Error::from(ErrorKind::PermissionDenied)), " — run it as root (sudo)");
        assert_eq!(hint(&Error::from(ErrorKind::NotFound)), "");
    }
}
