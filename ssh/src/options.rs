//! What `connect` takes from JavaScript, checked before anything is opened: input that is not
//! usable is an [`SshError::InvalidArgument`], never replaced by a default (a wrong port would
//! also pin the host key under another `host:port`).

use crate::error::SshError;

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 22;

/// The SSH port: [`DEFAULT_PORT`] when not given (`None`), else a whole number 1..=65535.
pub fn port(given: Option<f64>) -> Result<u16, SshError> {
    let Some(n) = given else { return Ok(DEFAULT_PORT) };
    if n.fract() == 0.0 && (1.0..=65535.0).contains(&n) {
        Ok(n as u16)
    } else {
        // Without the number: formatting a float would add ~25 KB to the module.
        Err(SshError::InvalidArgument("the port must be a whole number from 1 to 65535".into()))
    }
}

/// The largest terminal width or height taken, in characters. More than any screen gives the
/// Terminal card (xterm.js fitted to an 8K screen at the browser's smallest zoom is under 4000
/// columns), far less than the 65535 a server's PTY holds (16-bit `struct winsize` fields), and
/// the bound `resize` keeps to.
pub const MAX_TERMINAL_SIZE: u32 = 10_000;

/// The terminal's width (`name` "cols") or height ("rows") in characters: `default` when not
/// given (`None`), else a whole number 1..=[`MAX_TERMINAL_SIZE`].
pub fn terminal_size(name: &str, given: Option<f64>, default: u32) -> Result<u32, SshError> {
    let Some(n) = given else { return Ok(default) };
    if n.fract() == 0.0 && (1.0..=f64::from(MAX_TERMINAL_SIZE)).contains(&n) {
        Ok(n as u32)
    } else {
        // Without `format!`: its machinery for one message added ~0.2 KB gzip to the module.
        Err(SshError::InvalidArgument([name, " must be a whole number from 1 to 10000"].concat()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_a_whole_number_from_1_to_65535_and_22_when_not_given() {
        let cases: &[(Option<f64>, Option<u16>)] = &[
            (None, Some(22)),
            (Some(22.0), Some(22)),
            (Some(1.0), Some(1)),
            (Some(10_000.0), Some(10_000)),
            (Some(10_001.0), Some(10_001)),
            (Some(22_222.0), Some(22_222)),
            (Some(65_535.0), Some(65_535)),
            (Some(0.0), None),
            (Some(-22.0), None),
            (Some(65_536.0), None),
            (Some(65_558.0), None),
            (Some(22.9), None),
            (Some(f64::NAN), None),
            (Some(f64::INFINITY), None),
        ];
        for (i, (given, want)) in cases.iter().enumerate() {
            let got = port(*given);
            match want {
                Some(p) => assert_eq!(got, Ok(*p), "case {i}: {given:?}"),
                None => assert!(
                    matches!(&got, Err(SshError::InvalidArgument(m)) if m.contains("whole number from 1 to 65535")),
                    "case {i}: {given:?} gave {got:?}"
                ),
            }
        }
    }

    #[test]
    fn a_terminal_size_is_a_whole_number_from_1_to_10000_and_the_default_when_not_given() {
        let cases: &[(Option<f64>, Option<u32>)] = &[
            (None, Some(80)),
            (Some(1.0), Some(1)),
            (Some(24.0), Some(24)),
            (Some(10_000.0), Some(10_000)),
            (Some(0.0), None),
            (Some(-80.0), None),
            (Some(10_001.0), None),
            (Some(4_294_967_376.0), None),
            (Some(80.5), None),
            (Some(f64::NAN), None),
            (Some(f64::INFINITY), None),
        ];
        for (i, (given, want)) in cases.iter().enumerate() {
            let got = terminal_size("cols", *given, 80);
            match want {
                Some(n) => assert_eq!(got, Ok(*n), "case {i}: {given:?}"),
                None => assert!(
                    matches!(&got, Err(SshError::InvalidArgument(m)) if m == "cols must be a whole number from 1 to 10000"),
                    "case {i}: {given:?} gave {got:?}"
                ),
            }
        }
    }
}
