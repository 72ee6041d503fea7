//! Numbers for the handles a stack gives out (TCP connections, UDP sockets, DNS lookups),
//! never given twice in the process. A handle kept from a stack that was replaced (a new
//! address pushed, the user's disconnect and connect) then names nothing in the new one, and
//! fails as unknown, instead of naming whichever new connection took the same number.

use core::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A number no handle of any stack in this process had before.
pub(crate) fn fresh() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}
