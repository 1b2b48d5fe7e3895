//! What the caller's handle and the writer thread share: the commands sent,
//! the acknowledgement, the error, the pending snapshot, the flags.

use super::error::StoreError;
use crate::storage::{ChangeBatch, WorldSnapshot};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// What the caller's handle sends the writer.
pub(crate) enum Command {
    Batch(Arc<ChangeBatch>),
    /// Nothing to do but a round: a flag in [`Shared`] says what.
    Wake,
    Sync(Sender<u64>),
    Shutdown,
    /// A state to save under a name, with the world's sequence number then
    /// (`None`: remove what is saved under it).
    State(String, u64, Option<Vec<u8>>),
}

/// What the handle and the writer share.
pub(crate) struct Shared {
    pub durable: AtomicU64,
    pub error: Mutex<Option<StoreError>>,
    failed: AtomicBool,
    /// A snapshot to write as a full checkpoint; a newer one replaces it.
    snapshot: Mutex<Option<WorldSnapshot>>,
    snapshot_pending: AtomicBool,
    /// A checkpoint was asked for (`NO_LOST_REQUEST`).
    checkpoint_requested: AtomicBool,
    /// Faults the unit tests inject.
    #[cfg(test)]
    pub faults: super::tests::Faults,
}

impl Shared {
    pub fn new(durable: u64) -> Self {
        Self {
            durable: AtomicU64::new(durable),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
            snapshot: Mutex::new(None),
            snapshot_pending: AtomicBool::new(false),
            checkpoint_requested: AtomicBool::new(false),
            #[cfg(test)]
            faults: Default::default(),
        }
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn snapshot_pending(&self) -> bool {
        self.snapshot_pending.load(Ordering::Acquire)
    }

    pub fn put_snapshot(&self, s: WorldSnapshot) {
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = Some(s);
            self.snapshot_pending.store(true, Ordering::Release);
        }
    }

    pub fn take_snapshot(&self) -> Option<WorldSnapshot> {
        let s = self.snapshot.lock().ok()?.take();
        self.snapshot_pending.store(false, Ordering::Release);
        s
    }

    pub fn request_checkpoint(&self) {
        self.checkpoint_requested.store(true, Ordering::Release);
    }

    pub fn take_checkpoint_request(&self) -> bool {
        self.checkpoint_requested.swap(false, Ordering::AcqRel)
    }

    /// Records the writer's error (the first one stays) and marks it failed.
    pub fn fail(&self, e: StoreError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
        self.failed.store(true, Ordering::Release);
    }
}
