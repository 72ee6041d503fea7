//! A cookie's `Expires` date read as browsers read it (RFC 6265, 5.1.1): tokens in any order,
//! a time, a day, a month's first three letters and a year, whatever the separators, so
//! `Thu, 01 Jan 1970 00:00:00 UTC`, `Thursday, 1-jan-70 00:00:00 GMT` and the like all count.
//! Strict parsers take only the three HTTP date forms, and a deletion written another way left
//! an empty cookie behind.

/// Unix seconds of `text`, or `None` when it is no date by the RFC's rules.
pub fn parse(text: &str) -> Option<i64> {
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(is_delimiter).filter(|t| !t.is_empty()) {
        if time.is_none() {
            if let Some(hms) = time_of(token) {
                time = Some(hms);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = leading_digits(token, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            if let Some(m) = month_of(token) {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = leading_digits(token, 2, 4) {
                year = Some(y);
            }
        }
    }
    let ((hour, minute, second), day, month, mut year) = (time?, day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// The RFC's delimiters: tab, space to `/`, `;` to `@`, `[` to `` ` ``, `{` to `~`.
fn is_delimiter(c: char) -> bool {
    matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~')
}

/// `min..=max` digits, then nothing or a non-digit and anything.
fn leading_digits(token: &str, min: usize, max: usize) -> Option<u32> {
    let digits = token.bytes().take_while(u8::is_ascii_digit).count();
    ((min..=max).contains(&digits)).then(|| token[..digits].parse().ok()).flatten()
}

/// `h:m:s`, each one or two digits, then nothing or a non-digit and anything.
fn time_of(token: &str) -> Option<(u32, u32, u32)> {
    let mut fields = token.splitn(3, ':');
    let hour = fields.next().filter(|f| (1..=2).contains(&f.len()))?.parse().ok()?;
    let minute = fields.next().filter(|f| (1..=2).contains(&f.len()))?.parse().ok()?;
    let second = leading_digits(fields.next()?, 1, 2)?;
    Some((hour, minute, second))
}

fn month_of(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let first = token.get(..3)?;
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(first)).map(|i| i as u32 + 1)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn dates_as_browsers_read_them() {
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0), "the copied deletion line");
        assert_eq!(parse("Thursday, 1-jan-70 00:00:01 GMT"), Some(1), "RFC 850, one-digit day, lower case");
        assert_eq!(parse("Thu Jan  1 00:00:00 1970"), Some(0), "asctime");
        assert_eq!(parse("Sun, 06 Dec 2026 10:20:30 GMT"), Some(1_796_552_430));
        assert_eq!(parse("29 FEB 2028 23:59:59"), Some(1_835_481_599), "a leap day");
        assert_eq!(parse("Wed, 09 Jun 2021 10:18:14 GMT+0000"), Some(1_623_233_894));
    }

    #[test]
    fn what_is_no_date_is_refused() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("tomorrow"), None);
        assert_eq!(parse("Thu, 01 Jan 1970"), None, "no time");
        assert_eq!(parse("31 Feb 2027 00:00:00"), None, "no such day");
        assert_eq!(parse("01 Jan 1600 00:00:00"), None, "before 1601");
        assert_eq!(parse("01 Jan 2027 24:00:00"), None);
        assert_eq!(parse("01 Foo 2027 00:00:00"), None, "no month");
    }
}
