//! The one TLS port: the page, the `/tunnel` WebSocket and `/healthz`; on app names, the
//! files that run home web apps in the browser ([`apps`]).

pub mod apps;
pub mod clean_uri;
pub mod encoding;
pub mod listener;
pub mod origin;
pub mod page;
pub mod server;
pub mod tls;

use crate::daemon::Relay;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use listener::Remote;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    relay: Arc<Relay>,
    www: Arc<PathBuf>,
    origins: Arc<origin::Origins>,
    apps: apps::AppSite,
}

/// The HTTP routes.
pub fn router(relay: Arc<Relay>, www: PathBuf) -> Router {
    let tunnel_address = relay.store().pool.relay_address();
    let apps = apps::AppSite::new(crate::acme::app_names(&relay.config, tunnel_address), www.clone());
    Router::new()
        .route("/tunnel", get(tunnel))
        .route("/healthz", get(healthz))
        .route("/relay.json", get(relay_json))
        .fallback(page_handler)
        .layer(axum::middleware::from_fn_with_state(apps.clone(), apps::route))
        .layer(axum::middleware::from_fn(clean_uri::reject_control_characters))
        .with_state(AppState { origins: Arc::new(origin::Origins::of(&relay.config)), relay, www: Arc::new(www), apps })
}

async fn healthz() -> Response {
    let mut response = "ok\n".into_response();
    page::security_headers(response.headers_mut());
    response
}

/// What the page needs to know about the relay: the certificate's kind and fingerprint, and
/// the domain of app names (`null`: no home web apps, the page keeps its snapshot view).
async fn relay_json(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({ "certificate": crate::acme::info(), "apps": state.apps.domain() }).to_string();
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    page::security_headers(response.headers_mut());
    response
}

async fn page_handler(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    page::serve(&state.www, &uri, &headers, state.apps.frame_source(&headers).as_deref()).await
}

/// Most bytes one read of a tunnel WebSocket asks the TLS stream for, and the buffer an idle
/// tunnel keeps. tungstenite's default (128 KiB) is allocated and zero-filled for every
/// connection, idle or not, and again zero-filled before every read: it was most of an idle
/// tunnel's memory. A read never yields more than one TLS record (16 KiB of plaintext) anyway,
/// and a message larger than this still gets a buffer of its own size as it arrives, so a busy
/// tunnel loses nothing.
const TUNNEL_READ_CHUNK: usize = 16 * 1024;

async fn tunnel(
    State(state): State<AppState>,
    ConnectInfo(Remote(remote, upgraded)): ConnectInfo<Remote>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !state.origins.allows(headers.get(header::ORIGIN).map(|v| v.as_bytes())) {
        tracing::debug!(%remote, "tunnel refused: foreign Origin");
        return StatusCode::FORBIDDEN.into_response();
    }
    upgraded.mark();
    let max = state.relay.config.limits.max_message_bytes;
    let relay = state.relay.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(TUNNEL_READ_CHUNK)
        .max_write_buffer_size(8 << 20)
        .on_upgrade(move |socket| crate::daemon::handshake::run(socket, remote, upgraded, relay))
}
