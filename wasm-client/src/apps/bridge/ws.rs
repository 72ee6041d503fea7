//! Serving one `ws-open`: the upgrade on a tunnel TCP stream, then messages both ways until
//! close.

use std::rc::Rc;

use super::port::{PortServer, Task};
use super::reply::Reply;

/// Runs one WebSocket to its end and forgets its id.
pub async fn run(server: Rc<PortServer>, task: Rc<Task>, _path: String, _protocols: Vec<String>) {
    server.post(&task.id, Reply::WsClosed { code: 1006, reason: "WebSocket is not available yet", was_clean: false });
    server.finish(&task);
}
