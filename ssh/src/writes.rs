//! What goes to the shell, with a bound on what may wait for the server: a server that takes
//! nothing in (its window closed) while making the terminal answer it (cursor position reports,
//! a few bytes each) would otherwise pile the page's writes up without end.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use russh::client::Msg;
use russh::ChannelWriteHalf;

use crate::error::SshError;

/// Writes that may wait for the server at once.
pub const MAX_PENDING_WRITES: usize = 4096;
/// Bytes that may wait for the server at once.
pub const MAX_PENDING_BYTES: usize = 16 << 20;

/// The shell's input side: writes (bounded), terminal size, end of input.
pub struct ShellWriter {
    channel: ChannelWriteHalf<Msg>,
    /// Writes waiting for the server to take them, and their bytes.
    pending: Mutex<(usize, usize)>,
}

impl ShellWriter {
    pub fn new(channel: ChannelWriteHalf<Msg>) -> Arc<Self> {
        Arc::new(Self { channel, pending: Mutex::new((0, 0)) })
    }

    /// The channel, for the terminal size and the end of input.
    pub fn channel(&self) -> &ChannelWriteHalf<Msg> {
        &self.channel
    }

    /// Writes and bytes waiting for the server now.
    pub fn pending(&self) -> (usize, usize) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `bytes` for the shell; the future resolves once the server's window took them.
    /// Past [`MAX_PENDING_WRITES`] or [`MAX_PENDING_BYTES`] waiting, the write is refused and
    /// nothing is queued, as a key typed into a hung connection is lost.
    pub fn write(self: &Arc<Self>, bytes: Vec<u8>) -> Result<impl Future<Output = Result<(), SshError>>, SshError> {
        let held = Held::take(self.clone(), bytes.len())?;
        Ok(async move {
            let sent = held.writer.channel.data_bytes(bytes).await;
            drop(held);
            sent.map_err(SshError::from)
        })
    }
}

/// One write's share of the bound, given back when the write ends (or its future is dropped).
struct Held {
    writer: Arc<ShellWriter>,
    len: usize,
}

impl Held {
    fn take(writer: Arc<ShellWriter>, len: usize) -> Result<Self, SshError> {
        {
            let mut pending = writer.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let (writes, bytes) = *pending;
            if writes >= MAX_PENDING_WRITES || bytes + len > MAX_PENDING_BYTES {
                return Err(SshError::NotReading);
            }
            *pending = (writes + 1, bytes + len);
        }
        Ok(Self { writer, len })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut pending = self.writer.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.0 -= 1;
        pending.1 -= self.len;
    }
}
