//! Terminal output helpers: the QR code of an invite link, and UTC times.

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

/// The link as a QR code of Unicode half blocks (light modules drawn, for dark terminals).
pub fn render(link: &str) -> anyhow::Result<String> {
    let code = QrCode::new(link.as_bytes())?;
    Ok(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

/// Unix seconds as `2026-11-30 10:00 UTC`.
pub fn utc(unix: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_code_and_times() {
        let code = render("https://home.example.net/#invite=AAAA").unwrap();
        assert!(code.lines().count() > 10);
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
    }
}
