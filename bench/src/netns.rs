//! A tokio runtime whose every thread lives in one of the lab's network namespaces, kept
//! across calls (the browser case holds one WebDriver session over several measurements).

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::sync::Arc;

use anyhow::Context;

/// A runtime in a namespace. Futures given to [`NsRuntime::run`] run on its worker threads,
/// so every socket they open belongs to the namespace.
pub(crate) struct NsRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl NsRuntime {
    /// A runtime whose threads enter the namespace `name` (from `ip netns`).
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        let path = format!("/run/netns/{name}");
        let ns = Arc::new(File::open(&path).with_context(|| format!("open {path}"))?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || enter(&ns))
            .build()?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Runs `future` on a worker thread (inside the namespace) and waits for it.
    pub(crate) fn run<F>(&self, future: F) -> anyhow::Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref().context("runtime gone")?;
        runtime.block_on(runtime.spawn(future)).context("task in the namespace runtime panicked")
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn enter(ns: &File) {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns into the lab namespace");
    let want = rustix::fs::fstat(ns).expect("fstat netns");
    let have = rustix::fs::stat("/proc/thread-self/ns/net").expect("stat own netns");
    assert_eq!((want.st_dev, want.st_ino), (have.st_dev, have.st_ino), "thread is not in the lab namespace");
}
