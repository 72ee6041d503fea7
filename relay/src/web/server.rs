//! The HTTP server over the TLS listener: hyper's HTTP/1.1 connection with a timer, so a client
//! must send a whole request head within [`HEADER_READ_TIMEOUT`], and with small buffers, so a
//! connection that is not yet a tunnel costs little memory. WebSocket upgrades hand the
//! connection to the tunnel. (`axum::serve` runs hyper without a timer: no header timeout.)

use super::listener::{Remote, TlsListener};
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tower::ServiceExt;

/// Longest a client may take to send one request head (each request of a kept-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read buffer per connection; a request head must fit in it (hyper's floor is 8 KiB).
pub const MAX_BUF_SIZE: usize = 16 * 1024;
/// Longest shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves `app` on every connection of `listener` until `shutdown` turns true; requests in
/// flight then get [`DRAIN`] to finish.
pub async fn serve(mut listener: TlsListener, app: Router, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(MAX_BUF_SIZE);
    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let info = ConnectInfo(Remote(remote, io.upgraded()));
        let service = app.clone().map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(info.clone());
            request
        });
        let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).with_upgrades();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(DRAIN, connection).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%remote, "HTTP connection ended: {e}");
            }
        });
    }
}
