//! The bytes every case moves: a fixed 1 MiB pseudo-random block repeated, so senders need no
//! per-byte work, receivers can check every byte with a `memcmp`, and no link can compress it.

use std::sync::OnceLock;

/// Length of the repeating block.
pub(crate) const BLOCK: usize = 1 << 20;

/// The repeating block (splitmix64 output).
pub(crate) fn block() -> &'static [u8] {
    static BLOCK_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK_BYTES.get_or_init(|| {
        let mut state = 0x0068_656d_6f74_756e_u64;
        let mut out = Vec::with_capacity(BLOCK);
        while out.len() < BLOCK {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out
    })
}

/// The stream bytes from `offset` on, as a slice of at most `max` bytes (never crossing the
/// end of the block).
pub(crate) fn slice_at(offset: u64, max: usize) -> &'static [u8] {
    let start = (offset % BLOCK as u64) as usize;
    let end = (start + max).min(BLOCK);
    &block()[start..end]
}

/// Checks that `got` is the stream from `offset` on; returns the first bad offset.
pub(crate) fn check(offset: u64, got: &[u8]) -> Result<(), u64> {
    let mut done = 0usize;
    while done < got.len() {
        let want = slice_at(offset + done as u64, got.len() - done);
        let part = &got[done..done + want.len()];
        if part != want {
            let i = part.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(offset + (done + i) as u64);
        }
        done += want.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_tile_the_stream_and_check_finds_the_bad_byte() {
        let mut stream = Vec::new();
        let mut offset = 0u64;
        while stream.len() < 3 * BLOCK + 123 {
            let s = slice_at(offset, 70_000);
            stream.extend_from_slice(s);
            offset += s.len() as u64;
        }
        assert_eq!(check(0, &stream), Ok(()));
        assert_eq!(check(BLOCK as u64 - 5, &stream[BLOCK - 5..BLOCK + 100]), Ok(()));
        stream[2 * BLOCK + 7] ^= 0x40;
        assert_eq!(check(0, &stream), Err(2 * BLOCK as u64 + 7));
    }
}
