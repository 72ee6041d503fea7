//! Group commit: changes that arrive while the state is being written wait, and the next write
//! takes all of them at once, so a burst of enrolments costs a few fsyncs instead of one per
//! device.
//!
//! The queue only orders who writes: whoever queues a job while nobody is committing becomes the
//! committer and runs [`GroupCommit::commit`], which takes batches until the queue is empty;
//! everyone else just waits for the answer their job carries. A batch holds at most
//! [`MAX_BATCH`] jobs, so one write stays bounded; the queue itself holds at most one job per
//! connection in its handshake, which the per-address and global handshake limits bound.
//!
//! Hellos that must wait for the store while a write holds it queue the same way, and one
//! thread decides them together ([`crate::daemon::Relay::decide`]).

use std::sync::{Mutex, MutexGuard};

/// Most jobs written together.
pub const MAX_BATCH: usize = 256;

/// A queue of jobs written in batches by one committer at a time.
pub struct GroupCommit<J> {
    queue: Mutex<Queue<J>>,
}

struct Queue<J> {
    jobs: Vec<J>,
    /// Someone is taking batches.
    committing: bool,
}

impl<J> Default for GroupCommit<J> {
    fn default() -> Self {
        Self { queue: Mutex::new(Queue { jobs: Vec::new(), committing: false }) }
    }
}

impl<J> GroupCommit<J> {
    /// Queues `job`. `true`: nobody is committing, the caller must run [`GroupCommit::commit`];
    /// otherwise the running committer takes the job with its next batch.
    #[must_use = "when true, the caller must commit"]
    pub fn push(&self, job: J) -> bool {
        let mut queue = self.lock();
        queue.jobs.push(job);
        !std::mem::replace(&mut queue.committing, true)
    }

    /// The committer's loop: hands `write` every batch (oldest jobs first, at most
    /// [`MAX_BATCH`]) until none is left, then gives the role up. Jobs queued while `write`
    /// runs go into the next batch. Should `write` panic, the role is given up too, and the
    /// next job's owner takes the jobs still queued.
    pub fn commit(&self, mut write: impl FnMut(Vec<J>)) {
        struct Release<'a, J>(&'a GroupCommit<J>);
        impl<J> Drop for Release<'_, J> {
            fn drop(&mut self) {
                self.0.lock().committing = false;
            }
        }
        let _release = Release(self);
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.jobs.is_empty() {
                    // Still under the lock: a job queued after this finds nobody committing.
                    queue.committing = false;
                    return;
                }
                let take = queue.jobs.len().min(MAX_BATCH);
                let rest = queue.jobs.split_off(take);
                std::mem::replace(&mut queue.jobs, rest)
            };
            write(batch);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<J>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_queued_during_a_write_go_into_the_next_batch_together() {
        let commit = GroupCommit::default();
        assert!(commit.push(1), "the first job's owner commits");
        let mut batches = Vec::new();
        commit.commit(|batch| {
            if batch == [1] {
                // While batch [1] is being written, three more arrive; none of them commits.
                for job in [2, 3, 4] {
                    assert!(!commit.push(job), "a write is under way");
                }
            }
            batches.push(batch);
        });
        assert_eq!(batches, vec![vec![1], vec![2, 3, 4]], "one write for the three latecomers");
        assert!(commit.push(5), "the role is free again once the queue is empty");
    }

    #[test]
    fn a_batch_is_bounded() {
        let commit = GroupCommit::default();
        for job in 0..MAX_BATCH + 10 {
            let _ = commit.push(job);
        }
        let mut sizes = Vec::new();
        commit.commit(|batch| sizes.push(batch.len()));
        assert_eq!(sizes, vec![MAX_BATCH, 10]);
    }

    #[test]
    fn a_committer_that_panics_frees_the_role_and_loses_no_queued_job() {
        let commit = GroupCommit::default();
        assert!(commit.push(1));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit.commit(|_| {
                let _ = commit.push(2);
                panic!("write failed hard");
            });
        }));
        assert!(panicked.is_err());
        assert!(commit.push(3), "nobody is committing any more");
        let mut batches = Vec::new();
        commit.commit(|batch| batches.push(batch));
        assert_eq!(batches, vec![vec![2, 3]], "the job queued before the panic is still there");
    }
}
