//! What every case measures, as seen from the remote device: one HTTP GET of N bytes from the
//! LAN host, one HTTP POST of N bytes to it, and a run of 1-byte TCP echo round trips.
//!
//! The probes (kernel TCP in `probe`, the native hometun client in `hometun_probe`, the page in
//! the browser case) all print one [`Outcome`] as JSON on stdout.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

/// The LAN host all cases talk to.
pub(crate) const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
/// Port of the bench's HTTP server on the LAN host.
pub(crate) const HTTP_PORT: u16 = 8080;
/// Port of the bench's TCP echo server on the LAN host.
pub(crate) const ECHO_PORT: u16 = 7777;

/// The HTTP server on the LAN host.
pub(crate) fn http_addr() -> SocketAddrV4 {
    SocketAddrV4::new(LAN_HOST, HTTP_PORT)
}

/// The echo server on the LAN host.
pub(crate) fn echo_addr() -> SocketAddrV4 {
    SocketAddrV4::new(LAN_HOST, ECHO_PORT)
}

/// How often a probe sends an echo while a download runs ([`crate::Work::Loaded`]).
pub(crate) const LOADED_ECHO_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How long the download runs before the first of those echoes (its slow start).
pub(crate) const LOADED_ECHO_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// One measurement as a probe reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// A bulk transfer: `bytes` in `secs`; `cpu_secs` is the probe's own CPU time during it
    /// when the probe is itself a tunnel end (the native hometun client), else `None`.
    Transfer { bytes: u64, secs: f64, cpu_secs: Option<f64> },
    /// Round trips of one byte, milliseconds, in order.
    Echo { rtts_ms: Vec<f64> },
}

/// The request head of a GET of `size` bytes.
pub(crate) fn get_request(size: u64) -> String {
    format!("GET /bytes/{size} HTTP/1.1\r\nHost: {LAN_HOST}\r\nConnection: close\r\n\r\n")
}

/// The request head of a POST of `size` bytes to the sink.
pub(crate) fn post_request(size: u64) -> String {
    format!(
        "POST /sink HTTP/1.1\r\nHost: {LAN_HOST}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
}

/// A parsed response head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Content-Length, when given.
    pub content_length: Option<u64>,
    /// Bytes of `buf` the head took.
    pub head_len: usize,
}

/// Parses a response head from the start of `buf`; `Ok(None)` while it is incomplete.
pub(crate) fn parse_response_head(buf: &[u8]) -> anyhow::Result<Option<ResponseHead>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf)? {
        httparse::Status::Partial => {
            anyhow::ensure!(buf.len() < 16 * 1024, "response head longer than 16 KiB");
            Ok(None)
        }
        httparse::Status::Complete(head_len) => {
            let content_length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
            Ok(Some(ResponseHead { status: response.code.unwrap_or(0), content_length, head_len }))
        }
    }
}

/// Mean of `values` (0 when empty).
pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_when_complete() {
        assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\nxyz").unwrap().unwrap();
        assert_eq!(head, ResponseHead { status: 200, content_length: Some(42), head_len: 39 });
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
    }
}
