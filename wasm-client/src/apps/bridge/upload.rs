//! A request body streamed from the service worker: the `body` chunks it sent ahead and
//! `body-end`, within a credit window that mirrors the response's. The worker may have at most
//! [`WINDOW`](super::credit::WINDOW) chunks sent and not yet credited; wasm credits one (`body-more`) after it has
//! written that chunk to the LAN connection, so a page that produces faster than the LAN app
//! reads waits instead of filling memory.
//!
//! [`Inbox`] is the pure bookkeeping (natively tested); [`next`] is what the exchange awaits for
//! each piece.

use std::collections::VecDeque;

use super::credit::Credit;
use super::message::MessageError;
use super::port::{PortServer, Task};
use super::reply::Reply;
use crate::error::ClientError;
use crate::http::HttpError;

/// What the exchange gets next from the body.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// The next chunk, to be written.
    Chunk(Vec<u8>),
    /// `body-end` arrived and every chunk was taken.
    End,
}

/// The streamed body of one request, as far as the worker has sent it.
#[derive(Debug, Default)]
pub struct Inbox {
    expected: bool,
    ended: bool,
    chunks: VecDeque<Vec<u8>>,
    credit: Credit,
    taken: bool,
}

impl Inbox {
    /// An inbox for a request whose body is streamed (`streamBody: true`); the default one
    /// refuses every `body`.
    pub fn streamed() -> Self {
        Self { expected: true, ..Self::default() }
    }

    /// A `body` chunk arrived. Fails when no streamed body is expected (or it already ended),
    /// or when the worker sent it without credit.
    pub fn push(&mut self, chunk: Vec<u8>) -> Result<(), MessageError> {
        if !self.expected || self.ended {
            return Err(MessageError::UnexpectedBody);
        }
        if !self.credit.can_send() {
            return Err(MessageError::BodyWithoutCredit);
        }
        self.credit.sent();
        self.chunks.push_back(chunk);
        Ok(())
    }

    /// `body-end` arrived. Fails when no streamed body is expected or it already ended.
    pub fn end(&mut self) -> Result<(), MessageError> {
        if !self.expected || self.ended {
            return Err(MessageError::UnexpectedBody);
        }
        self.ended = true;
        Ok(())
    }

    /// The next piece, if one is there. Taking a piece says the one taken before is written:
    /// the returned flag is `true` when that earns the worker a credit (`body-more`).
    pub fn take(&mut self) -> (Option<Piece>, bool) {
        let credit = std::mem::take(&mut self.taken);
        if credit {
            self.credit.more();
        }
        let piece = match self.chunks.pop_front() {
            Some(chunk) => {
                self.taken = true;
                Some(Piece::Chunk(chunk))
            }
            None if self.ended => Some(Piece::End),
            None => None,
        };
        (piece, credit)
    }

    /// Chunks the worker sent that are not credited yet (at most [`super::credit::WINDOW`]).
    pub fn in_flight(&self) -> u32 {
        self.credit.in_flight()
    }
}

/// Waits for the next piece of `task`'s body; posts `body-more` for the piece taken before (it
/// has been written by now). Fails when the task was cancelled.
pub async fn next(server: &PortServer, task: &Task) -> Result<Piece, ClientError> {
    let piece = task
        .signal
        .until(|| {
            if task.cancelled.get() {
                return Some(None);
            }
            let (piece, credit) = task.upload.borrow_mut().take();
            if let Some(Piece::Chunk(chunk)) = &piece {
                task.held.borrow_mut().shrink(chunk.len());
            }
            if credit {
                server.post(&task.id, Reply::BodyMore);
            }
            piece.map(Some)
        })
        .await;
    piece.ok_or_else(|| HttpError::RequestBodyStopped.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::bridge::credit::WINDOW;

    #[test]
    fn a_window_of_chunks_may_come_ahead_and_each_written_one_earns_one_more() {
        let mut inbox = Inbox::streamed();
        for i in 0..WINDOW {
            inbox.push(vec![i as u8]).unwrap();
        }
        assert_eq!(
            inbox.push(vec![99]),
            Err(MessageError::BodyWithoutCredit),
            "the chunk past the window came without credit"
        );
        assert_eq!(inbox.take(), (Some(Piece::Chunk(vec![0])), false), "nothing was written before the first");
        assert_eq!(inbox.push(vec![99]), Err(MessageError::BodyWithoutCredit), "taken is not yet written");
        assert_eq!(inbox.take(), (Some(Piece::Chunk(vec![1])), true), "the first is written: one credit");
        inbox.push(vec![WINDOW as u8]).unwrap();
        assert_eq!(inbox.in_flight(), WINDOW);
    }

    #[test]
    fn the_end_comes_after_every_chunk_and_nothing_may_follow_it() {
        let mut inbox = Inbox::streamed();
        inbox.push(b"a".to_vec()).unwrap();
        inbox.end().unwrap();
        assert_eq!(inbox.push(b"b".to_vec()), Err(MessageError::UnexpectedBody));
        assert_eq!(inbox.end(), Err(MessageError::UnexpectedBody));
        assert_eq!(inbox.take(), (Some(Piece::Chunk(b"a".to_vec())), false));
        assert_eq!(inbox.take(), (Some(Piece::End), true));
        assert_eq!(inbox.take(), (Some(Piece::End), false));
    }

    #[test]
    fn nothing_waiting_means_wait_and_a_request_without_stream_body_takes_no_body() {
        let mut inbox = Inbox::streamed();
        assert_eq!(inbox.take(), (None, false));
        let mut buffered = Inbox::default();
        assert_eq!(buffered.push(b"x".to_vec()), Err(MessageError::UnexpectedBody));
        assert_eq!(buffered.end(), Err(MessageError::UnexpectedBody));
    }
}
