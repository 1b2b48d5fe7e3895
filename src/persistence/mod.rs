//! A durable world in one redb file (feature `persistence`).
//!
//! # What the file holds
//!
//! The world as of a sequence number S (the *checkpoint*: uniform nodes at any
//! level and bricks, finer overriding coarser), plus a log of every change
//! batch after S, keyed by its first sequence number, gapless. Opening replays
//! the log onto the nodes; the result is the world as of the last change on
//! disk, numbered on from there. See `format.rs` for the byte layouts. Beside
//! the world, named opaque states (the geology processes', the storage
//! clock) with the sequence number they were saved at (`states.rs`).
//!
//! # How changes reach it
//!
//! [`WorldStore::commit`] hands a drained [`ChangeBatch`](crate::ChangeBatch)
//! (shared, not copied) to a writer thread and returns. The writer puts every
//! batch waiting into one transaction (group commit) and syncs it, so the frame
//! never waits on `fsync`; [`WorldStore::durable`] is the last sequence number
//! synced (the acknowledgement). Every `checkpoint_every` changes, the writer
//! folds the logged changes into the stored bricks itself (read brick, apply,
//! write), drops the log entries they cover and moves the checkpoint, in one
//! transaction: the log and the file stay bounded under a workload that never
//! stops, and the calling thread does none of it. Consolidation is not
//! involved: the in-memory base is not the world at any one sequence number
//! (the overlay holds changes of every age), the file is.
//!
//! # What a crash can lose
//!
//! Nothing acknowledged: with [`Durability::EveryCommit`] (the default) only
//! the batches not yet acknowledged, with [`Durability::Interval`] up to an
//! interval's. Every commit is atomic and carries redb's allocator state, so a
//! reopen after a crash needs no repair: the file is read and checked without
//! being written (redb's recovery runs over an in-memory layer of its writes,
//! never a copy of the file), and holds exactly the changes up to some batch
//! boundary at or after the last acknowledgement, nothing partial and nothing
//! invented.
//!
//! # What is acknowledged can be read back
//!
//! - `COMMIT_CHECKED`: [`WorldStore::commit`] refuses a batch the file could
//!   not read back (a change outside the world, a batch not following the last
//!   one handed over) with [`StoreError::Batch`], before anything is queued.
//! - `LOG_CAPPED`: a batch larger than `max_batch` is logged as several
//!   entries of at most `max_batch` changes, so every entry passes the cap the
//!   next open checks (with the same or a larger `max_batch`).
//! - `WRITER_WATCHED`: a writer that panicked or ended is seen by the handle:
//!   every later call returns [`StoreError::WriterStopped`] and
//!   [`WorldStore::error`] says why.
//!
//! # Bad files
//!
//! Opening reads every record through a read-only handle before anything is
//! written: a truncated file, a flipped byte in a brick or a log entry (every
//! record carries a checksum), a file of another format version, a file that is
//! not a redb database or that would need a repair, a file of another world
//! than expected ([`StoreError::Mismatch`]), a brick whose LOD pyramid is not
//! its voxels': each is a [`StoreError`] naming the problem and the path (and
//! the record), and the file is left as it was. [`StoreError::is_bad_file`]
//! tells these from a failure of the system, and [`WorldStore::move_aside`]
//! sets such a file aside, whole, under a name no other file has.

mod aside;
pub(crate) mod error;
pub(crate) mod format;
mod options;
pub(crate) mod recover;
mod shared;
mod states;
pub(crate) mod store;
#[cfg(test)]
mod tests;
mod writer;

pub use crate::codec::DecodeError;
pub use error::{Mismatch, Record, StoreError};
pub use options::{Durability, Opened, StoreOptions};
pub use states::{MAX_STATE, MAX_STATES, SavedState};
pub use store::WorldStore;
