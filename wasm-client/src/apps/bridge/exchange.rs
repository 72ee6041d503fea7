//! One HTTP/1.1 exchange on a pooled connection: the request out, the response head in, then
//! the body piece by piece. The connection goes back to the pool only when the whole response
//! was read, its framing said where it ended, the server did not ask to close, and the request
//! was not a `HEAD`.
//!
//! A reused connection that fails before the first response byte (the server closed it while
//! idle) is retried once on a new connection; the request is still in memory. The response head
//! is looked for while any request is written, one held whole too (below). Nothing is sent,
//! or sent again, once the page has given up on the request ([`Watch::cancelled`]). A request whose
//! body is streamed ([`send_streamed`]) cannot be sent twice: it goes on a new connection and is
//! never retried. Its response head is looked for while the body is written: a server may refuse
//! before it has read the body (a `413` for a file too large, a `401`), and then the rest of the
//! body is not sent (RFC 9112, section 9.5) and the connection is not reused. An early answer
//! that refuses nothing (below 400, not closing) still gets the whole body first.

use hometun_shared::app_name::AppTarget;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use super::pool::{self, Connection, Lease};
use super::stream::LanStream;
use super::upload::Piece;
use crate::apps::error::AppError;
use crate::error::ClientError;
use crate::http::{Body, BodyFramer, BodyFraming, HttpError, Request, ResponseHead};

/// A response whose head has arrived; read the body with [`Exchange::next_chunk`].
pub struct Exchange {
    lease: Option<Lease>,
    body: Body,
    close_after: bool,
}

/// The one who waits for an exchange: told which connection carries it (to abort that on
/// cancel), and asked whether it still wants it.
pub trait Watch {
    /// The request goes on `stream` now.
    fn connection(&self, stream: &Rc<LanStream>);
    /// Whether the page gave up on the request.
    fn cancelled(&self) -> bool;
}

/// How far one attempt got before failing.
enum Failure {
    /// No response byte arrived: safe to send again on a new connection.
    BeforeResponse(ClientError),
    /// Part of the response arrived.
    InResponse(ClientError),
}

/// Sends `request` to `target` on a pooled connection; returns the head and the exchange that
/// reads the body.
pub async fn send(
    target: AppTarget,
    request: &Request,
    watch: &impl Watch,
) -> Result<(ResponseHead, Exchange), ClientError> {
    let bytes = request.encode_keep_alive()?;
    let mut lease = pool::lease(target).await?;
    let mut retried = false;
    loop {
        watched(watch, &lease.connection().stream)?;
        match attempt(&mut lease, &bytes).await {
            Ok((head, early)) => return start(head, lease, request, early),
            Err(Failure::BeforeResponse(_)) if lease.reused && !retried && !watch.cancelled() => {
                retried = true;
                lease = pool::reopen(lease).await?;
            }
            Err(Failure::BeforeResponse(e) | Failure::InResponse(e)) => return Err(e),
        }
    }
}

/// Sends `request`'s head framed by `framing`, then each piece `next_piece` gives until its
/// end, on a new connection; returns like [`send`], at the body's end or as soon as a refusing
/// response head is there (the rest is then not sent). Fails when a piece fails (a cancel), when
/// the pieces do not add up to a `Content-Length`, or when the connection breaks.
pub async fn send_streamed<F, P>(
    target: AppTarget,
    request: &Request,
    framing: BodyFraming,
    mut next_piece: F,
    watch: &impl Watch,
) -> Result<(ResponseHead, Exchange), ClientError>
where
    F: FnMut() -> P,
    P: Future<Output = Result<Piece, ClientError>>,
{
    let head = request.encode_streamed_head(framing)?;
    let mut lease = pool::lease_new(target).await?;
    let stream = lease.connection().stream.clone();
    watched(watch, &stream)?;
    let body = async {
        stream.write_all(&head).await?;
        let mut framer = BodyFramer::new(framing);
        while let Piece::Chunk(data) = next_piece().await? {
            stream.write_all(&framer.frame(&data)?).await?;
        }
        stream.write_all(framer.finish()?).await
    };
    let (answer, early) = {
        let mut body = pin!(body);
        let mut answer = pin!(read_head(lease.connection()));
        match first_of(answer.as_mut(), body.as_mut()).await {
            // Answered early and refusing (an error, or closing): the rest of the body is not sent.
            Err(Ok(head)) if refuses_the_rest(&head) => (Ok(head), true),
            // Answered early and reading on: the body is sent whole first, as it would be anyway.
            Err(Ok(head)) => {
                body.await?;
                (Ok(head), false)
            }
            Err(Err(failure)) => (Err(failure), true),
            Ok(Ok(())) => (answer.await, false),
            Ok(Err(e)) => return Err(e),
        }
    };
    match answer {
        Ok(head) => start(head, lease, request, early),
        Err(Failure::BeforeResponse(e) | Failure::InResponse(e)) => Err(e),
    }
}

/// Tells `watch` that `stream` carries the request; fails when the page gave up already (a
/// cancel while the request waited for a connection), so nothing is sent.
fn watched(watch: &impl Watch, stream: &Rc<LanStream>) -> Result<(), ClientError> {
    if watch.cancelled() {
        return Err(AppError::Cancelled.into());
    }
    watch.connection(stream);
    Ok(())
}

/// Whether `head`'s `Connection` (a list, in any of its headers) has `token` (lower case).
fn connection_says(head: &ResponseHead, token: &str) -> bool {
    crate::apps::headers::connection_tokens(&head.headers).iter().any(|t| t == token)
}

/// Whether `head` refuses the rest of a body still being written: an error status, or a
/// `Connection: close` (an HTTP/1.0 answer that reads on, an old CGI's, does not).
fn refuses_the_rest(head: &ResponseHead) -> bool {
    head.status >= 400 || connection_says(head, "close")
}

/// Whether the server closes the connection after `head`: `Connection` says `close`, or an
/// `HTTP/1.0` answer does not say `keep-alive` (Python's `http.server`, small embedded
/// servers). Such a connection goes back to no pool.
fn closes(head: &ResponseHead) -> bool {
    connection_says(head, "close") || head.http10 && !connection_says(head, "keep-alive")
}

/// The exchange that reads the body of the response to `request` whose `head` arrived
/// (`early`: before the request was all written, whose connection is then not reused).
fn start(
    head: ResponseHead,
    lease: Lease,
    request: &Request,
    early: bool,
) -> Result<(ResponseHead, Exchange), ClientError> {
    let body = Body::for_response(&head, request.is_head())?;
    // After a HEAD, a server that sends the body anyway would make its bytes the next
    // response's head: such a connection is not reused.
    let close_after = early || request.is_head() || closes(&head);
    Ok((head, Exchange { lease: Some(lease), body, close_after }))
}

/// Runs `write` while `answer` looks for the response head; the answer first when both are
/// ready (an answer, then a reset that fails the write: the answer is what the page should
/// see). `Err(head's outcome)` when the answer came first (the write may be unfinished),
/// `Ok(write's outcome)` otherwise.
async fn first_of<A: Future, W: Future>(
    mut answer: std::pin::Pin<&mut A>,
    mut write: std::pin::Pin<&mut W>,
) -> Result<W::Output, A::Output> {
    std::future::poll_fn(|cx| match answer.as_mut().poll(cx) {
        Poll::Ready(answer) => Poll::Ready(Err(answer)),
        Poll::Pending => write.as_mut().poll(cx).map(Ok),
    })
    .await
}

/// Sends a request held whole and reads its answer's head, looking for it while the request is
/// written: a device that refuses a large body early (a `413` for a firmware image, a `401`)
/// and resets or stops reading is answered with its refusal, not a broken connection or a
/// write that waits for ever; the rest is then not sent and the connection not reused
/// (`early`). Returns the head and `early`.
async fn attempt(lease: &mut Lease, bytes: &[u8]) -> Result<(ResponseHead, bool), Failure> {
    let connection = lease.connection();
    let stream = connection.stream.clone();
    let mut write = pin!(stream.write_all(bytes));
    let mut answer = pin!(read_head(connection));
    match first_of(answer.as_mut(), write.as_mut()).await {
        Err(Ok(head)) if refuses_the_rest(&head) => Ok((head, true)),
        Err(Ok(head)) => {
            write.await.map_err(Failure::InResponse)?;
            Ok((head, false))
        }
        Err(Err(failure)) => Err(failure),
        Ok(Ok(())) => answer.await.map(|head| (head, false)),
        // What the device answered before it broke the connection, if anything.
        Ok(Err(e)) => match answer.await {
            Ok(head) => Ok((head, true)),
            Err(Failure::BeforeResponse(_)) => Err(Failure::BeforeResponse(e)),
            Err(failure) => Err(failure),
        },
    }
}

async fn read_head(connection: &mut Connection) -> Result<ResponseHead, Failure> {
    loop {
        if let Some((head, len)) = ResponseHead::parse(&connection.buffer).map_err(|e| Failure::InResponse(e.into()))? {
            connection.buffer.drain(..len);
            return Ok(head);
        }
        let chunk = match connection.stream.read().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) if connection.buffer.is_empty() => {
                let e = HttpError::BadHead("the host closed the connection without answering".into());
                return Err(Failure::BeforeResponse(e.into()));
            }
            Ok(None) => {
                let e = HttpError::BadHead("the host closed the connection inside the response head".into());
                return Err(Failure::InResponse(e.into()));
            }
            Err(e) if connection.buffer.is_empty() => return Err(Failure::BeforeResponse(e)),
            Err(e) => return Err(Failure::InResponse(e)),
        };
        connection.buffer.extend_from_slice(&chunk);
    }
}

impl Exchange {
    /// The next piece of the body (at most one TCP read's worth); `Ok(None)` at its end, when
    /// the connection has gone back to the pool or been closed.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let Some(lease) = self.lease.as_mut() else { return Ok(None) };
            let connection = lease.connection();
            if let Some(chunk) = self.body.take_from(&mut connection.buffer)? {
                return Ok(Some(chunk));
            }
            if self.body.is_done() {
                self.finish();
                return Ok(None);
            }
            match connection.stream.read().await? {
                Some(bytes) if connection.buffer.is_empty() => connection.buffer = bytes,
                Some(bytes) => connection.buffer.extend_from_slice(&bytes),
                None => {
                    self.body.finish()?;
                    self.close_after = true;
                    self.finish();
                    return Ok(None);
                }
            }
        }
    }

    /// The body is complete: keep the connection when nothing says it cannot carry another.
    fn finish(&mut self) {
        let Some(mut lease) = self.lease.take() else { return };
        if !self.close_after && lease.connection().buffer.is_empty() {
            lease.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> ResponseHead {
        ResponseHead::parse(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn connections_that_close_after_the_answer_go_back_to_no_pool() {
        assert!(!closes(&head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")));
        assert!(closes(&head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")));
        assert!(closes(&head("HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\n\r\n")), "a list");
        assert!(closes(&head("HTTP/1.1 200 OK\r\nConnection: x-a\r\nConnection: close\r\n\r\n")), "a second header");
        assert!(closes(&head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n")), "HTTP/1.0 closes by default");
        assert!(!closes(&head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n")));
    }
}
