//! The port server: `hometun.appPort(origin)` hands an app origin a `MessagePort` whose far end
//! (served here) reaches only that app's LAN `host:port` (protocol: `docs/web-apps.md`).
//!
//! Reading order: `port` (one server per port, messages in, tasks out), `decode` and `message`
//! (every incoming message read and checked), `fetch` (one request: `headers` maps it, `exchange`
//! sends it on a `pool` connection, a streamed request body comes in by `upload`, the response
//! body streams within a `credit` window, undone by `decompress` when the app compressed it), `ws` (one WebSocket), `jars` (one cookie jar per
//! target in `localStorage`), `reply` (outgoing messages).
//! What all app pages may make the launcher hold at once is `budget`'s; whether a port's far end
//! is still there, `liveness`'s.
//! Pure and natively tested: `message`, `credit`, `slots`, `upload`'s inbox, `budget`, `liveness`. The mapping, jar, injector and
//! WebSocket codec are the pure modules beside this one (`crate::apps`).

pub mod budget;
pub mod credit;
pub mod decode;
pub mod decompress;
pub mod exchange;
pub mod fetch;
pub mod jars;
pub mod liveness;
pub mod message;
pub mod pool;
pub mod port;
pub mod reply;
pub mod sign_in;
pub mod slots;
pub mod stream;
pub mod upload;
pub mod ws;

pub use port::{close_all, serve, App};
