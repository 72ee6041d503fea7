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
}
